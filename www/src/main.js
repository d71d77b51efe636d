// The playground page: sessions as tabs, the editor, Run/Cancel, results,
// errors, the live process list and context tree, and the trace inspector.
// Every engine call goes to the Web Worker through EngineClient, so the main
// thread only renders. When the engine dies (its module trapped, its worker
// failed or stopped answering) the page says what was lost, keeps the
// editor text, tabs and history, and offers a fresh engine.

import { EngineClient } from "./client.js";
import { createEditor } from "./editor.js";
import { EXAMPLES, DEMO_SETUP } from "./examples.js";
import { TENANTS, describeLimits, tenantHue } from "./tenants.js";
import { count, h, ms } from "./format.js";
import { addHistory, clearHistory, loadHistory, setHashSql, sqlFromHash } from "./history.js";
import { ProcessView } from "./processes.js";
import { renderAlert, renderResult } from "./results.js";
import { explainTree, renderContexts, renderLegend, renderTimeline, setDownload } from "./trace-view.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("engine-status"),
  tabs: $("tabs"),
  newSession: $("new-session"),
  newForm: $("new-session-form"),
  sessionInfo: $("session-info"),
  run: $("run"),
  timeout: $("timeout"),
  progress: $("progress"),
  reconnect: $("reconnect"),
  alert: $("alert"),
  summary: $("summary"),
  results: $("results"),
  traceSelect: $("trace-select"),
  download: $("download-trace"),
  legend: $("legend"),
  timeline: $("timeline"),
  explain: $("explain"),
  traceText: $("trace-text"),
  processes: $("processes"),
  procViewer: $("proc-viewer"),
  contextsDetails: $("contexts-details"),
  contexts: $("contexts"),
  history: $("history"),
  examples: $("examples"),
  devtools: $("devtools"),
  engineDown: $("engine-down"),
  engineDownTitle: $("engine-down-title"),
  engineDownBody: $("engine-down-body"),
  restart: $("restart-engine"),
};

const MAX_ROWS_SHOWN = 1000;
const POLL_MS = 250;

const WORKER_URL = new URL("./worker.js", import.meta.url);
const DEMO_IDENTITY = { tenant: "acme", user: "alice", role: "member" };

/** @type {EngineClient} */
let client;
/** Set when the engine could not start: the error. */
let startError = null;
/** Table names last read for completion (to say what a dead engine lost). */
let knownTables = [];
/** One tab: a connection with its identity, editor text and last outcome. */
class Session {
  constructor(n, conn) {
    this.n = n;
    this.conn = conn;
    this.identity = conn.identity;
    this.text = "";
    this.running = false;
    this.startedAt = 0;
    this.result = null;
    this.error = null;
    this.unseen = false;
    this.dead = false;
    /** The running query() (what Cancel names), its statement id and phase
     * as last seen in the process list. */
    this.pending = null;
    this.statementId = null;
    this.phase = null;
  }
  get label() {
    const { user, tenant, role } = this.identity;
    return `${this.n}: ${user}@${tenant} (${role})`;
  }
}
const sessions = [];
let active = null;
let sessionCounter = 0;
/** Recent statements for the trace selector: { queryId, sql, session, status }. */
const recent = [];
let shownTrace = null;
let schemaFor = null;

const editor = createEditor($("editor"), {
  doc: sqlFromHash() ?? EXAMPLES[0].sql,
  onRun: (sql) => run(active, sql),
});
document.body.dataset.editorMs = String(Math.round(performance.now()));

// ---------------------------------------------------------------- sessions

async function openSession(identity) {
  const conn = await client.connect(identity);
  const s = new Session(++sessionCounter, conn);
  s.text = sessions.length === 0 ? editor.text : "SHOW PROCESSLIST";
  sessions.push(s);
  activate(s);
  return s;
}

function activate(s) {
  if (active && active !== s) active.text = editor.text;
  active = s;
  s.unseen = false;
  if (editor.text !== s.text) editor.text = s.text;
  renderSession();
  if (s.lastQueryId != null && s.lastQueryId !== shownTrace) showTrace(s.lastQueryId);
  refreshSchema();
  pollLive();
}

function renderTabs() {
  ui.tabs.replaceChildren(
    ...sessions.map((s) => {
      const badge = s.running
        ? h("span", { class: "badge" }, "running")
        : s.unseen && s.error
          ? h("span", { class: "badge err" }, "error")
          : null;
      return h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `tab-${s.n}`,
          "aria-selected": s === active ? "true" : "false",
          "aria-controls": "editor",
          "data-connection-id": s.conn.id,
          onclick: () => activate(s),
        },
        tenantChip(s.identity.tenant),
        s.label,
        badge,
      );
    }),
  );
}

