//! Engine benchmark, native side (driven by `benches/engine.sh`).
//!
//! Measures, on one thread, in one run:
//! - throughput: the three reference queries (median of `--runs` runs after
//!   one warm-up), with their results so the script can check that the
//!   peers (DuckDB, DataFusion) computed the same thing;
//! - per-batch context checks: the cost of one `Context::check()` measured
//!   in a tight loop, times the number of checks Q1 makes (read from its
//!   EXPLAIN ANALYZE), as a share of Q1's run time. The A/B side (the same
//!   Q1 in a build without the checks, feature `bench-no-checks`) is run by
//!   the script with `--only q1`;
//! - kill → error latency of every heavy operator: a second thread sends
//!   `KILL QUERY` after a random delay, and the time from just before the
//!   killer's `execute("KILL QUERY n")` to the moment the victim's `execute`
//!   returns error 1317 is recorded; median and p99 over `--kills` kills.
//!
//! - `--sql "…"` (alone, or with `--only`): the median time of one ad hoc
//!   statement, to compare two builds on a query of one's own.
//!
//! Writes JSON to `--out` (default: stdout). Without `--bench` (that is,
//! under `cargo test --benches`) it runs a tiny smoke version only.

use std::fmt::Write as _;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade::{Connection, Context, Engine, EngineConfig, Identity, Reason, StdHost};
use futures::executor::block_on;
use serde_json::{json, Value as Json};

const Q1: &str =
    "SELECT count(*), sum(x) FROM generate_series(1, 100000000) AS t(x) WHERE x % 7 = 0";
const Q2: &str =
    "SELECT x % 1000 AS k, count(*), sum(x) FROM generate_series(1, 20000000) AS t(x) GROUP BY k";
const Q3: &str =
    "SELECT x, x % 1013 AS y FROM generate_series(1, 5000000) AS t(x) ORDER BY y DESC, x LIMIT 10";
/// A star join written as `FROM a, b, c, d WHERE …` (the join planner's
/// shape): a fact table of 2M rows and three dimensions, one filter each.
const Q4: &str = "SELECT count(*), sum(amount) FROM sales, customer, product, store \
     WHERE sales.c_id = customer.c_id AND sales.p_id = product.p_id AND sales.s_id = store.s_id \
     AND customer.region = 1 AND product.cat < 5 AND store.state = 2";
/// Q4's tables (the peers build the same ones, see `benches/engine_bench.py`).
const Q4_SETUP: &[&str] = &[
    "CREATE TABLE sales (id BIGINT, c_id BIGINT, p_id BIGINT, s_id BIGINT, amount BIGINT)",
    "INSERT INTO sales SELECT x, (x * 7) % 49999 + 1, (x * 13) % 1999 + 1, x % 199 + 1, x % 1000 FROM generate_series(1, 2000000) AS t(x)",
    "CREATE TABLE customer (c_id BIGINT, region BIGINT)",
    "INSERT INTO customer SELECT x, x % 5 FROM generate_series(1, 50000) AS t(x)",
    "CREATE TABLE product (p_id BIGINT, cat BIGINT)",
    "INSERT INTO product SELECT x, x % 10 FROM generate_series(1, 2000) AS t(x)",
    "CREATE TABLE store (s_id BIGINT, state BIGINT)",
    "INSERT INTO store SELECT x, x % 4 FROM generate_series(1, 200) AS t(x)",
];

