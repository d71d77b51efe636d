//! The primary error wins: a real error is never masked as "canceled", and
//! resources are released on every path.

mod common;
use common::*;

use cascade::ErrorKind;

#[test]
fn memory_budget_error_is_not_masked_as_canceled() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "SET cascade_memory_budget = 1000000");
    let err = run(
        &c,
        "SELECT x FROM generate_series(1, 10000000) AS t(x) ORDER BY x DESC",
    )
    .unwrap_err();
    assert_eq!(err.code, 1041, "{err}");
    assert_eq!(err.kind, ErrorKind::Error);
    assert!(
        err.message.contains("memory budget of 1000000 bytes"),
        "{}",
        err.message
    );
    assert_eq!(e.memory_in_use(), 0);
    // The session works afterwards.
    assert_eq!(cell(&c, "SELECT 2"), "2");
}

#[test]
fn errors_carry_mysql_codes() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "CREATE TABLE t (a INT NOT NULL, b TEXT)");
    for (sql, code) in [
        ("SELEC 1", 1064),
        ("SELECT * FROM missing", 1146),
        ("SELECT nope FROM t", 1054),
        ("CREATE TABLE t (a INT)", 1050),
        ("DROP TABLE missing", 1051),
        ("INSERT INTO t VALUES (1)", 1136),
        ("INSERT INTO t VALUES (NULL, 'x')", 1048),
        ("INSERT INTO t VALUES ('abc', 'x')", 1366),
        ("INSERT INTO t VALUES (1/0, 'x')", 1365),
        ("SELECT 9223372036854775807 + 1", 1690),
        ("SELECT b, count(*) FROM t GROUP BY a", 1055),
        ("SELECT count(*) FROM t WHERE count(*) > 1", 1111),
        ("SELECT 1 UNION ALL SELECT 1, 2", 1222),
        ("SET nope = 1", 1193),
        ("", 1065),
        ("SELECT * FROM t WHERE a IN (SELECT 1, 2)", 1241),
        ("SELECT a FROM t GROUP BY (SELECT 1)", 1235),
    ] {
        let err = run(&c, sql).unwrap_err();
        assert_eq!(err.code, code, "{sql}: {err}");
        assert_eq!(err.kind, ErrorKind::Error);
    }
    assert_eq!(
        cell(&c, "SELECT count(*) FROM t"),
        "0",
        "failed inserts left nothing"
    );
}

#[test]
fn a_second_statement_on_a_busy_connection_is_out_of_sync() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let c2 = c.clone();
    let h = std::thread::spawn(move || run(&c2, "SELECT sleep(0.3)"));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(run(&c, "SELECT 1").unwrap_err().code, 2014);
    assert!(h.join().unwrap().is_ok());
}
