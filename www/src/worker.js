// The engine's Web Worker: owns the wasm Engine and the connections, and
// answers the page's requests (protocol.js). Queries run concurrently: the
// engine yields to the macrotask queue every few milliseconds of work, so a
// cancel or a process-list poll is answered while a query runs.
//
// A trapped module is a dead engine. A WebAssembly trap (`unreachable` from
// a panic or an allocation failure, an out-of-bounds access, a stack
// overflow) unwinds through the wasm frames without running any destructor:
// borrows stay borrowed, the shadow stack pointer stays where it was, a
// connection stays checked out, so every later call fails or lies (the
// "2014 forever" of issue 8). So the first trap, whether an op throws it or
// it escapes from a future as an uncaught error, ends this engine: the worker
// tells the page (a `{ dead }` message, see protocol.js) and answers every
// later request with "engine has gone away" instead of calling into wasm.

import init, { Connection, Engine, setDevtoolsTimings, __debugTrap } from "../pkg/cascade_web.js";
import { deadEngineError, errorToPlain, isTrap } from "./protocol.js";
import { TENANTS } from "./tenants.js";

/** How many engines (nodes) the playground runs in this worker. */
const PLAYGROUND_NODES = 2;

/** @type {Engine} */
let engine;
/** connection id → { conn, identity, busy, request } (request: the id of
 * the page's `query` message running on it, or null) */
const conns = new Map();
/** In-flight requests: message id → { op, args }, to say what was lost. */
const inflight = new Map();
/** Set once the module trapped: { error, inflight }. */
let dead = null;

function entry(connId) {
  const e = conns.get(connId);
  if (!e) throw new Error(`unknown or closed connection ${connId}`);
  return e;
}

/** Runs one statement on a short-lived connection of `identity`. */
async function onTransient(identity, sql) {
  const c = engine.connect(identity);
  try {
    return await c.query(sql);
  } finally {
    await c.close();
    c.free();
  }
}

function truncate(result, maxRows) {
  const totalRows = result.rows.length;
  if (maxRows !== undefined && totalRows > maxRows) result.rows = result.rows.slice(0, maxRows);
  result.totalRows = totalRows;
  return result;
}

/** Whether this engine kills by statement id: the wasm `Connection` has
 * `cancel(statementId)` and `runningStatementId`, and SQL has `KILL QUERY
 * <conn> '<statement id>'` (issue 8's KILL by statement id). */
const ENGINE_KILLS_BY_ID = typeof Connection?.prototype?.cancel === "function";

/** The id of the statement running on connection `connId` now, or null. */
function runningStatementId(connId) {
  const e = conns.get(connId);
  if (!e) return null;
  if (ENGINE_KILLS_BY_ID) return e.conn.runningStatementId ?? null;
  return engine.processes(e.identity).find((p) => p.id === connId)?.statementId ?? null;
}

/** Runs `sql` on connection `byConnId` if it is idle, else on a short-lived
 * connection of `identity`. */
async function runAs(byConnId, identity, sql) {
  const by = conns.get(byConnId);
  if (!by || by.busy) return onTransient(identity, sql);
  by.busy = true;
  try {
    return await by.conn.query(sql);
  } finally {
    by.busy = false;
  }
}

const notRunning = (statementId, target, now) =>
  `statement ${statementId} is not running on connection ${target}${now != null ? ` (statement ${now} is)` : ""}: nothing was killed`;

/**
 * KILL QUERY of statement `statementId` on connection `target`, sent as
 * `identity` from connection `byConnId`: kills that statement only, never the
 * one after it. Resolves to { killed, statementId, message }.
 *
 * With the engine's KILL by statement id (ENGINE_KILLS_BY_ID), the engine
 * decides: `conn.cancel(statementId)` for the connection's own statement,
 * `KILL QUERY <target> '<statementId>'` from another connection (an OK with
 * a warning when the statement is not running). Without it, the worker
 * checks the process list and sends `KILL QUERY <target>` on the same turn of
 * this single thread: the running statement only advances when the engine
 * yields to a macrotask, and the check and the kill both run before that.
 */
