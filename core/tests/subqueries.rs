//! Subqueries in expressions, beyond their answers (which are in
//! `tests/slt/subquery.slt`): how often they run, the memory they hold,
//! EXPLAIN ANALYZE, deep nesting. KILL of a subquery is in kill_query.rs.

mod common;
use common::*;

/// The EXPLAIN ANALYZE line of the subquery operator.
fn subqueries_line(c: &cascade::Connection, sql: &str) -> String {
    let r = ok(c, &format!("EXPLAIN ANALYZE {sql}"));
    rows(&r)
        .into_iter()
        .map(|r| r.join(""))
        .find(|l| l.contains("Subqueries"))
        .unwrap_or_else(|| panic!("no Subqueries operator in the plan of {sql}"))
}

#[test]
fn an_uncorrelated_subquery_runs_once_and_a_correlated_one_once_per_value() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let uncorrelated = "SELECT count(*) FROM generate_series(1, 10000) AS g(x) WHERE x IN (SELECT y * 2 FROM generate_series(1, 100) AS h(y))";
    assert_eq!(cell(&c, uncorrelated), "100");
    let line = subqueries_line(&c, uncorrelated);
    assert!(line.contains("runs=1 cached=9999"), "{line}");
    // Ten distinct outer values: ten runs, the other rows from the cache.
    let correlated = "SELECT count(*) FROM (SELECT x % 10 AS k FROM generate_series(1, 10000) AS g(x)) AS d WHERE EXISTS (SELECT 1 FROM generate_series(1, 5) AS h(y) WHERE y < d.k)";
    assert_eq!(cell(&c, correlated), "8000");
    let line = subqueries_line(&c, correlated);
    assert!(line.contains("runs=10 cached=9990"), "{line}");
    assert!(!line.contains("semi-join"), "{line}");
    // The subquery's own operators are shown under it (its last run).
    let plan: Vec<String> = rows(&ok(&c, &format!("EXPLAIN ANALYZE {correlated}")))
        .into_iter()
        .map(|r| r.join(""))
        .collect();
    let at = plan
        .iter()
        .position(|l| l.contains("Subqueries"))
        .expect("Subqueries");
    assert!(
        plan[at + 1..]
            .iter()
            .any(|l| l.contains("GenerateSeries") && l.contains("rows=5")),
        "{plan:?}"
    );
    assert_eq!(e.memory_in_use(), 0, "every reservation given back");
}

#[test]
fn a_subquery_correlated_by_equality_runs_once_as_a_semi_join() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    // 20,000 distinct outer values, one run: the subquery's rows are
    // looked up by the outer value.
    let keyed = "SELECT count(*) FROM generate_series(1, 20000) AS g(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 30000) AS h(y) WHERE h.y = g.x AND y % 3 = 0)";
    assert_eq!(cell(&c, keyed), "6666");
    let line = subqueries_line(&c, keyed);
    assert!(line.contains("semi-join"), "{line}");
    assert!(line.contains("runs=1 cached=19999"), "{line}");
    // IN with a correlation: the values of each key, NULLs kept.
    let r = rows(&ok(
        &c,
        "SELECT x, x * 10 IN (SELECT y * 10 FROM generate_series(1, 10) AS h(y) WHERE h.y = g.x), x NOT IN (SELECT CASE WHEN y = 2 THEN NULL ELSE 0 END FROM generate_series(1, 3) AS h(y) WHERE h.y = g.x) FROM generate_series(1, 4) AS g(x) ORDER BY x",
    ));
    assert_eq!(
        r,
        [
            ["1", "1", "1"],
            ["2", "1", "NULL"],
            ["3", "1", "1"],
            ["4", "1", "1"]
        ]
        .map(|r| r.map(String::from).to_vec())
        .to_vec()
    );
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn the_cache_of_a_correlated_subquery_stays_bounded() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    // 5,000 distinct outer values, more than the cache keeps (4,096): the answer
    // is the same, and the cache starts over instead of growing.
    let sql = "SELECT count(*) FROM generate_series(1, 5000) AS g(x) WHERE x > (SELECT count(*) FROM generate_series(1, 3) AS h(y) WHERE y < g.x) + 2";
    assert_eq!(cell(&c, sql), "4995");
    let line = subqueries_line(&c, sql);
    assert!(line.contains("runs=5000 cached=0"), "{line}");
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn a_huge_in_set_is_held_within_the_memory_budget() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "SET cascade_memory_budget = 4000000");
    let err = run(
        &c,
        "SELECT 1 IN (SELECT y FROM generate_series(1, 2000000) AS h(y))",
    )
    .unwrap_err();
    assert_eq!(err.code, 1041, "{err}");
    assert_eq!(e.memory_in_use(), 0, "memory still reserved");
    // The same set fits a larger budget.
    ok(&c, "SET cascade_memory_budget = 1000000000");
    assert_eq!(
        cell(
            &c,
            "SELECT 1999999 IN (SELECT y FROM generate_series(1, 2000000) AS h(y))"
        ),
        "1"
    );
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn nested_subqueries_resolve_names_outward() {
    // 15 levels, each naming the outermost query's column.
    let mut sql = String::from("SELECT g.x * 2 FROM generate_series(1, 1) AS h0(v)");
    for i in 1..15 {
        sql = format!("SELECT ({sql}) + h{i}.v FROM generate_series(1, 1) AS h{i}(v)");
    }
    let sql = format!("SELECT x, ({sql}) FROM generate_series(1, 3) AS g(x) ORDER BY x");
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let r = rows(&ok(&c, &sql));
    assert_eq!(
        r,
        vec![
            vec!["1".to_string(), "16".to_string()],
            vec!["2".to_string(), "18".to_string()],
            vec!["3".to_string(), "20".to_string()],
        ]
    );
}

