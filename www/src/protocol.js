// The messages between the page (client.js) and the engine's worker
// (worker.js). Each request is { id, op, args }; each answer is
// { id, ok: true, value } or { id, ok: false, error }, where error is a
// plain object (an Error's own properties do not survive postMessage).
// Besides answers the worker sends { ready: true } (or { ready: false,
// error }) once, and { dead: { error, inflight } } when its WebAssembly
// module trapped: from then on it refuses every request (see worker.js).

/** Error properties copied across the worker boundary. */
export const ERROR_FIELDS = ["name", "message", "code", "sqlstate", "kind", "cause", "level", "queryId"];

/** An Error (or anything thrown) as a plain, cloneable object. */
export function errorToPlain(e) {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const out = {};
  for (const k of ERROR_FIELDS) if (e[k] !== undefined) out[k] = e[k];
  return out;
}

/** A plain error object back into an Error with the same properties. */
export function plainToError(p) {
  const e = p.name === "TypeError" ? new TypeError(p.message) : new Error(p.message);
  for (const k of ERROR_FIELDS) if (p[k] !== undefined && k !== "message") e[k] = p[k];
  return e;
}

/** Messages of errors that only a trapped (poisoned) module throws:
 * wasm-bindgen's aliasing check fires when a call finds an object still
 * borrowed by frames a trap unwound. */
const POISONED = /recursive use of an object detected|already (mutably )?borrowed/;

/** Whether `e` is a WebAssembly trap or the mark of a trapped module, as
 * opposed to an error the engine reported (a QueryError, a TypeError for a
 * bad argument). */
export function isTrap(e) {
  if (e == null || typeof e !== "object") return false;
  if (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError) return true;
  if (e.name === "RuntimeError") return true;
  if (e instanceof RangeError && /call stack/i.test(e.message)) return true;
  // Only a plain Error thrown by the glue: a QueryError (it has a code) may
  // quote user text in its message.
  return e.code === undefined && e.name === "Error" && POISONED.test(String(e.message ?? ""));
}

/** The error for a request the dead engine will never answer: 2013 (lost
 * connection during query) for one that was in flight, 2006 (gone away)
 * for one made afterwards. `cause` is what killed the engine (a plain
 * error or a sentence). */
export function deadEngineError(cause, inflight) {
  const why = typeof cause === "string" ? cause : `${cause?.name ?? "Error"}: ${cause?.message ?? "unknown"}`;
  const e = new Error(
    inflight
      ? `Lost connection to the engine during query: the engine stopped (${why})`
      : `The engine has gone away: it stopped (${why}); start a fresh engine`,
  );
  e.name = "EngineDeadError";
  e.code = inflight ? 2013 : 2006;
  e.sqlstate = "HY000";
  e.kind = "error";
  return e;
}