/// Long-running statements of every heavy kind, for the kill latency.
const HEAVY: &[(&str, &str)] = &[
    (
        "scan+aggregate",
        "SELECT count(*), sum(x) FROM generate_series(1, 10000000000) AS t(x) WHERE x % 7 = 0",
    ),
    (
        "group by",
        "SELECT x % 1000 AS k, count(*), sum(x) FROM generate_series(1, 10000000000) AS t(x) GROUP BY k",
    ),
    (
        "group by many",
        "SELECT x, count(*), sum(x) FROM generate_series(1, 10000000000) AS t(x) GROUP BY x",
    ),
    (
        "sort",
        "SELECT x FROM generate_series(1, 3000000) AS t(x) ORDER BY x % 1013 DESC, x",
    ),
    (
        "join",
        "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) JOIN generate_series(1, 300000) AS b(y) ON a.x = b.y",
    ),
    (
        "count distinct",
        "SELECT count(DISTINCT x) FROM generate_series(1, 10000000000) AS t(x)",
    ),
    (
        // Finite: with N pipelines, a kill lands in the merge of their
        // partial sets as often as in the pipelines.
        "count distinct merge",
        "SELECT count(DISTINCT x) FROM generate_series(1, 300000) AS t(x)",
    ),
    (
        "window",
        "SELECT x, sum(x) OVER w, min(x) OVER w, max(x) OVER w, rank() OVER (PARTITION BY x % 1013 ORDER BY x DESC) FROM generate_series(1, 300000) AS t(x) WINDOW w AS (ORDER BY x ROWS BETWEEN 1000 PRECEDING AND 1000 FOLLOWING)",
    ),
    ("sleep", "SELECT sleep(100)"),
    (
        "subquery run",
        "SELECT 1 + (SELECT count(*) FROM generate_series(1, 10000000000) AS b(y) WHERE y % 7 = 0)",
    ),
    (
        "correlated subquery",
        "SELECT count(*) FROM generate_series(1, 10000000000) AS a(x) WHERE EXISTS (SELECT 1 FROM generate_series(1, 100) AS b(y) WHERE b.y > a.x)",
    ),
    (
        "recursive cte",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    ),
    (
        "except",
        "SELECT x % 100000 FROM generate_series(1, 10000000000) AS t(x) EXCEPT SELECT 1",
    ),
];

struct Args {
    runs: usize,
    kills: usize,
    out: Option<String>,
    only: Option<String>,
    kinds: Option<String>,
    /// `--sql "…"`: time this statement instead (ad hoc comparisons).
    sql: Option<String>,
    smoke: bool,
    /// `cascade_threads` of the engine (1: the one-thread table).
    threads: usize,
    /// `--killer-fifo N`: the killing thread runs at `SCHED_FIFO` priority
    /// N (the rest of the process at the priority it was started with,
    /// e.g. `chrt -f 10`): with N pipelines busy on N cores, a killer of
    /// the same FIFO priority would never run.
    killer_fifo: Option<u8>,
}

fn args() -> Args {
    let mut a = Args {
        runs: 5,
        kills: 200,
        out: None,
        only: None,
        kinds: None,
        sql: None,
        smoke: !std::env::args().any(|a| a == "--bench"),
        threads: 1,
        killer_fifo: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let val = argv.get(i + 1).cloned();
        match argv[i].as_str() {
            "--runs" => a.runs = val.and_then(|v| v.parse().ok()).unwrap_or(a.runs),
            "--kills" => a.kills = val.and_then(|v| v.parse().ok()).unwrap_or(a.kills),
            "--out" => a.out = val,
            "--only" => a.only = val,
            "--kinds" => a.kinds = val,
            "--sql" => a.sql = val,
            "--threads" => a.threads = val.and_then(|v| v.parse().ok()).unwrap_or(a.threads),
            "--killer-fifo" => a.killer_fifo = val.and_then(|v| v.parse().ok()),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if a.smoke {
        a.runs = 1;
        a.kills = 2;
    }
    a
}

fn connect(e: &Engine) -> Connection {
    e.connect(Identity::new("bench", "bench", "member"))
        .expect("connect")
}

fn exec(c: &Connection, sql: &str) -> cascade::QueryResult {
    block_on(c.execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// Nearest-rank percentile.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn rows_json(r: &cascade::QueryResult) -> Json {
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(|v| v.to_string()).collect())
        .collect();
    json!(rows)
}

/// Smaller series in smoke mode, so `cargo test --benches` stays quick.
fn scaled(sql: &str, smoke: bool) -> String {
    if !smoke {
        return sql.to_owned();
    }
    sql.replace("10000000000", "3000000")
        .replace("100000000", "20000")
        .replace("20000000", "20000")
        .replace("5000000", "20000")
        .replace("3000000", "20000")
        .replace("300000", "2000")
        .replace("2000000", "20000")
}

/// Creates Q4's tables (once per engine).
fn setup_q4(e: &Engine, smoke: bool) {
    let c = connect(e);
    for sql in Q4_SETUP {
        exec(&c, &scaled(sql, smoke));
    }
}

/// Runs `sql` once to warm up, then `runs` times; wall times in ms.
fn time_query(c: &Connection, sql: &str, runs: usize) -> (Vec<f64>, Json) {
    let warm = exec(c, sql);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let r = exec(c, sql);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.rows, warm.rows, "{sql}: same result every run");
    }
    (times, rows_json(&warm))
}

