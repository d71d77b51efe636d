//! Runs SQL requests the way the fuzzer does, so that a crashing input found
//! by `cargo fuzz` replays as a plain `#[test]`.
//!
//! Shared by the fuzz targets (`fuzz/src/lib.rs` includes this file with
//! `#[path]`) and by `core/tests/fuzz_regressions.rs`.
//!
//! Every request runs on an engine with a [`ManualHost`]: its future is
//! polled by hand with a no-op waker and the clock moves a fixed step after
//! every poll, so timeouts and `SLEEP` are deterministic. At a chosen poll
//! an [`Interrupt`] fires (a second connection's `KILL QUERY` or `KILL
//! CONNECTION`, a client disconnect, the future dropped half-way, engine
//! shutdown). A watchdog kills a request that is still running after a
//! bound, and panics if it still does not finish: a hang is a bug.
//!
//! After the last request every connection is closed and the engine must be
//! back to rest: no process, no reserved memory, no context below the root.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cascade::pipeline::YieldPolicy;
use cascade::{
    Connection, Engine, EngineConfig, ExecOptions, Identity, ManualHost, QueryError, QueryResult,
    Reason,
};

/// What happens at the chosen poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Nothing (the watchdog still applies).
    None,
    /// `KILL QUERY <victim>` from a second connection.
    KillQuery,
    /// `KILL CONNECTION <victim>` from a second connection.
    KillConnection,
    /// The victim's client goes away (`Connection::disconnect`).
    Disconnect,
    /// The request's future is dropped half-way (a server task aborted).
    DropFuture,
    /// `Engine::shutdown`.
    Shutdown,
}

impl Interrupt {
    /// All of them, for choosing from a byte.
    pub const ALL: [Interrupt; 6] = [
        Interrupt::None,
        Interrupt::KillQuery,
        Interrupt::KillConnection,
        Interrupt::Disconnect,
        Interrupt::DropFuture,
        Interrupt::Shutdown,
    ];
}

/// When and how a run is interrupted.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// The interruption.
    pub interrupt: Interrupt,
    /// It fires after this many polls, counted over all requests of the run.
    pub at_poll: u32,
    /// Host time that passes after every poll.
    pub step_us: u32,
    /// `ExecOptions::timeout` of every request in ms (0: none).
    pub timeout_ms: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interrupt: Interrupt::None,
            at_poll: 0,
            step_us: 1000,
            timeout_ms: 0,
        }
    }
}

impl Schedule {
    /// Reads a schedule from the first 4 bytes of a fuzz input; returns it
    /// and the rest.
    pub fn from_prefix(data: &[u8]) -> (Schedule, &[u8]) {
        if data.len() < 4 {
            return (Schedule::default(), data);
        }
        let (head, rest) = data.split_at(4);
        let interrupt = Interrupt::ALL[usize::from(head[0]) % Interrupt::ALL.len()];
        let at_poll = u32::from(u16::from_le_bytes([head[1], head[2]]) % 512);
        let timeout_ms = match head[3] {
            0..=127 => 0,
            b => u32::from(b - 127),
        };
        let s = Schedule {
            interrupt,
            at_poll,
            step_us: 1000,
            timeout_ms,
        };
        (s, rest)
    }
}

/// Polls of one request before the watchdog sends `KILL QUERY`.
pub const WATCHDOG_POLLS: u32 = 300;
/// Polls after the watchdog's `KILL QUERY` before it sends `KILL CONNECTION`.
pub const KILL_GRACE_POLLS: u32 = 100;
/// Wall time one poll may take: a longer one means an operator does not
/// yield (a kill would wait that long).
pub const MAX_POLL: Duration = Duration::from_secs(2);

/// What one request did.
#[derive(Debug)]
pub enum Outcome {
    /// It finished.
    Done(Result<QueryResult, QueryError>),
    /// Its future was dropped half-way.
    Dropped,
}

