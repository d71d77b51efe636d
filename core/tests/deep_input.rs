//! Inputs shaped to exhaust the stack: long operator chains, wide UNIONs,
//! deep nesting. Each gets its right result or a clean error (1436 for
//! nesting deeper than the engine allows), and the engine keeps serving.
//!
//! Every test runs on a thread with a small stack: 768 KiB (three quarters
//! of the wasm default of 1 MiB) in a release build, 2 MiB (tokio's default for its
//! workers) unoptimized, where frames are several times bigger. The walks are
//! bounded by the shape of the input, not by the stack they happen to run on.
//! (The deepest part is sqlparser's own descent: ~4.5 KB per level of
//! parentheses, ~15 KB per level of function calls in a release build.)

mod common;
use common::*;

use cascade::ErrorKind;

/// Runs `f` on a thread with a small stack (see the module doc).
fn small_stack(f: impl FnOnce() + Send + 'static) {
    let kib = if cfg!(debug_assertions) { 2048 } else { 768 };
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the test thread failed (or overflowed its stack)");
}

fn chain(first: &str, op: &str, term: &str, n: usize) -> String {
    let mut s = String::from(first);
    for _ in 1..n {
        s.push_str(op);
        s.push_str(term);
    }
    s
}

#[test]
fn a_sum_of_2000_terms_computes() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let sql = format!("SELECT {}", chain("1", "+", "1", 2000));
        assert_eq!(cell(&c, &sql), "2000");
        // Mixed + and - of one precedence keep their left-to-right meaning.
        let sql = format!("SELECT 100{}", "-1+2".repeat(3000));
        assert_eq!(cell(&c, &sql), "3100");
        // Left to right also for floats and for overflow: 9223372036854775807
        // + 1 - 1 overflows at the first step, as MySQL's left-deep tree does.
        let sql = format!("SELECT 9223372036854775807 + 1{}", " - 1".repeat(2000));
        assert_eq!(run(&c, &sql).unwrap_err().code, 1690);
        assert_eq!(cell(&c, "SELECT 1"), "1");
    });
}

#[test]
fn long_and_or_chains_filter_rows() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "CREATE TABLE t (a INT)");
        ok(&c, "INSERT INTO t VALUES (1), (2), (3), (NULL)");
        // 50,000 ANDed predicates.
        let sql = format!(
            "SELECT count(*) FROM t WHERE {}",
            chain("a > 0", " AND ", "a < 3", 50_000)
        );
        assert_eq!(cell(&c, &sql), "2");
        // 20,000 ORed ones, as an ORM writes a long filter.
        let mut ors = String::from("a = -1");
        for i in 0..20_000 {
            ors.push_str(&format!(" OR a = {}", i + 2));
        }
        let sql = format!("SELECT count(*) FROM t WHERE {ors}");
        assert_eq!(cell(&c, &sql), "2");
        // ORDER BY / HAVING / UPDATE / DELETE see the same chains.
        let sql = format!(
            "SELECT a FROM t WHERE a IS NOT NULL GROUP BY a HAVING {} ORDER BY a",
            chain("a > 0", " AND ", "a <> 2", 10_000)
        );
        assert_eq!(rows(&ok(&c, &sql)), vec![vec!["1"], vec!["3"]]);
        let sql = format!(
            "UPDATE t SET a = a + 10 WHERE {}",
            chain("a = 3", " OR ", "a = 3", 10_000)
        );
        assert_eq!(ok(&c, &sql).rows_affected, 1);
        let sql = format!(
            "DELETE FROM t WHERE {}",
            chain("a = 13", " OR ", "a = 13", 10_000)
        );
        assert_eq!(ok(&c, &sql).rows_affected, 1);
        assert_eq!(cell(&c, "SELECT count(*) FROM t"), "3");
        // Three-valued logic survives the flattening: NULL AND … AND 0 is 0.
        let sql = format!("SELECT NULL{} AND 0", " AND 1".repeat(5000));
        assert_eq!(cell(&c, &sql), "0");
        let sql = format!("SELECT NULL{}", " OR 0".repeat(5000));
        assert_eq!(cell(&c, &sql), "NULL");
    });
}

#[test]
fn long_concatenation_and_in_lists() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        // `||` is OR in MySQL's default sql_mode: 10,000 of them.
        let sql = format!("SELECT {}", chain("0", " || ", "0", 10_000));
        assert_eq!(cell(&c, &sql), "0");
        let sql = format!("SELECT {} || 1", chain("0", " || ", "0", 10_000));
        assert_eq!(cell(&c, &sql), "1");
        // A 100,000-element IN list.
        let list = (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let sql = format!("SELECT 99999 IN ({})", list.join(", "));
        assert_eq!(cell(&c, &sql), "1");
    });
}

