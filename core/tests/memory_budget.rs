//! The memory budget covers every state of a statement that grows with its
//! input: each operator's state, and the result rows. For each, a small
//! budget and a statement that grows that state: error 1041 naming the
//! budget, the budget recorded as the statement's cause, and every byte
//! given back afterwards (also when a statement is killed).

mod common;
use common::*;

use cascade::{Engine, ErrorKind, Identity, Reason};
use futures::executor::block_on;

/// Runs `sql` under a budget of `budget` bytes and checks that it fails with
/// the budget error, that the budget is the recorded cause, and that no
/// memory stays reserved.
fn assert_over_budget(e: &Engine, c: &cascade::Connection, budget: u64, sql: &str) {
    ok(c, &format!("SET cascade_memory_budget = {budget}"));
    let err = match run(c, sql) {
        Ok(r) => panic!("{sql}: succeeded ({} rows)", r.rows.len()),
        Err(err) => err,
    };
    assert_eq!(err.code, 1041, "{sql}: {err}");
    assert_eq!(err.kind, ErrorKind::Error, "{sql}");
    assert!(
        err.message
            .contains(&format!("memory budget of {budget} bytes exceeded")),
        "{sql}: {}",
        err.message
    );
    let cause = err
        .cause
        .as_ref()
        .unwrap_or_else(|| panic!("{sql}: no cause"));
    assert!(
        matches!(cause.reason, Reason::MemoryBudgetExceeded { budget: b, requested } if b == budget && requested > budget),
        "{sql}: cause {cause:?}"
    );
    assert_eq!(e.memory_in_use(), 0, "{sql}: memory still reserved");
    // The connection works afterwards.
    assert_eq!(cell(c, "SELECT 2"), "2");
}

fn setup() -> (Engine, cascade::Connection) {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    (e, c)
}

#[test]
fn count_distinct_set() {
    let (e, c) = setup();
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        "SELECT count(DISTINCT x) FROM generate_series(1, 2000000) AS g(x)",
    );
    // Within a budget it fits in, it works, and gives everything back.
    ok(&c, "SET cascade_memory_budget = 64000000");
    assert_eq!(
        cell(
            &c,
            "SELECT count(DISTINCT x % 1000) FROM generate_series(1, 200000) AS g(x)"
        ),
        "1000"
    );
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn count_distinct_sets_of_many_groups() {
    let (e, c) = setup();
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        "SELECT x % 10 AS k, count(DISTINCT x) FROM generate_series(1, 2000000) AS g(x) GROUP BY k",
    );
}

#[test]
fn count_distinct_of_text_counts_the_strings() {
    let (e, c) = setup();
    // 20,000 distinct strings of ~1 KB: 20 MB of text in a set whose table
    // is well under 1 MB.
    let long = "x".repeat(1000);
    assert_over_budget(
        &e,
        &c,
        4_000_000,
        &format!(
            "SELECT count(DISTINCT concat('{long}', x)) FROM generate_series(1, 20000) AS g(x)"
        ),
    );
}

#[test]
fn group_by_with_text_keys_counts_the_keys() {
    let (e, c) = setup();
    // 20,000 groups whose key is a ~1 KB string.
    let long = "x".repeat(1000);
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        &format!(
            "SELECT count(*) FROM (SELECT concat('{long}', x) AS k, count(*) FROM generate_series(1, 20000) AS g(x) GROUP BY k) AS s"
        ),
    );
}

#[test]
fn group_by_many_groups() {
    let (e, c) = setup();
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        "SELECT x, count(*), sum(x) FROM generate_series(1, 2000000) AS g(x) GROUP BY x",
    );
}

#[test]
fn select_distinct() {
    let (e, c) = setup();
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        "SELECT DISTINCT x * 2 FROM generate_series(1, 2000000) AS g(x)",
    );
}