async function killStatement(identity, byConnId, target, statementId, justSeen = false) {
  const own = conns.get(target);
  if (ENGINE_KILLS_BY_ID && own && byConnId === target) {
    const { outcome, message } = own.conn.cancel(statementId);
    return { killed: outcome === "killed", statementId, message };
  }
  if (ENGINE_KILLS_BY_ID) {
    const r = await runAs(byConnId, identity, `KILL QUERY ${target} '${statementId}'`);
    const killed = !(r.warnings > 0);
    return { killed, statementId, message: killed ? `KILL QUERY of statement ${statementId} on connection ${target}` : (r.message ?? notRunning(statementId, target)) };
  }
  // `justSeen`: the caller read `statementId` from the process list on this
  // same turn, so it is still the one running.
  const row = justSeen ? { statementId } : engine.processes(identity).find((p) => p.id === target);
  if (!row) throw Object.assign(new Error(`Unknown thread id: ${target}`), { name: "QueryError", code: 1094, sqlstate: "HY000", kind: "error" });
  if (row.statementId !== statementId) return { killed: false, statementId, message: notRunning(statementId, target, row.statementId) };
  await (byConnId === target ? onTransient(identity, `KILL QUERY ${target}`) : runAs(byConnId, identity, `KILL QUERY ${target}`));
  return { killed: true, statementId, message: `KILL QUERY of statement ${statementId} on connection ${target}` };
}

/** How long a cancel of a request waits for its next statement to start. */
const CANCEL_WAIT_MS = 2000;

