//! Two nodes in one process joined over gRPC on loopback
//! (`cascade_server::cluster`): the coordinator's trace holds node 2's
//! spans (one trace id, under the fragment's span, the node as an
//! attribute), and a failure on node 2 is the statement's error with its
//! MySQL code and message.

use std::net::SocketAddr;

use cascade::trace::AttrValue;
use cascade::{Connection, Engine, EngineConfig, Identity};
use cascade_server::cluster::Cluster;
use cascade_server::{ServerConfig, TokioHost};

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn two_nodes() -> (Vec<Engine>, Vec<tokio::sync::oneshot::Sender<()>>) {
    let grpc = [free_port(), free_port()];
    let mut engines = Vec::new();
    let mut stops = Vec::new();
    for id in 1..=2u64 {
        let other = 3 - id;
        let toml = format!(
            "[cluster]\nnode_id = {id}\ngrpc_listen = \"{}\"\ntoken = \"t\"\n\
             [[cluster.peers]]\nnode_id = {other}\ngrpc = \"{}\"\n",
            grpc[id as usize - 1],
            grpc[other as usize - 1]
        );
        let cfg = ServerConfig::from_toml(&toml).unwrap().cluster.unwrap();
        let cluster = Cluster::new(cfg).unwrap();
        let mut ec = EngineConfig::new(id, TokioHost::shared());
        ec.nodes = Some(cluster.nodes());
        let engine = Engine::new(ec);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        cluster
            .endpoint(&engine)
            .serve(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        engines.push(engine);
        stops.push(tx);
    }
    (engines, stops)
}

async fn alice(e: &Engine) -> Connection {
    let c = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    c.execute("SET cascade_distribute = ON").await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinators_trace_holds_the_remote_nodes_spans() {
    let (engines, _stops) = two_nodes().await;
    let conn = alice(&engines[0]).await;
    let r = conn
        .execute(
            "SELECT x % 4 AS k, count(*), avg(x) FROM generate_series(1, 20000) AS t(x) GROUP BY k",
        )
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 4);
    let trace = engines[0].trace(r.query_id).unwrap();
    let query = trace.spans.iter().find(|s| s.name == "select").unwrap();
    let frag = trace
        .spans
        .iter()
        .find(|s| s.name == "fragment 2/2 on node 2")
        .expect("the fragment's span");
    let remote: Vec<_> = trace
        .spans
        .iter()
        .filter(|s| {
            s.attrs.get("node") == Some(&AttrValue::Int(2)) && s.attrs.contains_key("remote")
        })
        .collect();
    let root = remote
        .iter()
        .find(|s| s.parent == Some(frag.id))
        .expect("node 2's root span under the fragment's");
    assert_eq!(root.name, "remote pipeline");
    assert!(
        remote.iter().any(|s| s.name == "HashAggregate"),
        "node 2's partial aggregate: {:?}",
        remote.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for s in &remote {
        assert_eq!(s.trace_id, query.trace_id, "one trace id across the nodes");
    }
    wait_empty(&engines[1]).await;
}

/// Waits until `e` holds only its Root (a call's remote child goes when
/// its response has been sent, just after the caller has it).
async fn wait_empty(e: &Engine) {
    let mut waited = 0;
    while e.root().subtree_len() != 1 {
        assert!(
            waited < 60_000,
            "node {} keeps {:?}",
            e.node_id(),
            e.contexts()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += 5;
    }
    assert_eq!(e.memory_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_the_remote_node_is_the_statements_error() {
    let (engines, _stops) = two_nodes().await;
    let conn = alice(&engines[0]).await;
    // Overflows only in node 2's range (11..20).
    let q = "SELECT sum(CASE WHEN x > 15 THEN x * 9223372036854775807 ELSE x END) FROM generate_series(1, 20) AS t(x)";
    let err = conn.execute(q).await.unwrap_err();
    conn.execute("SET cascade_distribute = OFF").await.unwrap();
    let one = conn.execute(q).await.unwrap_err();
    assert_eq!((err.code, err.sqlstate), (1690, "22003"), "{err}");
    assert_eq!(err.message, one.message);
    wait_empty(&engines[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_with_many_groups_crosses_whole() {
    let (engines, _stops) = two_nodes().await;
    let conn = alice(&engines[0]).await;
    // 400,000 groups per node: a reply well past tonic's default 4 MiB.
    let q = "SELECT x, count(*), sum(x) FROM generate_series(1, 800000) AS t(x) GROUP BY x";
    let all = conn.execute(q).await.unwrap();
    conn.execute("SET cascade_distribute = OFF").await.unwrap();
    let one = conn.execute(q).await.unwrap();
    assert_eq!(all.rows.len(), 800_000);
    assert_eq!(all.rows, one.rows);
    wait_empty(&engines[1]).await;
}
