//! Stress (issue 11): more parallel statements than workers, at once, each
//! killed at a seeded random moment from another thread (or not killed):
//! no hang (a watchdog turns one into a failure), the right result when
//! not killed, 1317 when killed, `memory_in_use() == 0` at the end and
//! every connection usable after.

mod common;
use common::*;

use cascade::{Engine, EngineConfig, ErrorKind, StdHost};
use futures::executor::block_on;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Only turns a hang into a failure: nothing is timed.
const WATCHDOG: Duration = Duration::from_secs(300);

const SQL: &[&str] = &[
    "SELECT x % 100 AS k, count(*), sum(x) FROM generate_series(1, 120000) AS t(x) GROUP BY k",
    "SELECT count(*), sum(x), min(x), max(x) FROM generate_series(1, 150000) AS t(x) WHERE x % 3 = 0",
    "SELECT x % 7 AS k, count(DISTINCT x % 1000) FROM generate_series(1, 100000) AS t(x) GROUP BY k",
];

#[test]
fn parallel_statements_killed_at_random_moments_from_other_threads() {
    // 2 workers, 4 statements at a time with 3 pipelines each.
    let e = Engine::new(EngineConfig::new(1, Arc::new(StdHost::with_workers(2))));
    let admin = conn(&e, "acme", "alice", "member");
    ok(&admin, "SET cascade_threads = 1");
    let expected: Vec<String> = SQL.iter().map(|q| table(&admin, q)).collect();

    let victims = 4;
    let rounds = 16;
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for v in 0..victims {
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "SET cascade_threads = 3");
        let killer = conn(&e, "acme", "alice", "member");
        let expected = expected.clone();
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            // Seeded xorshift per victim: reproducible kill delays.
            let mut seed =
                0x9E37_79B9_7F4A_7C15u64 ^ (v as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
            let (mut killed, mut finished) = (0u32, 0u32);
            for round in 0..rounds {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let q = (v + round) % SQL.len();
                // Every fourth statement is not killed at all; the others
                // 0–6 ms in (the statements take a few ms: with 0–60 ms only
                // ~4 of 64 were killed, and `killed > 0` could fail).
                let kill = (seed % 4 != 0).then(|| Duration::from_micros(seed % 6_000));
                let id = c.id();
                let k = killer.clone();
                let t = kill.map(|delay| {
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        // It may find the connection idle: then nothing
                        // is killed.
                        let _ = block_on(k.execute(&format!("KILL QUERY {id}")));
                    })
                });
                match block_on(c.execute(SQL[q])) {
                    Ok(r) => {
                        finished += 1;
                        let got = rows(&r)
                            .iter()
                            .map(|r| r.join("|"))
                            .collect::<Vec<_>>()
                            .join(";");
                        assert_eq!(got, expected[q], "victim {v} round {round}: {}", SQL[q]);
                    }
                    Err(err) => {
                        killed += 1;
                        assert!(kill.is_some(), "victim {v} round {round}: {err}");
                        assert_eq!(err.kind, ErrorKind::Canceled, "{err}");
                        assert_eq!(err.code, 1317, "{err}");
                    }
                }
                if let Some(t) = t {
                    let _ = t.join();
                }
                // The connection works on.
                assert_eq!(cell(&c, "SELECT 1"), "1");
            }
            let _ = tx.send((killed, finished));
        }));
    }
    drop(tx);
    let (mut killed, mut finished) = (0, 0);
    for _ in 0..victims {
        match rx.recv_timeout(WATCHDOG) {
            Ok((k, f)) => {
                killed += k;
                finished += f;
            }
            // A victim panicked (its sender is gone): joined below.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("hang: a victim did not finish its rounds in {WATCHDOG:?}")
            }
        }
    }
    for t in threads {
        assert!(t.join().is_ok(), "a victim's assertion failed");
    }
    println!("{killed} killed, {finished} finished");
    assert_eq!(killed + finished, victims as u32 * rounds as u32);
    assert!(killed > 0, "some statements were killed");
    assert!(finished > 0, "some statements finished");
    assert_eq!(e.memory_in_use(), 0, "nothing held after the statements");
}
