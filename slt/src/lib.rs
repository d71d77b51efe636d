//! The external yardstick for cascade's SQL: SQLite's sqllogictest corpus,
//! run as MySQL, through the cascade engine in-process.
//!
//! The corpus lives outside the repository, in `shared/sqllogictest` beside
//! the clone (`CASCADE_SLT_DIR` overrides it; see [`corpus_dir`]). Its
//! README gives the rules: the `skipif` / `onlyif` conditions read for
//! `mysql`, the I/R/T value rendering, the sort modes and the md5 hashing
//! of large results ([`record`], [`render`]). [`runner`] runs each file on
//! a fresh engine and classifies every record (passed, skipped, refused by
//! error code and kind, timed out, wrong, crashed); [`report`] prints the
//! table. `cargo run -p cascade-slt --release -- [files]` prints the report;
//! `tests/corpus.rs` fails on any wrong or crashed record and when the pass
//! count drops below the floor recorded in `pass-floor.txt`.
//!
//! ```no_run
//! use cascade_slt::{corpus_dir, runner};
//! let dir = corpus_dir().unwrap();
//! let files = runner::test_files(&[dir]).unwrap();
//! let runs = runner::run_files(&files, &runner::Options::default());
//! println!("{}", cascade_slt::report::render(&runs, None, 20, 20));
//! ```
#![warn(missing_docs)]

pub mod different;
pub mod engine_tests;
pub mod record;
pub mod render;
pub mod report;
pub mod runner;

use std::path::{Path, PathBuf};

/// The variable naming the corpus folder.
pub const DIR_VAR: &str = "CASCADE_SLT_DIR";

/// The repository root (this crate's parent folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The corpus folder: `$CASCADE_SLT_DIR` if set (relative to the current
/// folder), else `../shared/sqllogictest` relative to the repository root.
/// An error names the path tried when it is not a folder.
pub fn corpus_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("../shared/sqllogictest"),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "sqllogictest corpus not found at {} (set {DIR_VAR} to its folder)",
            dir.display()
        ))
    }
}

/// The pass floor recorded in `slt/pass-floor.txt`: the first line that is
/// not blank and not a `#` comment, as a number.
pub fn pass_floor() -> Result<usize, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pass-floor.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| format!("{}: no number", path.display()))?
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))
}
