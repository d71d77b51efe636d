//! Wrong answers that must be errors (issue 8): a value is never clamped,
//! wrapped, turned into inf/NaN or reinterpreted silently, and a statement
//! cascade cannot run as MySQL would is refused, never run as something
//! else. Each case names MySQL's code.

mod common;
use common::*;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cascade::{
    Connection, Engine, EngineConfig, Host, Identity, ManualHost, QueryError, QueryResult,
};

fn err(c: &Connection, sql: &str) -> QueryError {
    match run(c, sql) {
        Ok(r) => panic!("{sql}: expected an error, got {:?}", rows(&r)),
        Err(e) => e,
    }
}

fn code(c: &Connection, sql: &str, want: u16) -> QueryError {
    let e = err(c, sql);
    assert_eq!(e.code, want, "{sql}: {e}");
    e
}

fn fresh() -> Connection {
    conn(&engine(), "acme", "alice", "member")
}

#[test]
fn integer_sum_past_bigint_is_1690_never_a_clamped_value() {
    let c = fresh();
    let e = code(
        &c,
        "SELECT sum(x) FROM generate_series(9223372036854775800, 9223372036854775807) AS g(x)",
        1690,
    );
    assert!(
        e.message
            .starts_with("BIGINT value is out of range in 'sum(x)'"),
        "{}",
        e.message
    );
    code(
        &c,
        "SELECT x % 2, sum(x) FROM generate_series(9223372036854775800, 9223372036854775807) AS g(x) GROUP BY 1",
        1690,
    );
    code(
        &c,
        "SELECT sum(DISTINCT x) FROM generate_series(9223372036854775800, 9223372036854775807) AS g(x)",
        1690,
    );
    // Partial sums past BIGINT that come back into range are exact.
    assert_eq!(
        cell(
            &c,
            "SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 10 UNION ALL SELECT -10) AS t"
        ),
        "9223372036854775807"
    );
    code(
        &c,
        "SELECT sum(x * 1e300) FROM generate_series(1, 1000000) AS g(x)",
        1690,
    );
}

#[test]
fn double_overflow_is_1690_and_no_inf_or_nan_reaches_sort_group_or_distinct() {
    let c = fresh();
    let e = code(&c, "SELECT 1e308 * 10", 1690);
    assert!(
        e.message.starts_with("DOUBLE value is out of range in '("),
        "{}",
        e.message
    );
    code(&c, "SELECT -1e308 - 1e308", 1690);
    code(&c, "SELECT 1e308 / 1e-308", 1690);
    // Column kernels (int column × double, double column × double column).
    code(
        &c,
        "SELECT x * 1e308 FROM generate_series(1, 10) AS g(x)",
        1690,
    );
    code(
        &c,
        "SELECT a * b FROM (SELECT x * 1e300 AS a, x * 1e300 AS b FROM generate_series(1, 10) AS g(x)) AS t",
        1690,
    );
    code(
        &c,
        "SELECT x FROM generate_series(1, 10) AS g(x) ORDER BY x * 1e308 * 10",
        1690,
    );
    code(
        &c,
        "SELECT x * 1e308 * 10 AS k, count(*) FROM generate_series(1, 10) AS g(x) GROUP BY k",
        1690,
    );
    code(
        &c,
        "SELECT DISTINCT x * 1e308 * 10 FROM generate_series(1, 10) AS g(x)",
        1690,
    );
    // 0.0 and -0.0 are one value.
    assert_eq!(
        cell(
            &c,
            "SELECT count(DISTINCT x) FROM (SELECT 0e0 AS x UNION ALL SELECT -0e0) AS t"
        ),
        "1"
    );
    assert_eq!(
        rows(&ok(
            &c,
            "SELECT count(*) FROM (SELECT 0e0 AS x UNION ALL SELECT -0e0) AS t GROUP BY x"
        )),
        vec![vec!["2"]]
    );
    // A literal past DOUBLE's range is not a number (MySQL 1367).
    code(&c, "SELECT 1e309", 1367);
    // Text past DOUBLE's range reads as DOUBLE's largest value, as in
    // MySQL: arithmetic on it then overflows with 1690, never inf.
    code(&c, "SELECT '1e400' * 10", 1690);
    assert_eq!(cell(&c, "SELECT '1e400' + 0 > 1e308"), "1");
}

