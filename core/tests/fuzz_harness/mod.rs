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
pub const WATCHDOG_POLLS: u32 = 1000;
/// Polls after the watchdog's `KILL QUERY` before it sends `KILL CONNECTION`.
pub const KILL_GRACE_POLLS: u32 = 200;

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

const SETUP: &str = "CREATE TABLE t1 (a INT, b VARCHAR(20), c DOUBLE); \
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
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
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
                if let (Some(by), Outcome::Done(Err(e))) = (stale_kill, &out) {
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
