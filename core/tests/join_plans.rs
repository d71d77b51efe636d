//! The join planner's choices, read from EXPLAIN: equalities in WHERE become
//! hash joins (no cross product for a connected join graph), filters sit on
//! their table's scan, the small sides are built, outer joins keep their
//! meaning, and constant-false conditions read nothing. Results are checked
//! here against values computed in Rust, and in `tests/slt/joins.slt`
//! against MariaDB's answers.

mod common;
use common::*;

/// One EXPLAIN line: its depth in the tree and its text.
struct Line {
    depth: usize,
    text: String,
}

fn explain(c: &cascade::Connection, sql: &str) -> Vec<Line> {
    rows(&ok(c, &format!("EXPLAIN {sql}")))
        .into_iter()
        .map(|r| {
            let l = r.join("");
            let depth = l.len() - l.trim_start().len();
            Line {
                depth,
                text: l.trim_start().trim_start_matches("-> ").to_owned(),
            }
        })
        .collect()
}

fn show(plan: &[Line]) -> String {
    plan.iter()
        .map(|l| format!("{}{}", " ".repeat(l.depth), l.text))
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(plan: &[Line], what: &str) -> usize {
    plan.iter().filter(|l| l.text.starts_with(what)).count()
}

/// The lines of the subtree of each child of line `i`.
fn children(plan: &[Line], i: usize) -> Vec<&[Line]> {
    let d = plan[i].depth;
    let end = (i + 1..plan.len())
        .find(|&j| plan[j].depth <= d)
        .unwrap_or(plan.len());
    let starts: Vec<usize> = (i + 1..end)
        .filter(|&j| plan[j].depth == plan[i + 1].depth)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &plan[s..starts.get(k + 1).copied().unwrap_or(end)])
        .collect()
}

/// A fact table of `n` rows and dimensions d1..d5 of 20 rows each (ids
/// 0..19, `grp = id % 4`).
fn star(c: &cascade::Connection, n: i64) {
    ok(
        c,
        "CREATE TABLE f (id INT, k1 INT, k2 INT, k3 INT, k4 INT, k5 INT, v INT)",
    );
    ok(c, &format!("INSERT INTO f SELECT x, x % 20, x % 19, x % 23, x % 13, x % 29, x % 100 FROM generate_series(1, {n}) AS g(x)"));
    for d in 1..=5 {
        ok(c, &format!("CREATE TABLE d{d} (id INT, grp INT)"));
        ok(
            c,
            &format!("INSERT INTO d{d} SELECT x, x % 4 FROM generate_series(0, 19) AS g(x)"),
        );
    }
}

#[test]
fn a_six_table_star_join_is_five_hash_joins_probing_the_fact_table() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let n = 3000;
    star(&c, n);
    // FROM order puts the fact table last; WHERE has the join conditions
    // and one filter per dimension.
    let sql = "SELECT count(*), sum(f.v) FROM d5, d4, d3, d2, d1, f \
               WHERE f.k1 = d1.id AND f.k2 = d2.id AND f.k3 = d3.id AND f.k4 = d4.id AND f.k5 = d5.id \
               AND d1.grp = 1 AND d3.grp <> 2";
    let plan = explain(&c, sql);
    assert_eq!(count(&plan, "HashJoin Inner"), 5, "{}", show(&plan));
    assert_eq!(count(&plan, "NestedLoopJoin"), 0, "{}", show(&plan));
    for (i, l) in plan.iter().enumerate() {
        if l.text.starts_with("HashJoin") {
            let kids = children(&plan, i);
            assert_eq!(kids.len(), 2);
            // The build side (second child) never holds the fact table.
            assert!(
                !kids[1].iter().any(|x| x.text.starts_with("TableScan f ")),
                "the fact table is built:\n{}",
                show(&plan)
            );
        }
        // Each dimension's filter sits right on its scan.
        if l.text.starts_with("Filter (d1.grp = 1)") {
            assert!(
                plan[i + 1].text.starts_with("TableScan d1"),
                "{}",
                show(&plan)
            );
            // Only the key goes on into the join: `grp` is read by the
            // filter alone.
            assert_eq!(plan[i - 1].text, "Project d1.id", "{}", show(&plan));
        }
        // The fact table's `id` is read by nothing.
        if l.text.starts_with("TableScan f ") {
            assert_eq!(
                plan[i - 1].text,
                "Project f.k1, f.k2, f.k3, f.k4, f.k5, f.v",
                "{}",
                show(&plan)
            );
        }
        if l.text.starts_with("Filter (d3.grp <> 2)") {
            assert!(
                plan[i + 1].text.starts_with("TableScan d3"),
                "{}",
                show(&plan)
            );
        }
    }
    assert_eq!(count(&plan, "Filter"), 2, "{}", show(&plan));
    // Each join passes on only what is read after it: the last one, f.v.
    let top = plan
        .iter()
        .find(|l| l.text.starts_with("HashJoin"))
        .unwrap();
    assert!(top.text.contains("keeps [f.v]"), "{}", show(&plan));
    // The answer, computed here.
    let (mut cnt, mut sum) = (0i64, 0i64);
    for x in 1..=n {
        let (k1, k2, k3, k4, k5) = (x % 20, x % 19, x % 23, x % 13, x % 29);
        if k1 % 4 == 1 && k3 < 20 && k3 % 4 != 2 && k2 < 20 && k4 < 20 && k5 < 20 {
            cnt += 1;
            sum += x % 100;
        }
    }
    assert!(cnt > 0);
    assert_eq!(
        rows(&ok(&c, sql)),
        vec![vec![cnt.to_string(), sum.to_string()]]
    );
}

