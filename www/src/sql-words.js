// Completion of cascade's SQL beyond what @codemirror/lang-sql's MySQL
// dialect offers: its keyword list lacks OVER and multi-word clauses, and it
// knows no function names. The editor adds these to the dialect's keyword
// and schema completion (editor.js). Keep them in step with the SQL the
// engine accepts (README, "SQL it accepts").

/** Keywords and clauses, completed in upper case. */
export const KEYWORDS = [
  "WITH", "WITH RECURSIVE", "RECURSIVE", "OVER", "PARTITION BY", "ORDER BY", "GROUP BY",
  "ROWS", "RANGE", "ROWS BETWEEN", "RANGE BETWEEN", "UNBOUNDED PRECEDING", "UNBOUNDED FOLLOWING",
  "CURRENT ROW", "PRECEDING", "FOLLOWING", "WINDOW",
  "UNION", "UNION ALL", "EXCEPT", "INTERSECT", "EXISTS", "NOT EXISTS", "ANY", "ALL", "SOME",
  "CREATE VIEW", "DROP VIEW", "VIEW", "CREATE INDEX", "INDEX", "UNIQUE", "PRIMARY KEY",
  "DESCRIBE", "SHOW COLUMNS", "SHOW CREATE TABLE", "EXPLAIN ANALYZE",
  "DATE", "DATETIME", "TIMESTAMP", "TIME", "DECIMAL", "INTERVAL",
];

/** Functions: name and argument hint. Completed as `name(`. */
export const FUNCTIONS = [
  ["now", "()"], ["curdate", "()"], ["current_date", ""], ["current_timestamp", ""],
  ["date_add", "(date, INTERVAL n unit)"], ["date_sub", "(date, INTERVAL n unit)"],
  ["datediff", "(a, b)"], ["extract", "(unit FROM date)"], ["year", "(date)"], ["month", "(date)"],
  ["day", "(date)"], ["date_format", "(date, format)"], ["unix_timestamp", "([date])"], ["date", "(expr)"],
  ["row_number", "() OVER (...)"], ["rank", "() OVER (...)"], ["dense_rank", "() OVER (...)"],
  ["ntile", "(n) OVER (...)"], ["lag", "(expr [, n [, default]]) OVER (...)"],
  ["lead", "(expr [, n [, default]]) OVER (...)"], ["first_value", "(expr) OVER (...)"],
  ["last_value", "(expr) OVER (...)"],
  ["count", "(expr)"], ["sum", "(expr)"], ["avg", "(expr)"], ["min", "(expr)"], ["max", "(expr)"],
  ["coalesce", "(a, b, ...)"], ["ifnull", "(a, b)"], ["nullif", "(a, b)"], ["if", "(cond, a, b)"],
  ["greatest", "(a, b, ...)"], ["least", "(a, b, ...)"], ["abs", "(x)"], ["round", "(x [, d])"],
  ["floor", "(x)"], ["ceil", "(x)"], ["mod", "(a, b)"], ["concat", "(a, b, ...)"],
  ["substring", "(s, pos [, len])"], ["length", "(s)"], ["char_length", "(s)"], ["upper", "(s)"],
  ["lower", "(s)"], ["cast", "(expr AS type)"], ["generate_series", "(start, stop [, step])"],
  ["sleep", "(seconds)"], ["connection_id", "()"],
];

/**
 * The completion options: keywords (type "keyword", upper case, as the
 * dialect's own keyword completion writes them, so duplicates merge) and
 * functions (type "function", inserting `name(`).
 */
export function completionOptions() {
  return [
    ...KEYWORDS.map((label) => ({ label, type: "keyword" })),
    ...FUNCTIONS.map(([label, args]) => ({ label, type: "function", detail: args, apply: `${label}(` })),
  ];
}
