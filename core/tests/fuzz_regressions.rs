//! Inputs found by the `cargo fuzz` targets (fuzz/, see scripts/fuzz.sh)
//! that crashed, hung or leaked, replayed through the fuzzer's own harness:
//! each must now return a result or a typed error, finish after a kill, and
//! leave the engine at rest (no process, no memory, no context).

mod fuzz_harness;
use fuzz_harness::*;

#[test]
fn harness_runs_queries_and_kills() {
    let out = run_one("SELECT count(*) FROM t1 JOIN t2 ON t1.a = t2.a");
    assert_eq!(out.ok().map(|r| r.rows.len()), Some(1), "{out:?}");
    let outs = run(
        &[
            "SELECT count(*) FROM generate_series(1, 1000000000000) AS g(x)",
            "SELECT 1",
        ],
        Schedule {
            interrupt: Interrupt::KillQuery,
            at_poll: 5,
            ..Schedule::default()
        },
    );
    assert_eq!(outs[0].code(), Some(1317), "{outs:?}");
    assert!(outs[1].ok().is_some(), "{outs:?}");
}
