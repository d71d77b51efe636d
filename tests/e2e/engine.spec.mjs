// End-to-end: the engine's life in the page. A trapped WebAssembly module or
// a silent worker is noticed, the page says what was lost and starts a fresh
// engine on request; Cancel and Kill query name the statement they mean;
// the statement's phase shows in the process list and the progress line.
// Faults are injected through the page's documented debug hook
// (cascadePlayground.debug.crashEngine), which traps the module for real.
import { HEAVY, expect, test } from "./fixtures.mjs";

async function openPlayground(page) {
  await page.goto("/");
  await expect(page.locator("body[data-ready=true]")).toHaveCount(1, { timeout: 30_000 });
}

async function setSql(page, sql) {
  await page.getByLabel("SQL editor").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText(sql);
}

async function runSql(page, sql) {
  await setSql(page, sql);
  await page.getByRole("button", { name: "Run", exact: true }).click();
}

async function startHeavy(page) {
  await runSql(page, HEAVY);
  await expect(page.getByRole("button", { name: "Cancel", exact: true })).toBeVisible();
  await expect(page.locator("#progress")).toContainText("rows processed");
}

const crash = (page, mode) => page.evaluate((m) => window.cascadePlayground.debug.crashEngine(m), mode);

/** After a restart: the demo tables are back and a query answers. */
async function expectFreshEngineWorks(page) {
  await page.getByRole("button", { name: "Start a fresh engine" }).click();
  await expect(page.locator("#engine-down")).toBeHidden({ timeout: 30_000 });
  await expect(page.locator("body")).toHaveAttribute("data-engine", "alive");
  await runSql(page, "SELECT count(*) AS n FROM customers");
  await expect(page.getByRole("table", { name: "Results" }).getByRole("cell")).toHaveText("8");
}

test("a trap mid-statement: the page says what was lost, keeps the text, and a fresh engine runs queries", async ({ page }) => {
  await openPlayground(page);
  await runSql(page, "SELECT 'before the crash' AS note");
  await expect(page.getByRole("cell", { name: "before the crash" })).toBeVisible();
  await startHeavy(page);
  const conn = Number(await page.getByRole("tab").first().getAttribute("data-connection-id"));

  await crash(page, "unreachable");

  const banner = page.getByRole("alert", { name: "The engine stopped" });
  await expect(banner).toBeVisible();
  await expect(banner).toContainText("WebAssembly module trapped");
  await expect(banner).toContainText("RuntimeError: unreachable");
  // What was lost: its tables, its sessions, the statement that was running.
  await expect(banner).toContainText("customers");
  await expect(banner).toContainText(`connection ${conn}`);
  await expect(banner.locator("li")).toContainText(`session 1 (connection ${conn}): ${HEAVY}`);
  await expect(banner).toContainText("Kept: your editor text");
  // The running statement's promise rejected (it did not hang): lost connection.
  const alert = page.locator("#alert");
  await expect(alert).toContainText("2013");
  await expect(alert).toContainText("Lost connection to the engine during query");
  await expect(page.getByRole("button", { name: "Run", exact: true })).toBeDisabled();
  // Kept: editor text and history.
  await expect(page.getByLabel("SQL editor")).toContainText("generate_series(1, 100000000000)");
  await expect(page.locator("#history")).toContainText("before the crash");
  await expect(page.locator("#history li").first()).toContainText("✕");

  await expectFreshEngineWorks(page);
  await expect(page.locator("#history")).toContainText("before the crash");
  // The tab reconnected as a new connection of the fresh engine.
  await expect(page.locator(`#processes tr[data-connection-id="${await page.getByRole("tab").first().getAttribute("data-connection-id")}"]`)).toHaveCount(1);
});

