//! Embedding the engine in a tokio program: a query killed from another
//! task, with the engine's spans (one per context: routine, request, query,
//! pipeline, … and one per operator) going to a `tracing-subscriber` fmt
//! layer.
//!
//! `TokioHost` gives the engine tokio's timer and `yield_now`; any
//! `tracing` subscriber sees the engine's spans (target `cascade`).
//!
//! ```text
//! cargo run -p cascade-server --example kill_on_tokio
//! ```

use cascade::{Engine, EngineConfig, Identity};
use cascade_server::TokioHost;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::format::FmtSpan;

const CPU_BOUND: &str = "SELECT COUNT(*), SUM(a.x * b.x) FROM generate_series(1, 100000) AS a(x) \
                         CROSS JOIN generate_series(1, 100000) AS b(x)";

#[tokio::main]
async fn main() {
    // Every span of the engine prints a line when it closes, with its fields
    // (ctx = context id) and its busy/idle time.
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_target(true)
        .with_max_level(tracing::Level::INFO)
        .init();

    let engine = Engine::new(EngineConfig::new(1, TokioHost::shared()));
    let alice = engine
        .connect(Identity::new("acme", "alice", "member"))
        .expect("connect alice");
    let admin = engine
        .connect(Identity::new("acme", "root", "admin"))
        .expect("connect admin");
    let victim = alice.id();

    let query = tokio::spawn(async move { alice.execute(CPU_BOUND).await });

    let watcher = Identity::new("acme", "root", "admin");
    while !engine
        .processes(&watcher)
        .iter()
        .any(|p| p.id == victim && p.command == "Query")
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    admin
        .execute(&format!("KILL QUERY {victim}"))
        .await
        .expect("KILL QUERY");
    let err = query
        .await
        .expect("the query task")
        .expect_err("the query was killed");
    tracing::info!(
        code = err.code,
        sqlstate = err.sqlstate,
        after = ?sent.elapsed(),
        "query killed: {}",
        err.message
    );
    assert_eq!(err.code, 1317);
}