impl Outcome {
    /// The error code, if it failed.
    pub fn code(&self) -> Option<u16> {
        match self {
            Outcome::Done(Err(e)) => Some(e.code),
            _ => None,
        }
    }
    /// The result, if it succeeded.
    pub fn ok(&self) -> Option<&QueryResult> {
        match self {
            Outcome::Done(Ok(r)) => Some(r),
            _ => None,
        }
    }
}

/// Statements at the edges of the grammar (broken, unsupported, odd
/// values): the structured fuzz target mixes them in, and
/// `fuzz_regressions.rs` runs each of them under every interruption.
pub const EDGE_STATEMENTS: &[&str] = &[
    "",
    ";",
    "SELECT",
    "SELEC 1",
    "SELECT 1 +",
    "(",
    "SET",
    "KILL",
    "SELECT * FROM t1, t2",
    "SELECT a FROM t1 WHERE a IN (SELECT a FROM t2)",
    "SELECT EXISTS (SELECT 1)",
    "SELECT sum(count(*)) FROM t1",
    "SELECT a FROM t1 WHERE count(*) > 1",
    "SELECT count(*) FROM t1 HAVING count(*) > 1",
    "SELECT a AS k, count(*) FROM t1 GROUP BY k HAVING k > 1 ORDER BY k",
    "SELECT count(DISTINCT a, b) FROM t1",
    "SELECT DISTINCT * FROM t1 ORDER BY 3 DESC, 1",
    "SELECT * FROM t1 ORDER BY NULL",
    "SELECT * FROM t1 LIMIT 1, 2",
    "SELECT * FROM t1 LIMIT -1",
    "SELECT * FROM t1 LIMIT 18446744073709551615",
    "SELECT 'abc' + 1, '12' * '3', ' 4 ' - 1, 'x' = 0",
    "SELECT 'a%' LIKE 'a\\%' ESCAPE '\\'",
    "SELECT b FROM t1 WHERE b LIKE '%' ESCAPE '|'",
    "SELECT 2 BETWEEN 'a' AND 'z', 'b' BETWEEN 1 AND 3",
    "SELECT CASE WHEN a > 1 THEN a ELSE b END FROM t1 ORDER BY 1",
    "SELECT 1e308 * 10, -1e308 * 10, 1e308 * 10 - 1e308 * 10",
    "SELECT c * 1e10 - c * 1e10 AS n FROM t1 ORDER BY n",
    "SELECT DISTINCT c * 1e308 * 10 - c * 1e308 * 10 FROM t1",
    "SELECT (1e308 * 10 - 1e308 * 10) AS n GROUP BY n",
    "SELECT sum(c), avg(c), min(c), max(c) FROM t1",
    "SELECT sum(a), avg(a) FROM t1",
    "SELECT sum(x) FROM generate_series(9223372036854775800, 9223372036854775807) AS g(x)",
    "SELECT x FROM generate_series(9223372036854775800, 9223372036854775807, 3) AS g(x)",
    "SELECT x FROM generate_series(-9223372036854775808, -9223372036854775800, -1) AS g(x)",
    "SELECT x FROM generate_series(1, 10, -9223372036854775808) AS g(x)",
    "SELECT * FROM generate_series(1, 3) AS g(x, y)",
    "SELECT * FROM generate_series('a', 'b') AS g(x)",
    "SELECT * FROM generate_series(NULL, 3) AS g(x)",
    "SELECT * FROM generate_series(1.5, 3) AS g(x)",
    "SELECT * FROM generate_series(1) AS g(x)",
    "SELECT * FROM generate_series() AS g(x)",
    "SELECT * FROM generate_series(1, 2, 3, 4) AS g(x)",
    "SELECT * FROM nosuchfn(1, 2) AS g(x)",
    "SELECT * FROM (SELECT 1) AS s JOIN (SELECT 2) AS r ON 1 = 1",
    "SELECT * FROM t1 JOIN t2 USING (a)",
    "SELECT * FROM t1 NATURAL JOIN t2",
    "SELECT * FROM t1 RIGHT JOIN t2 ON t1.a = t2.a",
    "SELECT * FROM t1 CROSS JOIN t2",
    "SELECT * FROM t1 FULL OUTER JOIN t2 ON t1.a = t2.a",
    "SELECT * FROM t1 JOIN t2 ON t1.b = t2.a",
    "SELECT * FROM t1 JOIN t2 ON t1.c = t2.a",
    "SELECT * FROM t1 LEFT JOIN t2 ON t1.a = t2.a AND t2.d LIKE 'o%' WHERE t2.a IS NULL",
    "SELECT 1 UNION SELECT 2",
    "SELECT 1 UNION ALL SELECT 'a' UNION ALL SELECT NULL UNION ALL SELECT 2.5 ORDER BY 1",
    "SELECT a FROM t1 UNION ALL SELECT d FROM t2 ORDER BY a LIMIT 3",
    "(SELECT a FROM t1 ORDER BY a LIMIT 2) UNION ALL (SELECT a FROM t2 LIMIT 1)",
    "SELECT 1 INTERSECT SELECT 1",
    "WITH w AS (SELECT 1 AS x) SELECT x FROM w",
    "SELECT a, row_number() OVER (ORDER BY a) FROM t1",
    "SELECT @x",
    "SELECT @@max_execution_time",
    "SELECT CONNECTION_ID(1)",
    "SELECT sleep()",
    "SELECT sleep(1, 2)",
    "SELECT sleep('abc')",
    "SELECT sleep(-5)",
    "SELECT sleep(0.001) FROM generate_series(1, 20) AS g(x)",
    "SELECT sum(sleep(0.001)) FROM generate_series(1, 5) AS g(x)",
    "SELECT count(*) FROM t1 WHERE sleep(0.002) = 0",
    "SELECT substring('abc', 9223372036854775807, 9223372036854775807)",
    "SELECT substring('abc', -9223372036854775808, -1)",
    "SELECT substring('héllo', 2, 1), upper('straße'), lower('İ'), length('日本')",
    "SELECT round(1.5, 9223372036854775807), round(123, -9223372036854775808)",
    "SELECT round(-9223372036854775808, -1), abs(-9223372036854775808)",
    "SELECT -9223372036854775808 DIV -1, -9223372036854775808 % -1, mod(-9223372036854775808, -1)",
    "SELECT 9223372036854775807 + 1",
    "SELECT -(-9223372036854775808)",
    "SELECT CAST('9223372036854775808' AS SIGNED), CAST(1e300 AS SIGNED), CAST('-1' AS UNSIGNED)",
    "SELECT CAST(NULL AS CHAR), CAST('x' AS DOUBLE), CAST(1.5 AS CHAR(1))",
    "SELECT greatest(1, 'a', NULL), least('b', 2.5), coalesce(), ifnull(1)",
    "SELECT concat(), concat(NULL), nullif(NULL, NULL), if(NULL, 1, 2)",
    "SELECT a IN (), a NOT IN (NULL) FROM t1",
    "SELECT NOT NULL, NULL AND 0, NULL OR 1, NULL XOR 1, NULL <=> NULL",
    "INSERT INTO t1 VALUES (1, 2)",
    "INSERT INTO t1 (a, a) VALUES (1, 2)",
    "INSERT INTO t1 (nosuch) VALUES (1)",
    "INSERT INTO t1 VALUES ()",
    "INSERT INTO t1 SELECT * FROM t1",
    "INSERT INTO t2 SELECT * FROM t2",
    "INSERT INTO t2 (d) VALUES ('x')",
    "INSERT INTO t2 VALUES (NULL, 'x', 1)",
    "INSERT INTO t1 VALUES ('abc', 1, 'x')",
    "INSERT INTO t1 VALUES (1e300, 1, 1)",
    "INSERT INTO t1 VALUES ('9999999999999999999999', 1, 1)",
    "INSERT INTO t1 SELECT x, x, x FROM generate_series(1, 5000) AS g(x)",
    "INSERT INTO nosuch VALUES (1)",
    "INSERT INTO t1 VALUES (1, 'a', 1) ON DUPLICATE KEY UPDATE a = 2",
    "UPDATE t1 SET a = a + 1",
    "UPDATE t1 SET a = NULL WHERE a IS NULL",
    "UPDATE t2 SET a = NULL",
    "UPDATE t1 SET nosuch = 1",
    "UPDATE t1 SET a = 'abc'",
    "UPDATE t1 SET a = 9223372036854775807 + a",
    "UPDATE t1 SET b = concat(b, b, b, b)",
    "UPDATE t1, t2 SET t1.a = t2.a",
    "UPDATE t1 SET a = 1 ORDER BY a LIMIT 1",
    "UPDATE t1 SET a = 1 / 0",
    "UPDATE t1 SET c = 1 DIV 0 WHERE sleep(0.001) = 0",
    "DELETE FROM t1",
    "DELETE FROM t1 WHERE 1 / 0",
    "DELETE FROM t1 WHERE a = 'x'",
    "DELETE FROM t1 LIMIT 1",
    "DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a",
    "DELETE FROM nosuch",
    "CREATE TABLE t4 (a INT, a INT)",
    "CREATE TABLE t4 ()",
    "CREATE TABLE t4 (a DATE)",
    "CREATE TABLE t4 (a INT PRIMARY KEY, b TEXT NOT NULL)",
    "CREATE TABLE t4 AS SELECT 1",
    "CREATE TABLE IF NOT EXISTS t1 (z INT)",
    "DROP TABLE t1, t2",
    "DROP TABLE IF EXISTS t4, nosuch",
    "DROP VIEW v",
    "SHOW DATABASES",
    "SHOW COLUMNS FROM t1",
    "EXPLAIN INSERT INTO t1 VALUES (1, 'a', 1)",
    "EXPLAIN ANALYZE SELECT sleep(0.01)",
    "EXPLAIN ANALYZE SELECT * FROM t1 JOIN t2 ON t1.a = t2.a ORDER BY 1",
    "EXPLAIN SELECT * FROM nosuch",
    "SET max_execution_time = 18446744073709551615",
    "SET max_execution_time = 9223372036854775807",
    "SET cascade_memory_budget = 18446744073709551615",
    "SET cascade_memory_budget = -1",
    "SET autocommit = 1, max_execution_time = 5",
    "SET @x = 1",
    "SET GLOBAL max_execution_time = 1",
    "SET NAMES utf8mb4",
    "SET nosuch = 1",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "KILL QUERY -1",
    "KILL 18446744073709551615",
    "KILL QUERY CONNECTION_ID()",
    "KILL MUTATION 1",
    "BEGIN; BEGIN; COMMIT; COMMIT",
    "ROLLBACK; ROLLBACK",
    "START TRANSACTION READ ONLY",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    "SAVEPOINT s",
    "RELEASE SAVEPOINT s",
    "LOCK TABLES t1 READ",
    "USE cascade",
    "SHOW PROCESSLIST; KILL QUERY $other; SHOW PROCESSLIST",
    "SELECT * FROM t1 FOR UPDATE",
    "SELECT * FROM t1 t JOIN t1 t ON t.a = t.a",
    "SELECT t1.* FROM t1",
    "SELECT nosuch.* FROM t1",
    "SELECT `a`, \"b\" FROM `t1`",
    "SELECT a FROM T1 WHERE A = 1",
    "select count(*) from t1 group by ()",
    "SELECT 1 FROM t1 GROUP BY a, a, a ORDER BY a, a",
    "SELECT x, count(*) FROM generate_series(1, 3) AS g(x) GROUP BY 1 ORDER BY 2 DESC, 1",
    "SELECT count(*) FROM generate_series(1, 3) AS g(x) GROUP BY x HAVING x > 1",
    "SELECT max(b), min(b), count(DISTINCT b), sum(b), avg(b) FROM t1",
    "SELECT max(e), sum(e) FROM t2 GROUP BY e ORDER BY 1",
    "SELECT * FROM generate_series(1, 5) AS g(x) WHERE x = x ORDER BY x LIMIT 0",
    "SELECT * FROM generate_series(1, 5) AS g(x) LIMIT 2 OFFSET 9223372036854775807",
];