test("issue 8's 3,000-term sum never leaves the session answering 2014", async ({ page }) => {
  await openPlayground(page);
  // Run as the editor's Run does (typing 12 KB into the editor is slow).
  await page.evaluate((sql) => {
    const pg = window.cascadePlayground;
    pg.run(pg.sessions[0], sql);
  }, `SELECT ${Array(3000).fill("1").join(" + ")} AS s`);
  // The engine answers, or refuses with a typed error (deep input handled),
  // or died of it and the page says so; it never hangs, and the next
  // statement is answered, not 2014.
  const answered = page.getByRole("table", { name: "Results" });
  const banner = page.getByRole("alert", { name: "The engine stopped" });
  const refused = page.locator("#alert:not([hidden])");
  await expect(answered.or(banner).or(refused).first()).toBeVisible({ timeout: 30_000 });
  const died = await banner.isVisible();
  const outcome = died ? "the engine died of it" : (await answered.isVisible()) ? "answered" : "refused";
  test.info().annotations.push({ type: "3,000-term sum", description: outcome });
  if (died) {
    await expect(banner).toContainText(/RangeError|RuntimeError/);
    await page.getByRole("button", { name: "Start a fresh engine" }).click();
    await expect(banner).toBeHidden({ timeout: 30_000 });
  } else if (outcome === "answered") {
    await expect(answered.getByRole("cell")).toHaveText("3000");
  } else {
    await expect(refused).toContainText(/^ERROR \d+/);
    await expect(refused).not.toContainText(/ERROR (2013|2014)/);
  }
  await runSql(page, "SELECT 'after' AS x");
  await expect(page.getByRole("cell", { name: "after" })).toBeVisible();
  await expect(page.locator("#alert")).toBeHidden();
});

test("a trap inside a call: later calls reject at once instead of hanging", async ({ page }) => {
  await openPlayground(page);
  const crashed = await page.evaluate(() =>
    window.cascadePlayground.debug.crashEngine("stack").then(
      () => null,
      (e) => ({ name: e.name, code: e.code, message: e.message }),
    ),
  );
  expect(crashed?.name).toBe("EngineDeadError");
  expect(crashed?.code).toBe(2006);
  const banner = page.getByRole("alert", { name: "The engine stopped" });
  await expect(banner).toBeVisible();
  // A stack overflow: the JS engine's RangeError or the shadow stack's trap.
  await expect(banner).toContainText(/RangeError: Maximum call stack size exceeded|RuntimeError/);
  await expect(banner).toContainText("No statement was running");
  const later = await page.evaluate(() =>
    window.cascadePlayground.client.processes({ tenant: "acme", user: "alice", role: "member" }).then(
      () => null,
      (e) => ({ name: e.name, code: e.code }),
    ),
  );
  expect(later).toEqual({ name: "EngineDeadError", code: 2006 });
  await expectFreshEngineWorks(page);
});

test("a worker that stops answering is reported, and can be replaced", async ({ page }) => {
  await openPlayground(page);
  await startHeavy(page);
  await crash(page, "exit");
  const banner = page.getByRole("alert", { name: "The engine is not responding" });
  await expect(banner).toBeVisible({ timeout: 15_000 });
  await expect(banner).toContainText(HEAVY);
  await expectFreshEngineWorks(page);
  // The query lost with the old worker was rejected, not left running.
  await expect(page.locator("#history li").nth(1)).toContainText("✕");
});

/** Runs `sql` on session 1's connection through the page's client and
 * waits until the process list shows it running; its statement id. */
async function startOnClient(page, sql) {
  return page.evaluate(async (q) => {
    const s = window.cascadePlayground.sessions[0];
    const client = window.cascadePlayground.client;
    window.__running = s.conn.query(q);
    window.__running.catch(() => {});
    for (;;) {
      const me = (await client.processes(s.identity)).find((p) => p.id === s.conn.id);
      if (me?.statementId != null && me.info) return me.statementId;
      await new Promise((r) => setTimeout(r, 20));
    }
  }, sql);
}

const runningStatementOf = (page) =>
  page.evaluate(async () => {
    const s = window.cascadePlayground.sessions[0];
    const me = (await window.cascadePlayground.client.processes(s.identity)).find((p) => p.id === s.conn.id);
    return me?.statementId ?? null;
  });

