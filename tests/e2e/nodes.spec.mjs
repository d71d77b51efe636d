// The playground's "across nodes" example (issue 12, item 6): the worker runs
// two engines, node 1 and node 2, joined by an in-memory transport. A
// distributed aggregate on node 1 runs a fragment on node 2; the trace
// inspector shows node 2's spans under node 1's operator with the same trace
// id; Cancel and a timeout on node 1 stop node 2's fragment, whose spans say
// "cancelled by node 1: …".
import { expect, test } from "./fixtures.mjs";
import { EXAMPLES } from "../../www/src/examples.js";

const EXAMPLE = "Across nodes: node 1 runs a fragment on node 2 (two engines, no network)";
/** Distributed and CPU-bound for minutes unless stopped. */
const LONG = "SET cascade_distribute = ON;\nSELECT count(*), sum(n % 7) FROM generate_series(1, 100000000000) AS g(n)";

async function openPlayground(page) {
  await page.goto("/");
  await expect(page.locator("body[data-ready=true]")).toHaveCount(1, { timeout: 30_000 });
}

async function setSql(page, sql) {
  await page.getByLabel("SQL editor").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText(sql);
}

const run = (page) => page.getByRole("button", { name: "Run", exact: true }).click();
const results = (page) => page.getByRole("table", { name: "Results" });

/** The cells of the results table once it shows `queryId` in the summary
 * line after a run. */
async function cellsAfterRun(page) {
  const before = await page.locator("#summary").textContent();
  await run(page);
  await expect(page.locator("#summary")).not.toHaveText(before ?? "", { timeout: 30_000 });
  await expect(page.locator("#summary")).toContainText("row in set", { timeout: 30_000 });
  return results(page).getByRole("cell").allTextContents();
}

/** Starts a distributed statement that runs until stopped, and waits until
 * node 2 runs its fragment (node 2's live context tree shows a connection
 * from node 1). */
async function startLong(page) {
  await setSql(page, LONG);
  await run(page);
  await expect(page.getByRole("button", { name: "Cancel", exact: true })).toBeVisible();
  await expect(page.locator('#contexts [data-node="2"]')).toContainText("Routine", { timeout: 15_000 });
}

/** The trace the inspector shows, from the page's client. */
const shownTrace = (page) =>
  page.evaluate(async () => {
    const id = Number(document.getElementById("trace-select").value);
    return window.cascadePlayground.client.trace(id);
  });

test("the across-nodes example answers as one node does, with node 2's spans under node 1's RemoteScan", async ({ page }) => {
  await openPlayground(page);
  const example = EXAMPLES.find((ex) => ex.title === EXAMPLE).sql;
  expect(example).toContain("SET cascade_distribute = ON;");
  // The same statement on one node first.
  const select = example.slice(example.lastIndexOf("SELECT"));
  await setSql(page, `SET cascade_distribute = OFF;\n${select}`);
  const oneNode = await cellsAfterRun(page);
  await expect(page.locator('#timeline [data-node="2"]')).toHaveCount(0);

  await page.getByLabel("Examples").selectOption({ label: EXAMPLE });
  const twoNodes = await cellsAfterRun(page);
  expect(twoNodes).toEqual(oneNode);
  expect(twoNodes.length).toBe(4);

  // The inspector: spans of both nodes; a node's badge where the work
  // crosses to it, and its hue on every span of it.
  const timeline = page.locator("#timeline");
  const node2 = timeline.locator('[data-node="2"]');
  await expect(node2.first()).toBeVisible();
  await expect(node2.first().locator(".node-badge")).toHaveText("node 2");
  await expect(node2.first()).toHaveAttribute("aria-label", /^node 2: Pipeline remote pipeline/);
  await expect(timeline.locator('[data-node="1"][data-level="Root"] .node-badge')).toHaveText("node 1");
  const hue = (row) => row.evaluate((el) => el.style.getPropertyValue("--node-hue").trim());
  expect(await hue(node2.last())).toBe("30");
  expect(await hue(timeline.locator('[data-node="1"][data-level="Query"]'))).toBe("210");
  // One trace id: node 2's spans carry the id of node 1's statement.
  const traceId = await timeline.locator('[data-node="1"][data-level="Query"]').first().getAttribute("data-trace-id");
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  await expect(timeline.locator("p.trace-id")).toHaveText(`trace id ${traceId}`);
  const node2Ids = await node2.evaluateAll((rows) => rows.map((r) => r.dataset.traceId));
  expect(node2Ids.length).toBeGreaterThan(0);
  expect(new Set(node2Ids)).toEqual(new Set([traceId]));
  // Grafted into node 1's plan: node 2's topmost span hangs under node 1's
  // call to node 2, inside the pipeline of node 1's RemoteScan operator.
  const trace = await shownTrace(page);
  const byId = new Map(trace.spans.map((s) => [s.id, s]));
  const nodeOf = (s) => (s.attrs?.remote === true ? Number(s.attrs.node) : trace.nodeId);
  const remote = trace.spans.filter((s) => nodeOf(s) === 2);
  const tops = remote.filter((s) => nodeOf(byId.get(s.parentId) ?? {}) !== 2);
  expect(tops.length).toBe(1);
  const call = byId.get(tops[0].parentId);
  expect(nodeOf(call)).toBe(1);
  expect(call.attrs.node).toBe(2);
  expect(call.name).toContain("on node 2");
  const scanPipeline = byId.get(call.parentId);
  expect(trace.spans.some((s) => s.parentId === scanPipeline.id && s.level === "Operator" && s.name === "RemoteScan")).toBe(true);
  // The EXPLAIN ANALYZE tree says where the fragment ran.
  await expect(page.locator("#explain")).toContainText("on node 2");
});