const SETUP: &str = "CREATE TABLE t1 (a BIGINT, b VARCHAR(20), c DOUBLE); \
    INSERT INTO t1 VALUES (1, 'x', 1.5), (2, NULL, -0.5), (NULL, 'yy', NULL), \
      (3, '', 2.0), (-4, 'Zz%_', 1e300), (9223372036854775807, '12', 0.0); \
    CREATE TABLE t2 (a BIGINT NOT NULL, d TEXT, e BOOLEAN); \
    INSERT INTO t2 VALUES (1, 'one', TRUE), (2, 'two', FALSE), (2, 'deux', NULL), (5, NULL, TRUE)";

fn identity() -> Identity {
    Identity::new("acme", "alice", "member")
}

/// The engine the fuzzer runs on, with its connections.
pub struct Rig {
    host: Arc<ManualHost>,
    engine: Engine,
    victim: Option<Connection>,
    killer: Option<Connection>,
    schedule: Schedule,
    polls: u32,
    fired: bool,
    /// The killer's id when the last request was hit by its KILL QUERY.
    stale_kill: Option<u64>,
    /// The longest single poll (wall time), at which poll, of which request.
    pub slowest_poll: (Duration, u32, String),
}

impl Rig {
    /// An engine with tables `t1 (a INT, b VARCHAR, c DOUBLE)` and
    /// `t2 (a BIGINT NOT NULL, d TEXT, e BOOLEAN)`, a victim and a killer
    /// connection of the same user.
    pub fn new(schedule: Schedule) -> Rig {
        let host = Arc::new(ManualHost::new());
        let mut config = EngineConfig::new(1, host.clone());
        config.memory_budget = 64 << 20;
        config.trace_capacity = 20_000;
        config.yield_policy = YieldPolicy {
            every_steps: 1,
            every: Duration::from_millis(1),
        };
        let engine = Engine::new(config);
        let mut rig = Rig {
            host,
            engine,
            victim: None,
            killer: None,
            schedule,
            polls: 0,
            fired: false,
            stale_kill: None,
            slowest_poll: (Duration::ZERO, 0, String::new()),
        };
        let setup = rig.connect();
        let r = rig.finish(setup.execute(SETUP), "setup");
        assert!(r.is_ok(), "setup failed: {r:?}");
        rig.close(setup);
        rig.victim = Some(rig.connect());
        rig.killer = Some(rig.connect());
        rig
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn connect(&self) -> Connection {
        self.engine.connect(identity()).expect("connect")
    }

    fn step(&self) {
        self.host.advance(Duration::from_micros(u64::from(
            self.schedule.step_us.max(1),
        )));
    }

    /// Polls a future that must finish promptly (KILL, close, setup).
    fn finish<F: Future>(&self, f: F, what: &str) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = futures::task::noop_waker();
        let mut cx = TaskContext::from_waker(&waker);
        for _ in 0..100_000 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            self.step();
        }
        panic!("{what} did not finish in 100000 polls");
    }

    fn close(&self, c: Connection) {
        self.finish(c.close(), "close");
    }

    /// A live connection: replaces one that was killed or disconnected.
    fn live(&mut self, victim: bool) -> Option<Connection> {
        if self.engine.root().is_cancelled() {
            return None;
        }
        let slot = if victim {
            &mut self.victim
        } else {
            &mut self.killer
        };
        let dead = match slot.as_ref() {
            Some(c) => c.context().is_cancelled(),
            None => true,
        };
        if dead {
            let old = slot.take();
            let new = self.engine.connect(identity()).expect("connect");
            *if victim {
                &mut self.victim
            } else {
                &mut self.killer
            } = Some(new);
            if let Some(c) = old {
                self.close(c);
            }
        }
        if victim {
            self.victim.clone()
        } else {
            self.killer.clone()
        }
    }

    /// Runs a statement on the killer connection (a KILL); whether it
    /// succeeded.
    fn kill(&mut self, sql: &str) -> bool {
        let Some(k) = self.live(false) else {
            return false;
        };
        let r = self.finish(k.execute(sql), sql);
        let ok = r.is_ok();
        check_result(sql, &Outcome::Done(r));
        ok
    }

    /// Kills the victim from the killer connection; the killer's id if the
    /// KILL succeeded.
    fn kill_victim(&mut self, victim: &Connection, scope: &str) -> Option<u64> {
        let sql = format!("KILL {scope} {}", victim.id());
        let ok = self.kill(&sql);
        ok.then(|| self.killer.as_ref().map_or(0, Connection::id))
    }

    /// Runs one request on the victim connection. `$self` and `$other` in
    /// the text become the victim's and the killer's connection ids.
    pub fn request(&mut self, sql: &str) -> Outcome {
        let Some(victim) = self.live(true) else {
            // After shutdown nothing connects: the request is refused.
            let e = self.engine.connect(identity()).expect_err("shut down");
            return Outcome::Done(Err(e));
        };
        let other = self.killer.as_ref().map_or(0, Connection::id);
        let sql = sql
            .replace("$self", &victim.id().to_string())
            .replace("$other", &other.to_string());
        let opts = ExecOptions {
            timeout: (self.schedule.timeout_ms > 0)
                .then(|| Duration::from_millis(u64::from(self.schedule.timeout_ms))),
        };
        // Oracles for a request of one statement: interrupted while it ran,
        // or still running past its timeout, it must fail.
        let single = cascade::sql::parse(&sql).is_ok_and(|s| s.len() == 1);
        let mut interrupted = false;
        let mut kill_query_by = None;
        let stale_kill = self.stale_kill.take();
        let mut fut = Box::pin(victim.execute_with(&sql, opts));
        let waker = futures::task::noop_waker();
        let mut cx = TaskContext::from_waker(&waker);
        let mut polls = 0u32;
        loop {
            let poll_started = std::time::Instant::now();
            let poll = fut.as_mut().poll(&mut cx);
            let took = poll_started.elapsed();
            if took > self.slowest_poll.0 {
                self.slowest_poll = (took, polls, sql.clone());
            }
            assert!(
                took <= MAX_POLL,
                "one poll ran for {took:?} without yielding (poll {polls}): {sql}"
            );
            if let Poll::Ready(r) = poll {
                let out = Outcome::Done(r);
                check_result(&sql, &out);
                let elapsed_us = u64::from(polls) * u64::from(self.schedule.step_us.max(1));
                let timed_out = self.schedule.timeout_ms > 0
                    && elapsed_us
                        > u64::from(self.schedule.timeout_ms) * 1000
                            + 2 * u64::from(self.schedule.step_us.max(1));
                if single && (interrupted || timed_out) {
                    assert!(
                        matches!(out, Outcome::Done(Err(_))),
                        "a statement {} while it ran reported success: {sql}: {out:?}",
                        if interrupted {
                            "interrupted"
                        } else {
                            "past its timeout"
                        }
                    );
                }
                // (Only when this request was not itself sent a KILL QUERY,
                // by the schedule or the watchdog.)
                if let (Some(by), None, Outcome::Done(Err(e))) = (stale_kill, kill_query_by, &out) {
                    let stale = e.cause.as_ref().is_some_and(|c| {
                        matches!(&c.reason, Reason::KillQuery { by_connection, .. } if *by_connection == by)
                    });
                    assert!(
                        !stale,
                        "a KILL QUERY of the previous request was applied to the next one: {sql}: {e:?}"
                    );
                }
                self.stale_kill = kill_query_by;
                return out;
            }
            polls += 1;
            self.polls += 1;
            self.step();
            if !self.fired && self.polls >= self.schedule.at_poll {
                self.fired = true;
                match self.schedule.interrupt {
                    Interrupt::None => {}
                    Interrupt::KillQuery => {
                        kill_query_by = self.kill_victim(&victim, "QUERY");
                        interrupted |= kill_query_by.is_some();
                    }
                    Interrupt::KillConnection => {
                        interrupted |= self.kill_victim(&victim, "CONNECTION").is_some();
                    }
                    Interrupt::Disconnect => {
                        victim.disconnect();
                        interrupted = true;
                    }
                    Interrupt::DropFuture => {
                        drop(fut);
                        return Outcome::Dropped;
                    }
                    Interrupt::Shutdown => {
                        self.engine.shutdown();
                        interrupted = true;
                    }
                }
            }
            if polls == WATCHDOG_POLLS {
                let by = self.kill_victim(&victim, "QUERY");
                interrupted |= by.is_some();
                kill_query_by = kill_query_by.or(by);
            } else if polls == WATCHDOG_POLLS + KILL_GRACE_POLLS {
                interrupted |= self.kill_victim(&victim, "CONNECTION").is_some();
            } else if polls >= WATCHDOG_POLLS + 2 * KILL_GRACE_POLLS {
                panic!(
                    "request still running {polls} polls after KILL QUERY and KILL CONNECTION: {sql}"
                );
            }
        }
    }

    /// Closes every connection and checks that the engine is back to rest.
    pub fn finish_and_check(mut self) {
        if std::env::var_os("CASCADE_FUZZ_PRINT").is_some() {
            let (took, at, sql) = &self.slowest_poll;
            eprintln!("slowest poll: {took:?} (poll {at}) in {sql:?}");
        }
        for c in [self.victim.take(), self.killer.take()]
            .into_iter()
            .flatten()
        {
            self.close(c);
        }
        let e = &self.engine;
        assert_eq!(e.process_list().len(), 0, "process list not empty");
        assert_eq!(e.memory_in_use(), 0, "memory still reserved");
        assert_eq!(
            e.root().subtree_len(),
            1,
            "contexts left under the root: {}",
            serde_json::to_string(&e.contexts()).unwrap_or_default()
        );
    }
}