#[test]
fn bigint_min_div_minus_one_is_1690() {
    let c = fresh();
    assert_eq!(
        cell(&c, "SELECT -9223372036854775808"),
        "-9223372036854775808"
    );
    let e = code(&c, "SELECT -9223372036854775808 DIV -1", 1690);
    assert!(e.message.starts_with("BIGINT value"), "{}", e.message);
    code(&c, "SELECT 1e20 DIV 1", 1690);
    code(&c, "SELECT -(-9223372036854775808)", 1690);
    assert_eq!(cell(&c, "SELECT -9223372036854775808 % -1"), "0");
}

#[test]
fn keys_defaults_and_constraints_mean_what_they_say() {
    let c = fresh();
    ok(
        &c,
        "CREATE TABLE k (id INT PRIMARY KEY, v VARCHAR(5) UNIQUE, n INT DEFAULT 7, z INT NOT NULL DEFAULT 3)",
    );
    ok(&c, "INSERT INTO k (id, v) VALUES (1, 'a')");
    let e = code(&c, "INSERT INTO k (id, v) VALUES (1, 'b')", 1062);
    assert_eq!(e.message, "Duplicate entry '1' for key 'k.PRIMARY'");
    let e = code(&c, "INSERT INTO k (id, v) VALUES (2, 'a')", 1062);
    assert_eq!(e.message, "Duplicate entry 'a' for key 'k.v'");
    // NULLs are not equal to each other in a UNIQUE key.
    ok(&c, "INSERT INTO k (id, v) VALUES (2, NULL), (3, NULL)");
    code(&c, "INSERT INTO k (v) VALUES ('q')", 1364);
    code(&c, "UPDATE k SET id = 1", 1062);
    assert_eq!(
        rows(&ok(&c, "SELECT id, v, n, z FROM k ORDER BY id")),
        vec![
            vec!["1", "a", "7", "3"],
            vec!["2", "NULL", "7", "3"],
            vec!["3", "NULL", "7", "3"],
        ]
    );
    ok(&c, "CREATE TABLE k2 (a INT, b INT, PRIMARY KEY (a, b))");
    let e = code(&c, "INSERT INTO k2 VALUES (1, 2), (1, 2)", 1062);
    assert_eq!(e.message, "Duplicate entry '1-2' for key 'k2.PRIMARY'");
    code(&c, "INSERT INTO k2 VALUES (1, NULL)", 1048);
    // Options cascade would ignore are refused, not accepted.
    for sql in [
        "CREATE TABLE k3 (a INT CHECK (a > 0))",
        "CREATE TABLE k3 (a INT AUTO_INCREMENT)",
        "CREATE TABLE k3 (a INT, FOREIGN KEY (a) REFERENCES k (id))",
        "CREATE TABLE k3 (a TEXT COLLATE utf8mb4_general_ci)",
    ] {
        let e = code(&c, sql, 1235);
        assert!(e.message.contains("ignored"), "{sql}: {}", e.message);
    }
    code(&c, "CREATE TABLE k3 (a INT, a INT)", 1060);
    code(
        &c,
        "CREATE TABLE k3 (a INT PRIMARY KEY, b INT, PRIMARY KEY (b))",
        1068,
    );
    code(&c, "CREATE TABLE k3 (a INT, UNIQUE (b))", 1072);
    ok(
        &c,
        "CREATE TABLE k3 (a INT, b TEXT COLLATE utf8mb4_bin, INDEX (a))",
    );
}

