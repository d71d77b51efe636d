//! UPDATE and DELETE run as pipeline operators: EXPLAIN shows them,
//! EXPLAIN ANALYZE runs them (rows, time) and changes nothing, and the
//! statement's trace has their operator span under a pipeline.

mod common;
use common::*;

use cascade::Level;

fn explain(c: &cascade::Connection, sql: &str) -> String {
    table(c, sql)
}

#[test]
fn explain_and_explain_analyze_of_update_and_delete() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(
        &c,
        "CREATE TABLE t (x BIGINT, y BIGINT);
         INSERT INTO t SELECT x, 0 FROM generate_series(1, 10000) AS g(x)",
    );
    let plan = explain(&c, "EXPLAIN UPDATE t SET y = x * 2 WHERE x > 9000");
    assert!(plan.contains("Update t (10000 rows)"), "{plan}");
    assert!(plan.contains("y = (x * 2)"), "{plan}");
    let plan = explain(&c, "EXPLAIN ANALYZE DELETE FROM t WHERE x % 2 = 0");
    assert!(plan.contains("Delete t (10000 rows)"), "{plan}");
    // ANALYZE ran it: the operator output the 5,000 kept rows...
    assert!(plan.contains("rows=5000"), "{plan}");
    // ...and discarded them: nothing changed.
    assert_eq!(cell(&c, "SELECT count(*) FROM t"), "10000");
    assert_eq!(cell(&c, "SELECT sum(y) FROM t"), "0");
    // The statements themselves still count the rows MySQL counts.
    assert_eq!(ok(&c, "UPDATE t SET y = 1 WHERE x <= 10").rows_affected, 10);
    assert_eq!(
        ok(&c, "UPDATE t SET y = 1 WHERE x <= 20").rows_affected,
        10,
        "rows whose value changed, not rows matched"
    );
    assert_eq!(ok(&c, "DELETE FROM t WHERE y = 1").rows_affected, 20);
    assert_eq!(cell(&c, "SELECT count(*) FROM t"), "9980");
    assert_eq!(e.memory_in_use(), 0, "every reservation released");
}

#[test]
fn an_update_is_an_operator_span_under_a_pipeline() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(
        &c,
        "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (1), (2)",
    );
    let r = ok(&c, "UPDATE t SET x = x + 1");
    let trace = e.trace(r.query_id).expect("the statement's trace");
    let op = trace
        .spans
        .iter()
        .find(|s| s.name == "Update")
        .unwrap_or_else(|| panic!("no Update span in {:#?}", trace.spans));
    let parent = trace
        .spans
        .iter()
        .find(|s| Some(s.id) == op.parent)
        .expect("the operator's parent span");
    assert_eq!(parent.level, Level::Pipeline, "{parent:?}");
}
