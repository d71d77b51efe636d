//! Fuzzing support for cascade: the harness shared with the regression
//! tests (`core/tests/fuzz_harness`) and a structured SQL generator.

#[path = "../../core/tests/fuzz_harness/mod.rs"]
pub mod harness;

pub mod gen;

/// Prints a case when `CASCADE_FUZZ_PRINT` is set (for turning a crash
/// artifact into a regression test: `CASCADE_FUZZ_PRINT=1 cargo +nightly
/// fuzz run <target> <artifact>`).
pub fn maybe_print(schedule: &harness::Schedule, requests: &[String]) {
    if std::env::var_os("CASCADE_FUZZ_PRINT").is_some() {
        eprintln!("schedule: {schedule:?}");
        for r in requests {
            eprintln!("request: {r:?}");
        }
    }
}

/// Prints what each request returned when `CASCADE_FUZZ_PRINT` is set.
pub fn maybe_print_outcomes(outs: &[harness::Outcome]) {
    if std::env::var_os("CASCADE_FUZZ_PRINT").is_some() {
        for o in outs {
            match o {
                harness::Outcome::Done(Ok(r)) => {
                    eprintln!("-> ok: {} rows, {} affected", r.rows.len(), r.rows_affected)
                }
                harness::Outcome::Done(Err(e)) => eprintln!("-> error {}: {}", e.code, e.message),
                harness::Outcome::Dropped => eprintln!("-> dropped"),
            }
        }
    }
}