#[test]
fn replace_deletes_the_conflicting_rows_first() {
    let c = fresh();
    ok(
        &c,
        "CREATE TABLE r (id INT PRIMARY KEY, v VARCHAR(5) UNIQUE, w INT)",
    );
    ok(
        &c,
        "INSERT INTO r VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)",
    );
    // Conflicts with row 1 on the key and row 2 on v: both go.
    let r = ok(&c, "REPLACE INTO r VALUES (1, 'b', 99)");
    assert_eq!(r.rows_affected, 3);
    assert_eq!(
        rows(&ok(&c, "SELECT id, v, w FROM r ORDER BY id")),
        vec![vec!["1", "b", "99"], vec!["3", "c", "30"]]
    );
    // Within one statement, a later row replaces an earlier one.
    let r = ok(&c, "REPLACE INTO r VALUES (5, 'e', 1), (5, 'f', 2)");
    assert_eq!(r.rows_affected, 3);
    assert_eq!(
        rows(&ok(&c, "SELECT id, v, w FROM r ORDER BY id")),
        vec![
            vec!["1", "b", "99"],
            vec!["3", "c", "30"],
            vec!["5", "f", "2"]
        ]
    );
    // Without keys, REPLACE is INSERT.
    ok(&c, "CREATE TABLE r2 (x INT)");
    assert_eq!(ok(&c, "REPLACE INTO r2 VALUES (1), (1)").rows_affected, 2);
    assert_eq!(cell(&c, "SELECT count(*) FROM r2"), "2");
    // INSERT IGNORE would store clamped values where INSERT fails.
    let e = code(&c, "INSERT IGNORE INTO r VALUES (1, 'c', 1)", 1235);
    assert!(e.message.contains("INSERT IGNORE"), "{}", e.message);
    assert_eq!(cell(&c, "SELECT count(*) FROM r"), "3");
}

#[test]
fn mod_operator() {
    let c = fresh();
    assert_eq!(cell(&c, "SELECT 7 MOD 3"), "1");
    assert_eq!(cell(&c, "SELECT -7 mod 3"), "-1");
    assert_eq!(cell(&c, "SELECT 7.5 MOD 2"), "1.5");
    assert_eq!(
        cell(
            &c,
            "SELECT count(*) FROM generate_series(1, 100) AS g(x) WHERE x MOD 7 = 0"
        ),
        "14"
    );
    assert_eq!(cell(&c, "SELECT mod(7, 3) + 1"), "2");
    // A column named `mod` still works.
    ok(&c, "CREATE TABLE m (`mod` BIGINT)");
    ok(&c, "INSERT INTO m VALUES (9)");
    assert_eq!(cell(&c, "SELECT mod MOD 4 FROM m"), "1");
    assert_eq!(cell(&c, "SELECT m.mod FROM m WHERE mod > 1"), "9");
}

#[test]
fn cast_never_wraps_or_clamps() {
    let c = fresh();
    let e = code(&c, "SELECT CAST('-1' AS UNSIGNED)", 1690);
    assert!(
        e.message
            .starts_with("BIGINT UNSIGNED value is out of range in 'CAST('-1' AS UNSIGNED)'"),
        "{}",
        e.message
    );
    code(&c, "SELECT CAST(-1 AS UNSIGNED)", 1690);
    code(&c, "SELECT CAST('18446744073709551615' AS UNSIGNED)", 1690);
    assert_eq!(cell(&c, "SELECT CAST('42' AS UNSIGNED)"), "42");
    assert_eq!(
        cell(&c, "SELECT CAST(9223372036854775807 AS UNSIGNED)"),
        "9223372036854775807"
    );
    assert_eq!(cell(&c, "SELECT CAST(NULL AS UNSIGNED) IS NULL"), "1");
    code(&c, "SELECT CAST(1e20 AS SIGNED)", 1690);
    code(&c, "SELECT CAST('9223372036854775808' AS SIGNED)", 1690);
    assert_eq!(
        cell(&c, "SELECT CAST('9223372036854775807' AS SIGNED)"),
        "9223372036854775807"
    );
    assert_eq!(cell(&c, "SELECT CAST(-2.5 AS SIGNED)"), "-3");
    // DECIMAL(p, s) and CHAR(n) are honoured, not read as DOUBLE / text.
    assert_eq!(
        rows(&ok(
            &c,
            "SELECT CAST(1.5 AS DECIMAL), CAST(1.234 AS DECIMAL(5,2)), CAST(-2.5 AS DECIMAL), CAST('abc' AS CHAR(2))"
        )),
        vec![vec!["2", "1.23", "-3", "ab"]]
    );
    let e = code(&c, "SELECT CAST(12345.678 AS DECIMAL(5,2))", 1690);
    assert!(e.message.starts_with("DECIMAL value"), "{}", e.message);
}