/** The tenant's name on its own hue: which tenant a tab or row is, at a glance. */
function tenantChip(tenant) {
  return h("span", { class: "tenant-chip", style: `--tenant-hue: ${tenantHue(tenant)}`, title: `tenant ${tenant}: ${describeLimits(tenant)}` }, tenant);
}

function renderSession() {
  const s = active;
  renderTabs();
  if (!s) return;
  ui.sessionInfo.replaceChildren(
    h("span", { class: "session-tenant", "data-tenant": s.identity.tenant }, "Tenant ", tenantChip(s.identity.tenant), h("span", { class: "muted" }, ` (${describeLimits(s.identity.tenant)})`)),
    ` — session ${s.n}, user ${s.identity.user}, role ${s.identity.role}, connection ${s.conn.id}${s.dead ? " (connection killed)" : ""}`,
  );
  ui.run.disabled = s.dead || engineDown();
  ui.run.textContent = s.running ? "Cancel" : "Run";
  ui.run.classList.toggle("cancel", s.running);
  ui.reconnect.hidden = !s.dead;
  renderAlert(ui.alert, s.error);
  renderResult(ui.results, ui.summary, s.error ? null : s.result);
  if (s.cancelNote) ui.summary.append(h("div", { class: "muted" }, s.cancelNote));
  renderProgress();
  ui.procViewer.textContent = `as ${s.identity.user}@${s.identity.tenant} (${s.identity.role})`;
}

function renderProgress() {
  const s = active;
  if (!s?.running) {
    ui.progress.textContent = "";
    return;
  }
  const rows = s.rowsExamined;
  const elapsed = performance.now() - s.startedAt;
  const stmt = s.statementId != null ? ` statement #${s.statementId}` : "…";
  const phase = s.phase ? ` · ${s.phase}` : "";
  ui.progress.textContent = `Running${stmt}${phase} · ${ms(elapsed)}${rows != null ? ` · ${count(rows)} rows processed` : ""}`;
  ui.progress.dataset.phase = s.phase ?? "";
}

// ---------------------------------------------------------------- running

function timeoutMs() {
  const v = Number(ui.timeout.value);
  return ui.timeout.value !== "" && Number.isFinite(v) && v > 0 ? v : undefined;
}

async function run(s, sql) {
  if (!s || s.running || s.dead || !sql.trim()) return;
  s.text = s === active ? editor.text : s.text;
  setHashSql(s.text);
  s.running = true;
  s.startedAt = performance.now();
  s.error = null;
  s.result = null;
  s.rowsExamined = null;
  s.statementId = null;
  s.phase = null;
  s.cancelNote = null;
  if (s === active) renderSession();
  let status = "ok";
  let queryId = null;
  try {
    s.pending = s.conn.query(sql, { timeoutMs: timeoutMs(), maxRows: MAX_ROWS_SHOWN });
    const result = await s.pending;
    s.result = result;
    queryId = result.queryId;
    if (/\b(create|drop|alter)\s+table\b/i.test(sql)) schemaFor = null;
  } catch (e) {
    s.error = e;
    status = e.kind ?? "error";
    queryId = e.queryId ?? null;
    if (e.cause?.what === "kill_connection" && e.cause?.level === "Routine") s.dead = true;
  } finally {
    s.running = false;
    s.pending = null;
    if (s !== active) s.unseen = true;
  }
  renderHistory(addHistory({ sql: sql.trim(), at: Date.now(), status, detail: s.error ? `${s.error.code ?? ""} ${s.error.message}` : "" }));
  if (queryId != null) {
    s.lastQueryId = queryId;
    recent.unshift({ queryId, sql: sql.trim(), session: s.n, status });
    recent.length = Math.min(recent.length, 30);
    renderTraceSelect();
    showTrace(queryId);
  }
  renderSession();
  refreshSchema();
}

/** Cancel names the query() it means: the worker kills the statement that
 * query runs now, by statement id, or nothing if it has finished (a click
 * that lands as the statement ends never kills the next one). */
async function cancel(s) {
  if (!s.pending) return;
  try {
    const r = await s.conn.cancel(s.pending);
    if (!r.killed) {
      s.cancelNote = `Cancel: ${r.message}`;
      if (s === active) renderSession();
    }
  } catch (e) {
    // The statement may have finished in between; show why else.
    if (s.running) {
      s.error = e;
      renderSession();
    }
  }
}

/** Kill query / Kill connection from the process list; Kill query names the
 * statement its row showed (`statementId`), so it never hits a later one. */
