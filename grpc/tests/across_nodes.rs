//! Real tonic clients and servers on loopback, in one process: contexts,
//! deadlines, cancels and errors across nodes (docs/across-nodes.md).
//!
//! Clocks are `ManualHost`s, one per node: budgets are checked exactly, and
//! no assertion depends on how fast the machine is. Waits for something
//! that must happen have a hang guard (`eventually`), never a speed bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cascade::remote::{GlobalConnId, PeerGrant};
use cascade::{CancelKind, Context, ErrorKind, Identity, Level, ManualHost, Reason};
use cascade_grpc::toy::pb::toy_client::ToyClient;
use cascade_grpc::toy::pb::toy_server::ToyServer;
use cascade_grpc::toy::pb::{WorkReply, WorkRequest};
use cascade_grpc::toy::{NextHop, ToyEvent, ToyService};
use cascade_grpc::{error_from_status, with_context, ClientLayer, ServerLayer, StaticPeers};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tonic::transport::{Channel, Server};
use tonic::Code;
use tower::ServiceBuilder;

const TOKEN_1: &str = "node-1-secret";
const TOKEN_2: &str = "node-2-secret";

/// Waits for `f` to hold. The bound is a hang guard: a test that hits it
/// has lost a wake-up, whatever the machine's speed.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never happened: {what}");
}

async fn next_event(rx: &mut UnboundedReceiver<ToyEvent>) -> ToyEvent {
    guard("a toy event", rx.recv()).await.expect("events open")
}

async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(v) => v,
        Err(_) => panic!("hang: {what}"),
    }
}

struct Node {
    root: Context,
    host: Arc<ManualHost>,
    layer: ServerLayer,
    addr: SocketAddr,
    events: UnboundedReceiver<ToyEvent>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn root(id: u64) -> (Context, Arc<ManualHost>) {
    let host = Arc::new(ManualHost::new());
    let root = Context::root(host.clone()).node_id(id).build().unwrap();
    (root, host)
}

/// A server node `id` with the toy service, knowing `peers`. With `next`,
/// its `hop` calls `next` after 30 s of work on its own clock.
async fn node(id: u64, peers: StaticPeers, next: Option<NextHop>) -> Node {
    let (root, host) = root(id);
    let layer = ServerLayer::new(root.clone(), peers);
    let (tx, events) = unbounded_channel();
    let mut toy = ToyService::new(id).with_events(tx);
    if let Some(n) = next {
        let h = host.clone();
        toy = toy
            .with_next(n)
            .with_work(move || h.advance(Duration::from_secs(30)));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .layer(layer.clone())
        .add_service(layer.cancel_service())
        .add_service(ToyServer::new(toy));
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });
    Node {
        root,
        host,
        layer,
        addr,
        events,
        server,
    }
}

fn peers() -> StaticPeers {
    StaticPeers::new()
        .peer(TOKEN_1, PeerGrant::tenants(1, &["acme"]))
        .peer(TOKEN_2, PeerGrant::tenants(2, &["acme"]))
}

async fn client(addr: SocketAddr, token: &str) -> NextHop {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    ToyClient::new(
        ServiceBuilder::new()
            .layer(ClientLayer::new().with_token(token))
            .service(channel),
    )
}

/// Node 1's statement: connection 5 of alice@acme (or `identity`), query 17
/// with a statement timeout of `timeout`.
fn statement(root: &Context, identity: Identity, timeout: Option<Duration>) -> Context {
    let conn = root
        .child(Level::Routine)
        .identity(identity)
        .connection_id(GlobalConnId::new(1, 5).unwrap().get())
        .session_id(5)
        .build()
        .unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    let mut q = req.child(Level::Query).statement_id(17);
    if let Some(t) = timeout {
        let limit_ms = t.as_millis() as u64;
        q = q.timeout(t, Reason::StatementTimeout { limit_ms });
    }
    q.build().unwrap()
}

fn alice() -> Identity {
    Identity::new("acme", "alice", "member")
}

fn work(mode: &str) -> WorkRequest {
    WorkRequest { mode: mode.into() }
}