#[test]
fn select_all_is_the_default_and_distinctrow_is_distinct() {
    let c = fresh();
    let q = "FROM (SELECT 1 AS x UNION ALL SELECT 1) AS t";
    assert_eq!(rows(&ok(&c, &format!("SELECT ALL x {q}"))).len(), 2);
    assert_eq!(rows(&ok(&c, &format!("SELECT DISTINCTROW x {q}"))).len(), 1);
}

#[test]
fn column_alias_lists_must_match_the_column_count() {
    let c = fresh();
    code(&c, "SELECT * FROM generate_series(1, 3) AS g(x, y)", 1353);
    code(&c, "SELECT * FROM (SELECT 1, 2) AS d(a)", 1353);
    code(&c, "SELECT * FROM (SELECT 1) AS d(a, b)", 1353);
    assert_eq!(cell(&c, "SELECT b FROM (SELECT 1, 2) AS d(a, b)"), "2");
}

#[test]
fn window_functions_answer_and_are_never_a_grouping_error() {
    let c = fresh();
    for (sql, expect) in [
        (
            "SELECT x, sum(x) OVER () FROM generate_series(1, 3) AS g(x) ORDER BY x",
            "1 6|2 6|3 6",
        ),
        (
            "SELECT x, count(*) OVER (ORDER BY x) FROM generate_series(1, 3) AS g(x) ORDER BY x",
            "1 1|2 2|3 3",
        ),
        (
            "SELECT x, row_number() OVER (ORDER BY x DESC) FROM generate_series(1, 3) AS g(x) ORDER BY x",
            "1 3|2 2|3 1",
        ),
        (
            "SELECT x FROM generate_series(1, 3) AS g(x) ORDER BY row_number() OVER (ORDER BY x DESC)",
            "3|2|1",
        ),
    ] {
        let r = ok(&c, sql);
        let got: Vec<String> = rows(&r).iter().map(|r| r.join(" ")).collect();
        assert_eq!(got.join("|"), expect, "{sql}");
    }
    // Where MySQL allows none: 3593, not a grouping error (1055).
    for sql in [
        "SELECT x FROM generate_series(1, 3) AS g(x) WHERE row_number() OVER () > 1",
        "SELECT x FROM generate_series(1, 3) AS g(x) GROUP BY rank() OVER ()",
        "SELECT x FROM generate_series(1, 3) AS g(x) GROUP BY x HAVING sum(x) OVER () > 1",
    ] {
        let e = code(&c, sql, 3593);
        assert!(
            e.message.contains("You cannot use the window function"),
            "{sql}: {}",
            e.message
        );
    }
}

#[test]
fn rounding_is_exact_or_1690() {
    let c = fresh();
    assert_eq!(
        cell(&c, "SELECT round(123456789012345678, -1)"),
        "123456789012345680"
    );
    assert_eq!(cell(&c, "SELECT round(-15, -1)"), "-20");
    code(&c, "SELECT round(9223372036854775807, -1)", 1690);
    assert_eq!(cell(&c, "SELECT round(1e300, 20) = 1e300"), "1");
    assert_eq!(cell(&c, "SELECT round(123, -9223372036854775808)"), "0");
}

#[test]
fn storing_a_number_the_column_cannot_hold_is_1264() {
    let c = fresh();
    ok(&c, "CREATE TABLE n (i BIGINT, d DOUBLE)");
    code(&c, "INSERT INTO n (i) VALUES (1e20)", 1264);
    code(
        &c,
        "INSERT INTO n (i) VALUES ('99999999999999999999')",
        1264,
    );
    code(&c, "INSERT INTO n (d) VALUES ('1e400')", 1264);
    // Not numbers in MySQL, though Rust's parser reads them.
    code(&c, "INSERT INTO n (d) VALUES ('nan')", 1366);
    code(&c, "INSERT INTO n (d) VALUES ('inf')", 1366);
    code(&c, "INSERT INTO n (i) VALUES ('-infinity')", 1366);
    ok(&c, "INSERT INTO n (i, d) VALUES (2.5, '1.5')");
    assert_eq!(rows(&ok(&c, "SELECT i, d FROM n")), vec![vec!["3", "1.5"]]);
    code(&c, "UPDATE n SET i = 1e19", 1264);
}

