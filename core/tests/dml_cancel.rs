//! A cancelled or killed DML statement never commits; KILL CONNECTION in an
//! open transaction rolls it back on a cleanup context.

mod common;
use common::*;

use cascade::{Level, SpanStatus};

#[test]
fn killed_insert_select_leaves_no_rows() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "alice", "member");
    ok(&a, "CREATE TABLE t (x BIGINT)");
    let aid = a.id();
    let a2 = a.clone();
    let h = std::thread::spawn(move || {
        run(
            &a2,
            "INSERT INTO t SELECT x FROM generate_series(1, 10000000000) AS g(x)",
        )
    });
    let me = cascade::Identity::new("acme", "alice", "member");
    while !e
        .processes(&me)
        .iter()
        .any(|p| p.id == aid && p.rows_examined > 100_000)
    {
        std::thread::yield_now();
    }
    ok(&b, &format!("KILL QUERY {aid}"));
    let err = h.join().unwrap().unwrap_err();
    assert_eq!(err.code, 1317);
    assert_eq!(cell(&b, "SELECT count(*) FROM t"), "0");
    assert_eq!(e.memory_in_use(), 0, "every reservation released");
}

#[test]
fn kill_connection_mid_transaction_rolls_back_on_a_cleanup_context() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let admin = conn(&e, "acme", "root", "admin");
    ok(&a, "CREATE TABLE t (x BIGINT)");
    ok(&a, "INSERT INTO t VALUES (1)");
    ok(&a, "BEGIN");
    ok(&a, "INSERT INTO t VALUES (2), (3)");
    assert_eq!(
        cell(&a, "SELECT count(*) FROM t"),
        "3",
        "a sees its own writes"
    );
    assert_eq!(cell(&admin, "SELECT count(*) FROM t"), "1", "others do not");
    let q = ok(&a, "SELECT 1").query_id;
    ok(&admin, &format!("KILL CONNECTION {}", a.id()));
    assert_eq!(cell(&admin, "SELECT count(*) FROM t"), "1");
    let err = run(&a, "SELECT 1").unwrap_err();
    assert_eq!(err.code, 1927, "{err}");
    futures::executor::block_on(a.close());
    // The rollback span is a child of the transaction's span, ran on a
    // cleanup context, and finished Ok although the connection was killed.
    let trace = e.trace(q).unwrap();
    let rb = common::rollback_span_under_txn(&trace);
    assert_eq!(rb.status, SpanStatus::Ok);
    assert_eq!(
        rb.attrs.get("on_cleanup_context"),
        Some(&cascade::trace::AttrValue::Bool(true))
    );
    assert!(e.process_list().get(a.id()).is_none());
}

#[test]
fn disconnect_mid_query_cancels_and_close_rolls_back() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    ok(&a, "CREATE TABLE t (x BIGINT)");
    ok(&a, "BEGIN; INSERT INTO t VALUES (1)");
    let a2 = a.clone();
    let h = std::thread::spawn(move || run(&a2, "SELECT sleep(100)"));
    std::thread::sleep(std::time::Duration::from_millis(30));
    a.disconnect();
    let err = h.join().unwrap().unwrap_err();
    assert_eq!(err.code, 1317);
    assert!(err.message.contains("disconnected"), "{}", err.message);
    // The rollback ran on a cleanup context whose span links to the request
    // it cleaned up.
    let trace = e.trace(err.query_id.unwrap()).unwrap();
    let req = trace
        .spans
        .iter()
        .find(|s| s.level == Level::Request)
        .unwrap();
    let cleanup = trace
        .spans
        .iter()
        .find(|s| s.name == "rollback" && s.attrs.contains_key("cleanup"))
        .expect("the rollback's cleanup span");
    assert!(cleanup.links.contains(&req.id), "{cleanup:?}");
    futures::executor::block_on(a.close());
    assert_eq!(cell(&b, "SELECT count(*) FROM t"), "0");
    assert_eq!(e.process_list().len(), 1);
}

#[test]
fn commit_and_rollback_spans_are_children_of_the_txn_span() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    ok(&a, "CREATE TABLE t (x BIGINT)");
    ok(&a, "BEGIN");
    let q = ok(&a, "INSERT INTO t VALUES (1)").query_id;
    ok(&a, "COMMIT");
    let trace = e.trace(q).unwrap();
    let txn = trace.spans.iter().find(|s| s.name == "txn").unwrap();
    assert!(trace
        .spans
        .iter()
        .any(|s| s.name == "commit" && s.parent == Some(txn.id)));
    let query = trace
        .spans
        .iter()
        .find(|s| s.level == Level::Query)
        .unwrap();
    assert!(query.links.contains(&txn.id), "the query links to its txn");
}
