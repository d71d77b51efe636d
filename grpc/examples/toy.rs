//! Two nodes on loopback: node 2 serves the toy service behind
//! `ServerLayer`; node 1 calls it through `ClientLayer` from a statement
//! with a 2 s timeout, then kills the statement while a call runs.
//!
//! ```sh
//! cargo run -p cascade-grpc --example toy
//! ```

use std::time::Duration;

use cascade::remote::{GlobalConnId, PeerGrant};
use cascade::{Context, Identity, Level, Reason, StdHost};
use cascade_grpc::toy::pb::toy_client::ToyClient;
use cascade_grpc::toy::pb::toy_server::ToyServer;
use cascade_grpc::toy::pb::WorkRequest;
use cascade_grpc::toy::{ToyEvent, ToyService};
use cascade_grpc::{error_from_status, with_context, ClientLayer, ServerLayer, StaticPeers};
use tonic::transport::{Channel, Server};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Node 2: its own Root, and node 1 as a peer trusted for tenant acme.
    let node2 = Context::root(StdHost::shared()).node_id(2).build()?;
    let peers = StaticPeers::new().peer("node-1-token", PeerGrant::tenants(1, &["acme"]));
    let layer = ServerLayer::new(node2.clone(), peers);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Server::builder()
        .layer(layer.clone())
        .add_service(layer.cancel_service())
        .add_service(ToyServer::new(ToyService::new(2).with_events(events_tx)));
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });

    // Node 1: alice's connection, a statement with a 2 s timeout.
    let node1 = Context::root(StdHost::shared()).node_id(1).build()?;
    let conn = node1
        .child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(GlobalConnId::new(1, 5)?.get())
        .session_id(5)
        .build()?;
    let req = conn.child(Level::Request).build()?;
    let stmt = req
        .child(Level::Query)
        .statement_id(1)
        .timeout(
            Duration::from_secs(2),
            Reason::StatementTimeout { limit_ms: 2000 },
        )
        .build()?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = ToyClient::new(
        ServiceBuilder::new()
            .layer(ClientLayer::new().with_token("node-1-token"))
            .service(channel),
    );

    let report = client
        .work(with_context(
            tonic::Request::new(WorkRequest {
                mode: "report".into(),
            }),
            &stmt,
        ))
        .await?
        .into_inner();
    println!(
        "node {} ran a {} for {}@{} (connection {:#x}, statement {}) with {} us left",
        report.node_id,
        report.level,
        report.role,
        report.tenant,
        report.connection_id,
        report.statement_id,
        report.budget_us
    );

    let call = tokio::spawn({
        let stmt = stmt.clone();
        let mut client = client.clone();
        async move {
            client
                .work(with_context(
                    tonic::Request::new(WorkRequest {
                        mode: "wait".into(),
                    }),
                    &stmt,
                ))
                .await
        }
    });
    if let Some(ToyEvent::Started { node, .. }) = events.recv().await {
        println!("node {node} is running the call; node 1 kills the statement");
    }
    stmt.cancel(Reason::KillQuery {
        by_connection: 9,
        by_user: "root".into(),
    });
    if let Err(status) = call.await? {
        println!("node 1 got: {}", error_from_status(&status, Some(1)));
    }
    if let Some(ToyEvent::Cancelled { node, cause }) = events.recv().await {
        println!("node {node} saw: {cause}");
    }
    Ok(())
}
