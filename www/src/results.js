// The results grid, the summary line and the error alert.

import { count, h, ms } from "./format.js";

/** Renders `result` as a table with role="table" into `container`. */
export function renderResult(container, summary, result) {
  container.replaceChildren();
  summary.replaceChildren();
  if (!result) return;
  const rows = result.totalRows ?? result.rows.length;
  const parts = [];
  if (result.columns.length > 0) {
    parts.push(`${count(rows)} row${rows === 1 ? "" : "s"} in set`);
    if (result.rows.length < rows) parts.push(`(first ${result.rows.length} shown)`);
  } else {
    parts.push(result.message ?? `Query OK, ${count(result.rowsAffected)} row${result.rowsAffected === 1 ? "" : "s"} affected`);
  }
  summary.append(
    h("span", { class: "ok" }, "✓ "),
    parts.join(" "),
    ` · ${ms(result.elapsedMs)}`,
    result.warnings ? ` · ${result.warnings} warning(s)` : "",
    ` · query #${result.queryId}`,
  );
  if (result.columns.length === 0) return;
  const numeric = result.columns.map((c) => c.type === "BIGINT" || c.type === "DOUBLE");
  const table = h(
    "table",
    { class: "grid", role: "table", "aria-label": "Results", "aria-rowcount": rows + 1 },
    h(
      "thead",
      {},
      h("tr", { role: "row" }, result.columns.map((c) => h("th", { role: "columnheader", scope: "col" }, c.name, h("span", { class: "type" }, c.type)))),
    ),
  );
  const body = h("tbody");
  const frag = document.createDocumentFragment();
  for (const row of result.rows) {
    const tr = document.createElement("tr");
    tr.setAttribute("role", "row");
    row.forEach((v, i) => {
      const td = document.createElement("td");
      td.setAttribute("role", "cell");
      if (v === null) {
        td.className = "null";
        td.textContent = "NULL";
      } else {
        if (numeric[i]) td.className = "num";
        td.textContent = String(v);
      }
      tr.append(td);
    });
    frag.append(tr);
  }
  body.append(frag);
  table.append(body);
  container.append(table);
}

/** Shows `error` (code, SQLSTATE, kind, cause, level) in the alert, or
 * hides the alert when `error` is null. */
export function renderAlert(alert, error) {
  alert.replaceChildren();
  if (!error) {
    alert.hidden = true;
    return;
  }
  const code = error.code !== undefined ? `ERROR ${error.code} (${error.sqlstate ?? "HY000"})` : error.name ?? "Error";
  const rows = [
    ["kind", error.kind],
    ["level", error.level],
    ["cause", error.cause ? causeText(error.cause) : null],
    ["query", error.queryId != null ? `#${error.queryId}` : null],
  ].filter(([, v]) => v);
  alert.append(
    h("div", {}, h("span", { class: "title" }, code), ": ", error.message),
    rows.length ? h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : null,
  );
  alert.hidden = false;
}

/** A cause object in words: "kill_query — killed by … (at Query level)". */
export function causeText(cause) {
  const where = cause.level ? ` (started at ${cause.level} level)` : "";
  return `${cause.what}: ${cause.message ?? ""}${where}`;
}
