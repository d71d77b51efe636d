//! Stress: thousands of connect / run / disconnect cycles from two threads
//! that kill each other's statements and connections at random, with random
//! statement timeouts, over statements that mix SELECT, INSERT, BEGIN,
//! COMMIT and ROLLBACK.
//!
//! Nothing may panic, and at the end the engine must be at rest: the process
//! list is empty, no memory is reserved, no transaction or other context is
//! left under the root, and the committed data is exactly what the
//! successful commits wrote (a transaction is all or nothing; a killed or
//! timed-out statement never commits; a kill never loses committed rows).
//!
//! The seeds are fixed; the interleaving of the two threads is not.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use cascade::{Connection, Engine, ExecOptions, Identity, QueryError, QueryResult, Value};
use futures::executor::block_on;

/// Cycles per thread.
const CYCLES: u32 = 1000;
/// Statements per cycle at most.
const MAX_STATEMENTS: u32 = 6;
const SEEDS: [u64; 2] = [0x5eed_0001, 0x5eed_0002];

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What one worker shares with the other: its current connection (to
/// disconnect it) and its id (to KILL it).
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Connection>>,
    id: AtomicU64,
}

/// The rows each committed transaction wrote, by tag.
type Committed = BTreeMap<i64, i64>;

#[derive(Default, Debug)]
struct Tally {
    cycles: u64,
    statements: u64,
    ok: u64,
    interrupted: u64,
    timeouts: u64,
    conflicts: u64,
    other_errors: BTreeMap<u16, u64>,
    kills_sent: u64,
    disconnects_sent: u64,
    commits: u64,
}

fn identity() -> Identity {
    Identity::new("acme", "stress", "member")
}

/// Whether an error means the connection is gone (killed, disconnected).
fn connection_gone(c: &Connection) -> bool {
    c.context().is_cancelled()
}

struct Worker {
    n: usize,
    engine: Engine,
    rng: Rng,
    me: Arc<Slot>,
    other: Arc<Slot>,
    committed: Committed,
    tally: Tally,
    next_tag: i64,
}

impl Worker {
    fn tag(&mut self) -> i64 {
        self.next_tag += 1;
        (self.n as i64 + 1) * 1_000_000 + self.next_tag
    }

    fn exec(&mut self, c: &Connection, sql: &str) -> Result<QueryResult, QueryError> {
        let opts = ExecOptions {
            timeout: self
                .rng
                .chance(15)
                .then(|| Duration::from_micros(200 + self.rng.below(3000))),
        };
        self.tally.statements += 1;
        let r = block_on(c.execute_with(sql, opts));
        match &r {
            Ok(_) => self.tally.ok += 1,
            Err(e) => match e.code {
                // Interrupted, or the connection was killed (2014: a KILL
                // CONNECTION was rolling it back just then).
                1317 | 1927 | 2006 | 2014 | 1053 => self.tally.interrupted += 1,
                3024 => self.tally.timeouts += 1,
                1213 => self.tally.conflicts += 1,
                code => *self.tally.other_errors.entry(code).or_default() += 1,
            },
        }
        if let Err(e) = &r {
            assert!(e.code != 0 && !e.message.is_empty(), "{sql}: {e:?}");
        }
        r
    }

    /// Now and then, interferes with the other thread's connection.
    fn interfere(&mut self, c: &Connection) {
        let roll = self.rng.below(100);
        if roll >= 25 {
            return;
        }
        let target = self.other.id.load(Ordering::Acquire);
        if target == 0 {
            return;
        }
        if roll < 3 {
            if let Some(o) = self.other.conn.lock().unwrap().as_ref() {
                o.disconnect();
                self.tally.disconnects_sent += 1;
            }
            return;
        }
        let scope = if roll < 8 { "CONNECTION" } else { "QUERY" };
        self.tally.kills_sent += 1;
        // The target may have closed already (1094); the KILL itself may
        // be killed by the other thread or time out.
        if let Err(e) = block_on(c.execute(&format!("KILL {scope} {target}"))) {
            assert!(
                matches!(e.code, 1094 | 1317 | 3024) || connection_gone(c),
                "KILL {scope} {target}: {e:?}"
            );
        }
    }

