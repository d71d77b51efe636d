// Finding the statement under the cursor: split SQL at top-level `;`
// (not inside quotes, backticks or comments).

/** [{ from, to, text }] for each non-empty statement of `sql`. */
export function splitStatements(sql) {
  const out = [];
  let start = 0;
  let i = 0;
  const push = (end) => {
    const text = sql.slice(start, end);
    const lead = text.length - text.trimStart().length;
    if (text.trim()) out.push({ from: start + lead, to: end, text: text.trim() });
  };
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === "`") {
      i++;
      while (i < sql.length && sql[i] !== c) i += sql[i] === "\\" ? 2 : 1;
      i++;
    } else if (c === "-" && sql[i + 1] === "-") {
      while (i < sql.length && sql[i] !== "\n") i++;
    } else if (c === "#") {
      while (i < sql.length && sql[i] !== "\n") i++;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === ";") {
      push(i);
      start = i + 1;
      i++;
    } else {
      i++;
    }
  }
  push(sql.length);
  return out;
}

/** The statement under offset `pos`. A cursor in the blank or comment
 * before a statement (just after the previous `;`) belongs to the previous
 * statement, as in MySQL Workbench. */
export function statementAt(sql, pos) {
  const stmts = splitStatements(sql);
  if (stmts.length === 0) return "";
  let best = stmts[0];
  for (const s of stmts) {
    if (s.from > pos) break;
    best = s;
  }
  return best.text;
}
