//! A tiny driver for instruction counting (`valgrind --tool=callgrind`):
//! `derive_drop_count cascade|tokio N` derives and drops N children of a
//! Request (cascade: a Query with its statement id) or N `child_token()`s.
//! Run it with N and with 0 and divide the difference by N for the
//! instructions per derive + drop (docs/bench-core.md).
//!
//! `derive_drop_count time ROUNDS` instead times both in alternating
//! batches of 5,000 (the method of `benches/contexts.rs`'s interleaved
//! table) and prints the medians and their ratio.

use std::hint::black_box;

use cascade::{Context, Identity, Level, StdHost};
use tokio_util::sync::CancellationToken;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "cascade".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let root = Context::root(StdHost::shared()).node_id(1).build().unwrap();
    let conn = root
        .child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(1)
        .session_id(1)
        .build()
        .unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    let token = CancellationToken::new().child_token();
    match kind.as_str() {
        "cascade" => {
            for i in 0..n {
                let q = req.child(Level::Query).statement_id(i).build().unwrap();
                drop(black_box(q));
            }
        }
        "tokio" => {
            for _ in 0..n {
                drop(black_box(token.child_token()));
            }
        }
        "time" => {
            let rounds = usize::try_from(n).unwrap_or(200).max(1);
            let batch = 5_000u32;
            let mut samples = [Vec::new(), Vec::new()];
            let mut k = 0u64;
            for round in 0..rounds {
                for j in 0..2 {
                    let which = (round + j) % 2;
                    let t = std::time::Instant::now();
                    for _ in 0..batch {
                        if which == 0 {
                            k += 1;
                            let q = req.child(Level::Query).statement_id(k).build().unwrap();
                            drop(black_box(q));
                        } else {
                            drop(black_box(token.child_token()));
                        }
                    }
                    samples[which].push(t.elapsed().as_nanos() as f64 / f64::from(batch));
                }
            }
            let [mut c, mut t] = samples;
            c.sort_by(f64::total_cmp);
            t.sort_by(f64::total_cmp);
            let (c, t) = (c[c.len() / 2], t[t.len() / 2]);
            println!("cascade {c:.1} ns  tokio {t:.1} ns  ratio {:.2}", c / t);
        }
        other => eprintln!("unknown kind {other}: cascade or tokio"),
    }
}
