//! Parallel statements under ManualHost's seeded scheduler (issue 11): the
//! pipelines run on the test's one thread, interleaved with the statement
//! in an order drawn from a seed, reproducible by seed. Many seeds, the
//! same results as the serial plan; KILL and a failing pipeline at seeded
//! points: the right error, no pipeline left, `memory_in_use() == 0`.

mod common;
use common::*;
mod parallel_common;
use parallel_common::{setup, QUERIES};

use cascade::host::YieldNow;
use cascade::pipeline::YieldPolicy;
use cascade::{Connection, Engine, EngineConfig, ManualHost, QueryError, QueryResult};
use std::sync::Arc;
use std::time::Duration;

/// A seeded host and an engine on it whose pipelines yield every two
/// steps (the clock never moves, so only the step count makes them yield):
/// many scheduling points per statement.
fn seeded(seed: u64) -> (Arc<ManualHost>, Engine) {
    let host = Arc::new(ManualHost::with_seed(seed));
    let mut config = EngineConfig::new(1, host.clone());
    config.yield_policy = YieldPolicy {
        every_steps: 2,
        every: Duration::from_secs(3600),
    };
    (host, Engine::new(config))
}

/// Runs `sql` on the seeded scheduler; then no pipeline is left and no
/// memory is held.
fn exec(
    host: &ManualHost,
    e: &Engine,
    c: &Connection,
    sql: &str,
) -> Result<QueryResult, QueryError> {
    let r = host.block_on(c.execute(sql));
    assert_eq!(host.spawned_pending(), 0, "a pipeline outlived: {sql}");
    assert_eq!(e.memory_in_use(), 0, "memory held after: {sql}");
    r
}

fn text(r: &QueryResult) -> String {
    rows(r)
        .iter()
        .map(|r| r.join("|"))
        .collect::<Vec<_>>()
        .join(";")
}

/// xorshift64: the test's own seeded choices (threads, kill points).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn many_seeds_give_the_serial_results() {
    let mut fingerprints = std::collections::BTreeSet::new();
    let mut serial: Option<Vec<String>> = None;
    for seed in 0..12u64 {
        let (host, e) = seeded(seed);
        let c = conn(&e, "acme", "alice", "member");
        setup(&c);
        if serial.is_none() {
            ok(&c, "SET cascade_threads = 1");
            serial = Some(
                QUERIES
                    .iter()
                    .map(|q| text(&exec(&host, &e, &c, q).expect(q)))
                    .collect(),
            );
        }
        let expected = serial.as_ref().expect("computed above");
        // 2..=7 pipelines, by seed.
        let n = 2 + seed % 6;
        ok(&c, &format!("SET cascade_threads = {n}"));
        let before = host.schedule_fingerprint();
        for (i, q) in QUERIES.iter().enumerate() {
            let got = text(&exec(&host, &e, &c, q).unwrap_or_else(|err| panic!("{q}: {err}")));
            assert_eq!(got, expected[i], "seed {seed}, {n} pipelines: {q}");
        }
        let after = host.schedule_fingerprint();
        assert!(after.1 > before.1, "the statements ran on the scheduler");
        fingerprints.insert(after.0);
    }
    assert!(fingerprints.len() > 1, "seeds give different schedules");
}

#[test]
fn a_seed_reproduces_its_schedule() {
    let sql = QUERIES[1];
    let run = |seed: u64| {
        let (host, e) = seeded(seed);
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "SET cascade_threads = 4");
        let r = text(&exec(&host, &e, &c, sql).expect(sql));
        (r, host.schedule_fingerprint())
    };
    let (r1, f1) = run(42);
    let (r2, f2) = run(42);
    let (r3, f3) = run(43);
    assert_eq!(r1, r2);
    assert_eq!(r1, r3);
    assert_eq!(f1, f2, "the same seed, the same schedule, poll for poll");
    assert_ne!(f1.0, f3.0, "another seed, another schedule");
}

