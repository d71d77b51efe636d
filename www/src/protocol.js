// The messages between the page (client.js) and the engine's worker
// (worker.js). Each request is { id, op, args }; each answer is
// { id, ok: true, value } or { id, ok: false, error }, where error is a
// plain object (an Error's own properties do not survive postMessage).

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