fn throughput(e: &Engine, a: &Args, which: &[(&str, &str)]) -> Json {
    let c = connect(e);
    let mut out = serde_json::Map::new();
    for (name, sql) in which {
        let sql = scaled(sql, a.smoke);
        let (times, rows) = time_query(&c, &sql, a.runs);
        eprintln!(
            "cascade {name}: median {:.1} ms over {} runs {:?}",
            median(&times),
            times.len(),
            times
                .iter()
                .map(|t| (t * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        out.insert(
            (*name).to_owned(),
            json!({ "sql": sql, "times_ms": times, "median_ms": median(&times), "rows": rows }),
        );
    }
    Json::Object(out)
}

/// The cost of the per-batch context checks in Q1, computed from the cost
/// of one check and the number of checks.
fn check_cost(e: &Engine, a: &Args, q1_median_ms: f64) -> Json {
    let host = StdHost::shared();
    let plain = Context::root(host.clone())
        .node_id(1)
        .build()
        .expect("root");
    let with_deadline = Context::root(host)
        .node_id(1)
        .timeout(
            Duration::from_secs(3600),
            Reason::StatementTimeout {
                limit_ms: 3_600_000,
            },
        )
        .build()
        .expect("root");
    let n: u64 = if a.smoke { 10_000 } else { 50_000_000 };
    let per_check = |ctx: &Context| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(std::hint::black_box(ctx).check()).ok();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        best
    };
    // What the pipeline does per operator and batch: `pipeline::due` with
    // the clock reading its timing took anyway (`Context::check` only when
    // something is due).
    let now = StdHost::shared().now();
    let per_due = |ctx: &Context| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(cascade::pipeline::due(
                    std::hint::black_box(ctx),
                    std::hint::black_box(now),
                ));
            }
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        best
    };
    let api_plain = per_check(&plain);
    let api_deadline = per_check(&with_deadline);
    let ns_plain = per_due(&plain);
    let ns_deadline = per_due(&with_deadline);
    // How many checks Q1 makes: one per `Instrumented::next` call of each
    // operator plus the driver's, per step; a step per scanned batch (+ the
    // end). Read the operators and batches from EXPLAIN ANALYZE.
    let c = connect(e);
    let r = exec(&c, &format!("EXPLAIN ANALYZE {}", scaled(Q1, a.smoke)));
    let text: String = r
        .rows
        .iter()
        .map(|row| row[0].to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let ops = text.matches("-> ").count() as u64;
    let leaf_batches: u64 = text
        .lines()
        .last()
        .and_then(|l| l.split("batches=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let steps = leaf_batches + 3;
    let checks = (ops + 1) * steps;
    let cost_ms = checks as f64 * ns_plain / 1e6;
    let cost_deadline_ms = checks as f64 * ns_deadline / 1e6;
    eprintln!(
        "per-batch check: {ns_plain:.2} ns ({ns_deadline:.2} ns with a deadline; Context::check() {api_plain:.2} / {api_deadline:.2} ns); Q1 makes {checks} checks = {cost_ms:.3} ms = {:.4}% of {q1_median_ms:.1} ms",
        100.0 * cost_ms / q1_median_ms
    );
    json!({
        "ns_per_check": ns_plain,
        "ns_context_check_api": api_plain,
        "ns_context_check_api_with_deadline": api_deadline,
        "ns_per_check_with_deadline": ns_deadline,
        "operators": ops,
        "steps": steps,
        "checks": checks,
        "cost_ms": cost_ms,
        "cost_ms_with_deadline": cost_deadline_ms,
        "q1_median_ms": q1_median_ms,
        "percent": 100.0 * cost_ms / q1_median_ms,
        "percent_with_deadline": 100.0 * cost_deadline_ms / q1_median_ms,
        "explain": text,
    })
}

/// xorshift64*: a deterministic delay generator (no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` µs.
    fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(lo + self.next() % (hi - lo))
    }
}

/// When the victim's `execute` returned, and the result.
type Outcome = (Instant, Result<(), u16>);

/// Kills `sql` `n` times; returns the latencies in µs and how many runs
/// finished before the kill reached them.
fn kill_latencies(
    e: &Engine,
    sql: &str,
    n: usize,
    rng: &mut Rng,
    smoke: bool,
    killer_fifo: Option<u8>,
) -> (Vec<f64>, Vec<f64>, usize) {
    let victim = connect(e);
    let killer = connect(e);
    exec(&victim, "SET cascade_memory_budget = 8000000000");
    // A runaway recursion runs until killed.
    exec(&victim, "SET cte_max_recursion_depth = 4294967295");
    let vid = victim.id();
    let (to_victim, jobs) = mpsc::channel::<Option<String>>();
    let (done, outcomes) = mpsc::channel::<Outcome>();
    let v = victim.clone();
    let worker = std::thread::spawn(move || {
        while let Ok(Some(sql)) = jobs.recv() {
            let r = block_on(v.execute(&sql));
            let t = Instant::now();
            let _ = done.send((t, r.map(|_| ()).map_err(|e| e.code)));
        }
    });
    // The victim's thread (and the host's pool threads, started by its
    // first parallel statement) keep the process's priority.
    let raised = killer_fifo.map(killer_priority);
    let me = Identity::new("bench", "bench", "member");
    let kill = format!("KILL QUERY {vid}");
    let mut lat = Vec::with_capacity(n);
    let mut kill_stmt = Vec::with_capacity(n);
    let mut finished_first = 0;
    while lat.len() < n && finished_first < n {
        // Each kill on a fresh query, once the previous one's buffers have
        // been given back to the OS (see `pipeline::reclaim`): otherwise the
        // unmapping of its pages slows this one's page faults.
        // A pause also keeps a real-time (`chrt`) run of this bench under
        // the kernel's RT throttling limit.
        let settle = Instant::now();
        std::thread::sleep(Duration::from_millis(if smoke { 1 } else { 20 }));
        while cascade::pipeline::reclaim::in_flight() > 0
            && settle.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        to_victim.send(Some(sql.to_owned())).expect("victim alive");
        // Wait until it executes, then let it work for 1–40 ms so that the
        // kill lands in every phase of the operator.
        let wait_from = Instant::now();
        let mut early = None;
        while !e
            .processes(&me)
            .iter()
            .any(|p| p.id == vid && p.state == "executing")
        {
            if let Ok(o) = outcomes.try_recv() {
                early = Some(o);
                break;
            }
            if wait_from.elapsed() > Duration::from_secs(10) {
                panic!("{sql}: never started");
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        if let Some((_, res)) = early {
            assert!(res.is_ok(), "{sql}: {res:?}");
            finished_first += 1;
            continue;
        }
        let delay = if smoke {
            Duration::from_micros(200)
        } else {
            rng.micros(1_000, 40_000)
        };
        std::thread::sleep(delay);
        let t0 = Instant::now();
        let k = block_on(killer.execute(&kill));
        let tk = t0.elapsed().as_secs_f64() * 1e6;
        let (t1, res) = outcomes.recv().expect("victim answered");
        match (k, res) {
            (_, Err(1317)) => {
                lat.push(t1.saturating_duration_since(t0).as_secs_f64() * 1e6);
                kill_stmt.push(tk);
            }
            (_, Ok(())) => finished_first += 1,
            (k, Err(code)) => panic!("{sql}: error {code} instead of 1317 (kill: {k:?})"),
        }
    }
    drop(raised);
    let _ = to_victim.send(None);
    worker.join().expect("victim thread");
    block_on(victim.close());
    block_on(killer.close());
    (lat, kill_stmt, finished_first)
}

/// Puts the calling (killing) thread at `SCHED_FIFO` priority `prio`;
/// gives back a guard that restores its scheduling when dropped (threads
/// it starts meanwhile would inherit the raised priority).
fn killer_priority(prio: u8) -> impl Drop {
    use thread_priority::{
        get_thread_priority, set_thread_priority_and_policy, thread_native_id,
        thread_schedule_policy, RealtimeThreadSchedulePolicy, ScheduleParams, ThreadPriority,
        ThreadSchedulePolicy,
    };
    struct Restore(Option<(ThreadSchedulePolicy, ThreadPriority)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some((policy, prio)) = self.0.take() {
                let _ = set_thread_priority_and_policy(thread_native_id(), prio, policy);
            }
        }
    }
    let before = thread_schedule_policy()
        .ok()
        .zip(get_thread_priority(thread_native_id()).ok());
    let r = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::from_posix(ScheduleParams {
            sched_priority: i32::from(prio),
        }),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    );
    if let Err(e) = r {
        panic!("--killer-fifo {prio}: {e:?} (run under chrt, as root or with CAP_SYS_NICE)");
    }
    Restore(before)
}

fn kills(e: &Engine, a: &Args) -> Json {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = serde_json::Map::new();
    for (kind, sql) in HEAVY {
        if a.kinds
            .as_ref()
            .is_some_and(|k| !k.split(',').any(|k| k == *kind))
        {
            continue;
        }
        let sql = scaled(sql, a.smoke);
        let (lat, stmt, early) = kill_latencies(e, &sql, a.kills, &mut rng, a.smoke, a.killer_fifo);
        let (med, p99, max) = (median(&lat), percentile(&lat, 0.99), percentile(&lat, 1.0));
        let (smed, sp99) = (median(&stmt), percentile(&stmt, 0.99));
        eprintln!(
            "kill {kind}: n={} median {med:.0} µs, p99 {p99:.0} µs, max {max:.0} µs; the KILL statement alone: median {smed:.0} µs, p99 {sp99:.0} µs ({early} finished before the kill)",
            lat.len()
        );
        out.insert(
            (*kind).to_owned(),
            json!({
                "sql": sql, "n": lat.len(), "median_us": med, "p99_us": p99, "max_us": max,
                "kill_stmt_median_us": smed, "kill_stmt_p99_us": sp99,
                "finished_before_kill": early, "latencies_us": lat, "kill_stmt_us": stmt,
            }),
        );
    }
    Json::Object(out)
}

/// The `KILL` statement alone, with no victim thread to wake: `KILL QUERY`
/// of an idle connection (a lookup, a permission check, nothing to cancel)
/// and of a stale statement id, `--kills` × 50 times each, on one thread.
fn kill_statement(e: &Engine, a: &Args) -> Json {
    let victim = connect(e);
    let killer = connect(e);
    let done = exec(&victim, "SELECT 1").query_id;
    let n = a.kills * 50;
    let mut out = serde_json::Map::new();
    for (what, sql) in [
        ("idle", format!("KILL QUERY {}", victim.id())),
        ("stale_id", format!("KILL QUERY {} '{done}'", victim.id())),
    ] {
        let mut us = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let r = block_on(killer.execute(&sql));
            us.push(t0.elapsed().as_secs_f64() * 1e6);
            assert!(r.is_ok(), "{sql}: {r:?}");
        }
        let (med, p99) = (median(&us), percentile(&us, 0.99));
        eprintln!("KILL statement ({what}): n={n} median {med:.2} µs, p99 {p99:.2} µs");
        out.insert(
            what.into(),
            json!({ "sql": sql, "n": n, "median_us": med, "p99_us": p99 }),
        );
    }
    block_on(victim.close());
    block_on(killer.close());
    Json::Object(out)
}

