// The page's side of the engine: the same API as the wasm module's
// (connect → query/close, trace, chromeTrace, contexts), every call a
// message to the engine's Web Worker, so the main thread never runs a query.
//
// The client also watches the worker. It is `dead` when the worker says its
// module trapped, when the worker fails (`error` event) or when the page
// ends it (`terminate`); then every pending promise rejects (2013 for a
// query in flight, 2006 for anything else, name "EngineDeadError") and
// every later call rejects at once (2006): nothing hangs. It is
// `unresponsive` while a ping has waited more than `watchdogMs` (a worker
// killed by the browser says nothing; a module stuck in a loop that never
// yields answers nothing), and `alive` again if an answer comes.

import { deadEngineError, plainToError } from "./protocol.js";

export class RemoteConnection {
  /** @param {EngineClient} client @param {number} id @param {object} identity */
  constructor(client, id, identity) {
    this.client = client;
    this.id = id;
    this.identity = identity;
    /** Promise of query() → its request id, for cancel(promise). */
    this.requests = new WeakMap();
    /** The request id of the latest query(). */
    this.latest = null;
  }
  /** Resolves to { queryId, columns, rows, rowsAffected, elapsedMs, totalRows }
   * or rejects with an Error carrying code, sqlstate, kind, cause, queryId. */
  query(sql, options = {}) {
    const id = this.client.nextId;
    const p = this.client.call("query", this.id, sql, options);
    this.requests.set(p, id);
    this.latest = id;
    return p;
  }
  close() {
    return this.client.call("close", this.id);
  }
  /**
   * KILL QUERY on this connection, as its own user, aimed at one statement:
   * - `cancel(promise)`: the statement running now for that query() (for a
   *   script, its current statement);
   * - `cancel(statementId)`: that statement (a `queryId` of a result, the
   *   `statementId` of a process-list row);
   * - `cancel()`: the statement running now for the latest query().
   * A statement that is no longer running is never replaced by the next
   * one: resolves to { killed: false, statementId, message } saying so;
   * otherwise { killed: true, statementId, message }.
   */
  cancel(target) {
    if (typeof target === "number" || typeof target === "bigint") {
      return this.client.call("cancel", this.id, { statementId: Number(target) });
    }
    const request = target === undefined ? this.latest : this.requests.get(target);
    if (request === undefined || request === null) {
      return Promise.resolve({ killed: false, statementId: null, message: "no query of this connection to cancel: nothing was killed" });
    }
    return this.client.call("cancel", this.id, { request });
  }
  /** KILL [QUERY|CONNECTION] `target` sent by this connection. With a
   * `statementId`, KILL QUERY kills that statement only (a no-op that says
   * so if it has finished). */
  kill(target, scope = "query", statementId = undefined) {
    return this.client.call("kill", this.id, target, scope, statementId);
  }
}

/** How long a ping may go unanswered before the worker counts as
 * unresponsive. The engine yields every few milliseconds, so a live worker
 * answers in well under a second even while a query runs. */
export const WATCHDOG_MS = 5000;

export class EngineClient extends EventTarget {
  /** Starts the worker and waits until the engine is ready. */
  static async start(workerUrl, options = {}) {
    const worker = new Worker(workerUrl, { type: "module" });
    const client = new EngineClient(worker, options);
    await client.ready;
    client.startWatchdog();
    return client;
  }

  /** @param {Worker} worker @param {{ watchdogMs?: number }} options */
  constructor(worker, { watchdogMs = WATCHDOG_MS } = {}) {
    super();
    this.worker = worker;
    this.watchdogMs = watchdogMs;
    this.nextId = 1;
    /** request id → { resolve, reject, op, args } */
    this.pending = new Map();
    /** "alive" | "unresponsive" | "dead" */
    this.state = "alive";
    /** Why it died: { error: { name, message }, lost: [{ op, connectionId, sql }], at }. */
    this.death = null;
    this.ping = null;
    this.ready = new Promise((resolve, reject) => {
      this.onReady = { resolve, reject };
    });
    this.ready.catch(() => {});
    worker.onmessage = (event) => this.onMessage(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.die({ name: "WorkerError", message: event.message || "the engine's worker failed (it could not load, or threw an uncaught error)" });
    };
    worker.onmessageerror = () => this.die({ name: "WorkerError", message: "a message from the engine's worker could not be read" });
  }

  onMessage(msg) {
    if (this.state === "dead") return;
    this.heard();
    if ("ready" in msg) {
      if (msg.ready) this.onReady.resolve();
      else this.onReady.reject(plainToError(msg.error));
      return;
    }
    if ("dead" in msg) {
      this.die(msg.dead.error);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(plainToError(msg.error));
  }

  /** Any answer: the worker is alive (again). */
  heard() {
    this.ping = null;
    if (this.state === "unresponsive") this.setState("alive");
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new Event("statechange"));
  }

  /** Pings every second; a ping unanswered for `watchdogMs` makes the
   * client `unresponsive`. */
  startWatchdog() {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      if (this.state === "dead") return;
      const now = performance.now();
      if (this.ping === null) {
        this.ping = now;
        this.worker.postMessage({ id: 0, op: "ping" });
      } else if (now - this.ping > this.watchdogMs && this.state === "alive") {
        this.setState("unresponsive");
      }
    }, 1000);
  }

  /** Milliseconds the current ping has waited (0 when none waits). */
  silentForMs() {
    return this.ping === null ? 0 : performance.now() - this.ping;
  }

  /** The engine is gone: what was pending rejects, the worker ends. */
  die(error) {
    if (this.state === "dead") return;
    const lost = [...this.pending.values()].map(({ op, args }) =>
      op === "query" ? { op, connectionId: args[0], sql: args[1] } : { op },
    );
    this.death = { error, lost, at: Date.now() };
    clearInterval(this.watchdog);
    this.worker.terminate();
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.setState("dead");
    this.onReady.reject(deadEngineError(error, false));
    for (const p of pending) p.reject(deadEngineError(error, p.op === "query"));
  }

  /** Ends the worker (a restart, or giving up on an unresponsive one). */
  terminate(reason = "the engine was stopped from the page") {
    this.die({ name: "Stopped", message: reason });
  }

  call(op, ...args) {
    if (this.state === "dead") return Promise.reject(deadEngineError(this.death.error, false));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op, args });
      this.worker.postMessage({ id, op, args });
    });
  }

  async connect(identity) {
    const { id } = await this.call("connect", identity);
    return new RemoteConnection(this, id, identity);
  }
  trace(queryId) {
    return this.call("trace", queryId);
  }
  chromeTrace(queryId) {
    return this.call("chromeTrace", queryId);
  }
  traceText(queryId) {
    return this.call("traceText", queryId);
  }
  contexts() {
    return this.call("contexts");
  }
  processes(identity) {
    return this.call("processes", identity);
  }
  schema(identity) {
    return this.call("schema", identity);
  }
  setDevtoolsTimings(on) {
    return this.call("setDevtoolsTimings", on);
  }
  /** Test-only fault injection (docs/web.md): "unreachable" or "stack"
   * traps the wasm module for real, "exit" stops the worker silently. */
  debugCrash(mode) {
    return this.call("debugCrash", mode);
  }
}