test("Cancel on node 1 stops node 2's fragment, whose spans say cancelled by node 1", async ({ page }) => {
  await openPlayground(page);
  await startLong(page);
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("1317");
  await expect(alert).toContainText("KILL QUERY");
  // Node 2's fragment ended with node 1's cause.
  const stopped = page.locator('#timeline [data-node="2"][data-status="canceled"]');
  await expect(stopped.first()).toBeVisible();
  await expect(stopped.first()).toContainText("cancelled by node 1: killed by KILL QUERY");
  // Nothing of the statement is left on node 2.
  await expect(page.locator('#contexts [data-node="2"]')).not.toContainText("Routine");
});

test("KILL QUERY from another session on node 1 stops node 2's fragment with the killer named", async ({ page }) => {
  await openPlayground(page);
  await startLong(page);
  const victim = Number(await page.getByRole("tab").first().getAttribute("data-connection-id"));
  await page.getByRole("button", { name: "New session" }).click();
  await page.getByLabel("User").fill("root");
  await page.getByLabel("Role").selectOption("admin");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await expect(page.getByRole("tab")).toHaveCount(2);
  const killer = Number(await page.getByRole("tab").last().getAttribute("data-connection-id"));
  await page.locator(`#processes tr[data-connection-id="${victim}"]`).getByRole("button", { name: "Kill query" }).click();
  await page.getByRole("tab").first().click();
  await expect(page.getByRole("alert")).toContainText("1317");
  const stopped = page.locator('#timeline [data-node="2"][data-status="canceled"]');
  await expect(stopped.first()).toContainText(`cancelled by node 1: killed by KILL QUERY from connection ${killer}`);
  await expect(page.locator('#contexts [data-node="2"]')).not.toContainText("Routine");
});

test("a timeout on node 1 ends node 2's fragment with node 1's deadline", async ({ page }) => {
  await openPlayground(page);
  await page.getByLabel("Timeout (ms)").fill("400");
  await setSql(page, LONG);
  await run(page);
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("3024", { timeout: 10_000 });
  await expect(alert).toContainText("statement_timeout");
  const stopped = page.locator('#timeline [data-node="2"][data-status="deadline_exceeded"]');
  await expect(stopped.first()).toBeVisible();
  await expect(stopped.first()).toContainText("cancelled by node 1: statement timeout of 400 ms");
  await expect(page.locator('#contexts [data-node="2"]')).not.toContainText("Routine");
});
