//! StdHost's worker pool under more long-running parallel statements than
//! workers (issue 11): every statement's pipelines get their turn.
//!
//! With `futures`' `ThreadPool` (before the fair pool), a pipeline that
//! yields by waking itself was polled again at once on the same worker, so
//! two statements running until KILLed kept both workers of a 2-worker pool
//! and a third statement's pipelines never ran: its consumer waited on the
//! exchange forever. The watchdog turns that hang into a failure with a
//! message; no timing is asserted.

mod common;
use common::*;

use cascade::{Engine, EngineConfig, ErrorKind, Host, HostFuture, Instant, StdHost};
use futures::executor::block_on;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Only turns a hang into a failure: nothing here is timed.
const WATCHDOG: Duration = Duration::from_secs(180);

/// A StdHost that counts the pipelines it was asked to spawn.
struct Counting {
    inner: StdHost,
    spawned: AtomicUsize,
}

impl Host for Counting {
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn unix_micros(&self) -> i64 {
        self.inner.unix_micros()
    }
    fn sleep_until(&self, deadline: Instant) -> HostFuture {
        self.inner.sleep_until(deadline)
    }
    fn yield_now(&self) -> HostFuture {
        self.inner.yield_now()
    }
    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        let r = self.inner.spawn(fut);
        if r.is_ok() {
            self.spawned.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }
}

/// Waits (polling) until `cond` holds, or fails with `what` after the
/// watchdog's bound.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < WATCHDOG, "hang: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A statement that runs until it is killed: a parallel count over a
/// series of 2^62 values.
const ENDLESS: &str =
    "SELECT count(*), sum(x % 7) FROM generate_series(1, 4611686018427387904) AS t(x)";

/// The aggregate that must complete while the endless ones hold the pool.
const FINITE: &str =
    "SELECT x % 97 AS k, count(*), sum(x), min(x), max(x) FROM generate_series(1, 200000) AS t(x) GROUP BY k";

#[test]
fn more_long_parallel_statements_than_workers_do_not_starve_a_third() {
    let host = Arc::new(Counting {
        inner: StdHost::with_workers(2),
        spawned: AtomicUsize::new(0),
    });
    let e = Engine::new(EngineConfig::new(1, host.clone() as Arc<dyn Host>));
    let admin = conn(&e, "acme", "alice", "member");
    // The expected result: the serial plan's.
    ok(&admin, "SET cascade_threads = 1");
    let expected = table(&admin, FINITE);
    assert_eq!(host.spawned.load(Ordering::SeqCst), 0, "serial: no spawn");

    // Two statements with two pipelines each, running until KILLed: one
    // pipeline on the pool, one on the statement's thread.
    let mut long = Vec::new();
    for _ in 0..2 {
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "SET cascade_threads = 2");
        let id = c.id();
        let before = host.spawned.load(Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let _ = tx.send(block_on(c.execute(ENDLESS)));
        });
        // Its second pipeline is queued on the pool before the next
        // statement starts (the first runs on the statement's own thread):
        // the two endless statements hold both workers.
        wait_until("the endless statement spawns its pipeline", || {
            host.spawned.load(Ordering::SeqCst) > before
        });
        long.push((id, rx, t));
    }

    // A third parallel statement must complete, with the serial result.
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "SET cascade_threads = 2");
    let (tx, rx) = mpsc::channel();
    let third = std::thread::spawn(move || {
        let r = block_on(c.execute(FINITE));
        let _ = tx.send(r);
    });
    let outcome = rx.recv_timeout(WATCHDOG);
    let starved = outcome.is_err();
    // Whatever happened, stop the endless statements (this also frees the
    // old pool's workers, so a failing run ends instead of hanging).
    for (id, _, _) in &long {
        ok(&admin, &format!("KILL QUERY {id}"));
    }
    for (_, rx, t) in long {
        let r = rx.recv_timeout(WATCHDOG).expect("a killed statement ends");
        let err = r.expect_err("an endless statement only ends when killed");
        assert_eq!(err.kind, ErrorKind::Canceled, "{err}");
        assert_eq!(err.code, 1317, "{err}");
        let _ = t.join();
    }
    assert!(
        !starved,
        "starvation: a parallel statement made no progress in {WATCHDOG:?} while two long \
         statements held the pool's two workers (their pipelines re-polled on the same \
         thread instead of going to the back of the queue)"
    );
    let r = outcome
        .expect("checked above")
        .expect("the third statement");
    let got = rows(&r)
        .iter()
        .map(|r| r.join("|"))
        .collect::<Vec<_>>()
        .join(";");
    assert_eq!(got, expected, "the right result, in the serial order");
    let _ = third.join();
    // One pipeline of each of the three statements went to the pool.
    assert_eq!(host.spawned.load(Ordering::SeqCst), 3);
    assert_eq!(e.memory_in_use(), 0);
}