#[test]
fn kill_at_seeded_points() {
    let sql =
        "SELECT x % 100 AS k, count(*), sum(x) FROM generate_series(1, 100000) AS t(x) GROUP BY k";
    let (mut killed, mut finished) = (0, 0);
    let mut expected = None;
    let mut polls_per_run = 0;
    for seed in 0..24u64 {
        let (host, e) = seeded(seed);
        let victim = conn(&e, "acme", "alice", "member");
        let killer = conn(&e, "acme", "alice", "member");
        if expected.is_none() {
            ok(&victim, "SET cascade_threads = 1");
            expected = Some(text(&ok(&victim, sql)));
            ok(&victim, "SET cascade_threads = 4");
            let p0 = host.schedule_fingerprint().1;
            let r = exec(&host, &e, &victim, sql).expect(sql);
            assert_eq!(Some(text(&r)), expected);
            polls_per_run = host.schedule_fingerprint().1 - p0;
        }
        ok(&victim, "SET cascade_threads = 4");
        // The killer yields a seeded number of times (up to about twice
        // the polls of a whole run), then kills: before the statement
        // starts, during its pipelines, its merge, or after it ended.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let yields = next(&mut x) % (polls_per_run.max(1) * 2);
        let vid = victim.id();
        let kill = async {
            for _ in 0..yields {
                YieldNow::default().await;
            }
            // It may find the connection idle (then nothing is killed).
            let _ = killer.execute(&format!("KILL QUERY {vid}")).await;
        };
        let (r, ()) = host.block_on(futures::future::join(victim.execute(sql), kill));
        assert_eq!(
            host.spawned_pending(),
            0,
            "seed {seed}: a pipeline outlived the query"
        );
        assert_eq!(e.memory_in_use(), 0, "seed {seed}: memory held");
        match r {
            Ok(r) => {
                finished += 1;
                assert_eq!(
                    Some(text(&r)),
                    expected,
                    "seed {seed}: a result not killed is right"
                );
            }
            Err(err) => {
                killed += 1;
                assert_eq!(err.code, 1317, "seed {seed}: {err}");
            }
        }
        // The connection works on.
        assert_eq!(cell(&victim, "SELECT 1"), "1");
    }
    assert!(
        killed > 0 && finished > 0,
        "killed {killed}, finished {finished}"
    );
}

#[test]
fn a_failing_pipeline_at_seeded_points() {
    for seed in 0..16u64 {
        let (host, e) = seeded(seed);
        let c = conn(&e, "acme", "alice", "member");
        let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let n = 2 + next(&mut x) % 5;
        let bad = 1 + next(&mut x) % 100_000;
        ok(&c, &format!("SET cascade_threads = {n}"));
        // One row, at a seeded place in the scan, overflows BIGINT (1690).
        let sql = format!(
            "SELECT x % 10 AS k, count(*) FROM generate_series(1, 100000) AS t(x) \
             WHERE CASE WHEN x = {bad} THEN x * 9223372036854775807 ELSE 0 END = 0 GROUP BY k"
        );
        let err = exec(&host, &e, &c, &sql).expect_err("overflow");
        assert_eq!(
            err.code, 1690,
            "seed {seed} ({n} pipelines, row {bad}): {err}"
        );
        assert_eq!(cell(&c, "SELECT 1"), "1");
    }
}

#[test]
fn dropping_a_statement_future_stops_its_pipelines() {
    // A parallel statement that only ends when stopped, whose future the
    // caller drops half-way (a client that gave up): its pipelines must
    // end too, not run on without their consumer.
    let endless =
        "SELECT count(*), sum(x % 7) FROM generate_series(1, 4611686018427387904) AS t(x)";
    for seed in 0..8u64 {
        let (host, e) = seeded(seed);
        let c = conn(&e, "acme", "alice", "member");
        ok(&c, "SET cascade_threads = 3");
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let yields = 1 + next(&mut x) % 200;
        let give_up = async {
            for _ in 0..yields {
                YieldNow::default().await;
            }
        };
        let statement = Box::pin(c.execute(endless));
        let outcome = host.block_on(futures::future::select(statement, Box::pin(give_up)));
        assert!(
            matches!(outcome, futures::future::Either::Right(_)),
            "seed {seed}: the endless statement ended by itself"
        );
        drop(outcome);
        // The consumer is gone: every pipeline ends at its next poll (a
        // bound counted in polls, not time).
        host.block_on(async {
            for _ in 0..10_000 {
                if host.spawned_pending() == 0 {
                    break;
                }
                YieldNow::default().await;
            }
        });
        assert_eq!(
            host.spawned_pending(),
            0,
            "seed {seed}: pipelines run on after their statement's future was dropped"
        );
        assert_eq!(e.memory_in_use(), 0, "seed {seed}");
        assert_eq!(cell(&c, "SELECT 1"), "1");
    }
}