#[test]
fn declared_column_types_are_enforced_not_widened() {
    let c = fresh();
    ok(
        &c,
        "CREATE TABLE w (t TINYINT, u INT UNSIGNED, v VARCHAR(3), d DECIMAL(5,2), c CHAR(2), x TEXT)",
    );
    code(&c, "INSERT INTO w (t) VALUES (200)", 1264);
    code(&c, "INSERT INTO w (u) VALUES (-1)", 1264);
    code(&c, "INSERT INTO w (v) VALUES ('abcd')", 1406);
    code(&c, "INSERT INTO w (c) VALUES ('abc')", 1406);
    code(&c, "INSERT INTO w (d) VALUES (12345)", 1264);
    code(&c, "INSERT INTO w (d) VALUES (999.995)", 1264);
    code(
        &c,
        &format!("INSERT INTO w (x) VALUES ('{}')", "a".repeat(65_536)),
        1406,
    );
    ok(
        &c,
        "INSERT INTO w (t, u, v, d, c) VALUES (-128, 4294967295, 'héé', 1.234, 'ab')",
    );
    assert_eq!(
        rows(&ok(&c, "SELECT t, u, v, d, c FROM w")),
        vec![vec!["-128", "4294967295", "héé", "1.23", "ab"]]
    );
    code(&c, "UPDATE w SET v = 'abcde'", 1406);
    code(&c, "UPDATE w SET t = t - 1", 1264);
    ok(&c, "UPDATE w SET d = d * 2");
    assert_eq!(cell(&c, "SELECT d FROM w"), "2.46");
}

#[test]
fn update_evaluates_set_only_on_the_rows_it_changes() {
    let c = fresh();
    ok(&c, "CREATE TABLE u (x BIGINT)");
    ok(&c, "INSERT INTO u VALUES (1), (9223372036854775807)");
    // The row at BIGINT's maximum is not updated, so its x + 1 is never
    // computed (MySQL answers 1 row affected).
    let r = ok(&c, "UPDATE u SET x = x + 1 WHERE x < 10");
    assert_eq!(r.rows_affected, 1);
    assert_eq!(
        rows(&ok(&c, "SELECT x FROM u ORDER BY x")),
        vec![vec!["2"], vec!["9223372036854775807"]]
    );
    code(&c, "UPDATE u SET x = x + 1", 1690);
}

// ---------------------------------------------------------------------
// SLEEP anywhere waits on the host timer, and stays killable. Run on a
// ManualHost: the clock moves only when the test advances it, so the time
// a statement slept is exact.

struct Rig {
    host: Arc<ManualHost>,
    engine: Engine,
}

impl Rig {
    fn new() -> Rig {
        let host = Arc::new(ManualHost::new());
        let engine = Engine::new(EngineConfig::new(1, host.clone()));
        Rig { host, engine }
    }
    fn conn(&self) -> Connection {
        self.engine
            .connect(Identity::new("acme", "alice", "member"))
            .expect("connect")
    }
    /// Runs `sql` to the end, moving the clock 10 ms whenever the statement
    /// waits on a timer; returns the result and the host time it took.
    fn timed(&self, c: &Connection, sql: &str) -> (Result<QueryResult, QueryError>, Duration) {
        let start = self.host.now();
        let mut fut = Box::pin(c.execute(sql));
        let waker = futures::task::noop_waker();
        let mut cx = TaskContext::from_waker(&waker);
        for _ in 0..1_000_000 {
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                return (r, self.host.now().saturating_since(start));
            }
            if self.host.pending_timers() > 0 {
                self.host.advance(Duration::from_millis(10));
            }
        }
        panic!("{sql}: did not finish");
    }
}

fn slept(rig: &Rig, c: &Connection, sql: &str) -> Duration {
    let (r, d) = rig.timed(c, sql);
    if let Err(e) = r {
        panic!("{sql}: {e}");
    }
    d
}

