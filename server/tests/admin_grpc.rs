//! The admin service (src/admin.rs) on loopback: two engines in one
//! process, node 2 serving `cascade.admin.v1.Admin` behind cascade-grpc's
//! `ServerLayer`, node 1 reaching it through `GrpcPeers` (real tonic client
//! and server, real TCP). KILL forwarded over gRPC stops node 2's
//! statement with a cause naming node 1 and the killer's connection; the
//! owner's 1094/1095 come back word for word; the grant stops a peer from
//! raising its role; a dead peer is an error (KILL) or a warning
//! (SHOW PROCESSLIST) that names it. No timing assertions: the tests wait
//! for states (a statement running), never for durations.

use std::sync::Arc;

use cascade::remote::{GlobalConnId, PeerGrant};
use cascade::{Connection, Engine, EngineConfig, Identity, QueryError, QueryResult, Value};
use cascade_grpc::{ServerLayer, StaticPeers};
use cascade_server::admin::{AdminService, GrpcPeers};
use cascade_server::TokioHost;
use tonic::transport::Server;

fn node(id: u64) -> Engine {
    let mut config = EngineConfig::new(id, TokioHost::shared());
    config.global_connection_ids = true;
    Engine::new(config)
}

/// Serves node `engine`'s admin service on a free loopback port, trusting
/// the peer that sends `token` with `grant`; its `http://` address.
async fn serve(engine: &Engine, token: &str, grant: PeerGrant) -> String {
    let layer = ServerLayer::new(engine.root().clone(), StaticPeers::new().peer(token, grant));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .layer(layer.clone())
        .add_service(layer.cancel_service())
        .add_service(AdminService::new(engine.clone()).into_server());
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });
    format!("http://{addr}")
}

/// A loopback address nothing listens on (bound, then closed).
async fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Nodes 1 and 2; node 1 also knows node 3, which is down.
async fn cluster(grant: PeerGrant) -> (Engine, Engine) {
    let (n1, n2) = (node(1), node(2));
    let addr2 = serve(&n2, "token-of-node-1", grant).await;
    let peers = GrpcPeers::new(1).peer(2, &addr2, "token-of-node-1").peer(
        3,
        &dead_address().await,
        "token-of-node-1",
    );
    n1.set_peer_admin(Arc::new(peers));
    (n1, n2)
}

fn conn(e: &Engine, tenant: &str, user: &str, role: &str) -> Connection {
    e.connect(Identity::new(tenant, user, role)).unwrap()
}

/// Waits (yielding, no clock) until `c` runs a statement.
async fn until_running(c: &Connection) {
    while c.running_statement().is_none() {
        tokio::task::yield_now().await;
    }
}

fn spawn_sleep(c: &Connection) -> tokio::task::JoinHandle<Result<QueryResult, QueryError>> {
    let c = c.clone();
    tokio::spawn(async move { c.execute("SELECT sleep(600)").await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_over_grpc_stops_the_owner_statement_naming_the_requester() {
    let (n1, n2) = cluster(PeerGrant::tenants(1, &["acme", "sys"]).with_admin()).await;
    let victim = conn(&n2, "acme", "alice", "member");
    let killer = conn(&n1, "sys", "root", "admin");
    let running = spawn_sleep(&victim);
    until_running(&victim).await;
    killer
        .execute(&format!("KILL QUERY {}", victim.id()))
        .await
        .unwrap();
    let err = running.await.unwrap().unwrap_err();
    assert_eq!((err.code, err.sqlstate), (1317, "70100"), "{err}");
    assert!(
        err.message.contains(&format!(
            "cancelled by node 1: killed by KILL QUERY from connection {} (user root)",
            killer.id()
        )),
        "{}",
        err.message
    );
    // KILL CONNECTION over gRPC ends the whole connection.
    killer
        .execute(&format!("KILL {}", victim.id()))
        .await
        .unwrap();
    assert!(victim.context().is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_errors_come_back_word_for_word_and_a_dead_peer_is_named() {
    let (n1, n2) = cluster(PeerGrant::tenants(1, &["acme", "globex"])).await;
    let alice = conn(&n2, "acme", "alice", "member");
    let bob = conn(&n1, "acme", "bob", "member");
    let err = bob
        .execute(&format!("KILL {}", alice.id()))
        .await
        .unwrap_err();
    assert_eq!((err.code, err.sqlstate), (1095, "HY000"), "{err}");
    assert_eq!(
        err.message,
        format!("You are not owner of thread {}", alice.id())
    );
    let nobody = GlobalConnId::new(2, 4000).unwrap().get();
    let err = bob
        .execute(&format!("KILL QUERY {nobody}"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 1094, "{err}");
    assert_eq!(err.message, format!("Unknown thread id: {nobody}"));

    // The grant has no admin: acme's admin on node 1 may not act as admin
    // on node 2 (the layer refuses the call, 1227), and nothing is killed.
    let admin = conn(&n1, "acme", "root", "admin");
    let err = admin
        .execute(&format!("KILL {}", alice.id()))
        .await
        .unwrap_err();
    assert_eq!(err.code, 1227, "{err}");
    assert!(!alice.context().is_cancelled());

    // Node 3 is down: an error naming it.
    let on3 = GlobalConnId::new(3, 1).unwrap().get();
    let err = bob.execute(&format!("KILL {on3}")).await.unwrap_err();
    assert_eq!(err.code, 1429, "{err}");
    assert!(err.message.starts_with("node 3 ("), "{}", err.message);
    assert!(err.message.contains("unreachable"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_process_list_over_grpc_with_a_dead_peer_as_a_warning() {
    let (n1, n2) = cluster(PeerGrant::tenants(1, &["acme", "globex", "sys"]).with_admin()).await;
    let a2 = conn(&n2, "acme", "alice", "member");
    let g2 = conn(&n2, "globex", "carol", "member");
    let sys = conn(&n1, "sys", "root", "admin");
    let running = spawn_sleep(&a2);
    until_running(&a2).await;

    let r = sys.execute("SHOW PROCESSLIST").await.unwrap();
    let col = |n: &str| r.columns.iter().position(|c| c.name == n).unwrap();
    let (id, node, info) = (col("Id"), col("Node"), col("Info"));
    let find = |c: &Connection| {
        r.rows
            .iter()
            .find(|row| row[id] == Value::Int(c.id() as i64))
            .cloned()
    };
    let row = find(&a2).expect("node 2's alice is listed");
    assert_eq!(row[node], Value::Int(2));
    assert_eq!(row[info], Value::Text("SELECT sleep(600)".into()));
    assert_eq!(find(&g2).expect("node 2's carol")[node], Value::Int(2));
    assert_eq!(find(&sys).expect("node 1's own")[node], Value::Int(1));
    assert_eq!(r.warnings, 1);
    let w = sys.execute("SHOW WARNINGS").await.unwrap();
    assert_eq!(w.rows.len(), 1);
    let Value::Text(msg) = &w.rows[0][2] else {
        panic!("{:?}", w.rows)
    };
    assert!(
        msg.starts_with("node 3: processlist unavailable: node 3 ("),
        "{msg}"
    );

    // carol of globex on node 1 sees only her own connections.
    let g1 = conn(&n1, "globex", "carol", "member");
    let r = g1.execute("SHOW PROCESSLIST").await.unwrap();
    let mut ids: Vec<Value> = r.rows.iter().map(|row| row[0].clone()).collect();
    ids.sort_by_key(|v| v.to_string());
    let mut want = vec![Value::Int(g1.id() as i64), Value::Int(g2.id() as i64)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(ids, want);

    a2.cancel(None);
    let _ = running.await;
}
