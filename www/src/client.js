// The page's side of the engine: the same API as the wasm module's
// (connect → query/close, trace, chromeTrace, contexts), every call a
// message to the engine's Web Worker, so the main thread never runs a query.

import { plainToError } from "./protocol.js";

export class RemoteConnection {
  /** @param {EngineClient} client @param {number} id @param {object} identity */
  constructor(client, id, identity) {
    this.client = client;
    this.id = id;
    this.identity = identity;
  }
  /** Resolves to { queryId, columns, rows, rowsAffected, elapsedMs, totalRows }
   * or rejects with an Error carrying code, sqlstate, kind, cause, queryId. */
  query(sql, options = {}) {
    return this.client.call("query", this.id, sql, options);
  }
  close() {
    return this.client.call("close", this.id);
  }
  /** KILL QUERY for this connection's running statement, as its own user. */
  cancel() {
    return this.client.call("cancel", this.id);
  }
  /** KILL [QUERY|CONNECTION] `target` sent by this connection. */
  kill(target, scope = "query") {
    return this.client.call("kill", this.id, target, scope);
  }
}

export class EngineClient {
  /** Starts the worker and waits until the engine is ready. */
  static async start(workerUrl) {
    const worker = new Worker(workerUrl, { type: "module" });
    const client = new EngineClient(worker);
    await client.ready;
    return client;
  }

  constructor(worker) {
    this.worker = worker;
    this.nextId = 1;
    this.pending = new Map();
    this.ready = new Promise((resolve, reject) => {
      this.onReady = { resolve, reject };
    });
    worker.onmessage = (event) => this.onMessage(event.data);
    worker.onerror = (event) => {
      const err = new Error(`engine worker failed: ${event.message ?? "unknown error"}`);
      this.onReady.reject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  onMessage(msg) {
    if ("ready" in msg) {
      if (msg.ready) this.onReady.resolve();
      else this.onReady.reject(plainToError(msg.error));
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(plainToError(msg.error));
  }

  call(op, ...args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
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
}
