//! Runs corpus files through the cascade engine in-process and classifies
//! every record.
//!
//! Each file runs on a fresh [`Engine`] with one connection, statement by
//! statement through [`Connection::execute_with`] on a `futures` executor,
//! each statement with a short timeout (cross-product joins must not eat CI
//! time). A panic is caught per record; the engine may be left inconsistent
//! by it, so the rest of that file is abandoned (and counted as such).
//!
//! Outcomes: passed; skipped (by the `skipif` / `onlyif` rules); different
//! (a record of the "deliberately different" list, `slt/different.txt`,
//! answered with the error its entry gives; see [`crate::different`]);
//! refused (cascade answered a clean error to a `statement ok` or `query`);
//! timed out (error 3024); wrong (a result that differs from the expected one, or
//! a `statement error` that succeeded); crashed (a panic).
//!
//! A failed `statement ok` is counted as refused, by its error code, like a
//! refused query: it is a clean error, not an answer, and the queries of the
//! file that depend on it show up as refused (mostly 1146, unknown table)
//! rather than as wrong.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cascade::{Engine, EngineConfig, ExecOptions, Identity, QueryError, StdHost};
use futures::executor::block_on;

use crate::different::{Different, Entry};
use crate::record::{parse, Expect, Item, Record};
use crate::render;

/// MySQL's "maximum statement execution time exceeded".
const TIMEOUT_CODE: u16 = 3024;

/// How the corpus runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The engine name the `skipif` / `onlyif` conditions are read for.
    pub engine: String,
    /// Timeout of each statement.
    pub timeout: Duration,
    /// Memory budget of each statement, in bytes.
    pub memory_budget: u64,
    /// Files run at once (each on its own engine and thread).
    pub threads: usize,
    /// Pipelines per parallel stage (`cascade_threads`) of every file's
    /// engine; `None`: the engine's default (the cores).
    pub pipelines: Option<usize>,
    /// Records cascade answers differently on purpose (none by default;
    /// the corpus gate and the command load `slt/different.txt`).
    pub different: Arc<Different>,
}

impl Default for Options {
    /// `mysql`, 2 s per statement, 256 MiB per statement, one thread per core.
    fn default() -> Self {
        Options {
            engine: "mysql".to_string(),
            timeout: Duration::from_secs(2),
            memory_budget: 256 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pipelines: None,
            different: Arc::default(),
        }
    }
}

/// Counts of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Statement and query records in the file.
    pub records: usize,
    /// Skipped by the engine conditions (or after a `halt`).
    pub skipped: usize,
    /// Passed.
    pub passed: usize,
    /// Deliberately different: listed in `slt/different.txt` and answered
    /// with the listed error.
    pub different: usize,
    /// Refused with a clean error.
    pub refused: usize,
    /// Timed out.
    pub timed_out: usize,
    /// Wrong answers.
    pub wrong: usize,
    /// Panics.
    pub crashed: usize,
    /// Not run because an earlier record of the file panicked.
    pub abandoned: usize,
}

impl Tally {
    /// Records that ran (not skipped).
    pub fn run(&self) -> usize {
        self.records - self.skipped
    }
    /// Passed records as a percentage of those that ran.
    pub fn pass_percent(&self) -> f64 {
        if self.run() == 0 {
            return 0.0;
        }
        100.0 * self.passed as f64 / self.run() as f64
    }
    /// Adds another tally to this one.
    pub fn add(&mut self, o: &Tally) {
        self.records += o.records;
        self.skipped += o.skipped;
        self.passed += o.passed;
        self.different += o.different;
        self.refused += o.refused;
        self.timed_out += o.timed_out;
        self.wrong += o.wrong;
        self.crashed += o.crashed;
        self.abandoned += o.abandoned;
    }
}

/// Why a record is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WrongKind {
    /// The query answered other values.
    Result {
        /// The expected lines.
        expected: Vec<String>,
        /// The lines of cascade's answer, rendered by the same rules.
        actual: Vec<String>,
    },
    /// A `statement error` succeeded.
    ErrorExpected,
}

/// A wrong record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrong {
    /// Line of the record.
    pub line: usize,
    /// Its SQL.
    pub sql: String,
    /// What differs.
    pub kind: WrongKind,
}

/// A record whose run panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// Line of the record.
    pub line: usize,
    /// Its SQL.
    pub sql: String,
    /// The panic message.
    pub message: String,
}

