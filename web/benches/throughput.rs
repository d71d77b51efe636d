//! Native side of the browser-vs-native throughput budget: runs the
//! queries of `queries.json` on the engine with the std host and prints the
//! median engine-reported time of each (the browser side runs the same file
//! in the playground's worker: `node tests/e2e/measure.mjs`).
//!
//! ```text
//! cargo bench -p cascade-web --bench throughput            # prints JSON
//! ```
//!
//! Without `--bench` (as under `cargo test --all-targets`) it runs each
//! query once on a small table, as a smoke test.

/// The browser side lives in tests/e2e/measure.mjs.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::time::Duration;

    use cascade::{Engine, EngineConfig, Identity, StdHost};
    use futures::executor::block_on;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Workload {
        setup: Vec<String>,
        queries: Vec<Query>,
    }

    #[derive(Deserialize)]
    struct Query {
        name: String,
        sql: String,
    }

    pub fn main() {
        let bench = std::env::args().any(|a| a == "--bench");
        let mut workload: Workload =
            serde_json::from_str(include_str!("queries.json")).expect("queries.json");
        let rounds = if bench { 9 } else { 1 };
        if !bench {
            for s in &mut workload.setup {
                *s = s.replace("1000000", "1000");
            }
            for q in &mut workload.queries {
                q.sql = q.sql.replace("5000000", "5000");
            }
        }
        let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
        let conn = engine
            .connect(Identity::new("acme", "bench", "member"))
            .expect("connect");
        for s in &workload.setup {
            block_on(conn.execute(s)).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        let mut out = serde_json::Map::new();
        for q in &workload.queries {
            let mut times: Vec<Duration> = (0..rounds)
                .map(|_| {
                    block_on(conn.execute(&q.sql))
                        .unwrap_or_else(|e| panic!("{}: {e}", q.sql))
                        .elapsed
                })
                .collect();
            times.sort();
            let median_ms = times[times.len() / 2].as_secs_f64() * 1e3;
            out.insert(q.name.clone(), median_ms.into());
        }
        println!("{}", serde_json::Value::Object(out));
    }
}
