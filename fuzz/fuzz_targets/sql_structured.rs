//! Statements built from the supported grammar (SELECT with
//! generate_series / tables / subqueries / joins / GROUP BY / ORDER BY /
//! LIMIT / UNION ALL, every operator and function, DML, transactions, SET,
//! KILL), run with an interruption at a random poll.
#![no_main]

use arbitrary::Unstructured;
use cascade_fuzz::{gen, harness::run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = gen::case(&mut u) else { return };
    cascade_fuzz::maybe_print(&case.schedule, &case.requests);
    let reqs: Vec<&str> = case.requests.iter().map(String::as_str).collect();
    let outs = run(&reqs, case.schedule);
    cascade_fuzz::maybe_print_outcomes(&outs);
});
