// The playground page: sessions as tabs, the editor, Run/Cancel, results,
// errors, the live process list and context tree, and the trace inspector.
// Every engine call goes to the Web Worker through EngineClient, so the main
// thread only renders.

import { EngineClient } from "./client.js";
import { createEditor } from "./editor.js";
import { EXAMPLES, DEMO_SETUP } from "./examples.js";
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
};

const MAX_ROWS_SHOWN = 1000;
const POLL_MS = 250;

/** @type {EngineClient} */
let client;
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
        s.label,
        badge,
      );
    }),
  );
}

function renderSession() {
  const s = active;
  renderTabs();
  if (!s) return;
  ui.sessionInfo.textContent = `Session ${s.n} — ${s.identity.user}@${s.identity.tenant}, role ${s.identity.role}, connection ${s.conn.id}${s.dead ? " (connection killed)" : ""}`;
  ui.run.disabled = s.dead;
  ui.run.textContent = s.running ? "Cancel" : "Run";
  ui.run.classList.toggle("cancel", s.running);
  ui.reconnect.hidden = !s.dead;
  renderAlert(ui.alert, s.error);
  renderResult(ui.results, ui.summary, s.error ? null : s.result);
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
  ui.progress.textContent = `Running… ${ms(elapsed)}${rows != null ? ` · ${count(rows)} rows processed` : ""}`;
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
  if (s === active) renderSession();
  let status = "ok";
  let queryId = null;
  try {
    const result = await s.conn.query(sql, { timeoutMs: timeoutMs(), maxRows: MAX_ROWS_SHOWN });
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

async function cancel(s) {
  try {
    await s.conn.cancel();
  } catch (e) {
    // The statement may have finished in between; show why else.
    if (s.running) {
      s.error = e;
      renderSession();
    }
  }
}

async function kill(targetId, scope) {
  const s = active;
  if (!s) return;
  try {
    const r = await s.conn.kill(targetId, scope);
    if (!s.running) {
      s.error = null;
      s.result = r;
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
  if (polling || !active) return;
  polling = true;
  try {
    const s = active;
    const list = await client.processes(s.identity);
    processView.update(list, new Map(sessions.map((x) => [x.conn.id, x.n])));
    const mine = list.find((p) => p.id === s.conn.id);
    if (s.running) s.rowsExamined = mine?.rowsExamined;
    renderProgress();
    renderTabs();
    if (ui.contextsDetails.open) renderContexts(ui.contexts, await client.contexts());
  } catch (e) {
    ui.status.textContent = `live view: ${e.message}`;
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
    editor.setSchema(await client.schema(s.identity));
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

const processView = new ProcessView(ui.processes, (id, scope) => kill(id, scope));

ui.run.addEventListener("click", () => {
  if (!active) return;
  if (active.running) cancel(active);
  else run(active, editor.selectionOrAll());
});
ui.reconnect.addEventListener("click", () => active && reconnect(active));
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
  if (ex) {
    editor.text = ex.sql;
    if (ex.timeoutMs !== undefined) ui.timeout.value = ex.timeoutMs || "";
    editor.focus();
  }
  ui.examples.value = "";
});
ui.contextsDetails.addEventListener("toggle", () => pollLive());

async function boot() {
  renderLegend(ui.legend);
  renderHistory();
  client = await EngineClient.start(new URL("./worker.js", import.meta.url));
  const setup = await client.connect({ tenant: "acme", user: "alice", role: "member" });
  try {
    await setup.query(DEMO_SETUP);
  } finally {
    await setup.close();
  }
  await openSession({ tenant: "acme", user: "alice", role: "member" });
  ui.status.textContent = "engine ready";
  setInterval(pollLive, POLL_MS);
  setInterval(() => renderProgress(), 100);
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
  window.cascadePlayground = { client, sessions, run, showTrace };
}

boot().catch((e) => {
  ui.status.textContent = "engine failed to start";
  renderAlert(ui.alert, e);
  console.error(e);
});