async function kill(targetId, scope, statementId) {
  const s = active;
  if (!s) return;
  try {
    const r = await s.conn.kill(targetId, scope, scope === "query" ? statementId : undefined);
    if (!s.running) {
      s.error = null;
      s.result = "killed" in r ? null : r;
      s.cancelNote = "killed" in r ? r.message : null;
    }
  } catch (e) {
    s.error = e;
  }
  if (s === active) renderSession();
  pollLive();
}

async function reconnect(s) {
  const conn = await client.connect(s.identity);
  s.conn.close().catch(() => {});
  s.conn = conn;
  s.dead = false;
  s.error = null;
  renderSession();
}

// ---------------------------------------------------------------- trace

function renderTraceSelect() {
  const current = shownTrace;
  ui.traceSelect.replaceChildren(
    ...recent.map((r) =>
      h("option", { value: r.queryId, selected: r.queryId === current }, `#${r.queryId} (s${r.session}, ${r.status}) ${r.sql.slice(0, 60)}`),
    ),
  );
}

async function showTrace(queryId) {
  shownTrace = queryId;
  ui.traceSelect.value = String(queryId);
  try {
    const [trace, text, chrome] = await Promise.all([
      client.trace(queryId),
      client.traceText(queryId),
      client.chromeTrace(queryId),
    ]);
    if (shownTrace !== queryId) return;
    renderTimeline(ui.timeline, trace);
    ui.explain.textContent = explainTree(trace);
    ui.traceText.textContent = text;
    setDownload(ui.download, chrome, queryId);
  } catch (e) {
    if (shownTrace !== queryId) return;
    ui.timeline.replaceChildren(h("p", { class: "muted" }, `No trace: ${e.message}`));
    ui.explain.textContent = "";
    ui.traceText.textContent = "";
    setDownload(ui.download, null);
  }
}

// ---------------------------------------------------------------- live views

let polling = false;
async function pollLive() {
  if (polling || !active || engineDown()) return;
  polling = true;
  try {
    const s = active;
    const list = await client.processes(s.identity);
    processView.update(list, new Map(sessions.map((x) => [x.conn.id, x.n])));
    for (const x of sessions) {
      if (!x.running) continue;
      const row = list.find((p) => p.id === x.conn.id);
      x.rowsExamined = row?.rowsExamined;
      x.statementId = row?.statementId ?? x.statementId;
      x.phase = row?.state || null;
    }
    renderProgress();
    renderTabs();
    if (ui.contextsDetails.open) renderContexts(ui.contexts, await client.contexts());
  } catch (e) {
    if (!engineDown()) ui.status.textContent = `live view: ${e.message}`;
  } finally {
    polling = false;
  }
}

async function refreshSchema() {
  const s = active;
  if (!s) return;
  const key = `${s.identity.tenant}/${s.identity.user}/${s.identity.role}`;
  if (schemaFor === key) return;
  schemaFor = key;
  try {
    const schema = await client.schema(s.identity);
    knownTables = Object.keys(schema);
    editor.setSchema(schema);
  } catch {
    schemaFor = null;
  }
}

// ---------------------------------------------------------------- history