#[test]
fn subqueries_where_they_are_not_supported_are_refused() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "CREATE TABLE t (a INT)");
    for sql in [
        "SELECT a FROM t GROUP BY (SELECT 1)",
        "SELECT sum((SELECT 1)) FROM t",
        "SELECT * FROM t AS x JOIN t AS y ON x.a = (SELECT 1)",
        "SELECT 1 LIMIT (SELECT 1)",
        "SELECT (1, 2) IN (SELECT 1, 2)",
        // MySQL aggregates this in the outer query.
        "SELECT (SELECT sum(t.a) FROM t AS u) FROM t",
        "UPDATE t SET a = 1 WHERE a IN (SELECT 1)",
    ] {
        let err = run(&c, sql).unwrap_err();
        assert!(err.code == 1235 || err.code == 1064, "{sql}: {err}");
    }
}

/// An engine on a manual clock: `timed` runs a statement to the end,
/// moving the clock whenever it waits, and returns the time it slept.
struct Rig {
    host: std::sync::Arc<cascade::ManualHost>,
    engine: cascade::Engine,
}

impl Rig {
    fn new() -> Rig {
        let host = std::sync::Arc::new(cascade::ManualHost::new());
        let engine = cascade::Engine::new(cascade::EngineConfig::new(1, host.clone()));
        Rig { host, engine }
    }
    fn slept(&self, c: &cascade::Connection, sql: &str) -> std::time::Duration {
        use cascade::Host;
        use std::future::Future;
        use std::task::{Context, Poll};
        let start = self.host.now();
        let mut fut = Box::pin(c.execute(sql));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1_000_000 {
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                if let Err(e) = r {
                    panic!("{sql}: {e}");
                }
                return self.host.now().saturating_since(start);
            }
            if self.host.pending_timers() > 0 {
                self.host.advance(std::time::Duration::from_millis(10));
            }
        }
        panic!("{sql}: did not finish");
    }
}

#[test]
fn sleep_with_subqueries_sleeps_for_the_rows_evaluated() {
    let rig = Rig::new();
    let c = rig
        .engine
        .connect(cascade::Identity::new("acme", "alice", "member"))
        .expect("connect");
    // AND in its order: SLEEP only for the two rows EXISTS keeps.
    assert_eq!(
        rig.slept(
            &c,
            "SELECT count(*) FROM generate_series(1, 5) AS g(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 2) AS h(y) WHERE y = g.x) AND sleep(1) = 0"
        ),
        std::time::Duration::from_secs(2)
    );
    // SLEEP inside a correlated subquery: one run per row reaching it, and
    // the statement waits what the runs owe.
    assert_eq!(
        rig.slept(
            &c,
            "SELECT x FROM generate_series(1, 5) AS g(x) WHERE x > 3 AND (SELECT sleep(1) FROM generate_series(1, 1) AS h(y) WHERE y < g.x) = 0"
        ),
        std::time::Duration::from_secs(2)
    );
}

