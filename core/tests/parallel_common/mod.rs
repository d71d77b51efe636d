//! The parallel aggregates shared by the parallel tests (threads, inline,
//! seeded schedules): each must give the serial plan's result with any
//! number of pipelines.

use super::common::ok;

/// Aggregates over scans big enough to be split (more than one morsel),
/// with every kind of aggregate state, integer and generic keys, NULL keys,
/// text keys, DISTINCT, and exact and float sums.
pub const QUERIES: &[&str] = &[
    "SELECT count(*), sum(x), min(x), max(x), avg(x) FROM generate_series(1, 100000) AS t(x) WHERE x % 7 = 0",
    "SELECT x % 1000 AS k, count(*), sum(x) FROM generate_series(1, 50000) AS t(x) GROUP BY k",
    "SELECT x % 100000 AS k, count(*) FROM generate_series(1, 300000) AS t(x) GROUP BY k",
    "SELECT CASE WHEN x % 5 = 0 THEN NULL ELSE x % 13 END AS k, count(*), sum(x) FROM generate_series(1, 40000) AS t(x) GROUP BY k",
    "SELECT x % 3 AS a, x % 5 AS b, count(*), max(x) FROM generate_series(1, 30000) AS t(x) GROUP BY a, b",
    "SELECT concat('k', x % 17) AS k, count(*), min(concat('v', x)) FROM generate_series(1, 30000) AS t(x) GROUP BY k",
    "SELECT x % 10 AS k, count(DISTINCT x % 1000), sum(DISTINCT x % 100) FROM generate_series(1, 60000) AS t(x) GROUP BY k",
    "SELECT count(DISTINCT x % 5000) FROM generate_series(1, 60000) AS t(x)",
    "SELECT x % 4 AS k, avg(x), sum(x / 3) FROM generate_series(1, 20000) AS t(x) GROUP BY k",
    "SELECT x % 7 AS k, count(*) FROM generate_series(1, 20000) AS t(x) GROUP BY k HAVING count(*) > 2857 ORDER BY k DESC",
    "SELECT count(*) FROM generate_series(1, 100000) AS t(x) WHERE x < 0",
    // Morsels of series with other steps, descending, and at the ends of
    // BIGINT (each morsel computes its own first value).
    "SELECT count(*), min(x), max(x), sum(x % 1000) FROM generate_series(7, 200000, 3) AS t(x)",
    "SELECT x % 11 AS k, count(*), min(x), max(x) FROM generate_series(50000, -50000, -7) AS t(x) GROUP BY k",
    "SELECT count(*), min(x), max(x), sum(x % 97) FROM generate_series(9223372036854775807, 9223372036854700000, -1) AS t(x)",
    "SELECT count(*), min(x), max(x) FROM generate_series(-9223372036854775808, 9223372036854775807, 1844674407370955) AS t(x)",
    "SELECT x % 9 AS k, count(*), sum(v) FROM big GROUP BY k",
    "SELECT count(*), sum(v), min(s), max(s) FROM big WHERE v % 3 = 1",
    "SELECT s, count(*) FROM big GROUP BY s LIMIT 5",
];

/// The table `big` (20,000 rows in four inserts) the last queries read.
pub fn setup(c: &cascade::Connection) {
    ok(c, "CREATE TABLE big (x INT, v INT, s VARCHAR(20))");
    for part in 0..4 {
        let rows: Vec<String> = (0..5000)
            .map(|i| {
                let x = part * 5000 + i;
                format!("({x}, {}, 's{}')", x * 7 % 1001, x % 23)
            })
            .collect();
        ok(c, &format!("INSERT INTO big VALUES {}", rows.join(", ")));
    }
}
