//! Cancel → a future waiting on another thread is woken: latency from just
//! before the cancel call to the waiter running again, for cascade's
//! `Context::cancelled()`, tokio-util's `CancellationToken::cancelled()` and
//! a bare `std::thread` park/unpark (the physical floor).
//!
//! ```text
//! cargo bench -p cascade --bench wake_latency
//! ```
//!
//! Criterion reports means and medians, not tails, so this is a plain timing
//! loop. Each round hands the waiter thread a fresh context (token, flag),
//! lets it block (both futures run under `futures::executor::block_on`,
//! which parks the thread), then cancels from the main thread. The three
//! kinds take turns round by round, in rotating order, so that noise from
//! the rest of the machine falls on all of them alike. Prints median, p90,
//! p99 and max, and leaves the numbers in `target/criterion/wake_latency.json`
//! for the table of `benches/contexts.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cascade::{Context, Identity, Level, Reason, StdHost};
use tokio_util::sync::CancellationToken;

mod support;

enum Job {
    Cascade(Context),
    Tokio(CancellationToken),
    Park(Arc<AtomicBool>),
    Stop,
}

const KINDS: [&str; 3] = ["cascade", "tokio", "park_unpark"];

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Blocks on `fut` (`futures::executor::block_on`, which parks the thread)
/// and returns the time at which it was first polled ready.
fn woken_at<F: Future>(fut: F) -> Instant {
    let mut fut = std::pin::pin!(fut);
    futures::executor::block_on(std::future::poll_fn(|cx| {
        fut.as_mut().poll(cx).map(|_| Instant::now())
    }))
}

fn main() {
    let bench = support::bench_mode();
    let rounds: usize = std::env::var("WAKE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 4_000 } else { 50 });

    let root = Context::root(StdHost::shared()).node_id(1).build().unwrap();
    let conn = root
        .child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(1)
        .session_id(1)
        .build()
        .unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    let tokio_parent = CancellationToken::new();

    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Instant>();
    let ready = Arc::new(AtomicBool::new(false));
    let waiter_ready = ready.clone();
    let waiter = thread::spawn(move || {
        while let Ok(job) = job_rx.recv() {
            // The time is read in the poll that sees the cancellation, before
            // anything is dropped: the wake-up alone is measured.
            let woke = match job {
                Job::Cascade(ctx) => {
                    let fut = ctx.cancelled();
                    waiter_ready.store(true, Ordering::Release);
                    woken_at(fut)
                }
                Job::Tokio(token) => {
                    let fut = token.cancelled();
                    waiter_ready.store(true, Ordering::Release);
                    woken_at(fut)
                }
                Job::Park(flag) => {
                    waiter_ready.store(true, Ordering::Release);
                    while !flag.load(Ordering::Acquire) {
                        thread::park();
                    }
                    Instant::now()
                }
                Job::Stop => return,
            };
            done_tx.send(woke).unwrap();
        }
    });
    let waiter_thread = waiter.thread().clone();

    let mut samples: [Vec<u64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let kind = (round + k) % 3;
            ready.store(false, Ordering::Relaxed);
            // What to cancel, built fresh for every round.
            let fire: Box<dyn FnOnce()> = match kind {
                0 => {
                    let q = req
                        .child(Level::Query)
                        .statement_id(round as u64)
                        .build()
                        .unwrap();
                    job_tx.send(Job::Cascade(q.clone())).unwrap();
                    Box::new(move || {
                        q.cancel(Reason::Requested);
                    })
                }
                1 => {
                    let t = tokio_parent.child_token();
                    job_tx.send(Job::Tokio(t.clone())).unwrap();
                    Box::new(move || t.cancel())
                }
                _ => {
                    let flag = Arc::new(AtomicBool::new(false));
                    job_tx.send(Job::Park(flag.clone())).unwrap();
                    let th = waiter_thread.clone();
                    Box::new(move || {
                        flag.store(true, Ordering::Release);
                        th.unpark();
                    })
                }
            };
            while !ready.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            // Let the waiter get to sleep.
            thread::sleep(Duration::from_micros(100));
            let start = Instant::now();
            fire();
            let woke = done_rx.recv().unwrap();
            samples[kind].push(woke.saturating_duration_since(start).as_nanos() as u64);
        }
    }
    job_tx.send(Job::Stop).unwrap();
    waiter.join().unwrap();

    println!("cancel → wake on another thread ({rounds} rounds each, interleaved)");
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10}",
        "", "median", "p90", "p99", "max"
    );
    let mut json = serde_json::Map::new();
    for (kind, s) in KINDS.iter().zip(samples.iter_mut()) {
        s.sort_unstable();
        let (p50, p90, p99, max) = (
            percentile(s, 0.5),
            percentile(s, 0.9),
            percentile(s, 0.99),
            *s.last().unwrap(),
        );
        let us = |ns: u64| format!("{:.2} µs", ns as f64 / 1e3);
        println!(
            "{:<12} {:>10} {:>10} {:>10} {:>10}",
            kind,
            us(p50),
            us(p90),
            us(p99),
            us(max)
        );
        json.insert(
            (*kind).into(),
            serde_json::json!({ "p50_ns": p50, "p90_ns": p90, "p99_ns": p99, "max_ns": max, "n": s.len() }),
        );
    }
    let c99 = json["cascade"]["p99_ns"].as_f64().unwrap();
    let t99 = json["tokio"]["p99_ns"].as_f64().unwrap();
    let f99 = json["park_unpark"]["p99_ns"].as_f64().unwrap();
    println!(
        "p99 ratios: cascade / tokio = {:.2}×, cascade / park-unpark = {:.2}×",
        c99 / t99,
        c99 / f99
    );
    if bench {
        let path = support::wake_results();
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        std::fs::write(&path, serde_json::Value::Object(json).to_string()).unwrap();
        println!("(written to {})", path.display());
    }
}
