//! KILL QUERY of long-running statements of every heavy kind, on one thread
//! (LocalPool: the pipeline must yield for the kill to get through) and from
//! another thread.

mod common;
use common::*;

use cascade::{ErrorKind, Level, Reason};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::rc::Rc;

const HEAVY: &[(&str, &str)] = &[
    ("scan+aggregate", "SELECT count(*), sum(x) FROM generate_series(1, 10000000000) AS t(x) WHERE x % 7 = 0"),
    ("group by", "SELECT x % 1000 AS k, count(*), sum(x) FROM generate_series(1, 10000000000) AS t(x) GROUP BY k"),
    ("sort", "SELECT x FROM generate_series(1, 100000000) AS t(x) ORDER BY x DESC"),
    ("join", "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) JOIN generate_series(1, 1000) AS b(y) ON a.x % 1000 = b.y"),
    // Joins planned from WHERE (hash joins, a filter pushed to c's scan).
    ("multi-join", "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x), generate_series(1, 1000) AS b(y), generate_series(1, 1000) AS c(z) WHERE a.x % 1000 = b.y AND b.y = c.z AND c.z % 2 = 0"),
    ("distinct", "SELECT DISTINCT x % 100000 FROM generate_series(1, 10000000000) AS t(x)"),
    ("window", "SELECT x, sum(x) OVER (PARTITION BY x % 1000 ORDER BY x ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) FROM generate_series(1, 100000000) AS t(x)"),
    ("sleep", "SELECT sleep(100)"),
    // One long run of an uncorrelated subquery: its steps yield too.
    ("scalar subquery", "SELECT 1 + (SELECT count(*) FROM generate_series(1, 10000000000) AS b(y) WHERE y % 7 = 0)"),
    // A correlated subquery: a short run per outer row, for many rows.
    ("correlated subquery", "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 100) AS b(y) WHERE b.y > a.x)"),
    // Correlated by equality: one run, then a lookup per outer row.
    ("semi-join subquery", "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 100) AS b(y) WHERE b.y = a.x)"),
    ("recursive cte", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM generate_series(1, 10000000000) AS g(x), r WHERE x = 10000000000 AND n < 3) SELECT count(*) FROM r"),
    ("except", "SELECT x % 100000 FROM generate_series(1, 10000000000) AS t(x) EXCEPT SELECT 1"),
];

/// Runs `sql` on `victim` and kills it from `killer` once it is executing,
/// all on one thread.
fn kill_on_one_thread(sql: &str) -> cascade::QueryError {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "alice", "member");
    ok(&victim, "SET cascade_memory_budget = 400000000");
    // One pipeline, on this thread: with parallel pipelines on the host's
    // pool threads the statement ran on while this thread's tasks waited
    // for the CPU, and a loaded machine let the sort reach its memory
    // budget (1041) before the 20 yields below were over.
    ok(&victim, "SET cascade_threads = 1");
    let vid = victim.id();
    let mut pool = LocalPool::new();
    let result = Rc::new(RefCell::new(None));
    let r2 = result.clone();
    let v2 = victim.clone();
    let sql = sql.to_owned();
    pool.spawner()
        .spawn_local(async move {
            *r2.borrow_mut() = Some(v2.execute(&sql).await);
        })
        .unwrap();
    let e2 = e.clone();
    let done = Rc::new(RefCell::new(false));
    let d2 = done.clone();
    pool.spawner()
        .spawn_local(async move {
            let me = cascade::Identity::new("acme", "alice", "member");
            loop {
                let running = e2
                    .processes(&me)
                    .iter()
                    .any(|p| p.id == vid && p.state == "executing");
                if running {
                    // Let it work a little first.
                    for _ in 0..20 {
                        cascade::host::YieldNow::default().await;
                    }
                    killer.execute(&format!("KILL QUERY {vid}")).await.unwrap();
                    *d2.borrow_mut() = true;
                    return;
                }
                cascade::host::YieldNow::default().await;
            }
        })
        .unwrap();
    pool.run();
    assert!(*done.borrow(), "the killer ran");
    let res = result.borrow_mut().take().expect("the query finished");
    // The connection stays usable and the next statement is not affected.
    assert_eq!(cell(&victim, "SELECT 1"), "1");
    res.expect_err("a killed query is never a success")
}

#[test]
fn kill_query_of_every_heavy_kind_returns_1317_with_the_cause() {
    for (kind, sql) in HEAVY {
        let err = kill_on_one_thread(sql);
        assert_eq!(err.code, 1317, "{kind}: {err}");
        assert_eq!(err.sqlstate, "70100", "{kind}");
        assert_eq!(err.kind, ErrorKind::Canceled, "{kind}");
        let cause = err.cause.as_ref().expect("cause");
        assert!(
            matches!(cause.reason, Reason::KillQuery { .. }),
            "{kind}: {cause:?}"
        );
        assert_eq!(cause.level, Level::Query, "{kind}");
        assert!(
            err.message.contains("KILL QUERY from connection"),
            "{kind}: {}",
            err.message
        );
        assert!(err.query_id.is_some());
    }
}