function renderHistory(list = loadHistory()) {
  ui.history.replaceChildren(
    ...list.map((e) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            title: `${new Date(e.at).toLocaleString()} — ${e.status}${e.detail ? `: ${e.detail}` : ""}\n${e.sql}`,
            onclick: () => {
              editor.text = e.sql;
              editor.focus();
            },
          },
          h("span", { class: e.status === "ok" ? "status-ok" : "status-error" }, e.status === "ok" ? "✓ " : "✕ "),
          e.sql.replace(/\s+/g, " "),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- wiring

const processView = new ProcessView(ui.processes, (id, scope, statementId) => kill(id, scope, statementId));

ui.run.addEventListener("click", () => {
  if (!active) return;
  if (active.running) cancel(active);
  else run(active, editor.selectionOrAll());
});
ui.reconnect.addEventListener("click", () => active && reconnect(active));
for (const name of Object.keys(TENANTS)) $("tenant-names").append(h("option", { value: name }, describeLimits(name)));
const showTenantLimits = () => {
  const t = ui.newForm.elements.tenant.value.trim();
  $("tenant-limits").textContent = t ? `${t}: ${describeLimits(t)}` : "";
};
ui.newForm.elements.tenant.addEventListener("input", showTenantLimits);
showTenantLimits();
ui.newSession.addEventListener("click", () => {
  ui.newForm.hidden = false;
  ui.newForm.elements.tenant.focus();
});
$("new-session-dismiss").addEventListener("click", () => (ui.newForm.hidden = true));
ui.newForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ui.newForm.elements;
  const identity = { tenant: f.tenant.value.trim(), user: f.user.value.trim(), role: f.role.value };
  ui.newForm.hidden = true;
  try {
    await openSession(identity);
  } catch (e) {
    if (active) {
      active.error = e;
      renderSession();
    }
  }
});
ui.traceSelect.addEventListener("change", () => showTrace(Number(ui.traceSelect.value)));
$("clear-history").addEventListener("click", () => renderHistory(clearHistory()));
ui.devtools.addEventListener("change", () => client?.setDevtoolsTimings(ui.devtools.checked));
for (const [i, ex] of EXAMPLES.entries()) ui.examples.append(h("option", { value: i }, ex.title));
ui.examples.addEventListener("change", () => {
  const ex = EXAMPLES[Number(ui.examples.value)];
  if (ex?.tenant && active?.identity.tenant !== ex.tenant) {
    // An example of one tenant runs in a session of that tenant.
    ui.examples.value = "";
    const existing = sessions.find((x) => x.identity.tenant === ex.tenant && !x.dead);
    const opened = existing ? Promise.resolve(existing) : openSession({ tenant: ex.tenant, user: ex.user ?? "alice", role: "member" });
    opened.then(
      (s) => {
        activate(s);
        editor.text = ex.sql;
        editor.focus();
      },
      (e) => {
        if (active) {
          active.error = e;
          renderSession();
        }
      },
    );
    return;
  }
  if (ex) {
    editor.text = ex.sql;
    if (ex.timeoutMs !== undefined) ui.timeout.value = ex.timeoutMs || "";
    editor.focus();
  }
  ui.examples.value = "";
});
ui.contextsDetails.addEventListener("toggle", () => pollLive());

// ---------------------------------------------------------------- engine life

/** Whether the engine cannot take requests now (dead, or never started). */
function engineDown() {
  return !client || client.state === "dead" || startError !== null;
}

/** Starts an engine: a new worker, the demo tables, and a connection for
 * every tab (the first load opens one tab). */
async function startEngine() {
  const c = await EngineClient.start(WORKER_URL);
  c.addEventListener("statechange", () => {
    if (c === client) onEngineState();
  });
  client = c;
  startError = null;
  const setup = await c.connect(DEMO_IDENTITY);
  try {
    await setup.query(DEMO_SETUP);
  } finally {
    await setup.close();
  }
  if (sessions.length === 0) {
    await openSession(DEMO_IDENTITY);
  } else {
    // Each tab keeps its text and identity, with a new connection.
    for (const s of sessions) {
      s.conn = await c.connect(s.identity);
      s.dead = false;
      s.running = false;
      s.pending = null;
    }
    recent.length = 0;
    shownTrace = null;
    renderTraceSelect();
    ui.timeline.replaceChildren(h("p", { class: "muted" }, "Run a query to see its spans."));
    ui.explain.textContent = "";
    ui.traceText.textContent = "";
    setDownload(ui.download, null);
    for (const s of sessions) s.lastQueryId = null;
    schemaFor = null;
    // What was typed while the engine was down stays in the editor.
    if (active) active.text = editor.text;
    activate(active ?? sessions[0]);
  }
  document.body.dataset.engine = "alive";
}

function onEngineState() {
  const state = client.state;
  document.body.dataset.engine = state;
  if (state === "dead") {
    ui.status.textContent = "engine stopped";
    processView.update([], new Map(), "No engine: it stopped.");
    ui.contexts.replaceChildren();
  } else if (state === "unresponsive") {
    ui.status.textContent = "engine not responding";
  } else {
    ui.status.textContent = "engine ready";
  }
  renderEngineDown();
  renderSession();
}

/** "session 1 (connection 3)" for a connection id of the page. */
function sessionName(connectionId) {
  const s = sessions.find((x) => x.conn.id === connectionId);
  return s ? `session ${s.n} (connection ${connectionId})` : `connection ${connectionId}`;
}

/** The banner of a dead or silent engine: why, what was lost (its tables,
 * its sessions, the statements that were running), what is kept, and the
 * button that starts a fresh one. */