test("Cancel names its statement: a late cancel of a finished query never kills the next one", async ({ page }) => {
  await openPlayground(page);
  const stale = await page.evaluate(async () => {
    const conn = window.cascadePlayground.sessions[0].conn;
    window.__first = conn.query("SELECT 1");
    const r = await window.__first;
    return r.queryId;
  });
  const next = await startOnClient(page, HEAVY);
  expect(next).not.toBe(stale);
  // Cancel of the finished query (by its promise, as the page's Cancel
  // does), then by its statement id: both no-ops that say so.
  const late = await page.evaluate(() => window.cascadePlayground.sessions[0].conn.cancel(window.__first));
  expect(late.killed).toBe(false);
  expect(late.message).toContain("finished");
  const byId = await page.evaluate((id) => window.cascadePlayground.sessions[0].conn.cancel(id), stale);
  expect(byId).toMatchObject({ killed: false, statementId: stale });
  expect(byId.message).toContain(`statement ${stale} is not running`);
  expect(await runningStatementOf(page)).toBe(next);
  // Cancel of the running one stops it.
  const outcome = await page.evaluate(async () => {
    const conn = window.cascadePlayground.sessions[0].conn;
    const r = await conn.cancel(window.__running);
    const e = await window.__running.then(() => null, (err) => ({ code: err.code, what: err.cause?.what }));
    return { r, e };
  });
  expect(outcome.r).toMatchObject({ killed: true, statementId: next });
  expect(outcome.e).toEqual({ code: 1317, what: "kill_query" });
});

test("Kill query from the process list names the statement its row showed", async ({ page }) => {
  await openPlayground(page);
  const victim = Number(await page.getByRole("tab").first().getAttribute("data-connection-id"));
  const first = await startOnClient(page, HEAVY);
  // A second session (admin) sees the row with its statement id.
  await page.getByRole("button", { name: "New session" }).click();
  await page.getByLabel("User").fill("root");
  await page.getByLabel("Role").selectOption("admin");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await expect(page.getByRole("tab")).toHaveCount(2);
  const row = page.locator(`#processes tr[data-connection-id="${victim}"]`);
  await expect(row).toHaveAttribute("data-statement-id", String(first));
  // The first statement ends and the victim starts another one.
  await page.evaluate(async () => {
    const s = window.cascadePlayground.sessions[0];
    await s.conn.cancel(window.__running);
    await window.__running.catch(() => {});
  });
  const second = await startOnClient(page, HEAVY);
  // A kill aimed at the first statement (what a stale row showed) is a no-op.
  const stale = await page.evaluate(
    ([target, id]) => window.cascadePlayground.sessions[1].conn.kill(target, "query", id),
    [victim, first],
  );
  expect(stale.killed).toBe(false);
  expect(stale.message).toContain(`statement ${first} is not running on connection ${victim}`);
  expect(await runningStatementOf(page)).toBe(second);
  // The row now shows the second statement; its button kills that one.
  await expect(row).toHaveAttribute("data-statement-id", String(second));
  await row.getByRole("button", { name: "Kill query" }).click();
  const e = await page.evaluate(() => window.__running.then(() => null, (err) => ({ code: err.code, what: err.cause?.what })));
  expect(e).toEqual({ code: 1317, what: "kill_query" });
});

test("the statement's phase shows in the process list and next to the timer", async ({ page }) => {
  await openPlayground(page);
  await startHeavy(page);
  const conn = await page.getByRole("tab").first().getAttribute("data-connection-id");
  const row = page.locator(`#processes tr[data-connection-id="${conn}"]`);
  await expect(row).toHaveAttribute("data-state", "executing");
  await expect(row.locator(".state")).toHaveText("executing");
  await expect(page.locator("#progress")).toContainText(/Running statement #\d+ · executing · /);
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await expect(page.getByRole("alert")).toContainText("1317");
});
