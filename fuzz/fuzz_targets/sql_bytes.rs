//! Arbitrary bytes as SQL: the first 4 bytes choose the interruption (kill,
//! disconnect, dropped future, shutdown), the poll it fires at and a
//! statement timeout; the rest is the request text.
#![no_main]

use cascade_fuzz::harness::{run, Schedule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (schedule, rest) = Schedule::from_prefix(data);
    let sql = String::from_utf8_lossy(rest).into_owned();
    cascade_fuzz::maybe_print(&schedule, std::slice::from_ref(&sql));
    let outs = run(&[sql.as_str()], schedule);
    cascade_fuzz::maybe_print_outcomes(&outs);
});