    /// An INSERT of rows that sum to zero under one tag: the open
    /// transaction's tag, or a new one that commits at once.
    fn insert(&mut self, c: &Connection, open: &mut Option<(i64, i64)>) {
        let tag = match open {
            Some((t, _)) => *t,
            None => self.tag(),
        };
        let (sql, n) = if self.rng.chance(35) {
            let n = 2 * (1 + self.rng.below(200) as i64);
            let sql = format!(
                "INSERT INTO ledger SELECT {tag}, CASE WHEN x % 2 = 1 THEN x ELSE 1 - x END \
                 FROM generate_series(1, {n}) AS g(x)"
            );
            (sql, n)
        } else {
            let x = 1 + self.rng.below(100) as i64;
            let sql = format!("INSERT INTO ledger VALUES ({tag}, {x}), ({tag}, {})", -x);
            (sql, 2)
        };
        if let Ok(r) = self.exec(c, &sql) {
            // A success inserted every row: a kill or timeout never cuts an
            // INSERT … SELECT short and reports it as done.
            assert_eq!(r.rows_affected, n as u64, "{sql}: {r:?}");
            match open {
                Some((_, rows)) => *rows += n,
                None => {
                    self.committed.insert(tag, n);
                    self.tally.commits += 1;
                }
            }
        }
    }

    fn cycle(&mut self) {
        let c = self.engine.connect(identity()).expect("connect");
        *self.me.conn.lock().unwrap() = Some(c.clone());
        self.me.id.store(c.id(), Ordering::Release);
        // Rows written by the open explicit transaction: (tag, rows).
        let mut open: Option<(i64, i64)> = None;
        let statements = 1 + self.rng.below(u64::from(MAX_STATEMENTS));
        for _ in 0..statements {
            if connection_gone(&c) {
                break;
            }
            self.interfere(&c);
            match self.rng.below(100) {
                // Reads, some long enough to be killed or time out.
                0..=29 => {
                    let sql = match self.rng.below(6) {
                        0 => "SELECT count(*), sum(amount) FROM ledger".to_owned(),
                        1 => "SELECT tag, sum(amount) AS s FROM ledger GROUP BY tag \
                              HAVING s <> 0"
                            .to_owned(),
                        2 => "SELECT sleep(0.002)".to_owned(),
                        3 => format!(
                            "SELECT x % 10 AS k, count(*) FROM generate_series(1, {}) AS g(x) \
                             GROUP BY k ORDER BY k",
                            1 + self.rng.below(20_000)
                        ),
                        4 => format!(
                            "SELECT g.x, count(*) FROM generate_series(1, {}) AS g(x) \
                             LEFT JOIN ledger AS l ON l.amount = g.x GROUP BY g.x ORDER BY 2 DESC \
                             LIMIT 3",
                            1 + self.rng.below(200)
                        ),
                        _ => "SELECT 1; SELECT CONNECTION_ID()".to_owned(),
                    };
                    if let Ok(r) = self.exec(&c, &sql) {
                        if sql.contains("HAVING s <> 0") {
                            assert!(r.rows.is_empty(), "an unbalanced tag: {:?}", r.rows);
                        }
                    }
                }
                // INSERT … VALUES or INSERT … SELECT (long enough to be
                // killed): in the open transaction, or autocommitted.
                30..=52 => self.insert(&c, &mut open),
                // BEGIN commits an open transaction first (MySQL's implicit
                // commit); when that commit fails (a write conflict), BEGIN
                // fails and the old transaction is rolled back.
                53..=67 => {
                    let ok = self.exec(&c, "BEGIN").is_ok();
                    if let Some((tag, rows)) = open.take() {
                        if ok && rows > 0 {
                            self.committed.insert(tag, rows);
                            self.tally.commits += 1;
                        }
                    }
                    if ok {
                        open = Some((self.tag(), 0));
                    }
                }
                68..=82 => self.insert(&c, &mut open),
                83..=92 => {
                    let r = self.exec(&c, "COMMIT");
                    if let Some((tag, rows)) = open.take() {
                        if r.is_ok() && rows > 0 {
                            self.committed.insert(tag, rows);
                            self.tally.commits += 1;
                        }
                        // A failed COMMIT (conflict, killed connection)
                        // rolls back.
                    }
                }
                93..=96 => {
                    let _ = self.exec(&c, "ROLLBACK");
                    open = None;
                }
                _ => {
                    let ms = self.rng.below(4);
                    let _ = self.exec(&c, &format!("SET max_execution_time = {ms}"));
                }
            }
            if connection_gone(&c) {
                // KILL CONNECTION or disconnect: the open transaction is
                // rolled back.
                open = None;
            }
        }
        // Leave: sometimes as a vanished client, with a transaction open.
        self.me.id.store(0, Ordering::Release);
        *self.me.conn.lock().unwrap() = None;
        if self.rng.chance(20) {
            c.disconnect();
        }
        block_on(c.close());
        self.tally.cycles += 1;
    }
}