#[tokio::test]
async fn the_handler_sees_the_callers_values_in_a_pipeline_on_its_own_node() {
    let b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), None);
    let mut c = client(b.addr, TOKEN_1).await;
    let mut req = with_context(tonic::Request::new(work("report")), &q);
    req.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let r: WorkReply = c.work(req).await.unwrap().into_inner();
    assert_eq!(r.node_id, 2, "the remote child hangs under node 2's root");
    assert_eq!((r.tenant.as_str(), r.role.as_str()), ("acme", "member"));
    assert_eq!(r.connection_id, GlobalConnId::new(1, 5).unwrap().get());
    assert_eq!(r.statement_id, 17);
    assert_eq!(r.level, "Pipeline");
    assert!(!r.has_budget, "no deadline, no budget");
    assert_eq!(
        r.traceparent,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    eventually("node 2 holds no context", || b.root.subtree_len() == 1).await;
    assert_eq!(b.layer.live_calls(), 0);
}

#[tokio::test]
async fn cancel_crosses_at_once_with_its_cause_and_leaves_nothing() {
    let mut b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), None);
    let mut c = client(b.addr, TOKEN_1).await;
    let call = tokio::spawn({
        let q = q.clone();
        async move {
            c.work(with_context(tonic::Request::new(work("wait")), &q))
                .await
        }
    });
    assert!(matches!(
        next_event(&mut b.events).await,
        ToyEvent::Started { node: 2, .. }
    ));
    assert_eq!(b.layer.live_calls(), 1);
    q.cancel(Reason::KillQuery {
        by_connection: 9,
        by_user: "root".into(),
    });
    // The caller returns with its own cause.
    let status = guard("the caller's call", call).await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    let e = error_from_status(&status, Some(1));
    assert_eq!((e.code, e.kind), (1317, ErrorKind::Canceled));
    assert_eq!(e.cause.as_ref().unwrap().reason, q.cause().unwrap().reason);
    // The remote side gets the cause, named by node.
    let ToyEvent::Cancelled { node, cause } = next_event(&mut b.events).await else {
        panic!("expected the cancel")
    };
    assert_eq!(node, 2);
    assert_eq!(cause.kind, CancelKind::Canceled);
    assert_eq!(
        cause.level,
        Level::Query,
        "the level it started at, on node 1"
    );
    assert_eq!(
        cause.to_string(),
        "cancelled by node 1: killed by KILL QUERY from connection 9 (user root) at Query level"
    );
    eventually("node 2 holds no context", || b.root.subtree_len() == 1).await;
    eventually("node 2 has no live call", || b.layer.live_calls() == 0).await;
}

#[tokio::test]
async fn a_dropped_call_cancels_the_remote_child() {
    let mut b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), None);
    let mut c = client(b.addr, TOKEN_1).await;
    let call = tokio::spawn({
        let q = q.clone();
        async move {
            c.work(with_context(tonic::Request::new(work("wait")), &q))
                .await
        }
    });
    let ToyEvent::Started { ctx: remote, .. } = next_event(&mut b.events).await else {
        panic!("expected the start")
    };
    // The caller's task goes away without a cancel of its context: the
    // stream is reset, and the remote side learns only that (its handler
    // is dropped with the stream).
    call.abort();
    eventually("the remote context is cancelled", || remote.is_cancelled()).await;
    assert_eq!(
        remote.cause().unwrap().reason.to_string(),
        "cancelled by node 1: the call was dropped by the caller"
    );
    drop(remote);
    assert!(!q.is_cancelled());
    eventually("node 2 holds no context", || b.root.subtree_len() == 1).await;
}

#[tokio::test]
async fn the_budget_shrinks_across_two_hops_instead_of_restarting() {
    // A (node 1, a client) -> B (node 2) -> C (node 3).
    let c_node = node(3, peers(), None).await;
    let b = node(2, peers(), Some(client(c_node.addr, TOKEN_2).await)).await;
    let (n1, h1) = root(1);
    let q = statement(&n1, alice(), Some(Duration::from_secs(200)));
    h1.advance(Duration::from_secs(50));
    let mut to_b = client(b.addr, TOKEN_1).await;
    let r = to_b
        .work(with_context(tonic::Request::new(work("hop")), &q))
        .await
        .unwrap()
        .into_inner();
    assert!(r.has_budget);
    assert_eq!(r.budget_us, 150_000_000, "B: 200 s - 50 s spent on A");
    let next = r.next.expect("C's answer");
    assert_eq!(next.node_id, 3);
    assert!(next.has_budget);
    assert_eq!(next.budget_us, 120_000_000, "C: 150 s - 30 s spent on B");
    assert_eq!(next.statement_id, 17);
    eventually("B holds no context", || b.root.subtree_len() == 1).await;
    eventually("C holds no context", || c_node.root.subtree_len() == 1).await;
}

