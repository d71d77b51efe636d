// The engine's Web Worker: owns the wasm Engine and the connections, and
// answers the page's requests (protocol.js). Queries run concurrently: the
// engine yields to the macrotask queue every few milliseconds of work, so a
// cancel or a process-list poll is answered while a query runs.

import init, { Engine, setDevtoolsTimings } from "../pkg/cascade_web.js";
import { errorToPlain } from "./protocol.js";

/** @type {Engine} */
let engine;
/** connection id → { conn, identity, busy } */
const conns = new Map();

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

const ops = {
  connect(identity) {
    const conn = engine.connect(identity);
    conns.set(conn.id, { conn, identity, busy: false });
    return { id: conn.id };
  },
  async query(connId, sql, options = {}) {
    const e = entry(connId);
    const { maxRows, ...engineOptions } = options;
    e.busy = true;
    try {
      return truncate(await e.conn.query(sql, engineOptions), maxRows);
    } finally {
      e.busy = false;
    }
  },
  async close(connId) {
    const e = conns.get(connId);
    if (!e) return;
    conns.delete(connId);
    await e.conn.close();
    e.conn.free();
  },
  /** Cancel: KILL QUERY for the connection, sent as its own user. */
  async cancel(connId) {
    const { identity } = entry(connId);
    await onTransient(identity, `KILL QUERY ${connId}`);
  },
  /** KILL [QUERY|CONNECTION] target, sent by connection `byConnId` (or, when
   * it is busy, by a short-lived connection of the same user). */
  async kill(byConnId, target, scope) {
    const e = entry(byConnId);
    const sql = `KILL ${scope === "connection" ? "CONNECTION" : "QUERY"} ${Number(target)}`;
    if (e.busy) return onTransient(e.identity, sql);
    e.busy = true;
    try {
      return await e.conn.query(sql);
    } finally {
      e.busy = false;
    }
  },
  trace: (queryId) => engine.trace(queryId),
  chromeTrace: (queryId) => engine.chromeTrace(queryId),
  traceText: (queryId) => engine.traceText(queryId),
  contexts: () => engine.contexts(),
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
};

const ready = init({ module_or_path: new URL("./cascade_web_bg.wasm", import.meta.url) }).then(() => {
  engine = new Engine({ nodeId: 1 });
});

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    await ready;
    const fn = ops[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    const value = await fn(...(args ?? []));
    self.postMessage({ id, ok: true, value });
  } catch (e) {
    self.postMessage({ id, ok: false, error: errorToPlain(e) });
  }
};

ready.then(
  () => self.postMessage({ ready: true }),
  (e) => self.postMessage({ ready: false, error: errorToPlain(e) }),
);
