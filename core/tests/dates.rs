//! `NOW()` and its kin read the host's wall clock once per statement
//! (ManualHost makes them deterministic), and the date and decimal values
//! reach the Rust API with their types. The SQL behaviour of dates and
//! decimals is in core/tests/slt/dates.slt and decimal.slt.

mod common;
use common::*;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cascade::{DataType, Engine, EngineConfig, ManualHost, Value};

/// 2024-03-05 14:07:09.250000 UTC.
const T0: i64 = 1_709_647_629_250_000;

fn manual_engine() -> (Engine, Arc<ManualHost>) {
    let host = Arc::new(ManualHost::new());
    host.set_unix_micros(T0);
    (Engine::new(EngineConfig::new(1, host.clone())), host)
}

#[test]
fn now_and_its_kin_read_the_hosts_wall_clock() {
    let (e, host) = manual_engine();
    let c = conn(&e, "acme", "alice", "member");
    let r = ok(
        &c,
        "SELECT NOW(), CURDATE(), CURTIME(), UNIX_TIMESTAMP(), NOW(3), NOW(6), CURRENT_TIMESTAMP, CURRENT_DATE, LOCALTIMESTAMP(), YEAR(NOW())",
    );
    assert_eq!(
        rows(&r),
        vec![vec![
            "2024-03-05 14:07:09",
            "2024-03-05",
            "14:07:09",
            "1709647629",
            "2024-03-05 14:07:09.250000",
            "2024-03-05 14:07:09.250000",
            "2024-03-05 14:07:09",
            "2024-03-05",
            "2024-03-05 14:07:09",
            "2024",
        ]]
    );
    let types: Vec<DataType> = r.columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        &types[..4],
        &[
            DataType::DateTime,
            DataType::Date,
            DataType::Time,
            DataType::Int
        ]
    );
    // The clock moves with the host.
    host.advance(Duration::from_secs(86_400));
    assert_eq!(cell(&c, "SELECT CURDATE()"), "2024-03-06");
    assert_eq!(
        cell(&c, "SELECT DATEDIFF(NOW(), '2024-03-01')"),
        "5",
        "a day later"
    );
}

#[test]
fn now_is_fixed_for_the_whole_statement() {
    let (e, host) = manual_engine();
    let c = conn(&e, "acme", "alice", "member");
    // SLEEP waits on the host's timer between the two NOW()s: a thread
    // moves the clock 5 s once the timer is armed.
    let mover = {
        let host = host.clone();
        thread::spawn(move || {
            while host.pending_timers() == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            host.advance(Duration::from_secs(5));
        })
    };
    let r = ok(&c, "SELECT NOW(6), SLEEP(5), NOW(6), UNIX_TIMESTAMP()");
    mover.join().expect("mover");
    let row = &rows(&r)[0];
    assert_eq!(row[0], "2024-03-05 14:07:09.250000");
    assert_eq!(row[2], row[0], "NOW() moved within one statement");
    assert_eq!(row[3], "1709647629");
    // The next statement reads the clock again.
    assert_eq!(cell(&c, "SELECT NOW(6)"), "2024-03-05 14:07:14.250000");
}

#[test]
fn now_in_dml_is_the_statements_time() {
    let (e, host) = manual_engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, "CREATE TABLE log (id INT, at DATETIME, d DATE)");
    ok(&c, "INSERT INTO log VALUES (1, NOW(), CURDATE())");
    host.advance(Duration::from_secs(3600));
    ok(&c, "INSERT INTO log SELECT 2, NOW(), CURDATE()");
    ok(
        &c,
        "UPDATE log SET d = d + INTERVAL 1 DAY WHERE at < NOW() - INTERVAL 30 MINUTE",
    );
    assert_eq!(
        rows(&ok(&c, "SELECT id, at, d FROM log ORDER BY id")),
        vec![
            vec!["1", "2024-03-05 14:07:09", "2024-03-06"],
            vec!["2", "2024-03-05 15:07:09", "2024-03-05"],
        ]
    );
}

#[test]
fn a_column_default_cannot_freeze_now() {
    let (e, _host) = manual_engine();
    let c = conn(&e, "acme", "alice", "member");
    let err = run(&c, "CREATE TABLE t (a INT, at DATETIME DEFAULT NOW())").unwrap_err();
    assert_eq!(err.code, 1235, "{err}");
    // A constant default is fine.
    ok(&c, "CREATE TABLE t (a INT, at DATE DEFAULT '2024-01-01')");
    ok(&c, "INSERT INTO t (a) VALUES (1)");
    assert_eq!(cell(&c, "SELECT at FROM t"), "2024-01-01");
}

#[test]
fn dates_and_decimals_reach_the_api_typed() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let r = ok(
        &c,
        "SELECT DATE '2024-01-05', TIMESTAMP '2024-01-05 10:00:00', TIME '-01:30:00', 1.50 * 2, 7 / 2",
    );
    let row = &r.rows[0];
    assert!(matches!(row[0], Value::Date(_)), "{:?}", row[0]);
    assert!(matches!(row[1], Value::DateTime(_)), "{:?}", row[1]);
    assert!(matches!(row[2], Value::Time(_)), "{:?}", row[2]);
    assert!(matches!(row[3], Value::Decimal(_)), "{:?}", row[3]);
    assert_eq!(
        rows(&r)[0],
        vec![
            "2024-01-05",
            "2024-01-05 10:00:00",
            "-01:30:00",
            "3.00",
            "3.5000"
        ]
    );
    let types: Vec<DataType> = r.columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        vec![
            DataType::Date,
            DataType::DateTime,
            DataType::Time,
            DataType::Decimal,
            DataType::Decimal
        ]
    );
    // As JSON (what the web API serializes): strings, every digit kept.
    assert_eq!(
        serde_json::to_string(&row[..]).expect("json"),
        r#"["2024-01-05","2024-01-05 10:00:00","-01:30:00","3.00","3.5000"]"#
    );
}