#[test]
fn five_thousand_union_all_branches() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let sql = format!(
            "SELECT sum(x) FROM ({}) AS u(x)",
            chain("SELECT 1", " UNION ALL ", "SELECT 1", 5000)
        );
        assert_eq!(cell(&c, &sql), "5000");
        let sql = chain("SELECT 1", " UNION ALL ", "SELECT 2", 5000);
        assert_eq!(ok(&c, &sql).rows.len(), 5000);
        // UNION (distinct) keeps its meaning when mixed with UNION ALL,
        // left to right: (1 ∪all 1 ∪all 2) ∪ 2 → {1, 2}, then ∪all 2, 2.
        let sql = format!(
            "SELECT count(*) FROM ({} UNION SELECT 2 UNION ALL SELECT 2 UNION ALL SELECT 2) AS u(x)",
            chain("SELECT 1", " UNION ALL ", "SELECT 1", 3000)
        );
        assert_eq!(cell(&c, &sql), "4");
        let sql = chain("SELECT 1", " UNION ", "SELECT 1", 5000);
        assert_eq!(ok(&c, &sql).rows.len(), 1);
    });
}

#[test]
fn deep_nesting_is_a_clean_error() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let deep = [
            format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("SELECT {}1", "NOT ".repeat(100_000)),
            format!("SELECT {}1", "- ".repeat(100_000)),
            format!("SELECT 1{}", " IS NULL".repeat(100_000)),
            format!("SELECT 1{}", " IS NOT TRUE".repeat(100_000)),
            format!("SELECT 'a'{}", " LIKE 'a'".repeat(100_000)),
            format!("SELECT 1{}", " IN (1)".repeat(100_000)),
            format!("SELECT {}1{}", "abs(".repeat(5000), ")".repeat(5000)),
            format!(
                "SELECT * FROM {}SELECT 1{} AS t",
                "(SELECT * FROM ".repeat(3000),
                ") AS t".repeat(3000)
            ),
        ];
        for sql in &deep {
            let err = run(&c, sql).unwrap_err();
            eprintln!("{}…: {err}", &sql[..40]);
            assert_eq!(err.kind, ErrorKind::Error);
            // sqlparser sometimes reports its own nesting limit as the
            // syntax error of an alternative it tried (`NOT NOT …`).
            match err.code {
                1436 => assert!(err.message.contains("nests too deeply"), "{err}"),
                1064 => {}
                _ => panic!("{}…: {err}", &sql[..40]),
            }
        }
        // A long run of an operator cascade does not evaluate is the plain
        // "unsupported" error.
        let sql = format!("SELECT 1{}", " | 1".repeat(100_000));
        assert_eq!(run(&c, &sql).unwrap_err().code, 1235);
        assert_eq!(cell(&c, "SELECT 1"), "1");
    });
}

#[test]
fn moderate_nesting_still_works() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let sql = format!("SELECT {}1{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(cell(&c, &sql), "1");
        let sql = format!("SELECT {}1", "NOT ".repeat(30));
        assert_eq!(cell(&c, &sql), "1");
        let sql = format!("SELECT 1{}", " IS NULL".repeat(30));
        assert_eq!(cell(&c, &sql), "0");
        // Nested sums: each level a 200-term chain.
        let mut s = String::from("1");
        for _ in 0..8 {
            s = format!("({s}){}", "+1".repeat(199));
        }
        assert_eq!(cell(&c, &format!("SELECT {s}")), (1 + 8 * 199).to_string());
        // EXPLAIN prints long chains.
        let sql = format!(
            "EXPLAIN SELECT x FROM generate_series(1, 3) AS g(x) WHERE {}",
            chain("x > 0", " AND ", "x < 9", 3000)
        );
        let text = rows(&ok(&c, &sql)).concat().join("\n");
        assert!(text.contains("x < 9"), "{text}");
    });
}

#[test]
fn long_chains_in_group_by_match_the_select_list() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let key = chain("x", " + ", "1", 2000);
        let sql = format!(
            "SELECT {key}, count(*) FROM generate_series(1, 4) AS g(x) GROUP BY {key} ORDER BY 1"
        );
        let r = ok(&c, &sql);
        assert_eq!(rows(&r)[0], vec!["2000", "1"]);
        // A prefix of a chain that is a group key counts as that key.
        let sql = "SELECT x + 1 + 1 FROM generate_series(1, 2) AS g(x) GROUP BY x + 1 ORDER BY 1";
        assert_eq!(rows(&ok(&c, sql)), vec![vec!["3"], vec!["4"]]);
    });
}