#[test]
fn join_build_side_counts_its_hash_table() {
    let (e, c) = setup();
    // 1M build rows: 8 MB of values, 8 MB concatenated, and a table of 2M
    // buckets (34 MB) with its 4 MB chain. (A LEFT JOIN builds its right
    // side; an inner join would build the 10-row side.)
    assert_over_budget(
        &e,
        &c,
        40_000_000,
        "SELECT count(*) FROM generate_series(1, 10) AS a(x) LEFT JOIN generate_series(1, 1000000) AS b(y) ON a.x = b.y",
    );
}

#[test]
fn sort_counts_its_concatenated_input() {
    let (e, c) = setup();
    // 1M rows: 8 MB of batches, then 16 MB of concatenated value and key
    // columns and 8 MB of index arrays at once: 32 MB.
    assert_over_budget(
        &e,
        &c,
        28_000_000,
        "SELECT count(*) FROM (SELECT x FROM generate_series(1, 1000000) AS g(x) ORDER BY x DESC) AS s",
    );
}

#[test]
fn window_counts_its_buffered_input_and_results() {
    let (e, c) = setup();
    // 1M rows: 8 MB of batches (the argument and the order key are the
    // batch's column), then 27 MB of concatenated value, key and argument
    // columns and 8 MB of index arrays, then 9 MB of results.
    assert_over_budget(
        &e,
        &c,
        28_000_000,
        "SELECT count(*) FROM (SELECT x, sum(x) OVER (ORDER BY x DESC ROWS 2 PRECEDING) AS s FROM generate_series(1, 1000000) AS g(x)) AS w",
    );
    // With room, the same statement answers and gives everything back.
    ok(&c, "SET cascade_memory_budget = 200000000");
    assert_eq!(
        cell(
            &c,
            "SELECT sum(s) FROM (SELECT x, sum(x) OVER (ORDER BY x DESC ROWS 2 PRECEDING) AS s FROM generate_series(1, 1000000) AS g(x)) AS w"
        ),
        // x's frame is x, x + 1 and x + 2 (the rows before it, descending)
        // as far as they exist: 3 × (1 + … + N) − 1 − (1 + 2).
        (3 * (1_000_000i64 * 1_000_001 / 2) - 4).to_string()
    );
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn top_n_with_a_large_limit() {
    let (e, c) = setup();
    assert_over_budget(
        &e,
        &c,
        8_000_000,
        "SELECT count(*) FROM (SELECT x FROM generate_series(1, 2000000) AS g(x) ORDER BY x DESC LIMIT 1500000) AS s",
    );
}

#[test]
fn top_n_with_a_small_limit_stays_within_a_small_budget() {
    let (e, c) = setup();
    // Every batch beats the current top 10 (the input ascends, the order
    // descends), so the buffer is cut back again and again: its memory
    // stays O(limit), and so must its reservation.
    // A parallel top-N's pipelines share the serial buffer's size, so the
    // same budget holds with any number of pipelines.
    ok(&c, "SET cascade_memory_budget = 4000000");
    for threads in [1, 2, 4, 8] {
        ok(&c, &format!("SET cascade_threads = {threads}"));
        let r = ok(
            &c,
            "SELECT x FROM generate_series(1, 3000000) AS g(x) ORDER BY x DESC LIMIT 10",
        );
        assert_eq!(rows(&r)[0], vec!["3000000".to_owned()], "{threads} threads");
        assert_eq!(r.rows.len(), 10);
        assert_eq!(e.memory_in_use(), 0);
    }
}

#[test]
fn result_rows() {
    let (e, c) = setup();
    // 1M result rows of one value: 8 MB as a column, 48 MB as rows.
    assert_over_budget(
        &e,
        &c,
        20_000_000,
        "SELECT x FROM generate_series(1, 1000000) AS g(x)",
    );
    // The same rows fit a budget that holds them.
    ok(&c, "SET cascade_memory_budget = 100000000");
    let r = ok(&c, "SELECT x FROM generate_series(1, 1000000) AS g(x)");
    assert_eq!(r.rows.len(), 1_000_000);
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn explain_analyze_does_not_keep_the_rows() {
    let (e, c) = setup();
    ok(&c, "SET cascade_memory_budget = 1000000");
    let r = ok(
        &c,
        "EXPLAIN ANALYZE SELECT x FROM generate_series(1, 1000000) AS g(x)",
    );
    assert!(!r.rows.is_empty());
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn insert_select_staging() {
    let (e, c) = setup();
    ok(&c, "CREATE TABLE t (a INT)");
    // 1M rows: 8 MB of batches, then converted and staged a batch at a
    // time.
    assert_over_budget(
        &e,
        &c,
        6_000_000,
        "INSERT INTO t SELECT x FROM generate_series(1, 1000000) AS g(x)",
    );
    assert_eq!(cell(&c, "SELECT count(*) FROM t"), "0", "nothing inserted");
}

#[test]
fn a_killed_count_distinct_gives_its_memory_back() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "alice", "member");
    let me = Identity::new("acme", "alice", "member");
    let vid = victim.id();
    let v = victim.clone();
    let h = std::thread::spawn(move || {
        run(
            &v,
            "SELECT count(DISTINCT x) FROM generate_series(1, 100000000000) AS g(x)",
        )
    });
    // Wait until it runs and holds memory (a guard stops the wait, should
    // the set never reserve any), then kill it.
    let since = std::time::Instant::now();
    while e.memory_in_use() < 1_000_000 && since.elapsed().as_secs() < 30 {
        assert!(!h.is_finished(), "the statement ended early");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let held = e.memory_in_use();
    assert!(e
        .processes(&me)
        .iter()
        .any(|p| p.id == vid && p.state == "executing"));
    ok(&killer, &format!("KILL QUERY {vid}"));
    let err = h.join().unwrap().unwrap_err();
    assert!(held >= 1_000_000, "the set's memory was reserved: {held}");
    assert_eq!(err.code, 1317, "{err}");
    assert_eq!(e.memory_in_use(), 0, "every reservation released");
    block_on(victim.close());
    block_on(killer.close());
}

#[test]
fn recursive_cte_result_and_working_tables() {
    let (e, c) = setup();
    ok(&c, "SET cte_max_recursion_depth = 4294967295");
    // One wide row per iteration: the buffered result grows.
    assert_over_budget(
        &e,
        &c,
        1_500_000,
        &format!(
            "WITH RECURSIVE r(n, s) AS (SELECT 1, '{}' UNION ALL SELECT n + 1, s FROM r WHERE n < 1000000) SELECT count(*) FROM r",
            "x".repeat(100)
        ),
    );
    // One iteration with a large working table.
    assert_over_budget(
        &e,
        &c,
        1_500_000,
        "WITH RECURSIVE r(n) AS (SELECT x FROM generate_series(1, 1000000) AS g(x) UNION ALL SELECT n FROM r WHERE n < 0) SELECT count(*) FROM r",
    );
    ok(&c, "SET cascade_memory_budget = 64000000");
    assert_eq!(
        cell(
            &c,
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 20000) SELECT sum(n) FROM r"
        ),
        "200010000"
    );
    assert_eq!(e.memory_in_use(), 0);
}

#[test]
fn recursive_cte_union_distinct_rows() {
    let (e, c) = setup();
    ok(&c, "SET cte_max_recursion_depth = 4294967295");
    assert_over_budget(
        &e,
        &c,
        1_500_000,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r WHERE n < 1000000) SELECT count(*) FROM r",
    );
}

#[test]
fn set_operation_rows() {
    let (e, c) = setup();
    for sql in [
        "SELECT x FROM generate_series(1, 1000000) AS g(x) EXCEPT SELECT 1",
        "SELECT x FROM generate_series(1, 1000000) AS g(x) INTERSECT ALL SELECT x FROM generate_series(1, 10) AS h(x)",
    ] {
        assert_over_budget(&e, &c, 1_500_000, sql);
    }
    // The rows of an EXCEPT's or INTERSECT's right side are not kept: a
    // large right side fits a small budget.
    ok(&c, "SET cascade_memory_budget = 4000000");
    assert_eq!(
        cell(
            &c,
            "SELECT count(*) FROM (SELECT 1 AS x EXCEPT SELECT x FROM generate_series(2, 1000000) AS g(x)) AS d"
        ),
        "1"
    );
    assert_eq!(e.memory_in_use(), 0);
}
