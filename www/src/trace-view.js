// The trace inspector: a timeline of spans coloured by level, with
// durations, statuses and causes; the EXPLAIN ANALYZE text tree; the
// Download trace link; and the live context tree. A trace that spans nodes
// (a fragment run on another engine, its spans grafted under the
// coordinator's operator) marks every span with a badge of its node, on the
// node's own hue.

import { count, h, LEVELS, ms } from "./format.js";

const color = (level) => `--c: var(--lvl-${LEVELS.includes(level) ? level : "Root"})`;

export function renderLegend(el) {
  el.replaceChildren(...LEVELS.map((l) => h("span", { style: color(l) }, l)));
}

/** The node a span ran on: a span grafted from another node carries
 * attributes `remote` and `node`; the others are the coordinator's
 * (`trace.nodeId`), including its fragment-call spans, whose `node` names
 * the node they call. */
export function spanNode(span, trace) {
  const a = span.attrs ?? {};
  return a.remote === true && a.node !== undefined ? Number(a.node) : (trace?.nodeId ?? null);
}

const NODE_HUES = [210, 30, 140, 280, 330, 90, 180, 0];

/** A node's hue: node 1 blue, node 2 orange, node 3 green, … */
export function nodeHue(node) {
  const n = Math.max(Number(node) || 1, 1);
  return NODE_HUES[(n - 1) % NODE_HUES.length];
}

/** "node 2" on the node's hue. */
export function nodeBadge(node) {
  return h("span", { class: "node-badge", style: `--node-hue: ${nodeHue(node)}`, title: `ran on node ${node}` }, `node ${node}`);
}

