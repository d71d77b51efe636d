//! The process's memory stays bounded by the budget: the issue's
//! `count(DISTINCT x)` over a large series, under a modest budget, fails
//! with the budget error (1041) before the process grows much past the
//! budget.
//!
//! In its own test binary, so that no other test's allocations show in the
//! process's peak RSS. A watchdog kills the statement once the process has
//! grown past the bound (so that a regression fails this test instead of
//! exhausting the machine's memory).

mod common;
use common::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cascade::{Engine, EngineConfig, StdHost};
use futures::executor::block_on;

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`), on Linux.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn count_distinct_over_a_large_series_stays_within_the_budget() {
    const BUDGET: u64 = 64 << 20;
    // The set and its rehash are inside the budget; the rest (batches, the
    // allocator's slack) is small: well below 4 × the budget. Before the
    // set was budgeted, the process grew without bound.
    const BOUND_KIB: u64 = 4 * BUDGET / 1024;
    let mut config = EngineConfig::new(1, StdHost::shared());
    config.memory_budget = BUDGET;
    let e = Engine::new(config);
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "alice", "member");
    let measurable = status_kib("VmRSS:").is_some();
    let base_rss = status_kib("VmRSS:").unwrap_or(0);
    let base_hwm = status_kib("VmHWM:").unwrap_or(0);

    let done = Arc::new(AtomicBool::new(false));
    let tripped = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, tripped, killer) = (done.clone(), tripped.clone(), killer.clone());
        let vid = victim.id();
        std::thread::spawn(move || {
            let since = std::time::Instant::now();
            while !done.load(Ordering::Acquire) {
                let grown = status_kib("VmRSS:").map_or(0, |r| r.saturating_sub(base_rss));
                // The time guard only matters where RSS cannot be read.
                if grown > BOUND_KIB || since.elapsed() > Duration::from_secs(300) {
                    tripped.store(true, Ordering::Release);
                    let _ = run(&killer, &format!("KILL QUERY {vid}"));
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let res = run(
        &victim,
        "SELECT count(DISTINCT x) FROM generate_series(1, 2000000000) AS g(x)",
    );
    done.store(true, Ordering::Release);
    watchdog.join().expect("watchdog");
    let peak_kib = status_kib("VmHWM:").unwrap_or(0);

    assert!(
        !tripped.load(Ordering::Acquire),
        "the process grew past {BOUND_KIB} KiB (the statement was killed): {res:?}"
    );
    let err = res.expect_err("the budget stops the statement");
    assert_eq!(err.code, 1041, "{err}");
    assert!(
        err.message
            .contains(&format!("memory budget of {BUDGET} bytes exceeded")),
        "{err}"
    );
    assert_eq!(e.memory_in_use(), 0);
    if measurable {
        let grown = peak_kib.saturating_sub(base_hwm.max(base_rss));
        eprintln!(
            "peak RSS grew by {grown} KiB under a budget of {} KiB",
            BUDGET / 1024
        );
        assert!(
            grown < BOUND_KIB,
            "peak RSS grew by {grown} KiB, bound {BOUND_KIB} KiB"
        );
    } else {
        eprintln!("no /proc/self/status on this OS: the RSS bound is not checked here");
    }
    block_on(victim.close());
    block_on(killer.close());
}