/// select5-style tables: `aN` 1..10, `bN` a rotation of it.
fn chain_tables(c: &cascade::Connection, n: usize) {
    for t in 1..=n {
        ok(
            c,
            &format!("CREATE TABLE t{t} (a{t} INT, b{t} INT, x{t} VARCHAR(40))"),
        );
        ok(c, &format!("INSERT INTO t{t} SELECT x, (x + {t}) % 10 + 1, concat('table t{t} row ', x) FROM generate_series(1, 10) AS g(x)"));
    }
}

#[test]
fn a_connected_join_graph_has_no_cross_product() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    chain_tables(&c, 6);
    // The corpus's five-table shape, FROM in another order than the chain.
    let sql = "SELECT x3, x1, x5, x2, x4 FROM t3, t5, t1, t4, t2 \
               WHERE a1 = b2 AND a4 = b5 AND a2 = b3 AND a3 = b4";
    let plan = explain(&c, sql);
    assert_eq!(count(&plan, "HashJoin"), 4, "{}", show(&plan));
    assert_eq!(count(&plan, "NestedLoopJoin"), 0, "{}", show(&plan));
    // Ten rows each, permutations: every t1 row extends to one chain.
    let r = rows(&ok(&c, sql));
    assert_eq!(r.len(), 10);
    for row in &r {
        assert!(row[1].starts_with("table t1 row "), "{row:?}");
    }
    // A six-table cycle: each extra equality is a second key or a filter
    // inside the join, never a cross product.
    let cycle = "SELECT count(*) FROM t1, t2, t3, t4, t5, t6 \
                 WHERE a1 = b2 AND a2 = b3 AND a3 = b4 AND a4 = b5 AND a5 = b6 AND a6 = b1";
    let plan = explain(&c, cycle);
    assert_eq!(count(&plan, "NestedLoopJoin"), 0, "{}", show(&plan));
    assert_eq!(count(&plan, "HashJoin"), 5, "{}", show(&plan));
}

#[test]
fn a_disconnected_join_graph_crosses_only_its_components() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    chain_tables(&c, 4);
    let sql = "SELECT count(*) FROM t1, t3, t2, t4 WHERE a1 = b2 AND a3 = b4";
    let plan = explain(&c, sql);
    assert_eq!(count(&plan, "HashJoin"), 2, "{}", show(&plan));
    assert_eq!(
        count(&plan, "NestedLoopJoin Inner cross"),
        1,
        "{}",
        show(&plan)
    );
    assert_eq!(cell(&c, sql), "100");
}