#[test]
fn sleep_in_where_sleeps_once_per_row_evaluated() {
    let rig = Rig::new();
    let c = rig.conn();
    assert_eq!(
        slept(
            &rig,
            &c,
            "SELECT count(*) FROM generate_series(1, 5) AS g(x) WHERE sleep(1) = 0"
        ),
        Duration::from_secs(5)
    );
    // Short-circuit as MySQL: only the rows with x > 3 reach SLEEP.
    assert_eq!(
        slept(
            &rig,
            &c,
            "SELECT x FROM generate_series(1, 5) AS g(x) WHERE x > 3 AND sleep(1) = 0"
        ),
        Duration::from_secs(2)
    );
    assert_eq!(
        slept(
            &rig,
            &c,
            "SELECT if(x = 1, sleep(1), 0) FROM generate_series(1, 5) AS g(x)"
        ),
        Duration::from_secs(1)
    );
    // Where nothing would wait for it, SLEEP is refused, not skipped.
    let (r, d) = rig.timed(&c, "SELECT * FROM generate_series(1, 3 + sleep(1)) AS g(x)");
    assert_eq!(r.expect_err("refused").code, 1235);
    assert_eq!(d, Duration::ZERO);
    let (r, _) = rig.timed(&c, "SET max_execution_time = sleep(1)");
    assert_eq!(r.expect_err("refused").code, 1235);
    // In an aggregate's argument, once per row.
    assert_eq!(
        slept(
            &rig,
            &c,
            "SELECT sum(sleep(0.5)) FROM generate_series(1, 4) AS g(x)"
        ),
        Duration::from_secs(2)
    );
}

#[test]
fn sleep_in_update_and_delete_sleeps_for_the_matched_rows() {
    let rig = Rig::new();
    let c = rig.conn();
    slept(&rig, &c, "CREATE TABLE t (x BIGINT, y BIGINT)");
    slept(
        &rig,
        &c,
        "INSERT INTO t SELECT x, 0 FROM generate_series(1, 10) AS g(x)",
    );
    assert_eq!(
        slept(&rig, &c, "UPDATE t SET y = sleep(1) + 7 WHERE x <= 3"),
        Duration::from_secs(3)
    );
    assert_eq!(
        slept(
            &rig,
            &c,
            "UPDATE t SET y = 1 WHERE sleep(0.5) = 0 AND x > 100"
        ),
        Duration::from_secs(5)
    );
    assert_eq!(
        slept(&rig, &c, "DELETE FROM t WHERE x > 8 AND sleep(2) = 0"),
        Duration::from_secs(4)
    );
    let (r, _) = rig.timed(&c, "SELECT count(*), sum(y) FROM t");
    assert_eq!(rows(&r.expect("select")), vec![vec!["8", "21"]]);
    // INSERT … VALUES evaluates each row's SLEEP.
    assert_eq!(
        slept(
            &rig,
            &c,
            "INSERT INTO t VALUES (sleep(1), 1), (sleep(2), 2)"
        ),
        Duration::from_secs(3)
    );
}

#[test]
fn kill_mid_sleep_in_where_or_update_answers_1317_at_once() {
    for sql in [
        "SELECT count(*) FROM generate_series(1, 5) AS g(x) WHERE sleep(100) = 0",
        "UPDATE k SET x = sleep(100)",
        "DELETE FROM k WHERE sleep(100) = 0",
    ] {
        let rig = Rig::new();
        let victim = rig.conn();
        let killer = rig.conn();
        rig.timed(&victim, "CREATE TABLE k (x BIGINT)")
            .0
            .expect("create");
        rig.timed(&victim, "INSERT INTO k VALUES (1), (2)")
            .0
            .expect("insert");
        let mut fut = Box::pin(victim.execute(sql));
        let waker = futures::task::noop_waker();
        let mut cx = TaskContext::from_waker(&waker);
        let mut polls = 0;
        while rig.host.pending_timers() == 0 {
            assert!(fut.as_mut().poll(&mut cx).is_pending(), "{sql}: ended");
            polls += 1;
            assert!(polls < 10_000, "{sql}: never slept");
        }
        let before = rig.host.now();
        let (k, _) = rig.timed(&killer, &format!("KILL QUERY {}", victim.id()));
        k.expect("kill");
        let Poll::Ready(r) = fut.as_mut().poll(&mut cx) else {
            panic!("{sql}: still running after the KILL");
        };
        let e = r.expect_err("killed");
        assert_eq!(e.code, 1317, "{sql}: {e}");
        assert_eq!(rig.host.now(), before, "{sql}: answered without waiting");
    }
}
