//! Statement timeouts: `SET max_execution_time` and the per-call timeout
//! return 3024 naming the limit, on every kind of statement.

mod common;
use common::*;

use cascade::{ErrorKind, ExecOptions, Reason};
use futures::executor::block_on;
use std::time::Duration;

#[test]
fn max_execution_time_interrupts_sleep_and_cpu_bound_queries() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "SET max_execution_time = 50");
    ok(&c, "SET cte_max_recursion_depth = 4294967295");
    for sql in [
        "SELECT sleep(10)",
        "SELECT count(*) FROM generate_series(1, 10000000000) AS t(x) WHERE x % 3 = 1",
        "SELECT x % 10, count(*) FROM generate_series(1, 10000000000) AS t(x) GROUP BY 1",
        // A runaway recursion (see also core/tests/recursive_cte.rs).
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    ] {
        let err = run(&c, sql).unwrap_err();
        assert_eq!(err.code, 3024, "{sql}: {err}");
        assert_eq!(err.kind, ErrorKind::DeadlineExceeded);
        assert!(err.message.contains("50 ms"), "{}", err.message);
        let cause = err.cause.unwrap();
        assert_eq!(cause.reason, Reason::StatementTimeout { limit_ms: 50 });
    }
    ok(&c, "SET max_execution_time = 0");
    assert_eq!(cell(&c, "SELECT sleep(0.01)"), "0");
}

#[test]
fn per_call_timeout_and_dml() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "CREATE TABLE t (x BIGINT)");
    let err = block_on(c.execute_with(
        "INSERT INTO t SELECT x FROM generate_series(1, 10000000000) AS g(x)",
        ExecOptions {
            timeout: Some(Duration::from_millis(40)),
        },
    ))
    .unwrap_err();
    assert_eq!(err.code, 3024, "{err}");
    assert_eq!(
        cell(&c, "SELECT count(*) FROM t"),
        "0",
        "a timed-out INSERT never commits"
    );
}
