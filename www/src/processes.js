// The live process list: what SHOW PROCESSLIST shows the active session,
// refreshed several times a second, with Kill query / Kill connection.
// The Command cell carries the statement's phase (State: parsing, planning,
// executing, committing, rolling back, cleaning up); Kill query names the
// statement the row shows, so a click that lands after it finished kills
// nothing rather than the connection's next statement.
// Rows are updated in place (keyed by connection id) so a button does not
// move under the pointer between two refreshes.

import { count, h, ms } from "./format.js";
import { formatBytes } from "./tenants.js";

export class ProcessView {
  /** @param {HTMLElement} el
   * @param {(id:number, scope:string, statementId:number|undefined)=>void} onKill */
  constructor(el, onKill) {
    this.el = el;
    this.onKill = onKill;
    this.rows = new Map();
    this.body = h("tbody");
    this.table = h(
      "table",
      { "aria-label": "Process list" },
      h("thead", {}, h("tr", {}, [
            ["Id", "c-id"],
            ["Who", "c-who"],
            ["Command / State", "c-cmd"],
            ["Time", "c-num"],
            ["Rows", "c-num"],
            ["Tenant memory", "c-num"],
            ["Info", "c-info"],
            ["", "c-act"],
          ].map(([c, cls]) => h("th", { scope: "col", class: cls }, c)))),
      this.body,
    );
    this.empty = h("p", { class: "muted" }, "No connections visible.");
    el.replaceChildren(this.table);
  }

  /** @param {Array<object>} list rows of engine.processes(identity)
   * @param {Map<number, number>} tabs connection id → session tab number
   * @param {string} emptyText what an empty list says */
  update(list, tabs, emptyText = "No connections visible.") {
    const seen = new Set();
    list.sort((a, b) => a.id - b.id);
    for (const p of list) {
      seen.add(p.id);
      let row = this.rows.get(p.id);
      if (!row) {
        row = this.makeRow(p.id);
        this.rows.set(p.id, row);
      }
      const cells = row.cells;
      cells.who.textContent = `${p.user}@${p.tenant}${tabs.has(p.id) ? ` · tab ${tabs.get(p.id)}` : ""}`;
      cells.who.title = `user ${p.user}, tenant ${p.tenant}, role ${p.role}`;
      row.command.textContent = p.command;
      row.state.textContent = p.state ?? "";
      row.tr.dataset.state = p.state ?? "";
      row.tr.dataset.statementId = p.statementId ?? "";
      row.statementId = p.statementId ?? undefined;
      cells.time.textContent = p.timeMs < 1000 ? `${Math.round(p.timeMs)} ms` : ms(p.timeMs);
      cells.rows.textContent = p.rowsExamined != null ? count(p.rowsExamined) : "";
      // What the row's tenant's running statements hold of its budget.
      cells.mem.textContent = p.tenantMemoryBudget != null
        ? `${formatBytes(p.tenantMemory ?? 0)} / ${formatBytes(p.tenantMemoryBudget)}`
        : p.tenantMemory ? formatBytes(p.tenantMemory) : "";
      cells.mem.title = `tenant ${p.tenant}: ${p.tenantMemory ?? 0} bytes in use${p.tenantMemoryBudget != null ? ` of a ${p.tenantMemoryBudget}-byte budget` : ", no budget"}`;
      cells.info.textContent = p.info ?? "";
      cells.info.title = p.info ? `statement ${p.statementId ?? "?"}: ${p.info}` : "";
      row.tr.classList.toggle("running", p.command === "Query");
      row.killQuery.disabled = p.command !== "Query";
      row.killQuery.title = p.statementId != null ? `KILL QUERY ${p.id} (statement ${p.statementId} only)` : `KILL QUERY ${p.id}`;
      this.body.append(row.tr); // keeps order by id; a no-op move when unchanged
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    this.empty.textContent = emptyText;
    if (list.length === 0 && !this.empty.isConnected) this.el.append(this.empty);
    if (list.length > 0) this.empty.remove();
  }

  makeRow(id) {
    const cells = {};
    const td = (name, cls) => (cells[name] = h("td", { class: cls }));
    const row = {};
    const killQuery = h("button", { type: "button", title: `KILL QUERY ${id}`, onclick: () => this.onKill(id, "query", row.statementId) }, "Kill query");
    const killConn = h("button", { type: "button", title: `KILL CONNECTION ${id}`, onclick: () => this.onKill(id, "connection") }, "Kill connection");
    const tr = h(
      "tr",
      { "data-connection-id": id },
      h("td", {}, String(id)),
      td("who"),
      h("td", {}, (row.command = h("span")), (row.state = h("span", { class: "state" }))),
      td("time", "num"),
      td("rows", "num"),
      td("mem", "num"),
      td("info", "info"),
      h("td", { class: "actions" }, killQuery, " ", killConn),
    );
    return Object.assign(row, { tr, cells, killQuery });
  }
}