/// A refused record, kept as an example of its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// How many records were refused so.
    pub count: usize,
    /// The first one's line.
    pub line: usize,
    /// The first one's SQL.
    pub sql: String,
    /// The first one's full message.
    pub message: String,
}

/// A listed record that was not answered as its entry says (it passed, or
/// failed otherwise): the entry must be removed or corrected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    /// The entry.
    pub entry: Entry,
    /// What cascade did instead (`passed`, `wrong`, `ERROR 1146 …`).
    pub got: String,
}

/// A refused record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Its line.
    pub line: usize,
    /// The error code.
    pub code: u16,
    /// Its SQL.
    pub sql: String,
}

/// The outcome of one file.
#[derive(Clone, Debug)]
pub struct FileRun {
    /// The file.
    pub path: PathBuf,
    /// Counts.
    pub tally: Tally,
    /// Refusals by kind (`"<code> <first words>"`).
    pub refusals: BTreeMap<String, Refusal>,
    /// Every refused record, in file order.
    pub refused: Vec<Refused>,
    /// Deliberately different records by reason key.
    pub different: BTreeMap<String, usize>,
    /// Listed records that were not answered as listed.
    pub stale: Vec<Stale>,
    /// Wrong records.
    pub wrong: Vec<Wrong>,
    /// Panics.
    pub crashes: Vec<Crash>,
    /// The file could not be read or parsed (then nothing ran).
    pub load_error: Option<String>,
    /// Wall time of the file.
    pub elapsed: Duration,
    /// The slowest statement's time and line.
    pub slowest: (Duration, usize),
}

/// The kind of a refusal: the code and the first words of the message
/// (for 1235, "doesn't yet support …", the words after "support"), up to
/// the first word holding a quote or digit (names and numbers vary by
/// record; the words before them say what is missing).
pub fn refusal_kind(e: &QueryError) -> String {
    const SUPPORT: &str = "doesn't yet support ";
    let (text, max) = match e.message.find(SUPPORT) {
        Some(i) => (&e.message[i + SUPPORT.len()..], 5),
        None => (e.message.as_str(), 3),
    };
    let mut words = Vec::new();
    for w in text.split_whitespace() {
        if words.len() == max
            || w.starts_with('(')
            || w.chars().any(|c| c.is_ascii_digit() || "'\"`".contains(c))
        {
            break;
        }
        words.push(w.trim_end_matches([':', ',', '.', ';']).to_lowercase());
    }
    format!("{} {}", e.code, words.join(" "))
        .trim_end()
        .to_string()
}

/// Runs one file on a fresh engine.
pub fn run_file(path: &Path, opts: &Options) -> FileRun {
    match std::fs::read_to_string(path) {
        Ok(text) => run_source(path, &text, opts),
        Err(e) => FileRun {
            load_error: Some(e.to_string()),
            ..empty(path)
        },
    }
}

fn empty(path: &Path) -> FileRun {
    FileRun {
        path: path.to_path_buf(),
        tally: Tally::default(),
        refusals: BTreeMap::new(),
        refused: Vec::new(),
        different: BTreeMap::new(),
        stale: Vec::new(),
        wrong: Vec::new(),
        crashes: Vec::new(),
        load_error: None,
        elapsed: Duration::ZERO,
        slowest: (Duration::ZERO, 0),
    }
}