const ops = {
  connect(identity) {
    const conn = engine.connect(identity);
    conns.set(conn.id, { conn, identity, busy: false, request: null });
    return { id: conn.id };
  },
  async query(connId, sql, options = {}) {
    const e = entry(connId);
    const { maxRows, ...engineOptions } = options;
    e.busy = true;
    e.request = this.request;
    try {
      return truncate(await e.conn.query(sql, engineOptions), maxRows);
    } finally {
      e.busy = false;
      e.request = null;
    }
  },
  async close(connId) {
    const e = conns.get(connId);
    if (!e) return;
    conns.delete(connId);
    await e.conn.close();
    e.conn.free();
  },
  /**
   * Cancel, as the connection's own user. `target` names what to cancel:
   * `{ statementId }` that statement only; `{ request }` the statement
   * running now for the page's `query` message of that id (a script's
   * current statement). Whatever is named and no longer runs is left alone:
   * the answer says so ({ killed: false, message }).
   */
  async cancel(connId, target = {}) {
    const e = entry(connId);
    let statementId = target.statementId;
    const lookedUp = statementId == null;
    if (lookedUp) {
      // A request between two statements, or still parsing, has no
      // statement yet: wait (bounded) for the one it is about to run.
      const until = performance.now() + CANCEL_WAIT_MS;
      for (;;) {
        if (target.request != null && e.request !== target.request) {
          return { killed: false, statementId: null, message: "that query has already finished: nothing was killed" };
        }
        statementId = runningStatementId(connId);
        if (statementId != null) break;
        if (target.request == null || performance.now() > until) {
          return { killed: false, statementId: null, message: "no statement is running: nothing was killed" };
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    return killStatement(e.identity, connId, connId, statementId, lookedUp);
  },
  /** KILL [QUERY|CONNECTION] target, sent by connection `byConnId` (or, when
   * it is busy, by a short-lived connection of the same user). With a
   * `statementId`, KILL QUERY aims at that statement only. */
  async kill(byConnId, target, scope, statementId) {
    const e = entry(byConnId);
    if (scope !== "connection" && statementId != null) {
      return killStatement(e.identity, byConnId, Number(target), Number(statementId));
    }
    return runAs(byConnId, e.identity, `KILL ${scope === "connection" ? "CONNECTION" : "QUERY"} ${Number(target)}`);
  },
  trace: (queryId) => engine.trace(queryId),
  chromeTrace: (queryId) => engine.chromeTrace(queryId),
  traceText: (queryId) => engine.traceText(queryId),
  /** The live context tree of each node: `[{ node, tree }]` when the
   * engine runs more than one node, else the one tree. */
  contexts: () => {
    const nodes = engine.nodeIds ?? [];
    return nodes.length > 1 ? nodes.map((node) => ({ node, tree: engine.contexts(node) })) : engine.contexts();
  },
  processes: (identity) => engine.processes(identity),
  setDevtoolsTimings: (on) => setDevtoolsTimings(on),
  /** Tables and their columns as `identity` sees them, for completion. */
  async schema(identity) {
    const c = engine.connect(identity);
    try {
      const tables = await c.query("SHOW TABLES");
      const out = {};
      for (const [name] of tables.rows) {
        try {
          const cols = await c.query(`SELECT * FROM ${name} LIMIT 0`);
          out[name] = cols.columns.map((col) => col.name);
        } catch {
          out[name] = [];
        }
      }
      return out;
    } finally {
      await c.close();
      c.free();
    }
  },
  /**
   * Fault injection for tests (docs/web.md, "When the engine dies"); the
   * page reaches it only through `cascadePlayground.debug.crashEngine`.
   * "unreachable" / "stack": the wasm module traps for real (web/src/debug.rs);
   * "exit": the worker stops without a word, as when the browser kills it.
   */
  debugCrash(mode) {
    if (mode === "exit") {
      // After this answer: the test's call settles, later ones never do.
      setTimeout(() => self.close(), 0);
      return { mode };
    }
    // "unreachable" returns a promise that never settles: the trap escapes
    // as an uncaught error. Answer now so the test is not left waiting.
    const never = __debugTrap(mode);
    never.catch(() => {});
    return { mode };
  },
};

const ready = init({ module_or_path: new URL("./cascade_web_bg.wasm", import.meta.url) }).then(() => {
  // Two nodes joined by an in-memory transport (the "across nodes"
  // example): connections are node 1's; a distributed statement runs its
  // fragments on node 2 too, polled by node 1's operator (no threads).
  engine = new Engine({ nodeId: 1, nodes: PLAYGROUND_NODES, tenants: TENANTS });
});

/** What was in flight when the engine died, for the page to tell the user. */
function inflightSummary() {
  return [...inflight.values()].map(({ op, args }) =>
    op === "query" ? { op, connectionId: args[0], sql: args[1] } : { op },
  );
}

/** Ends this engine after a trap: tells the page once; later requests are
 * refused without touching the module. */
function die(error) {
  if (dead) return;
  dead = { error: errorToPlain(error), inflight: inflightSummary() };
  console.warn("cascade engine: the WebAssembly module trapped; this engine is dead", error);
  self.postMessage({ dead });
}

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  // Liveness check for the page's watchdog: answered at once, without the
  // engine, even while a query runs (the engine yields every few ms).
  if (op === "ping") {
    self.postMessage({ id, ok: true, value: dead ? "dead" : "alive" });
    return;
  }
  if (dead) {
    self.postMessage({ id, ok: false, error: errorToPlain(deadEngineError(dead.error, false)) });
    return;
  }
  inflight.set(id, { op, args });
  try {
    await ready;
    const fn = ops[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    const value = await fn.apply({ request: id }, args ?? []);
    self.postMessage({ id, ok: true, value });
  } catch (e) {
    if (isTrap(e)) die(e);
    else self.postMessage({ id, ok: false, error: errorToPlain(e) });
  } finally {
    inflight.delete(id);
  }
};

// A trap inside a spawned future (where statements run) escapes from the
// executor's microtask: it reaches these handlers, not the op's catch, and
// the op's promise never settles.
self.addEventListener("error", (event) => {
  // Without the error object, the message still names a trap's class.
  const error = event.error ?? Object.assign(new Error(event.message), { name: /RuntimeError/.test(event.message) ? "RuntimeError" : "Error" });
  if (isTrap(error)) {
    event.preventDefault();
    die(error);
  }
});
self.addEventListener("unhandledrejection", (event) => {
  if (isTrap(event.reason)) {
    event.preventDefault();
    die(event.reason);
  }
});

ready.then(
  () => self.postMessage({ ready: true }),
  (e) => self.postMessage({ ready: false, error: errorToPlain(e) }),
);
