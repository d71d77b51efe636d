//! The whole sqllogictest corpus (shared/sqllogictest beside the clone, or
//! `$CASCADE_SLT_DIR`) through the cascade engine: fails on any wrong or
//! crashed record, on a file that cannot be parsed, on a stale entry of
//! `slt/different.txt` (a listed record not answered as listed), and when
//! the number of passed records drops below the floor in
//! `slt/pass-floor.txt`. Records of `slt/different.txt` are counted as
//! deliberately different, with their reasons in the report. Prints
//! the report (`cargo test -p cascade-slt --test corpus -- --nocapture`).
//!
//! A missing corpus fails under CI (`CI=true`) and is reported and skipped
//! elsewhere.

use std::sync::Arc;

use cascade_slt::different::Different;
use cascade_slt::{corpus_dir, pass_floor, report, runner};

#[test]
fn corpus_has_no_wrong_answer_and_keeps_its_pass_count() {
    let dir = match corpus_dir() {
        Ok(d) => d,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let files = runner::test_files(std::slice::from_ref(&dir)).expect("list the corpus");
    assert!(!files.is_empty(), "no *.test files in {}", dir.display());
    let different = Different::load().expect("slt/different.txt");
    let listed = different.len();
    let opts = runner::Options {
        different: Arc::new(different),
        ..runner::Options::default()
    };
    let runs = runner::run_files(&files, &opts);
    println!("{}", report::render(&runs, Some(&dir), 10, 50));

    let unreadable: Vec<_> = runs
        .iter()
        .filter_map(|r| {
            r.load_error
                .as_ref()
                .map(|e| format!("{}: {e}", r.path.display()))
        })
        .collect();
    assert!(unreadable.is_empty(), "unreadable files: {unreadable:?}");
    let t = report::total(&runs);
    assert_eq!(t.crashed, 0, "records crashed the engine (see CRASH above)");
    assert_eq!(t.wrong, 0, "records got a WRONG answer (see WRONG above)");
    let stale: Vec<_> = runs.iter().flat_map(|r| &r.stale).collect();
    assert!(
        stale.is_empty(),
        "{} entries of slt/different.txt were not answered as listed (see STALE above): remove or correct them",
        stale.len()
    );
    assert_eq!(
        t.different, listed,
        "slt/different.txt lists {listed} records, {} were met (a file or line moved?)",
        t.different
    );
    let floor = pass_floor().expect("slt/pass-floor.txt");
    assert!(
        t.passed >= floor,
        "{} records passed, below the floor of {floor} in slt/pass-floor.txt",
        t.passed
    );
    if t.passed > floor {
        println!(
            "{} records passed, above the floor of {floor}: raise slt/pass-floor.txt to {}",
            t.passed, t.passed
        );
    }
}