function renderEngineDown() {
  const state = startError ? "failed" : client?.state;
  if (state !== "dead" && state !== "unresponsive" && state !== "failed") {
    ui.engineDown.hidden = true;
    return;
  }
  const p = (...parts) => h("p", {}, ...parts);
  const code = (text) => h("code", {}, text);
  // A statement as the banner quotes it: at most 300 characters.
  const sqlText = (sql) => {
    const t = sql.trim();
    return t.length > 300 ? `${t.slice(0, 300)}… (${count(t.length)} characters)` : t;
  };
  const body = [];
  const running = (state === "dead" ? client.death.lost : [...client.pending.values()].map(({ op, args }) => ({ op, connectionId: args[0], sql: args[1] })))
    .filter((x) => x.op === "query");
  const tables = knownTables.length ? `its tables (${knownTables.join(", ")}, and any other you created)` : "its tables";
  const conns = sessions.map((s) => s.conn.id);
  const sessionsText =
    conns.length === 1
      ? `its open session (connection ${conns[0]}) with its open transaction, settings and traces`
      : `its ${conns.length} open sessions (connections ${conns.join(", ")}) with their open transactions, settings and traces`;
  if (state === "failed") {
    ui.engineDownTitle.textContent = "The engine failed to start";
    body.push(p(`${startError.name ?? "Error"}: ${startError.message}`));
    ui.restart.textContent = "Try again";
  } else if (state === "dead") {
    const { error } = client.death;
    const trapped = error.name === "RuntimeError" || error.name === "RangeError" || /recursive use|borrowed/.test(error.message ?? "");
    ui.engineDownTitle.textContent = "The engine stopped";
    body.push(
      trapped
        ? p("Its WebAssembly module trapped: ", code(`${error.name}: ${error.message}`), ". A trapped module cannot run safely again, so the page stopped its worker.")
        : p("Its worker ended: ", code(`${error.name}: ${error.message}`), "."),
      p(`Lost with it: everything it held in memory — ${tables} and ${sessionsText}.`),
      running.length
        ? h("div", {}, p("Running when it stopped (not completed; not committed):"), h("ul", {}, running.map((r) => h("li", {}, `${sessionName(r.connectionId)}: `, code(sqlText(r.sql))))))
        : p("No statement was running."),
    );
    ui.restart.textContent = "Start a fresh engine";
  } else {
    const secs = Math.round(client.silentForMs() / 1000);
    ui.engineDownTitle.textContent = "The engine is not responding";
    body.push(
      p(`Its worker has not answered for ${secs} s. A statement may be stuck in work that never yields, or the browser stopped the worker (out of memory, for example). If it answers, this notice goes away.`),
      p(`A fresh engine discards this one: ${tables} and ${sessionsText}.`),
      running.length
        ? h("div", {}, p("Running now:"), h("ul", {}, running.map((r) => h("li", {}, `${sessionName(r.connectionId)}: `, code(sqlText(r.sql))))))
        : null,
    );
    ui.restart.textContent = "Start a fresh engine";
  }
  body.push(p("Kept: your editor text, the tabs (each reconnects as a new session) and the history."));
  ui.engineDownBody.replaceChildren(...body.filter(Boolean));
  ui.restart.disabled = false;
  ui.engineDown.hidden = false;
}

async function restartEngine() {
  ui.restart.disabled = true;
  ui.status.textContent = "starting a fresh engine…";
  if (client && client.state !== "dead") client.terminate("replaced by a fresh engine from the page");
  try {
    await startEngine();
    ui.status.textContent = "engine ready (fresh)";
    document.body.dataset.ready = "true";
  } catch (e) {
    startError = e;
    ui.status.textContent = "engine failed to start";
  }
  renderEngineDown();
  renderSession();
  pollLive();
}

ui.restart.addEventListener("click", () => restartEngine());

async function boot() {
  renderLegend(ui.legend);
  renderHistory();
  setInterval(pollLive, POLL_MS);
  let silentSecs = 0;
  setInterval(() => {
    renderProgress();
    // The "not answered for N s" count, redrawn once a second.
    const secs = client?.state === "unresponsive" ? Math.round(client.silentForMs() / 1000) : 0;
    if (secs !== silentSecs) {
      silentSecs = secs;
      if (secs) renderEngineDown();
    }
  }, 100);
  await startEngine();
  ui.status.textContent = "engine ready";
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
}

window.cascadePlayground = {
  get client() {
    return client;
  },
  sessions,
  run,
  showTrace,
  /** Test and debugging hooks (docs/web.md, "When the engine dies"). */
  debug: {
    /** "unreachable" or "stack" traps the engine's wasm module for real;
     * "exit" stops its worker without a word. */
    crashEngine: (mode) => client.debugCrash(mode),
  },
};

boot().catch((e) => {
  startError = e;
  ui.status.textContent = "engine failed to start";
  renderEngineDown();
  console.error(e);
});