#[test]
fn connect_kill_disconnect_cycles_leave_the_engine_at_rest() {
    let started = Instant::now();
    let engine = common::engine();
    {
        let c = common::conn(&engine, "acme", "stress", "member");
        common::ok(
            &c,
            "CREATE TABLE ledger (tag BIGINT NOT NULL, amount BIGINT NOT NULL)",
        );
        block_on(c.close());
    }
    let slots = [Arc::new(Slot::default()), Arc::new(Slot::default())];
    let barrier = Arc::new(Barrier::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..2)
        .map(|n| {
            let mut w = Worker {
                n,
                engine: engine.clone(),
                rng: Rng(SEEDS[n]),
                me: slots[n].clone(),
                other: slots[1 - n].clone(),
                committed: Committed::new(),
                tally: Tally::default(),
                next_tag: 0,
            };
            let barrier = barrier.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..CYCLES {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    w.cycle();
                }
                (w.committed, w.tally)
            })
        })
        .collect();
    let mut committed = Committed::new();
    let mut tallies = Vec::new();
    for h in handles {
        match h.join() {
            Ok((c, t)) => {
                committed.extend(c);
                tallies.push(t);
            }
            Err(p) => {
                stop.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(p);
            }
        }
    }
    drop(slots);
    eprintln!("stress: {:?} in {:?}", tallies, started.elapsed());
    let cycles: u64 = tallies.iter().map(|t| t.cycles).sum();
    assert_eq!(cycles, 2 * u64::from(CYCLES));
    // The run did what it claims: kills, timeouts and commits happened.
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    assert!(sum(|t| t.kills_sent) > 100, "{tallies:?}");
    assert!(sum(|t| t.interrupted) > 10, "{tallies:?}");
    assert!(sum(|t| t.timeouts) > 10, "{tallies:?}");
    assert!(sum(|t| t.commits) > 100, "{tallies:?}");
    // No statement failed for another reason (the statements are valid).
    assert!(
        tallies.iter().all(|t| t.other_errors.is_empty()),
        "unexpected errors: {tallies:?}"
    );

    // At rest.
    assert_eq!(engine.process_list().len(), 0, "process list not empty");
    assert_eq!(engine.memory_in_use(), 0, "memory still reserved");
    assert_eq!(
        engine.root().subtree_len(),
        1,
        "contexts left under the root (open transactions?): {}",
        serde_json::to_string(&engine.contexts()).unwrap_or_default()
    );

    // Committed data: exactly the successful commits, each whole.
    let c = common::conn(&engine, "acme", "stress", "member");
    let r = common::ok(
        &c,
        "SELECT tag, count(*), sum(amount) FROM ledger GROUP BY tag ORDER BY tag",
    );
    let mut found = Committed::new();
    for row in &r.rows {
        let (Value::Int(tag), Value::Int(n)) = (&row[0], &row[1]) else {
            panic!("bad row {row:?}");
        };
        assert_eq!(row[2], Value::Int(0), "tag {tag} is unbalanced: {row:?}");
        found.insert(*tag, *n);
    }
    let absent: Vec<_> = committed
        .iter()
        .filter(|(t, _)| !found.contains_key(t))
        .collect();
    let partial: Vec<_> = committed
        .iter()
        .filter_map(|(t, n)| found.get(t).filter(|f| *f != n).map(|f| (t, n, f)))
        .collect();
    let extra: Vec<_> = found
        .iter()
        .filter(|(t, _)| !committed.contains_key(t))
        .collect();
    if let Some((t, _)) = absent.first() {
        let total = common::cell(&c, "SELECT count(*) FROM ledger");
        let one = common::cell(&c, &format!("SELECT count(*) FROM ledger WHERE tag = {t}"));
        let expected: i64 = committed.values().sum();
        let found_rows: i64 = found.values().sum();
        eprintln!("DIAG total {total} expected {expected} grouped {found_rows}; tag {t}: {one}");
    }
    assert!(
        absent.is_empty() && partial.is_empty() && extra.is_empty(),
        "committed data differs from the successful commits ({} committed, {} found): \
         {} lost {:?}, {} partial (tag, committed, found) {:?}, {} never reported committed {:?}",
        committed.len(),
        found.len(),
        absent.len(),
        &absent[..absent.len().min(20)],
        partial.len(),
        &partial[..partial.len().min(20)],
        extra.len(),
        &extra[..extra.len().min(20)],
    );
    block_on(c.close());
    drop(c);
    assert_eq!(engine.process_list().len(), 0);
    assert_eq!(engine.root().subtree_len(), 1);
}