#[test]
fn kill_from_another_thread_stops_a_cpu_bound_query() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "root", "admin");
    let vid = victim.id();
    let v2 = victim.clone();
    let h = std::thread::spawn(move || run(&v2, HEAVY[0].1));
    let me = cascade::Identity::new("acme", "root", "admin");
    while !e
        .processes(&me)
        .iter()
        .any(|p| p.id == vid && p.rows_examined > 0)
    {
        std::thread::yield_now();
    }
    ok(&killer, &format!("KILL QUERY {vid}"));
    let err = h.join().unwrap().unwrap_err();
    assert_eq!(err.code, 1317);
    // The killed query's trace carries the cancellation down to its operators.
    let trace = e.trace(err.query_id.unwrap()).unwrap();
    let q = trace
        .spans
        .iter()
        .find(|s| s.level == Level::Query)
        .unwrap();
    assert_eq!(q.status.code(), "canceled");
    assert!(trace
        .spans
        .iter()
        .filter(|s| s.level == Level::Operator)
        .all(|s| s.status.code() == "canceled"));
    assert!(trace.spans.iter().any(|s| s.level == Level::Pipeline));
}

#[test]
fn kill_between_statements_does_not_hit_the_next_one() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "alice", "member");
    ok(&b, &format!("KILL QUERY {}", a.id()));
    assert_eq!(
        cell(&a, "SELECT count(*) FROM generate_series(1, 100000)"),
        "100000"
    );
}

#[test]
fn cross_tenant_and_foreign_kills_are_refused() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    let other = conn(&e, "globex", "root", "admin");
    // Another tenant's connection is invisible: 1094, as for an unknown id.
    let err = run(&other, &format!("KILL QUERY {}", a.id())).unwrap_err();
    assert_eq!(err.code, 1094, "{err}");
    let err = run(&b, &format!("KILL {}", a.id())).unwrap_err();
    assert_eq!(err.code, 1095);
    let err = run(&b, "KILL 999999").unwrap_err();
    assert_eq!(err.code, 1094);
    // SHOW PROCESSLIST is scoped the same way.
    let seen = ok(&other, "SHOW PROCESSLIST");
    assert_eq!(seen.rows.len(), 1, "globex sees only its own connection");
    let sys = conn(&e, "sys", "root", "admin");
    assert_eq!(ok(&sys, "SHOW PROCESSLIST").rows.len(), 4);
    assert_eq!(cell(&a, "SELECT 1"), "1", "a is untouched");
}

/// An index scan is a context citizen: a range read through an index
/// (several batches) is stopped by KILL QUERY between two batches, with
/// 1317, and its IndexScan operator span is cancelled. The pipeline yields
/// after every step here, so the kill lands after the first batch on one
/// thread, deterministically.
#[test]
fn kill_query_of_an_index_scan_returns_1317() {
    let mut config = cascade::EngineConfig::new(1, cascade::StdHost::shared());
    config.yield_policy = cascade::pipeline::YieldPolicy {
        every_steps: 1,
        every: std::time::Duration::from_secs(3600),
    };
    let e = cascade::Engine::new(config);
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "alice", "member");
    ok(&victim, "CREATE TABLE big (id INT PRIMARY KEY, v INT)");
    ok(
        &victim,
        "INSERT INTO big SELECT x, x % 7 FROM generate_series(1, 40000) AS g(x)",
    );
    let sql = "SELECT count(*), sum(v) FROM big WHERE id BETWEEN 1 AND 10000";
    let plan = rows(&ok(&victim, &format!("EXPLAIN {sql}")))
        .concat()
        .join("\n");
    assert!(plan.contains("IndexScan big using PRIMARY"), "{plan}");
    let vid = victim.id();
    let mut pool = LocalPool::new();
    let result = Rc::new(RefCell::new(None));
    let r2 = result.clone();
    let v2 = victim.clone();
    pool.spawner()
        .spawn_local(async move {
            *r2.borrow_mut() = Some(v2.execute(sql).await);
        })
        .unwrap();
    let e2 = e.clone();
    pool.spawner()
        .spawn_local(async move {
            let me = cascade::Identity::new("acme", "alice", "member");
            // Once the index scan has given its first batch.
            while !e2
                .processes(&me)
                .iter()
                .any(|p| p.id == vid && p.rows_examined > 0)
            {
                cascade::host::YieldNow::default().await;
            }
            killer.execute(&format!("KILL QUERY {vid}")).await.unwrap();
        })
        .unwrap();
    pool.run();
    let err = result
        .borrow_mut()
        .take()
        .expect("the query finished")
        .expect_err("a killed query is never a success");
    assert_eq!(err.code, 1317, "{err}");
    let trace = e.trace(err.query_id.unwrap()).unwrap();
    let scan = trace
        .spans
        .iter()
        .find(|s| s.level == Level::Operator && s.name == "IndexScan")
        .expect("an IndexScan span");
    assert_eq!(scan.status.code(), "canceled");
    // The connection goes on: the same range answers in full.
    assert_eq!(
        cell(
            &victim,
            "SELECT count(*) FROM big WHERE id BETWEEN 1 AND 10000"
        ),
        "10000"
    );
}