#[tokio::test]
async fn a_remote_deadline_fires_with_the_callers_cause_and_comes_back_as_3024() {
    let mut b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), Some(Duration::from_secs(100)));
    let mut c = client(b.addr, TOKEN_1).await;
    let call = tokio::spawn({
        let q = q.clone();
        async move {
            c.work(with_context(tonic::Request::new(work("wait")), &q))
                .await
        }
    });
    assert!(matches!(
        next_event(&mut b.events).await,
        ToyEvent::Started { .. }
    ));
    // 100 s pass on node 2's clock only: node 1's query is still live, the
    // remote fragment's budget is spent.
    b.host.advance(Duration::from_secs(100));
    let ToyEvent::Cancelled { cause, .. } = next_event(&mut b.events).await else {
        panic!("expected the deadline")
    };
    assert_eq!(cause.kind, CancelKind::DeadlineExceeded);
    assert_eq!(cause.level, Level::Query);
    assert_eq!(
        cause.reason.to_string(),
        "cancelled by node 1: statement timeout of 100000 ms (max_execution_time) exceeded"
    );
    let status = guard("the call", call).await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let e = error_from_status(&status, Some(1));
    assert_eq!(
        (e.code, e.kind, e.level),
        (3024, ErrorKind::DeadlineExceeded, Some(Level::Query))
    );
    // Seen from node 1, the cause started on node 1: it comes back as it was.
    assert_eq!(
        e.cause.unwrap().reason,
        Reason::StatementTimeout { limit_ms: 100_000 }
    );
    assert!(
        !q.is_cancelled(),
        "the remote deadline does not cancel the caller"
    );
    eventually("node 2 holds no context", || b.root.subtree_len() == 1).await;
}

#[tokio::test]
async fn a_peer_cannot_raise_its_tenant_or_role_or_be_unknown() {
    let b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let mut c = client(b.addr, TOKEN_1).await;
    for identity in [
        Identity::new("globex", "carol", "member"),
        Identity::new("acme", "root", "admin"),
        Identity::new("sys", "root", "admin"),
    ] {
        let q = statement(&n1, identity.clone(), None);
        let status = c
            .work(with_context(tonic::Request::new(work("report")), &q))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{identity}");
        let e = error_from_status(&status, Some(1));
        assert_eq!((e.code, e.sqlstate), (1227, "42000"), "{identity}: {e}");
    }
    let q = statement(&n1, alice(), None);
    let mut stranger = client(b.addr, "not-a-peer").await;
    let status = stranger
        .work(with_context(tonic::Request::new(work("report")), &q))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // Node 2's token does not let node 1's context through (the claimed
    // origin is node 1, the authenticated peer node 2).
    let mut impostor = client(b.addr, TOKEN_2).await;
    let status = impostor
        .work(with_context(tonic::Request::new(work("report")), &q))
        .await
        .unwrap_err();
    assert_eq!(error_from_status(&status, Some(1)).code, 1227);
    assert_eq!(b.root.subtree_len(), 1, "refused calls build nothing");
}

#[tokio::test]
async fn a_remote_failure_comes_back_with_code_state_and_level() {
    let b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), None);
    let mut c = client(b.addr, TOKEN_1).await;
    let status = c
        .work(with_context(tonic::Request::new(work("fail")), &q))
        .await
        .unwrap_err();
    let e = error_from_status(&status, Some(1));
    assert_eq!(
        (e.code, e.sqlstate, e.kind),
        (1365, "22012", ErrorKind::Error)
    );
    assert_eq!(e.level, Some(Level::Pipeline));
    assert_eq!(e.message, "Division by 0");
    eventually("node 2 holds no context", || b.root.subtree_len() == 1).await;
}

#[tokio::test]
async fn a_cancelled_caller_makes_no_call() {
    let b = node(2, peers(), None).await;
    let (n1, _h1) = root(1);
    let q = statement(&n1, alice(), None);
    q.cancel(Reason::ClientDisconnected);
    let mut c = client(b.addr, TOKEN_1).await;
    let status = c
        .work(with_context(tonic::Request::new(work("report")), &q))
        .await
        .unwrap_err();
    let e = error_from_status(&status, Some(1));
    assert_eq!(e.code, 1317);
    assert_eq!(e.cause.unwrap().reason, Reason::ClientDisconnected);
    assert_eq!(b.root.subtree_len(), 1);
    assert_eq!(b.layer.live_calls(), 0);
}
