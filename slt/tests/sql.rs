//! The engine's SQL tests: every `core/tests/slt/*.slt` file through the
//! engine with the `sqllogictest` crate (`cascade_slt::engine_tests`), one
//! test per file, named by the file's stem. Run one file with
//! `cargo test -p cascade-slt --test sql -- joins` (a substring of the
//! stem; `--exact` for exactly one). The format: docs/sql-tests.md.
//!
//! Every file runs twice: with one pipeline per stage (`NAME`) and with
//! four (`NAME@4`, parallel aggregation over morsels): the expected results
//! are the same.

use std::path::PathBuf;

use cascade_slt::engine_tests::{run_file, run_file_with_threads};
use sqllogictest::harness::{run, Arguments, Failed, Trial};

fn main() {
    let dir = cascade_slt::repo_root().join("core/tests/slt");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "slt"))
            .collect(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    assert!(!files.is_empty(), "no *.slt files in {}", dir.display());
    let tests = files
        .into_iter()
        .flat_map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let p4 = path.clone();
            [
                Trial::test(name.clone(), move || run_file(&path).map_err(Failed::from)),
                Trial::test(format!("{name}@4"), move || {
                    run_file_with_threads(&p4, 4).map_err(Failed::from)
                }),
            ]
        })
        .collect();
    run(&Arguments::from_args(), tests).exit();
}
