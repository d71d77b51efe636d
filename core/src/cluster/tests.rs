//! The distributed aggregate over [`LocalNodes`]: results identical to one
//! node, EXPLAIN, grafted spans, and what the remote nodes keep.

use std::sync::Arc;

use futures::executor::block_on;

use super::*;
use crate::host::ManualHost;
use crate::session::{Engine, EngineConfig};
use crate::values::Identity;

fn cluster(n: u64) -> (LocalNodes, Vec<Engine>) {
    let hub = LocalNodes::new();
    let host = Arc::new(ManualHost::new());
    let engines = (1..=n)
        .map(|id| {
            let mut cfg = EngineConfig::new(id, host.clone());
            cfg.nodes = Some(hub.node(id));
            let e = Engine::new(cfg);
            hub.add(&e);
            e
        })
        .collect();
    (hub, engines)
}

fn alice(e: &Engine) -> crate::Connection {
    e.connect(Identity::new("acme", "alice", "member")).unwrap()
}

const QUERIES: [&str; 8] = [
    "SELECT count(*), sum(x), min(x), max(x), avg(x) FROM generate_series(1, 100000) AS t(x)",
    "SELECT x % 7 AS k, count(*), sum(x), avg(x) FROM generate_series(1, 50000) AS t(x) GROUP BY k",
    "SELECT x % 5 AS k, max(x * 2), min(-x) FROM generate_series(-20000, 20000, 3) AS t(x) WHERE x % 2 = 0 GROUP BY k HAVING count(*) > 10 ORDER BY k DESC LIMIT 3",
    "SELECT count(*), sum(x), avg(x) FROM generate_series(5, 1) AS t(x)",
    "SELECT count(x), avg(x) FROM generate_series(1, 2) AS t(x)",
    "SELECT CONCAT('g', x % 3) AS g, count(*), avg(x / 3) FROM generate_series(1, 30000) AS t(x) GROUP BY g",
    "SELECT sum(x * 1.5), avg(x * 0.25), count(*) FROM generate_series(1, 20000) AS t(x)",
    "SELECT count(*) + 1, sum(x) / count(*) FROM generate_series(1, 9999) AS t(x)",
];

#[test]
fn distributed_results_equal_one_node() {
    let (_hub, engines) = cluster(3);
    let conn = alice(&engines[0]);
    for q in QUERIES {
        let one = block_on(conn.execute(q)).unwrap();
        block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
        let explain = block_on(conn.execute(&format!("EXPLAIN {q}"))).unwrap();
        let text: Vec<String> = explain.rows.iter().map(|r| r[0].to_string()).collect();
        let text = text.join("\n");
        let all = block_on(conn.execute(q)).unwrap();
        block_on(conn.execute("SET cascade_distribute = OFF")).unwrap();
        assert_eq!(one.rows, all.rows, "{q}\n{text}");
        assert_eq!(one.columns, all.columns, "{q}");
        assert!(text.contains("RemoteScan"), "{q}\n{text}");
    }
    for e in &engines {
        assert_eq!(e.memory_in_use(), 0);
    }
}

#[test]
fn explain_names_each_fragment_and_its_node() {
    let (_hub, engines) = cluster(3);
    let conn = alice(&engines[0]);
    block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
    let r = block_on(
        conn.execute("EXPLAIN ANALYZE SELECT count(*) FROM generate_series(1, 30) AS t(x)"),
    )
    .unwrap();
    let text: Vec<String> = r.rows.iter().map(|r| r[0].to_string()).collect();
    let text = text.join("\n");
    for part in [
        "node 1: partial aggregate over generate_series(1, 10) (rows=1)",
        "node 2: partial aggregate over generate_series(11, 20) (rows=1)",
        "node 3: partial aggregate over generate_series(21, 30) (rows=1)",
        "merge of 3 fragments",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
}

#[test]
fn the_coordinators_trace_holds_the_remote_spans() {
    let (_hub, engines) = cluster(2);
    let conn = alice(&engines[0]);
    block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
    let r =
        block_on(conn.execute(
            "SELECT x % 3 AS k, count(*) FROM generate_series(1, 10000) AS t(x) GROUP BY k",
        ))
        .unwrap();
    let trace = engines[0].trace(r.query_id).unwrap();
    let query = trace.spans.iter().find(|s| s.name == "select").unwrap();
    let remote: Vec<_> = trace
        .spans
        .iter()
        .filter(|s| s.attrs.contains_key("remote"))
        .collect();
    assert!(!remote.is_empty(), "no remote span");
    assert!(
        remote.iter().any(|s| s.name == "HashAggregate"
            && s.attrs.get("node") == Some(&crate::trace::AttrValue::Int(2))),
        "node 2's partial aggregate"
    );
    for s in &remote {
        assert_eq!(s.trace_id, query.trace_id, "one trace id");
    }
    // The fragment's span on the coordinator is the parent of node 2's.
    let frag = trace
        .spans
        .iter()
        .find(|s| s.name == "fragment 2/2 on node 2")
        .unwrap();
    let root = remote
        .iter()
        .find(|s| s.parent == Some(frag.id))
        .expect("node 2's root span under the fragment's");
    assert_eq!(root.name, "remote pipeline");
}

#[test]
fn distribution_is_off_unless_asked_and_skips_what_it_cannot_split() {
    let (_hub, engines) = cluster(2);
    let conn = alice(&engines[0]);
    let q = "EXPLAIN SELECT count(*) FROM generate_series(1, 100) AS t(x)";
    let text = |r: crate::QueryResult| -> String {
        r.rows
            .iter()
            .map(|r| r[0].to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!text(block_on(conn.execute(q)).unwrap()).contains("RemoteScan"));
    block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
    assert!(text(block_on(conn.execute(q)).unwrap()).contains("RemoteScan"));
    let distinct = "EXPLAIN SELECT count(DISTINCT x % 3) FROM generate_series(1, 100) AS t(x)";
    assert!(!text(block_on(conn.execute(distinct)).unwrap()).contains("RemoteScan"));
    let r = block_on(conn.execute("SELECT @@cascade_distribute")).unwrap();
    assert_eq!(r.rows[0][0], crate::Value::Int(1));
}