/// Runs the text of a file (named `path` in the outcome) on a fresh engine.
pub fn run_source(path: &Path, text: &str, opts: &Options) -> FileRun {
    let start = Instant::now();
    let mut out = empty(path);
    let items = match parse(text) {
        Ok(items) => items,
        Err(e) => {
            out.load_error = Some(e.to_string());
            return out;
        }
    };
    let mut config = EngineConfig::new(1, StdHost::shared());
    config.trace_capacity = 1_000;
    config.memory_budget = opts.memory_budget;
    if let Some(n) = opts.pipelines {
        config.threads = n.max(1);
    }
    let engine = Engine::new(config);
    let conn = match engine.connect(Identity::new("slt", "slt", "member")) {
        Ok(c) => c,
        Err(e) => {
            out.load_error = Some(format!("connect: {e}"));
            return out;
        }
    };
    let exec = ExecOptions {
        timeout: Some(opts.timeout),
    };
    let mut hash_threshold = 0;
    let mut stop = false; // a halt applied
    let mut crashed = false;
    for item in &items {
        let r: &Record = match item {
            Item::HashThreshold(n) => {
                hash_threshold = *n;
                continue;
            }
            Item::Halt(conds) => {
                stop |= !conds.iter().any(|c| c.skips(&opts.engine));
                continue;
            }
            Item::Record(r) => r,
        };
        let t = &mut out.tally;
        t.records += 1;
        if crashed {
            t.abandoned += 1;
            continue;
        }
        if stop || r.conditions.iter().any(|c| c.skips(&opts.engine)) {
            t.skipped += 1;
            continue;
        }
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            block_on(conn.execute_with(&r.sql, exec))
        }));
        out.slowest = out.slowest.max((started.elapsed(), r.line));
        let result = match result {
            Ok(r) => r,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic)".to_string());
                t.crashed += 1;
                out.crashes.push(Crash {
                    line: r.line,
                    sql: r.sql.clone(),
                    message,
                });
                crashed = true;
                continue;
            }
        };
        let listed = opts.different.lookup(path, r.line);
        if let Some(entry) = listed {
            match &result {
                Err(e) if e.code == entry.code && r.expect != Expect::StatementError => {
                    t.different += 1;
                    *out.different.entry(entry.reason.clone()).or_default() += 1;
                    continue;
                }
                Err(e) => out.stale.push(Stale {
                    entry: entry.clone(),
                    got: e.to_string(),
                }),
                Ok(_) => out.stale.push(Stale {
                    entry: entry.clone(),
                    got: "an answer".to_string(),
                }),
            }
        }
        match (&r.expect, result) {
            (Expect::StatementError, Err(_)) => t.passed += 1,
            (Expect::StatementError, Ok(_)) => {
                t.wrong += 1;
                out.wrong.push(Wrong {
                    line: r.line,
                    sql: r.sql.clone(),
                    kind: WrongKind::ErrorExpected,
                });
            }
            (_, Err(e)) if e.code == TIMEOUT_CODE => t.timed_out += 1,
            (_, Err(e)) => {
                t.refused += 1;
                out.refused.push(Refused {
                    line: r.line,
                    code: e.code,
                    sql: r.sql.clone(),
                });
                out.refusals
                    .entry(refusal_kind(&e))
                    .and_modify(|x| x.count += 1)
                    .or_insert_with(|| Refusal {
                        count: 1,
                        line: r.line,
                        sql: r.sql.clone(),
                        message: e.message.clone(),
                    });
            }
            (Expect::StatementOk, Ok(_)) => t.passed += 1,
            (
                Expect::Query {
                    types,
                    sort,
                    expected,
                    ..
                },
                Ok(res),
            ) => {
                let actual = render::lines(
                    &res.rows,
                    types,
                    *sort,
                    hash_threshold,
                    render::is_hash(expected),
                );
                let columns_match = res.columns.len() == types.len() || res.rows.is_empty();
                if columns_match && &actual == expected {
                    t.passed += 1;
                } else {
                    t.wrong += 1;
                    out.wrong.push(Wrong {
                        line: r.line,
                        sql: r.sql.clone(),
                        kind: WrongKind::Result {
                            expected: expected.clone(),
                            actual,
                        },
                    });
                }
            }
        }
    }
    out.elapsed = start.elapsed();
    out
}

/// Runs files on `opts.threads` threads (each file on its own engine);
/// results in the order of `paths`.
pub fn run_files(paths: &[PathBuf], opts: &Options) -> Vec<FileRun> {
    let next = AtomicUsize::new(0);
    let results: Arc<Mutex<Vec<Option<FileRun>>>> = Arc::new(Mutex::new(vec![None; paths.len()]));
    std::thread::scope(|s| {
        for _ in 0..opts.threads.clamp(1, paths.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = paths.get(i) else { break };
                let run = run_file(p, opts);
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(run);
                }
            });
        }
    });
    let mut results = match results.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    results.drain(..).flatten().collect()
}

