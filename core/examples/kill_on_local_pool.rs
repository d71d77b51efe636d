//! Run a query and kill it from a second connection on one thread, with no
//! async runtime: `cargo run -p cascade --example kill_on_local_pool`.

use cascade::{Engine, EngineConfig, Identity, StdHost};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

fn main() {
    let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    let alice = engine
        .connect(Identity::new("acme", "alice", "member"))
        .expect("connect");
    let admin = engine
        .connect(Identity::new("acme", "root", "admin"))
        .expect("connect");
    let mut pool = LocalPool::new();
    let victim = alice.clone();
    let e2 = engine.clone();
    pool.spawner()
        .spawn_local(async move {
            let err = victim
                .execute(
                    "SELECT count(*) FROM generate_series(1, 100000000000) AS t(x) WHERE x % 7 = 0",
                )
                .await
                .expect_err("killed");
            println!("{err}");
            let trace = e2.trace(err.query_id.unwrap_or(0)).expect("trace");
            print!("{}", trace.to_text());
        })
        .expect("spawn");
    pool.spawner()
        .spawn_local(async move {
            // Give it a moment of work, then kill it.
            for _ in 0..50 {
                cascade::host::YieldNow::default().await;
            }
            admin
                .execute(&format!("KILL QUERY {}", alice.id()))
                .await
                .expect("kill");
        })
        .expect("spawn");
    pool.run();
}
