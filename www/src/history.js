// Query history in localStorage, and the query in the URL hash for sharing.

const KEY = "cascade.history";
const MAX = 50;

export function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Adds an entry { sql, at, status, detail } to the front (deduplicating
 * the same SQL) and returns the new list. */
export function addHistory(entry) {
  const list = [entry, ...loadHistory().filter((e) => e.sql !== entry.sql)].slice(0, MAX);
  try {
    localStorage.setItem(KEY, JSON.stringify(list));
  } catch {
    // Storage full or disabled: history stays in memory only.
  }
  return list;
}

export function clearHistory() {
  localStorage.removeItem(KEY);
  return [];
}

/** The SQL in `#sql=…`, if any. */
export function sqlFromHash(hash = location.hash) {
  const m = /^#sql=(.*)$/s.exec(hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

export function setHashSql(sql) {
  history.replaceState(null, "", `#sql=${encodeURIComponent(sql)}`);
}