/// Spans named `name` in the trace of `r`'s statement.
fn spans_named(e: &cascade::Engine, r: &cascade::QueryResult, name: &str) -> usize {
    let trace = e.trace(r.query_id).expect("the statement's trace");
    trace.spans.iter().filter(|s| s.name == name).count()
}

#[test]
fn a_correlated_subquery_records_the_spans_of_its_first_run_only() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    // 2,000 distinct outer values: 2,000 runs of the subquery. A span per
    // operator per run would be 6,000 spans in the engine's recorder (a
    // statement that runs until KILLed would churn millions of them).
    let sql = "SELECT count(*) FROM generate_series(1, 2000) AS a(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 100) AS b(y) WHERE b.y > a.x)";
    let r = ok(&c, sql);
    assert_eq!(rows(&r), vec![vec!["99".to_owned()]]);
    // The outer scan's span and the first run's.
    assert_eq!(spans_named(&e, &r, "GenerateSeries"), 2);
    assert_eq!(spans_named(&e, &r, "Filter"), 2);
    // Every run still counts in EXPLAIN ANALYZE.
    let line = subqueries_line(&c, sql);
    assert!(line.contains("runs=2000 cached=0"), "{line}");
    assert_eq!(e.memory_in_use(), 0, "every reservation given back");
}

#[test]
fn a_subquery_correlated_by_two_or_three_outer_columns_runs_once_per_combination() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    // The cache's key: one value, two (held inline) and three (a list).
    let two = "SELECT count(*) FROM (SELECT x % 5 AS p, x % 11 AS q FROM generate_series(1, 300) AS g(x)) AS d WHERE EXISTS (SELECT 1 FROM generate_series(1, 10) AS h(y) WHERE y > d.p AND y < d.q)";
    assert_eq!(cell(&c, two), "189");
    let line = subqueries_line(&c, two);
    assert!(line.contains("runs=55 cached=245"), "{line}");
    let three = "SELECT count(*) FROM (SELECT x % 5 AS p, x % 11 AS q, x % 3 AS r FROM generate_series(1, 300) AS g(x)) AS d WHERE EXISTS (SELECT 1 FROM generate_series(1, 10) AS h(y) WHERE y > d.p AND y < d.q AND y <> d.r)";
    assert_eq!(cell(&c, three), "187");
    let line = subqueries_line(&c, three);
    assert!(line.contains("runs=165 cached=135"), "{line}");
    // An integer and a decimal of the same value are different runs.
    let typed = "SELECT count(*) FROM (SELECT 1 AS v UNION ALL SELECT 1.0 UNION ALL SELECT 1) AS d WHERE EXISTS (SELECT 1 FROM generate_series(1, 3) AS h(y) WHERE y > d.v)";
    assert_eq!(cell(&c, typed), "3");
    assert_eq!(e.memory_in_use(), 0, "every reservation given back");
}

#[test]
fn a_killed_correlated_subquery_with_a_full_cache_returns_1317_and_every_byte() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "root", "admin");
    let vid = victim.id();
    let v2 = victim.clone();
    // A run per outer row, forever: the cache fills (4,096 entries),
    // starts over, fills again.
    let h = std::thread::spawn(move || {
        run(
            &v2,
            "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 100) AS b(y) WHERE b.y > a.x)",
        )
    });
    let me = cascade::Identity::new("acme", "root", "admin");
    // Past two fills of the cache (the inner scans count too).
    while !e
        .processes(&me)
        .iter()
        .any(|p| p.id == vid && p.rows_examined > 2_000_000)
    {
        std::thread::yield_now();
    }
    ok(&killer, &format!("KILL QUERY {vid}"));
    let err = h.join().expect("victim thread").unwrap_err();
    assert_eq!(err.code, 1317, "{err}");
    assert_eq!(e.memory_in_use(), 0, "every reservation given back");
    assert_eq!(cell(&victim, "SELECT 1"), "1");
}
