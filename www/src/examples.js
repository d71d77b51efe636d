// The examples menu, and the demo tables every page load starts with. An
// example with `check` is run by tests/e2e/node-api.test.mjs on the demo
// tables: `{ code }` must fail with that MySQL code, `{ rows }` must answer
// that many rows, `{ minRows }` at least that many. An example with
// `tenant` (and `user`) runs as that tenant (see tenants.js); the demo
// tables are acme's. An example with `nodes` needs that many engines
// (www/src/worker.js runs two); `check.sameAsOneNode`: its last statement
// answers the same rows on one node.

/** Tables the page creates at start (tenant acme). */
export const DEMO_SETUP = `
CREATE TABLE customers (id BIGINT NOT NULL, name VARCHAR, country VARCHAR);
INSERT INTO customers VALUES
  (1, 'Ada', 'UK'), (2, 'Grace', 'US'), (3, 'Edsger', 'NL'), (4, 'Barbara', 'US'),
  (5, 'Donald', 'US'), (6, 'Frances', 'US'), (7, 'Niklaus', 'CH'), (8, 'Tony', 'UK');
CREATE TABLE orders (id BIGINT NOT NULL, customer_id BIGINT, amount DOUBLE);
INSERT INTO orders SELECT n, n % 8 + 1, (n * 37) % 1000 / 10.0 FROM generate_series(1, 200000) AS g(n);
`;

export const EXAMPLES = [
  {
    title: "A join with an aggregate",
    sql: `SELECT c.name, c.country, count(*) AS orders, round(sum(o.amount), 2) AS total
FROM customers c JOIN orders o ON o.customer_id = c.id
GROUP BY c.name, c.country
ORDER BY total DESC;`,
  },
  {
    title: "A long query to kill (press Cancel, or Kill query from another session)",
    sql: `-- CPU-bound: ~10 billion rows. Press Cancel, or open a New session
-- and use Kill query in the process list.
SELECT count(*), sum(n % 7) FROM generate_series(1, 10000000000) AS g(n);`,
  },
  {
    title: "A transaction killed mid-way",
    sql: `-- Run all four statements. While the long SELECT runs inside the
-- transaction, open a New session (acme, role admin) and press
-- Kill connection on this one: the transaction is rolled back on a
-- cleanup context, so Mallory never lands (check from the other session:
-- SELECT * FROM customers WHERE id = 99).
BEGIN;
INSERT INTO customers VALUES (99, 'Mallory', 'XX');
SELECT count(*) FROM orders CROSS JOIN generate_series(1, 1000000) AS g(n);
COMMIT;`,
  },
  {
    title: "Tenants own their data (tenant globex reads acme's table)",
    // Picking it opens (or switches to) a session of `tenant`.
    tenant: "globex",
    check: { code: 1146 },
    sql: `-- Runs as tenant globex. The demo tables belong to tenant acme: for
-- globex they do not exist, so this fails with 1146 (table doesn't exist),
-- as would USE or any other way of naming acme's data; globex has a
-- database \`cascade\` of its own. Run in an acme session, it answers.
SELECT count(*) FROM cascade.customers;`,
  },
  {
    title: "A statement timeout (max_execution_time)",
    timeoutMs: 0,
    sql: `SET max_execution_time = 300;
SELECT count(*) FROM generate_series(1, 10000000000) AS g(n);`,
  },
  {
    title: "Across nodes: node 1 runs a fragment on node 2 (two engines, no network)",
    // Checked against the same statement on one node (node-api.test.mjs).
    nodes: 2,
    check: { rows: 1, sameAsOneNode: true },
    sql: `-- This page runs two engines in its worker, node 1 and node 2, joined by
-- an in-memory transport (no network). With cascade_distribute on, node 1
-- splits generate_series by range: node 2 computes the partial aggregate
-- of its half, node 1 the other half and the final merge. The trace shows
-- node 2's spans (badge "node 2") under node 1's operator, with the same
-- trace id. Raise the upper bound and press Cancel, or set a timeout:
-- node 2's fragment stops too, its spans saying "cancelled by node 1: …".
SET cascade_distribute = ON;
SELECT count(*) AS n, sum(n % 7) AS s, min(n) AS lo, max(n) AS hi
FROM generate_series(1, 3000000) AS g(n);`,
  },
  {
    title: "EXPLAIN ANALYZE",
    sql: `EXPLAIN ANALYZE
SELECT country, count(*) AS n, avg(amount) AS avg_amount
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE amount > 10
GROUP BY country ORDER BY n DESC;`,
  },
  {
    title: "A runaway recursive CTE stopped by a timeout",
    timeoutMs: 0,
    check: { code: 3024 },
    sql: `-- Counts to 10^12 one row per iteration: cte_max_recursion_depth is
-- raised out of the way, so max_execution_time stops it (error 3024).
-- Remove the SET and it is stopped by the depth limit instead (3636).
SET max_execution_time = 500;
SET cte_max_recursion_depth = 4294967295;
WITH RECURSIVE r(n) AS (
  SELECT 1
  UNION ALL
  SELECT n + 1 FROM r WHERE n < 1000000000000
)
SELECT count(*) FROM r;`,
  },
  {
    title: "Window functions (rank, running sum, lag)",
    check: { rows: 8 },
    sql: `SELECT c.name, c.country, t.total,
  rank() OVER (ORDER BY t.total DESC) AS place,
  rank() OVER (PARTITION BY c.country ORDER BY t.total DESC) AS place_in_country,
  sum(t.total) OVER (ORDER BY t.total DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total,
  t.total - lag(t.total) OVER (ORDER BY t.total DESC) AS behind_previous
FROM customers c
JOIN (SELECT customer_id, round(sum(amount), 2) AS total FROM orders GROUP BY customer_id) t
  ON t.customer_id = c.id
ORDER BY place;`,
  },
  {
    title: "A correlated subquery, with its EXPLAIN ANALYZE",
    check: { minRows: 3 },
    sql: `-- Each customer's largest order, for the customers with an order above
-- 99.5. The EXISTS is correlated by an equality, so it runs once as a hash
-- semi-join; the scalar subquery runs once per distinct customer id.
-- EXPLAIN ANALYZE shows each subquery's runs and the rows it cached.
EXPLAIN ANALYZE
SELECT c.name, c.country,
  (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) AS largest
FROM customers c
WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 99.5)
ORDER BY c.name;`,
  },
  {
    // Picking it opens (or switches to) a session of `tenant`.
    title: "A tenant's memory budget stops a greedy query (tenant initech)",
    tenant: "initech",
    user: "dave",
    check: { code: 1041 },
    sql: `-- Runs as tenant initech: its statements share a 32 MiB memory budget
-- (new Engine({ tenants: { initech: { memoryBudget } } })). This query wants
-- far more, so it is stopped with error 1041 naming initech's budget.
-- Start the long query in an acme tab first: it goes on, and the process
-- list shows each tenant's memory use against its budget.
SELECT count(DISTINCT n) FROM generate_series(1, 100000000) AS g(n);`,
  },
  {
    title: "Who is connected (SHOW PROCESSLIST)",
    sql: "SHOW PROCESSLIST;",
  },
  {
    title: "Kill another connection by id",
    sql: "-- Use an id from the process list.\nKILL QUERY 1;",
  },
];
