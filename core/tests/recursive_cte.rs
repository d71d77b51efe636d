//! `WITH RECURSIVE` as a context citizen: a runaway recursion (with
//! `cte_max_recursion_depth` raised) is stopped by `max_execution_time` and
//! by KILL, gives back its memory, and shows its iterations in EXPLAIN
//! ANALYZE.

mod common;
use common::*;

use cascade::{EngineConfig, ErrorKind, Identity, ManualHost, Reason};
use futures::task::noop_waker;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

/// Never ends by itself: one row per iteration, forever.
const RUNAWAY: &str =
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r";

#[test]
fn a_runaway_recursion_is_stopped_by_max_execution_time() {
    // The clock moves only when the test moves it: the statement runs (and
    // yields) for as many steps as the test likes, then the deadline passes.
    let host = Arc::new(ManualHost::new());
    let e = cascade::Engine::new(EngineConfig::new(1, host.clone()));
    let c = e
        .connect(Identity::new("acme", "alice", "member"))
        .expect("connect");
    ok(&c, "SET cte_max_recursion_depth = 4294967295");
    ok(&c, "SET max_execution_time = 100");
    let mut fut = Box::pin(c.execute(RUNAWAY));
    let waker = noop_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let vid = c.id();
    let me = Identity::new("acme", "alice", "member");
    // It runs, yielding: never done, and its iterations read rows.
    for _ in 0..200 {
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    let examined = e
        .processes(&me)
        .iter()
        .find(|p| p.id == vid)
        .map(|p| p.rows_examined)
        .unwrap_or(0);
    assert!(
        examined > 100,
        "the recursion ran: {examined} rows examined"
    );
    host.advance(Duration::from_millis(101));
    let err = loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            break r.expect_err("stopped by the deadline");
        }
    };
    assert_eq!(err.code, 3024, "{err}");
    assert_eq!(err.kind, ErrorKind::DeadlineExceeded);
    assert_eq!(
        err.cause.map(|c| c.reason.clone()),
        Some(Reason::StatementTimeout { limit_ms: 100 })
    );
    assert_eq!(e.memory_in_use(), 0, "everything given back");
    ok(&c, "SET max_execution_time = 0");
    assert_eq!(cell(&c, "SELECT 1"), "1");
}

#[test]
fn a_runaway_recursion_is_killed_from_another_thread() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "root", "admin");
    ok(&victim, "SET cte_max_recursion_depth = 4294967295");
    let vid = victim.id();
    let v2 = victim.clone();
    let h = std::thread::spawn(move || run(&v2, RUNAWAY));
    let me = Identity::new("acme", "root", "admin");
    while !e
        .processes(&me)
        .iter()
        .any(|p| p.id == vid && p.rows_examined > 1000)
    {
        assert!(!h.is_finished(), "the recursion ended by itself");
        std::thread::yield_now();
    }
    ok(&killer, &format!("KILL QUERY {vid}"));
    let err = h.join().expect("the victim's thread").unwrap_err();
    assert_eq!(err.code, 1317, "{err}");
    assert!(matches!(
        err.cause.as_ref().map(|c| &c.reason),
        Some(Reason::KillQuery { .. })
    ));
    assert_eq!(e.memory_in_use(), 0, "everything given back");
    assert_eq!(cell(&victim, "SELECT 2"), "2");
}

#[test]
fn the_depth_limit_and_its_memory() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let err = run(&c, RUNAWAY).unwrap_err();
    assert_eq!(err.code, 3636);
    assert_eq!(err.sqlstate, "HY000");
    assert_eq!(
        err.message,
        "Recursive query aborted after 1001 iterations. Try increasing @@cte_max_recursion_depth to a larger value."
    );
    assert_eq!(e.memory_in_use(), 0);
    // 0 allows no iteration at all: an iteration starts (and counts) as
    // soon as the anchor has rows, even one that will find nothing, as in
    // MySQL; an empty anchor needs none.
    ok(&c, "SET cte_max_recursion_depth = 0");
    let once = "Recursive query aborted after 1 iterations. Try increasing @@cte_max_recursion_depth to a larger value.";
    assert_eq!(run(&c, RUNAWAY).unwrap_err().message, once);
    assert_eq!(
        run(
            &c,
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 0) SELECT count(*) FROM r"
        )
        .unwrap_err()
        .message,
        once
    );
    assert_eq!(
        cell(
            &c,
            "WITH RECURSIVE r(n) AS (SELECT n FROM (SELECT 1 AS n) AS t WHERE n < 0 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        ),
        "0"
    );
    // Past MySQL's maximum, the largest value.
    ok(&c, "SET cte_max_recursion_depth = 99999999999");
    assert_eq!(cell(&c, "SELECT @@cte_max_recursion_depth"), "4294967295");
}

#[test]
fn explain_analyze_shows_the_iterations_and_the_working_table() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let plan = |sql: &str| -> String {
        ok(&c, sql)
            .rows
            .iter()
            .map(|r| r[0].to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let q = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 7) SELECT n FROM r";
    let before = plan(&format!("EXPLAIN {q}"));
    assert!(before.contains("RecursiveUnion r (UNION ALL)"), "{before}");
    assert!(before.contains("WorkTableScan r"), "{before}");
    let after = plan(&format!("EXPLAIN ANALYZE {q}"));
    // 6 iterations make rows (2..7), the 7th finds none.
    assert!(after.contains("iterations=7"), "{after}");
    let distinct =
        plan("EXPLAIN WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n FROM r) SELECT n FROM r");
    assert!(distinct.contains("(UNION DISTINCT)"), "{distinct}");
    let setop = plan("EXPLAIN SELECT 1 EXCEPT ALL SELECT 2 INTERSECT SELECT 3");
    assert!(setop.contains("SetOp EXCEPT ALL"), "{setop}");
    assert!(setop.contains("SetOp INTERSECT"), "{setop}");
}

#[test]
fn a_cycle_with_union_distinct_ends_and_union_all_does_not() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "CREATE TABLE edge (a INT, b INT)");
    ok(&c, "INSERT INTO edge VALUES (1, 2), (2, 1)");
    let walk = |q: &str| {
        format!("WITH RECURSIVE w(n) AS (SELECT 1 {q} SELECT edge.b FROM w JOIN edge ON edge.a = w.n) SELECT count(*) FROM w")
    };
    assert_eq!(cell(&c, &walk("UNION")), "2");
    assert_eq!(run(&c, &walk("UNION ALL")).unwrap_err().code, 3636);
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn a_recursion_records_the_spans_of_its_first_iteration_only() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let r = ok(
        &c,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 500) SELECT count(*), sum(n) FROM r",
    );
    assert_eq!(r.rows[0][0].to_string(), "500");
    assert_eq!(r.rows[0][1].to_string(), "125250");
    // 500 iterations; a span per operator per iteration would put 1,500
    // spans in the engine's recorder (a runaway one, millions).
    let trace = e.trace(r.query_id).expect("the statement's trace");
    let named = |name: &str| trace.spans.iter().filter(|s| s.name == name).count();
    assert_eq!(named("RecursiveUnion"), 1);
    assert_eq!(named("WorkTableScan"), 1);
    assert_eq!(named("Filter"), 1);
    assert_eq!(e.memory_in_use(), 0, "every reservation given back");
}
