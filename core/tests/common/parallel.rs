//! What the parallel tests share: the two hosts, the comparison of a
//! parallel run with the serial plan, KILLs at random moments.

use super::{conn, ok, rows, run, table};
use cascade::{
    Connection, Engine, EngineConfig, ErrorKind, Host, Level, ManualHost, SpanStatus, StdHost,
};
use futures::executor::block_on;
use std::sync::Arc;
use std::time::Duration;

/// The hosts the parallel plans run on: a 4-worker pool, and inline (the
/// consumer polls every pipeline, as in the browser).
pub fn hosts() -> Vec<(&'static str, Arc<dyn Host>)> {
    vec![
        ("StdHost", Arc::new(StdHost::with_workers(4))),
        ("ManualHost", Arc::new(ManualHost::new())),
    ]
}

/// Each of `queries` as text, with `cascade_threads = threads`.
pub fn results(e: &Engine, threads: usize, queries: &[&str]) -> Vec<String> {
    let c = conn(e, "acme", "alice", "member");
    ok(&c, &format!("SET cascade_threads = {threads}"));
    queries.iter().map(|q| table(&c, q)).collect()
}

/// Fails with the first differing row unless every query's result with
/// `threads` pipelines (`par`) equals the serial plan's (`serial`).
pub fn assert_equal_to_serial(
    what: &str,
    threads: usize,
    queries: &[&str],
    par: &[String],
    serial: &[String],
) {
    for (i, q) in queries.iter().enumerate() {
        if par[i] != serial[i] {
            let (a, b): (Vec<&str>, Vec<&str>) =
                (par[i].split(';').collect(), serial[i].split(';').collect());
            let at = a.iter().zip(&b).position(|(x, y)| x != y);
            panic!(
                "{what}, {threads} threads: {q}: {} rows vs {} serial; first difference at {at:?}: {:?} vs {:?}",
                a.len(),
                b.len(),
                at.and_then(|i| a.get(i)),
                at.and_then(|i| b.get(i))
            );
        }
    }
}

/// Kills `sql` (with 4 pipelines on a 4-worker pool) `runs` times at
/// seeded random moments up to `max_delay_us` from another thread, after
/// `prepare` ran on the victim's connection: each run is killed (1317) or
/// gives the serial plan's result; nothing is held after any; some are
/// killed.
pub fn kill_at_random_moments(
    sql: &str,
    prepare: impl Fn(&Connection),
    runs: usize,
    max_delay_us: u64,
) {
    let e = Engine::new(EngineConfig::new(1, Arc::new(StdHost::with_workers(4))));
    let victim = conn(&e, "acme", "alice", "member");
    prepare(&victim);
    let killer = conn(&e, "acme", "alice", "member");
    ok(&victim, "SET cascade_threads = 1");
    let expected = table(&victim, sql);
    ok(&victim, "SET cascade_threads = 4");
    let vid = victim.id();
    let (mut killed, mut finished) = (0, 0);
    // A fixed-seed xorshift for the delays: reproducible schedules of kills.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..runs {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % max_delay_us);
        let k = killer.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(delay);
            // The kill may find the connection idle (then it is not
            // applied to the next statement).
            let _ = block_on(k.execute(&format!("KILL QUERY {vid}")));
        });
        match run(&victim, sql) {
            Ok(r) => {
                finished += 1;
                let got = rows(&r)
                    .iter()
                    .map(|r| r.join("|"))
                    .collect::<Vec<_>>()
                    .join(";");
                assert_eq!(got, expected, "a result that is not killed is right: {sql}");
            }
            Err(err) => {
                killed += 1;
                assert_eq!(err.kind, ErrorKind::Canceled, "{sql}: {err}");
                assert_eq!(err.code, 1317, "{sql}: {err}");
                // Its trace is complete when the error is back: the
                // statement's, its pipelines' and their operators' spans
                // are closed (the pipelines close theirs on their own
                // threads when the whole statement is cancelled).
                let qid = err.query_id.expect("the statement's id");
                let t = e.trace(qid).expect("its trace");
                let open: Vec<&str> = t
                    .spans
                    .iter()
                    .filter(|s| s.level >= Level::Query && s.end.is_none())
                    .map(|s| s.name.as_str())
                    .collect();
                assert!(open.is_empty(), "{sql}: spans left open: {open:?}");
                let query = t.spans.iter().find(|s| s.id == t.focus);
                assert!(
                    query.is_some_and(|q| matches!(q.status, SpanStatus::Canceled { .. })),
                    "{sql}: the statement's span says it was cancelled"
                );
            }
        }
        let _ = t.join();
        assert_eq!(
            e.memory_in_use(),
            0,
            "nothing held after the statement: {sql}"
        );
    }
    println!("{killed} killed, {finished} finished: {sql}");
    assert_eq!(killed + finished, runs);
    assert!(killed > 0, "some statements were killed: {sql}");
}