#[test]
fn outer_joins_keep_their_meaning() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    star(&c, 100);
    // A WHERE condition that rejects NULL-extended rows makes the join inner.
    let plan = explain(
        &c,
        "SELECT f.id FROM f LEFT JOIN d1 ON f.k2 = d1.id WHERE d1.grp = 1",
    );
    assert_eq!(count(&plan, "HashJoin Inner"), 1, "{}", show(&plan));
    // `IS NULL` does not: the anti-join keeps its left join, filtered after.
    let anti = "SELECT f.id FROM f LEFT JOIN d1 ON f.k2 = d1.id WHERE d1.id IS NULL";
    let plan = explain(&c, anti);
    assert_eq!(count(&plan, "HashJoin Left"), 1, "{}", show(&plan));
    let join = plan
        .iter()
        .position(|l| l.text.starts_with("HashJoin Left"))
        .unwrap();
    assert!(
        plan[join - 1].text.starts_with("Filter") && plan[join - 1].text.contains("IS NULL"),
        "{}",
        show(&plan)
    );
    // f.k2 = x % 19 never reaches 19: those rows only.
    let want: Vec<Vec<String>> = (1..=100)
        .filter(|x| x % 19 == 19)
        .map(|x: i64| vec![x.to_string()])
        .collect();
    assert_eq!(rows(&ok(&c, anti)), want);
    // ON conditions over the NULL-supplying side filter it before the join;
    // WHERE over the preserved side filters that side before the join.
    let sql =
        "SELECT f.id, d1.id FROM f LEFT JOIN d1 ON f.k1 = d1.id AND d1.grp = 1 WHERE f.v < 10";
    let plan = explain(&c, sql);
    let join = plan
        .iter()
        .position(|l| l.text.starts_with("HashJoin Left"))
        .unwrap();
    let kids = children(&plan, join);
    let has = |lines: &[Line], what: &str| lines.iter().any(|l| l.text.starts_with(what));
    assert!(has(kids[0], "Filter (f.v < 10)"), "{}", show(&plan));
    assert!(has(kids[1], "Filter (d1.grp = 1)"), "{}", show(&plan));
    let got = rows(&ok(&c, &format!("{sql} ORDER BY f.id")));
    let want: Vec<Vec<String>> = (1..=100i64)
        .filter(|x| x % 100 < 10)
        .map(|x| {
            let k1 = x % 20;
            let d = if k1 % 4 == 1 {
                k1.to_string()
            } else {
                "NULL".into()
            };
            vec![x.to_string(), d]
        })
        .collect();
    assert_eq!(got, want);
    // RIGHT JOIN: the right side is preserved, columns stay in FROM order.
    let r = rows(&ok(
        &c,
        "SELECT d1.id, f.id FROM f RIGHT JOIN d1 ON f.k1 = d1.id AND f.id < 3 ORDER BY d1.id",
    ));
    assert_eq!(r.len(), 20);
    assert_eq!(r[0], vec!["0", "NULL"]);
    assert_eq!(r[1], vec!["1", "1"]);
    assert_eq!(r[2], vec!["2", "2"]);
    assert_eq!(r[3], vec!["3", "NULL"]);
}

#[test]
fn constant_conditions_are_folded() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    star(&c, 100);
    // `WHERE 1 = 0` reads no table at all.
    let sql = "SELECT count(*) FROM f, d1 WHERE f.k1 = d1.id AND 1 = 0";
    let plan = explain(&c, sql);
    assert_eq!(count(&plan, "TableScan"), 0, "{}", show(&plan));
    assert_eq!(cell(&c, sql), "0");
    assert_eq!(rows(&ok(&c, "SELECT 1 WHERE 1 = 0")).len(), 0);
    // A true constant disappears; a constant operand is computed once.
    let plan = explain(&c, "SELECT f.id FROM f WHERE 2 + 2 = 4 AND f.v = 2 + 3");
    assert_eq!(count(&plan, "Filter (f.v = 5)"), 1, "{}", show(&plan));
    assert_eq!(count(&plan, "Filter"), 1, "{}", show(&plan));
    assert_eq!(
        cell(&c, "SELECT count(*) FROM f WHERE 2 + 2 = 4 AND f.v = 2 + 3"),
        "1"
    );
    // An error in a constant is raised only if it is evaluated, as before.
    assert_eq!(
        cell(
            &c,
            "SELECT count(*) FROM f WHERE f.id < 0 AND 9223372036854775807 + 1 > 0"
        ),
        "0"
    );
    assert_eq!(
        run(
            &c,
            "SELECT count(*) FROM f WHERE 9223372036854775807 + 1 > 0"
        )
        .unwrap_err()
        .code,
        1690
    );
}

/// The fact table of the key-filter tests: more rows than a stored chunk
/// (65,536), NULL keys, keys that no dimension has, and keys spread so
/// widely that `d3`'s filter is hashed rather than a bitmap.
fn filtered_star(c: &cascade::Connection, n: i64) -> Vec<(Option<i64>, Option<i64>, i64, i64)> {
    ok(c, "CREATE TABLE f (k1 INT, k2 INT, k3 BIGINT, v INT)");
    ok(
        c,
        &format!(
            "INSERT INTO f SELECT CASE WHEN x % 13 = 0 THEN NULL ELSE x % 1000 END, \
             CASE WHEN x % 11 = 0 THEN NULL ELSE x % 300 END, (x % 37) * 1000000007, x % 100 \
             FROM generate_series(1, {n}) AS g(x)"
        ),
    );
    ok(c, "CREATE TABLE d1 (id INT, grp INT)");
    ok(
        c,
        "INSERT INTO d1 SELECT x, x % 3 FROM generate_series(0, 599) AS g(x)",
    );
    ok(c, "CREATE TABLE d2 (id INT, grp INT)");
    ok(
        c,
        "INSERT INTO d2 SELECT x, x % 2 FROM generate_series(0, 199) AS g(x)",
    );
    ok(c, "CREATE TABLE d3 (id BIGINT)");
    ok(
        c,
        "INSERT INTO d3 SELECT x * 2 * 1000000007 FROM generate_series(0, 18) AS g(x)",
    );
    (1..=n)
        .map(|x| {
            let k1 = (x % 13 != 0).then_some(x % 1000);
            let k2 = (x % 11 != 0).then_some(x % 300);
            (k1, k2, (x % 37) * 1_000_000_007, x % 100)
        })
        .collect()
}

