//! A statement across nodes over the in-memory transport (`LocalNodes`):
//! KILL, the deadline, a remote failure and a lost node, on real threads
//! (StdHost). Causes and contexts are checked, never wall time.

use std::sync::Arc;
use std::time::Duration;

use cascade::cluster::LocalNodes;
use cascade::trace::SpanStatus;
use cascade::{Connection, Engine, EngineConfig, Identity, StdHost};
use futures::executor::block_on;

fn cluster(n: u64) -> (LocalNodes, Vec<Engine>) {
    let hub = LocalNodes::new();
    let engines = (1..=n)
        .map(|id| {
            let mut cfg = EngineConfig::new(id, StdHost::shared());
            cfg.nodes = Some(hub.node(id));
            let e = Engine::new(cfg);
            hub.add(&e);
            e
        })
        .collect();
    (hub, engines)
}

fn alice(e: &Engine) -> Connection {
    let c = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    block_on(c.execute("SET cascade_distribute = ON")).unwrap();
    c
}

/// A statement that runs until stopped (10^12 rows on 3 nodes).
const LONG: &str =
    "SELECT x % 3 AS k, count(*) FROM generate_series(1, 1000000000000) AS t(x) GROUP BY k";

/// Waits (no assertion on time) until every node runs its fragment.
fn wait_running(hub: &LocalNodes, conn: &Connection, nodes: &[u64]) {
    while conn.running_statement().is_none() || nodes.iter().any(|n| hub.live_calls(*n) == 0) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every span of `trace` grafted from `node`.
fn remote_spans(trace: &cascade::Trace, node: i64) -> Vec<&cascade::trace::SpanRecord> {
    trace
        .spans
        .iter()
        .filter(|s| {
            s.attrs.contains_key("remote")
                && s.attrs.get("node") == Some(&cascade::trace::AttrValue::Int(node))
        })
        .collect()
}

fn status_message(s: &SpanStatus) -> String {
    match s {
        SpanStatus::Canceled { message, .. }
        | SpanStatus::DeadlineExceeded { message, .. }
        | SpanStatus::Error { message } => message.clone(),
        _ => String::new(),
    }
}

/// Waits until every node holds only its Root (and, on the coordinator,
/// alice's connection) and reserves nothing. With parallel stages
/// (`threads` > 1) the pipelines of an abandoned fragment stop on other
/// threads after their current batch, so this waits (bounded) rather than
/// reads once; it fails if anything stays.
fn assert_nothing_left(engines: &[Engine]) {
    for e in engines {
        let want = if e.node_id() == 1 { 2 } else { 1 };
        let mut waited = 0u32;
        while e.root().subtree_len() != want || e.memory_in_use() != 0 {
            assert!(
                waited < 60_000,
                "node {} keeps {} bytes and {:?}",
                e.node_id(),
                e.memory_in_use(),
                e.contexts()
            );
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
        }
    }
}

#[test]
fn kill_query_on_the_coordinator_stops_every_remote_fragment_with_its_cause() {
    let (hub, engines) = cluster(3);
    let conn = Arc::new(alice(&engines[0]));
    let run = {
        let conn = conn.clone();
        std::thread::spawn(move || block_on(conn.execute(LONG)))
    };
    wait_running(&hub, &conn, &[2, 3]);
    conn.cancel(None);
    let err = run.join().unwrap().unwrap_err();
    assert_eq!(err.code, 1317, "{err}");
    assert!(err.message.contains("KILL QUERY"), "{err}");
    let trace = engines[0].trace(err.query_id.unwrap()).unwrap();
    for node in [2, 3] {
        let spans = remote_spans(&trace, node);
        assert!(!spans.is_empty(), "node {node}'s spans are in the trace");
        let root = spans
            .iter()
            .find(|s| s.name == "remote pipeline")
            .expect("the remote child's span");
        let msg = status_message(&root.status);
        assert!(
            msg.starts_with("cancelled by node 1: killed by KILL QUERY from connection"),
            "node {node}: {msg}"
        );
    }
    assert_eq!(hub.live_calls(2) + hub.live_calls(3), 0);
    assert_nothing_left(&engines);
}

#[test]
fn the_deadline_crosses_as_the_remaining_budget_with_its_cause() {
    let (hub, engines) = cluster(3);
    let conn = alice(&engines[0]);
    block_on(conn.execute("SET max_execution_time = 200")).unwrap();
    let err = block_on(conn.execute(LONG)).unwrap_err();
    assert_eq!(err.code, 3024, "{err}");
    assert!(err.message.contains("max_execution_time"), "{err}");
    let trace = engines[0].trace(err.query_id.unwrap()).unwrap();
    for node in [2, 3] {
        let spans = remote_spans(&trace, node);
        let root = spans
            .iter()
            .find(|s| s.name == "remote pipeline")
            .expect("the remote child's span");
        // The remote side ended with the coordinator's deadline, named as
        // the coordinator's (not a deadline of its own).
        let msg = status_message(&root.status);
        assert!(
            msg.starts_with(
                "cancelled by node 1: statement timeout of 200 ms (max_execution_time)"
            ),
            "node {node}: {msg}"
        );
    }
    assert_eq!(hub.live_calls(2) + hub.live_calls(3), 0);
    assert_nothing_left(&engines);
}

#[test]
fn a_remote_failure_is_the_statements_error_with_its_code() {
    let (_hub, engines) = cluster(3);
    let conn = alice(&engines[0]);
    // Overflows only in node 3's range (21..30).
    let q = "SELECT sum(CASE WHEN x > 25 THEN x * 9223372036854775807 ELSE x END) FROM generate_series(1, 30) AS t(x)";
    let err = block_on(conn.execute(q)).unwrap_err();
    block_on(conn.execute("SET cascade_distribute = OFF")).unwrap();
    let one = block_on(conn.execute(q)).unwrap_err();
    assert_eq!((err.code, err.sqlstate), (one.code, one.sqlstate), "{err}");
    assert_eq!(err.code, 1690);
    assert_eq!(err.message, one.message);
    assert_nothing_left(&engines);
}

#[test]
fn a_lost_node_fails_the_statement_naming_it_and_the_survivors_keep_nothing() {
    let (hub, engines) = cluster(3);
    let conn = Arc::new(alice(&engines[0]));
    let run = {
        let conn = conn.clone();
        std::thread::spawn(move || block_on(conn.execute(LONG)))
    };
    wait_running(&hub, &conn, &[2, 3]);
    hub.lose(2, "connection reset by peer");
    let err = run.join().unwrap().unwrap_err();
    assert!(
        err.message
            .contains("node 2 lost: connection reset by peer"),
        "{err}"
    );
    let trace = engines[0].trace(err.query_id.unwrap()).unwrap();
    // Node 3 was stopped because node 2 was lost.
    let spans = remote_spans(&trace, 3);
    let root = spans
        .iter()
        .find(|s| s.name == "remote pipeline")
        .expect("node 3's span");
    let msg = status_message(&root.status);
    assert!(
        msg.starts_with("cancelled by node 1: node 2 lost: connection reset by peer"),
        "{msg}"
    );
    // A new statement does not use the lost node... it fails fast, naming it.
    let again =
        block_on(conn.execute("SELECT count(*) FROM generate_series(1, 30) AS t(x)")).unwrap_err();
    assert!(again.message.contains("node 2 lost"), "{again}");
    assert_eq!(hub.live_calls(3), 0);
    assert_nothing_left(&[engines[0].clone(), engines[2].clone()]);
}

#[test]
fn a_client_that_disconnects_stops_every_remote_fragment_with_that_cause() {
    let (hub, engines) = cluster(3);
    let conn = Arc::new(alice(&engines[0]));
    let run = {
        let conn = conn.clone();
        std::thread::spawn(move || block_on(conn.execute(LONG)))
    };
    wait_running(&hub, &conn, &[2, 3]);
    conn.disconnect();
    let err = run.join().unwrap().unwrap_err();
    assert_eq!(err.code, 1317, "{err}");
    let trace = engines[0].trace(err.query_id.unwrap()).unwrap();
    for node in [2, 3] {
        let spans = remote_spans(&trace, node);
        let root = spans
            .iter()
            .find(|s| s.name == "remote pipeline")
            .expect("the remote child's span");
        let msg = status_message(&root.status);
        assert!(
            msg.starts_with("cancelled by node 1: the client disconnected at Routine level"),
            "node {node}: {msg}"
        );
    }
    block_on(conn.close());
    drop(conn);
    // The coordinator's connection is gone too: a fresh one stands in
    // for it in the count.
    let _standin = engines[0]
        .connect(Identity::new("acme", "carol", "member"))
        .unwrap();
    assert_nothing_left(&engines);
}

#[test]
fn long_and_deep_input_in_a_distributed_statement() {
    // Every node plans the statement's text again: a long chain runs
    // everywhere with the one-node result, and nesting too deep for one
    // node is refused (1436), leaving nothing on any node.
    let (_hub, engines) = cluster(3);
    let conn = alice(&engines[0]);
    let mut ors = String::from("x = -1");
    for i in 0..2_000 {
        ors.push_str(&format!(" OR x = {}", i * 3));
    }
    let q = format!("SELECT x % 4 AS k, count(*), sum(x) FROM generate_series(1, 9000) AS t(x) WHERE {ors} GROUP BY k ORDER BY k");
    let explain = block_on(conn.execute(&format!("EXPLAIN {q}"))).unwrap();
    assert!(
        format!("{:?}", explain.rows).contains("RemoteScan"),
        "{:?}",
        explain.rows
    );
    let all = block_on(conn.execute(&q)).unwrap();
    block_on(conn.execute("SET cascade_distribute = OFF")).unwrap();
    let one = block_on(conn.execute(&q)).unwrap();
    assert_eq!(all.rows, one.rows);
    assert_eq!(all.rows.len(), 4);
    block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
    let deep = format!(
        "SELECT count(*) FROM generate_series(1, 30000) AS t(x) WHERE {}x = 1{}",
        "(".repeat(200),
        ")".repeat(200)
    );
    let err = block_on(conn.execute(&deep)).unwrap_err();
    assert_eq!(err.code, 1436, "{err}");
    assert_nothing_left(&engines);
}