#[test]
fn more_than_61_joined_tables_is_1116() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        let from = |n: usize| {
            (0..n)
                .map(|i| format!("generate_series(1, 1) AS g{i}(x{i})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(cell(&c, &format!("SELECT count(*) FROM {}", from(61))), "1");
        let err = run(&c, &format!("SELECT count(*) FROM {}", from(62))).unwrap_err();
        assert_eq!(err.code, 1116, "{err}");
        let joins = (1..70)
            .map(|i| format!(" JOIN generate_series(1, 1) AS g{i}(x{i}) ON x{i} = x0"))
            .collect::<String>();
        let sql = format!("SELECT count(*) FROM generate_series(1, 1) AS g0(x0){joins}");
        assert_eq!(run(&c, &sql).unwrap_err().code, 1116);
    });
}

/// `WITH c0 AS (…), c1 AS (… FROM c0 …), …` with `n` CTEs, each reading
/// the one before `reads` times; the query reads the last.
fn cte_chain(n: usize, reads: usize) -> String {
    let mut s = String::from("WITH c0 AS (SELECT 1 AS x)");
    for i in 1..n {
        let from: Vec<String> = (0..reads).map(|r| format!("c{} AS a{r}", i - 1)).collect();
        let sum: Vec<String> = (0..reads).map(|r| format!("a{r}.x")).collect();
        s.push_str(&format!(
            ", c{i} AS (SELECT {} AS x FROM {})",
            sum.join(" + "),
            from.join(", ")
        ));
    }
    s.push_str(&format!(" SELECT x FROM c{}", n - 1));
    s
}

#[test]
fn ctes_and_views_nested_deep_or_expanded_often_are_refused_cleanly() {
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        // 32 levels of CTEs reading each other: planned (each reference
        // plans its definition inside the one being planned).
        assert_eq!(cell(&c, &cte_chain(32, 1)), "1");
        // One more is too deep.
        let err = run(&c, &cte_chain(33, 1)).unwrap_err();
        assert_eq!(err.code, 1436, "{err}");
        // Each reading the last twice: 2^n plans, refused past 4096
        // expansions (the answer of 12 levels would be 2^11).
        assert_eq!(cell(&c, &cte_chain(12, 2)), "2048");
        let err = run(&c, &cte_chain(14, 2)).unwrap_err();
        assert_eq!(err.code, 1235, "{err}");
        // Views over views: the same depth bound.
        ok(&c, "CREATE VIEW v0 AS SELECT 1 AS x");
        for i in 1..40 {
            let r = run(
                &c,
                &format!("CREATE VIEW v{i} AS SELECT x + 1 AS x FROM v{}", i - 1),
            );
            if i < 32 {
                r.unwrap_or_else(|e| panic!("v{i}: {e}"));
            } else {
                assert_eq!(r.unwrap_err().code, 1436, "v{i}");
                break;
            }
        }
        assert_eq!(cell(&c, "SELECT x FROM v31"), "32");
        assert_eq!(cell(&c, "SELECT 1"), "1");
    });
}

#[test]
fn long_chains_on_parallel_pipelines() {
    // The same chains evaluated by pipelines on the host's worker threads
    // (a parallel aggregate, a parallel top-N), not on the caller's.
    small_stack(|| {
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "SET cascade_threads = 2");
        let mut ors = String::from("x = -1");
        for i in 0..5_000 {
            ors.push_str(&format!(" OR x = {}", i * 5));
        }
        let sql =
            format!("SELECT count(*), sum(x) FROM generate_series(1, 9000) AS g(x) WHERE {ors}");
        let expect: i64 = (1..=1_800).map(|i| i * 5).sum();
        assert_eq!(
            rows(&ok(&c, &sql)),
            vec![vec!["1800".to_owned(), expect.to_string()]]
        );
        let sql = format!(
            "SELECT x FROM generate_series(1, 9000) AS g(x) WHERE {} ORDER BY x DESC LIMIT 2",
            chain("x > 0", " AND ", "x % 7 = 0", 3_000)
        );
        assert_eq!(rows(&ok(&c, &sql)), vec![vec!["8995"], vec!["8988"]]);
        let sql = format!(
            "SELECT {} AS v, count(*) FROM generate_series(1, 9000) AS g(x) GROUP BY v",
            chain("x % 2", " + ", "1", 2000)
        );
        let mut got = rows(&ok(&c, &sql));
        got.sort();
        assert_eq!(got, vec![vec!["1999", "4500"], vec!["2000", "4500"]]);
        // It did run as a parallel stage.
        let plan = rows(&ok(&c, &format!("EXPLAIN {sql}")))
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan.contains("Exchange"), "{plan}");
        assert_eq!(e.memory_in_use(), 0);
    });
}
