//! The whole sqllogictest corpus (shared/sqllogictest beside the clone, or
//! `$CASCADE_SLT_DIR`) through the cascade engine: fails on any wrong or
//! crashed record, on a file that cannot be parsed, on a stale entry of
//! `slt/different.txt` (a listed record not answered as listed), and when
//! the number of passed records drops below the floor in
//! `slt/pass-floor.txt`. Records of `slt/different.txt` are counted as
//! deliberately different, with their reasons in the report. Prints
//! the report (`cargo test -p cascade-slt --test corpus -- --nocapture`).
//!
//! The corpus runs twice: with one pipeline per stage (`cascade_threads`
//! = 1, the serial plans) and with four (parallel stages on the host's
//! fair pool); both runs must pass the same gates, and every file must
//! end with the same outcomes in both (records that timed out in either
//! run aside: the 2 s timeout is wall time on a shared machine).
//!
//! A missing corpus fails under CI (`CI=true`) and is reported and skipped
//! elsewhere.

use std::sync::Arc;

use cascade_slt::different::Different;
use cascade_slt::runner::FileRun;
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
    let different = Arc::new(Different::load().expect("slt/different.txt"));
    let listed = different.len();
    let mut by_n = Vec::new();
    for n in [1, 4] {
        let opts = runner::Options {
            different: different.clone(),
            pipelines: Some(n),
            ..runner::Options::default()
        };
        let started = std::time::Instant::now();
        let runs = runner::run_files(&files, &opts);
        println!(
            "== cascade_threads = {n} ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        println!("{}", report::render(&runs, Some(&dir), 10, 50));
        gate(&runs, listed, n);
        by_n.push(runs);
    }
    let (one, four) = (&by_n[0], &by_n[1]);
    assert_eq!(one.len(), four.len());
    let mut compared = 0;
    for (a, b) in one.iter().zip(four) {
        assert_eq!(a.path, b.path);
        if a.tally.timed_out > 0 || b.tally.timed_out > 0 {
            continue;
        }
        compared += 1;
        assert_eq!(
            a.tally,
            b.tally,
            "{}: other outcomes with 4 pipelines",
            a.path.display()
        );
        let lines = |r: &FileRun| {
            r.refused
                .iter()
                .map(|x| (x.line, x.code))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(a),
            lines(b),
            "{}: other refusals with 4 pipelines",
            a.path.display()
        );
    }
    println!(
        "{compared} of {} files with the same outcomes, record for record, with 1 and 4 pipelines",
        one.len()
    );
    assert!(compared > 0, "every file timed out somewhere");
}

/// The corpus gates, for the run with `n` pipelines per stage.
fn gate(runs: &[FileRun], listed: usize, n: usize) {
    let unreadable: Vec<_> = runs
        .iter()
        .filter_map(|r| {
            r.load_error
                .as_ref()
                .map(|e| format!("{}: {e}", r.path.display()))
        })
        .collect();
    assert!(
        unreadable.is_empty(),
        "{n} pipelines: unreadable files: {unreadable:?}"
    );
    let t = report::total(runs);
    assert_eq!(
        t.crashed, 0,
        "{n} pipelines: records crashed the engine (see CRASH above)"
    );
    assert_eq!(
        t.wrong, 0,
        "{n} pipelines: records got a WRONG answer (see WRONG above)"
    );
    let stale: Vec<_> = runs.iter().flat_map(|r| &r.stale).collect();
    assert!(
        stale.is_empty(),
        "{n} pipelines: {} entries of slt/different.txt were not answered as listed (see STALE above): remove or correct them",
        stale.len()
    );
    assert_eq!(
        t.different, listed,
        "{n} pipelines: slt/different.txt lists {listed} records, {} were met (a file or line moved?)",
        t.different
    );
    let floor = pass_floor().expect("slt/pass-floor.txt");
    assert!(
        t.passed >= floor,
        "{n} pipelines: {} records passed, below the floor of {floor} in slt/pass-floor.txt",
        t.passed
    );
    if t.passed > floor {
        println!(
            "{} records passed, above the floor of {floor}: raise slt/pass-floor.txt to {}",
            t.passed, t.passed
        );
    }
}