/** Spans in depth-first order with their depth. */
function ordered(spans) {
  const ids = new Set(spans.map((s) => s.id));
  const kids = new Map();
  for (const s of spans) {
    const p = s.parentId != null && ids.has(s.parentId) ? s.parentId : null;
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(s);
  }
  const out = [];
  const walk = (p, depth) => {
    for (const s of (kids.get(p) ?? []).sort((a, b) => a.startUs - b.startUs || a.id - b.id)) {
      out.push({ span: s, depth });
      walk(s.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

function attrsText(attrs) {
  const keys = Object.keys(attrs ?? {});
  if (keys.length === 0) return "";
  return keys.map((k) => `${k}=${attrs[k]}`).join(" ");
}

/** Renders `trace` ({ traceId, spans }) as a timeline. */
export function renderTimeline(el, trace) {
  el.replaceChildren();
  if (!trace || trace.spans.length === 0) {
    el.append(h("p", { class: "muted" }, "No spans recorded."));
    return;
  }
  // The statement's W3C trace id (a sqlcommenter traceparent's, if it had one).
  if (trace.focusTraceId) {
    el.append(h("p", { class: "muted trace-id" }, `trace id ${trace.focusTraceId}`));
  }
  const rows = ordered(trace.spans);
  // Badges only when the statement ran on more than one node.
  const nodes = new Set(trace.spans.map((s) => spanNode(s, trace)));
  const multi = nodes.size > 1;
  const byId = new Map(trace.spans.map((s) => [s.id, s]));
  // A cause is written once, on the outermost span that carries it.
  const causeShown = (s) => {
    const p = byId.get(s.parentId);
    return s.status?.message && !(p && p.status?.message === s.status.message);
  };
  const t0 = Math.min(...trace.spans.map((s) => s.startUs));
  const t1 = Math.max(...trace.spans.map((s) => s.startUs + s.durUs));
  const total = Math.max(t1 - t0, 1);
  for (const { span: s, depth } of rows) {
    const status = s.status?.code ?? "ok";
    const left = ((s.startUs - t0) / total) * 100;
    const width = Math.max((s.durUs / total) * 100, 0.2);
    const attrs = attrsText(s.attrs);
    const node = spanNode(s, trace);
    // The badge where the work crosses to another node (and on the top
    // span); every span of a node has the node's hue down its edge.
    const parent = byId.get(s.parentId);
    const crosses = multi && (!parent || spanNode(parent, trace) !== node);
    const label = h(
      "div",
      { class: "span-label", style: `padding-left:${depth * 12}px`, title: [s.traceId ? `trace ${s.traceId}` : null, attrs, s.status?.message].filter(Boolean).join("\n") },
      crosses ? nodeBadge(node) : null,
      h("span", { class: "lvl" }, s.level),
      s.name,
      " ",
      h("span", { class: "muted" }, ms(s.durUs / 1000)),
      status !== "ok" ? h("span", { class: `span-status ${status}` }, status) : null,
      s.links?.length ? h("span", { class: "muted" }, ` ↪ links #${s.links.join(", #")}`) : null,
      causeShown(s) ? h("span", { class: "span-cause" }, s.status.message) : null,
    );
    const track = h(
      "div",
      { class: "span-track" },
      h("div", { class: `span-bar ${status}`, style: `left:${left}%;width:${width}%` }),
    );
    el.append(
      h(
        "div",
        {
          role: "listitem",
          class: multi ? "span-row on-node" : "span-row",
          style: `${color(s.level)}${multi ? `; --node-hue: ${nodeHue(node)}` : ""}`,
          "data-level": s.level,
          "data-status": status,
          "data-node": node,
          "data-trace-id": s.traceId,
          "aria-label": `${multi ? `node ${node}: ` : ""}${s.level} ${s.name}, ${ms(s.durUs / 1000)}, ${status}${s.status?.message ? `: ${s.status.message}` : ""}`,
        },
        label,
        track,
      ),
    );
  }
}

/** The focus statement's plan as an EXPLAIN ANALYZE tree, from its
 * Query, Pipeline and Operator spans: rows, batches, time and self time in
 * human units, and the status when it is not ok. */
export function explainTree(trace) {
  if (!trace) return "";
  const query = trace.spans.find((s) => s.id === trace.focusId) ?? trace.spans.find((s) => s.level === "Query");
  if (!query) return "";
  const kids = new Map();
  for (const s of trace.spans) {
    if (!kids.has(s.parentId)) kids.set(s.parentId, []);
    kids.get(s.parentId).push(s);
  }
  const lines = [];
  const walk = (s, depth) => {
    const a = s.attrs ?? {};
    const parts = [];
    if (a.rows !== undefined) parts.push(`rows=${count(a.rows)}`);
    if (a.batches !== undefined) parts.push(`batches=${count(a.batches)}`);
    parts.push(`time=${ms(s.durUs / 1000)}`);
    if (a.self_time_us !== undefined) parts.push(`self=${ms(a.self_time_us / 1000)}`);
    const status = s.status?.code && s.status.code !== "ok" ? ` ${s.status.code}` : "";
    const where = a.remote === true && a.node !== undefined ? ` on node ${a.node}` : "";
    const label = (s.level === "Operator" ? String(a.detail ?? s.name) : `${s.name} [${s.level}]`) + where;
    lines.push(`${"  ".repeat(depth)}-> ${label.replace(/\s+/g, " ")}  (${parts.join(" ")})${status}`);
    for (const c of (kids.get(s.id) ?? []).sort((x, y) => x.startUs - y.startUs)) walk(c, depth + 1);
  };
  walk(query, 0);
  return lines.join("\n");
}

let downloadUrl = null;

/** Points the Download trace link at `json` (Chrome Trace Event JSON). */
export function setDownload(link, json, queryId) {
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = null;
  if (!json) {
    link.href = "#";
    link.setAttribute("aria-disabled", "true");
    return;
  }
  downloadUrl = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  link.href = downloadUrl;
  link.download = `cascade-trace-query-${queryId}.json`;
  link.setAttribute("aria-disabled", "false");
}

function contextNode(c) {
  const id = c.identity ? ` ${c.identity.user}@${c.identity.tenant} (${c.identity.role})` : "";
  const bits = [
    c.connectionId != null ? `conn ${c.connectionId}` : null,
    c.txnId != null ? `txn ${c.txnId}` : null,
    c.statementId != null ? `stmt ${c.statementId}` : null,
    c.deadlineInMs != null ? `deadline in ${ms(c.deadlineInMs)}` : null,
  ].filter(Boolean);
  const li = h(
    "li",
    {},
    h("span", { class: "lvl", style: color(c.level) }, c.level),
    ` #${c.id}${id}`,
    bits.length ? h("span", { class: "muted" }, ` · ${bits.join(" · ")}`) : null,
    c.cancelled ? h("span", { class: "cancelled" }, ` ✕ ${c.cause?.reason?.what ?? "cancelled"}`) : null,
  );
  if (c.children?.length) li.append(h("ul", {}, c.children.map(contextNode)));
  return li;
}

/** Renders the live context tree: one tree (engine.contexts()), or one per
 * node (`[{ node, tree }]`, the worker's answer when it runs several
 * engines), each under its node's badge. */
export function renderContexts(el, roots) {
  if (!Array.isArray(roots)) {
    el.replaceChildren(h("ul", {}, contextNode(roots)));
    return;
  }
  if (roots.length === 1) {
    el.replaceChildren(h("ul", {}, contextNode(roots[0].tree)));
    return;
  }
  el.replaceChildren(
    ...roots.map(({ node, tree }) =>
      h("div", { class: "node-contexts", "data-node": node, style: `--node-hue: ${nodeHue(node)}` }, nodeBadge(node), h("ul", {}, contextNode(tree))),
    ),
  );
}