/// Checks what a finished request returned: an error has a code and a
/// message; a result's rows match its columns.
pub fn check_result(sql: &str, out: &Outcome) {
    match out {
        Outcome::Done(Err(e)) => {
            assert!(e.code != 0, "{sql}: error without a code: {e:?}");
            assert!(!e.message.is_empty(), "{sql}: error without a message");
            assert_eq!(e.sqlstate.len(), 5, "{sql}: bad SQLSTATE {e:?}");
        }
        Outcome::Done(Ok(r)) => {
            if !r.columns.is_empty() {
                for row in &r.rows {
                    assert_eq!(row.len(), r.columns.len(), "{sql}: row width");
                }
            } else {
                assert!(r.rows.is_empty(), "{sql}: rows without columns");
            }
        }
        Outcome::Dropped => {}
    }
}

/// Runs `requests` under `schedule` and checks the engine is at rest
/// afterwards. Panics on any violation.
pub fn run(requests: &[&str], schedule: Schedule) -> Vec<Outcome> {
    let mut rig = Rig::new(schedule);
    let outs = requests.iter().map(|r| rig.request(r)).collect();
    rig.finish_and_check();
    outs
}

/// Runs one request with no interruption and returns its outcome.
pub fn run_one(sql: &str) -> Outcome {
    run(&[sql], Schedule::default()).pop().expect("one outcome")
}
