//! Embedding the engine with no async runtime at all: a query and its KILL
//! on `futures::executor::LocalPool`, one thread.
//!
//! The engine only needs a host (clock, timer, yield): `StdHost` uses
//! `std::time` and `futures-timer`. The CPU-bound query yields to the host
//! every few milliseconds of work, so the killer task gets to run on the
//! same thread, and the query sees the kill within one batch.
//!
//! ```text
//! cargo run -p cascade-server --example kill_on_local_pool
//! ```

use cascade::{Engine, EngineConfig, Identity, StdHost};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::time::{Duration, Instant};

/// 10^10 joined rows: minutes of work unless someone kills it.
const CPU_BOUND: &str = "SELECT COUNT(*), SUM(a.x * b.x) FROM generate_series(1, 100000) AS a(x) \
                         CROSS JOIN generate_series(1, 100000) AS b(x)";

fn main() {
    let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    let alice = engine
        .connect(Identity::new("acme", "alice", "member"))
        .expect("connect alice");
    let admin = engine
        .connect(Identity::new("acme", "root", "admin"))
        .expect("connect admin");
    let victim = alice.id();

    let mut pool = LocalPool::new();
    let started = Instant::now();
    let query = pool
        .spawner()
        .spawn_local_with_handle(async move { alice.execute(CPU_BOUND).await })
        .expect("spawn the query");

    let host = engine.host().clone();
    let watcher = Identity::new("acme", "root", "admin");
    let engine2 = engine.clone();
    let killer = async move {
        // Wait until the statement is running, as SHOW PROCESSLIST shows it.
        while !engine2
            .processes(&watcher)
            .iter()
            .any(|p| p.id == victim && p.command == "Query")
        {
            host.sleep_until(host.now().saturating_add(Duration::from_millis(1)))
                .await;
        }
        // Let it work a little, then kill it.
        host.sleep_until(host.now().saturating_add(Duration::from_millis(100)))
            .await;
        let sent = Instant::now();
        admin
            .execute(&format!("KILL QUERY {victim}"))
            .await
            .expect("KILL QUERY");
        sent
    };

    let (outcome, kill_sent) = pool.run_until(futures::future::join(query, killer));
    let err = outcome.expect_err("the query was killed");
    println!("query ran {:?} before the kill", kill_sent - started);
    println!("error {} ({}): {}", err.code, err.sqlstate, err.message);
    println!(
        "kill observed {:?} after KILL was sent",
        Instant::now() - kill_sent
    );
    assert_eq!(err.code, 1317);
    if let Some(trace) = err.query_id.and_then(|id| engine.trace(id)) {
        println!("\ntrace of the killed statement:\n{}", trace.to_text());
    }
}