/// The `*.test` files under `paths` (files are taken as they are,
/// directories searched recursively), sorted.
pub fn test_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), out)?;
            }
        } else if p.extension().is_some_and(|x| x == "test") {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else {
            walk(p, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_kinds_drop_names_and_numbers() {
        let e = QueryError::new(
            1235,
            "42000",
            "This version of cascade doesn't yet support subqueries in expressions (use a subquery in FROM)",
        );
        assert_eq!(refusal_kind(&e), "1235 subqueries in expressions");
        let e = QueryError::new(1054, "42S22", "Unknown column 'x' in 'field list'");
        assert_eq!(refusal_kind(&e), "1054 unknown column");
        let e = QueryError::new(1690, "22003", "BIGINT value is out of range in '(1 + 2)'");
        assert_eq!(refusal_kind(&e), "1690 bigint value is");
    }

    const FILE: &str = "\
onlyif mssql
halt

statement ok
CREATE TABLE t(a INTEGER, b TEXT)

statement ok
INSERT INTO t VALUES (1, 'x'), (2, ''), (3, NULL)

query IT rowsort
SELECT a, b FROM t
----
1
x
2
(empty)
3
NULL

skipif mysql
query I nosort
SELECT 1 FROM nowhere
----
1

onlyif sqlite
statement ok
DROP TABLE nowhere

query I nosort
SELECT a FROM t ORDER BY a DESC
----
3
2
1

query I nosort
SELECT a FROM t ORDER BY a
----
3
2
1

statement error
SELECT a FROM nowhere

statement error
SELECT 1

query I nosort
SELECT a FROM nowhere
----
1

query R nosort
SELECT SLEEP(5)
----
0.000
";

    #[test]
    fn every_outcome_is_classified() {
        let opts = Options {
            timeout: Duration::from_millis(100),
            ..Options::default()
        };
        let run = run_source(Path::new("t.test"), FILE, &opts);
        assert_eq!(run.load_error, None);
        assert_eq!(
            run.tally,
            Tally {
                records: 11,
                skipped: 2,
                passed: 5,
                different: 0,
                refused: 1,
                timed_out: 1,
                wrong: 2,
                crashed: 0,
                abandoned: 0,
            }
        );
        assert_eq!(run.refusals.keys().collect::<Vec<_>>(), ["1146 table"]);
        let lines: Vec<_> = run.wrong.iter().map(|w| (w.line, &w.kind)).collect();
        assert_eq!(
            lines,
            [
                (
                    37,
                    &WrongKind::Result {
                        expected: vec!["3".into(), "2".into(), "1".into()],
                        actual: vec!["1".into(), "2".into(), "3".into()],
                    }
                ),
                (47, &WrongKind::ErrorExpected),
            ]
        );
    }

    #[test]
    fn listed_records_are_different_and_a_wrongly_listed_one_is_stale() {
        let text = "statement ok\nCREATE TABLE t(a INTEGER, b INTEGER)\n\n\
            query I nosort\nSELECT b FROM t GROUP BY a\n----\n\n\
            query I nosort\nSELECT a FROM t GROUP BY b\n----\n\n\
            query I nosort\nSELECT count(*) FROM t\n----\n0\n\n\
            query I nosort\nSELECT a FROM nowhere\n----\n";
        let different = Different::parse(
            "reason r on purpose\nx/g.test:4 1055 r\nx/g.test:8 1055 r\n\
             x/g.test:12 1055 r\nx/g.test:17 1055 r\nother/g.test:8 1055 r\n",
        )
        .unwrap();
        let opts = Options {
            different: Arc::new(different),
            ..Options::default()
        };
        let run = run_source(Path::new("/c/x/g.test"), text, &opts);
        assert_eq!((run.tally.different, run.tally.passed), (2, 2));
        assert_eq!((run.tally.refused, run.tally.wrong), (1, 0));
        assert_eq!(run.different.get("r"), Some(&2));
        let stale: Vec<_> = run.stale.iter().map(|s| s.entry.line).collect();
        assert_eq!(stale, [12, 17], "{:?}", run.stale);
        assert!(run.stale[1].got.starts_with("ERROR 1146"));
        assert_eq!(run.refused[0].code, 1146);
    }

    #[test]
    fn a_halt_that_applies_skips_the_rest() {
        let run = run_source(
            Path::new("h.test"),
            "statement ok\nCREATE TABLE t(a INTEGER)\n\nonlyif mysql\nhalt\n\nstatement ok\nDROP TABLE t\n",
            &Options::default(),
        );
        assert_eq!((run.tally.passed, run.tally.skipped), (1, 1));
    }

    #[test]
    fn a_bad_file_is_a_load_error() {
        let run = run_source(Path::new("b.test"), "frobnicate\n", &Options::default());
        assert!(run.load_error.is_some_and(|e| e.contains("line 1")));
        assert_eq!(run.tally.records, 0);
    }
}