/// The EXPLAIN ANALYZE line of the deepest hash join (the one probing the
/// fact table).
fn deepest_join(plan: &[Line]) -> &Line {
    plan.iter()
        .filter(|l| l.text.starts_with("HashJoin"))
        .max_by_key(|l| l.depth)
        .expect("a hash join")
}

#[test]
fn star_join_key_filters_drop_fact_rows_at_the_lowest_join() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    // The serial plan's row counts (the parallel plan's probes share these
    // filters: core/tests/parallel_ops.rs).
    ok(&c, "SET cascade_threads = 1");
    let f = filtered_star(&c, 150_000);
    let sql = "SELECT count(*), sum(f.v) FROM d1, d2, d3, f \
               WHERE f.k1 = d1.id AND f.k2 = d2.id AND f.k3 = d3.id AND d1.grp = 0 AND d2.grp = 1";
    let expect = |d2_min: i64| {
        let hit = |r: &&(Option<i64>, Option<i64>, i64, i64)| {
            r.0.is_some_and(|k| k < 600 && k % 3 == 0)
                && r.1.is_some_and(|k| k < 200 && k >= d2_min && k % 2 == 1)
                && r.2 % (2 * 1_000_000_007) == 0
                && r.2 / 1_000_000_007 <= 36
        };
        let n = f.iter().filter(hit).count();
        let s: i64 = f.iter().filter(hit).map(|r| r.3).sum();
        vec![vec![n.to_string(), s.to_string()]]
    };
    assert_eq!(rows(&ok(&c, sql)), expect(0));
    // The fact table is probed by one join, which applies the filters of
    // the two joins above it to its input.
    let plan = explain(&c, sql);
    let low = deepest_join(&plan);
    assert!(
        low.text
            .contains("probe filtered by the keys of 2 joins above"),
        "{}",
        show(&plan)
    );
    // Run, that join outputs only the rows that pass every join: the
    // final count, not the (much larger) matches of its own key.
    let analyzed = explain(&c, &format!("ANALYZE {sql}"));
    let want = format!("rows={}", expect(0)[0][0]);
    let low = deepest_join(&analyzed);
    assert!(low.text.contains(&want), "{want}:\n{}", show(&analyzed));
    // Each execution fills filters of its own: after a change of a
    // dimension, the same statement sees the new keys.
    ok(&c, "DELETE FROM d2 WHERE id < 100");
    assert_eq!(rows(&ok(&c, sql)), expect(100));
    assert_eq!(rows(&ok(&c, sql)), expect(100));
    assert_eq!(e.memory_in_use(), 0, "every reservation released");
}

#[test]
fn a_key_filter_passes_through_a_left_join_below_it() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let f = filtered_star(&c, 70_000);
    // The inner join with d2 probes the left join's output: its filter
    // drops fact rows before the left join (they would be dropped above
    // it anyway), and the left join still NULL-extends the others.
    let sql = "SELECT count(*), sum(f.v), count(d1.id) FROM f LEFT JOIN d1 ON f.k1 = d1.id AND d1.grp = 0 \
               JOIN d2 ON f.k2 = d2.id WHERE d2.grp = 1";
    let plan = explain(&c, sql);
    let low = deepest_join(&plan);
    assert!(low.text.starts_with("HashJoin Left"), "{}", show(&plan));
    assert!(
        low.text
            .contains("probe filtered by the keys of 1 join above"),
        "{}",
        show(&plan)
    );
    let hit: Vec<_> = f
        .iter()
        .filter(|r| r.1.is_some_and(|k| k < 200 && k % 2 == 1))
        .collect();
    let matched = hit
        .iter()
        .filter(|r| r.0.is_some_and(|k| k < 600 && k % 3 == 0))
        .count();
    let sum: i64 = hit.iter().map(|r| r.3).sum();
    assert_eq!(
        rows(&ok(&c, sql)),
        vec![vec![
            hit.len().to_string(),
            sum.to_string(),
            matched.to_string()
        ]]
    );
    assert_eq!(e.memory_in_use(), 0, "every reservation released");
}