fn main() {
    let a = args();
    let mut config = EngineConfig::new(1, Arc::new(StdHost::with_workers(a.threads)));
    config.threads = a.threads.max(1);
    let engine = Engine::new(config);
    let only = a.only.clone().unwrap_or_else(|| match a.sql {
        Some(_) => String::new(),
        None => "throughput,checks,kills".into(),
    });
    let parts: Vec<&str> = only.split(',').collect();
    let mut report = serde_json::Map::new();
    report.insert("runs".into(), json!(a.runs));
    report.insert("smoke".into(), json!(a.smoke));
    report.insert("threads".into(), json!(a.threads));
    // Single queries (`--only q1`, `--only q1,q2`: the A/B and the
    // scaling runs).
    let singles: Vec<(&str, &str)> = [("q1", Q1), ("q2", Q2), ("q3", Q3)]
        .into_iter()
        .filter(|(name, _)| parts.contains(name))
        .collect();
    if !singles.is_empty() {
        report.insert("throughput".into(), throughput(&engine, &a, &singles));
    }
    if parts.contains(&"q4") {
        setup_q4(&engine, a.smoke);
        report.insert("throughput".into(), throughput(&engine, &a, &[("q4", Q4)]));
    }
    if parts.contains(&"throughput") {
        setup_q4(&engine, a.smoke);
        let t = throughput(
            &engine,
            &a,
            &[("q1", Q1), ("q2", Q2), ("q3", Q3), ("q4", Q4)],
        );
        if parts.contains(&"checks") {
            let q1 = t["q1"]["median_ms"].as_f64().unwrap_or(f64::NAN);
            report.insert("checks".into(), check_cost(&engine, &a, q1));
        }
        report.insert("throughput".into(), t);
    }
    if let Some(sql) = a.sql.clone() {
        let t = throughput(&engine, &a, &[("sql", sql.as_str())]);
        report.insert("sql".into(), t);
    }
    if parts.contains(&"kills") {
        report.insert("kills".into(), kills(&engine, &a));
    }
    if parts.contains(&"kill_statement") {
        report.insert("kill_statement".into(), kill_statement(&engine, &a));
    }
    let mut text = String::new();
    let _ = write!(
        text,
        "{}",
        serde_json::to_string_pretty(&Json::Object(report)).expect("json")
    );
    match &a.out {
        Some(p) => std::fs::write(p, text).expect("write --out"),
        None => println!("{text}"),
    }
}
