//! KILL's rules: the tenant boundary (1094 vs 1095), `KILL QUERY` of the
//! caller's own connection (1317), and KILL by statement id (MatrixOne's
//! `KILL QUERY <conn> '<statement id>'`, `Connection::cancel(Some(id))`):
//! a statement that is no longer running is a no-op that says so, never a
//! kill of the next one. Deterministic: the victim runs on a LocalPool that
//! this thread drives, and the clock is a ManualHost.

mod common;
use common::*;

use cascade::host::ManualHost;
use cascade::{
    Connection, Engine, EngineConfig, Identity, KillOutcome, QueryError, QueryResult, Reason,
};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

fn manual_engine() -> Engine {
    Engine::new(EngineConfig::new(1, Arc::new(ManualHost::new())))
}

type Slot = Rc<RefCell<Option<Result<QueryResult, QueryError>>>>;

/// Starts `SELECT sleep(100)` on `victim` in `pool` and runs the pool until
/// it sleeps (the ManualHost clock never reaches its end); returns where
/// its result will land and its statement id.
fn start_sleep(pool: &mut LocalPool, victim: &Connection) -> (Slot, u64) {
    let slot: Slot = Rc::default();
    let (v, s) = (victim.clone(), slot.clone());
    pool.spawner()
        .spawn_local(async move {
            *s.borrow_mut() = Some(v.execute("SELECT sleep(100)").await);
        })
        .unwrap();
    pool.run_until_stalled();
    assert!(slot.borrow().is_none(), "the sleep is running");
    let id = victim.running_statement().expect("a statement is running");
    (slot, id)
}

fn finish(pool: &mut LocalPool, slot: &Slot) -> Result<QueryResult, QueryError> {
    pool.run_until_stalled();
    slot.borrow_mut().take().expect("the statement ended")
}

#[test]
fn another_tenants_connection_is_invisible_1094_same_tenant_1095() {
    let e = engine();
    let alice = conn(&e, "acme", "alice", "member");
    let bob = conn(&e, "acme", "bob", "member");
    let globex_admin = conn(&e, "globex", "root", "admin");
    let sys_member = conn(&e, "sys", "ops", "member");
    let unknown = run(&bob, "KILL 999999").unwrap_err();
    assert_eq!((unknown.code, unknown.sqlstate), (1094, "HY000"));
    for (who, sql) in [
        (&globex_admin, format!("KILL QUERY {}", alice.id())),
        (&globex_admin, format!("KILL {}", alice.id())),
        (&globex_admin, format!("KILL QUERY {} '1'", alice.id())),
        (&sys_member, format!("KILL CONNECTION {}", alice.id())),
        // Inside a multi-statement request (the sqlparser path): the same.
        (&globex_admin, format!("SELECT 1; KILL {}", alice.id())),
    ] {
        let err = run(who, &sql).unwrap_err();
        assert_eq!(err.code, 1094, "{sql}: {err}");
        // Word for word what an id that does not exist answers.
        assert_eq!(
            err.message,
            format!("Unknown thread id: {}", alice.id()),
            "{sql}"
        );
    }
    // Same tenant, not own, not admin: visible but not killable.
    for sql in [
        format!("KILL QUERY {}", alice.id()),
        format!("KILL {}", alice.id()),
        format!("SELECT 1; KILL {}", alice.id()),
    ] {
        let err = run(&bob, &sql).unwrap_err();
        assert_eq!(err.code, 1095, "{sql}: {err}");
    }
    // The tenant's admin and sys's admin may.
    let acme_admin = conn(&e, "acme", "root", "admin");
    ok(&acme_admin, &format!("KILL QUERY {}", alice.id()));
    let sys_admin = conn(&e, "sys", "root", "admin");
    ok(&sys_admin, &format!("KILL QUERY {}", alice.id()));
    assert_eq!(cell(&alice, "SELECT 1"), "1", "alice is untouched");
}

#[test]
fn kill_query_of_the_own_connection_ends_the_kill_with_1317() {
    let e = manual_engine();
    let alice = conn(&e, "acme", "alice", "member");
    for sql in [
        format!("KILL QUERY {}", alice.id()),
        format!("kill query {};", alice.id()),
    ] {
        let err = run(&alice, &sql).unwrap_err();
        assert_eq!((err.code, err.sqlstate), (1317, "70100"), "{sql}: {err}");
        let cause = err.cause.as_ref().expect("a cause");
        assert!(
            matches!(&cause.reason, Reason::KillQuery { by_connection, .. } if *by_connection == alice.id()),
            "{cause:?}"
        );
        // Only that statement: the connection goes on.
        assert_eq!(cell(&alice, "SELECT 1"), "1");
    }
}

#[test]
fn kill_query_by_statement_id_kills_only_that_statement() {
    let e = manual_engine();
    let victim = conn(&e, "acme", "alice", "member");
    let killer = conn(&e, "acme", "alice", "member");
    let mut pool = LocalPool::new();

    // A statement that has ended: a no-op that says so, and the statement
    // running now is not touched.
    let done = ok(&victim, "SELECT 1").query_id;
    let (slot, running) = start_sleep(&mut pool, &victim);
    assert_ne!(running, done);
    let r = ok(&killer, &format!("KILL QUERY {} '{done}'", victim.id()));
    assert_eq!(r.warnings, 1);
    let msg = r.message.unwrap_or_default();
    assert!(
        msg.contains(&format!("statement {done} is not running")),
        "{msg}"
    );
    pool.run_until_stalled();
    assert!(slot.borrow().is_none(), "the running statement goes on");

    // The running one, by its id: killed, 1317.
    let r = ok(
        &killer,
        &format!("KILL QUERY {} \"{running}\";", victim.id()),
    );
    assert_eq!(r.warnings, 0);
    let err = finish(&mut pool, &slot).unwrap_err();
    assert_eq!(err.code, 1317, "{err}");
    assert_eq!(err.query_id, Some(running));
    assert_eq!(cell(&victim, "SELECT 1"), "1");
}

#[test]
fn connection_cancel_with_a_stale_id_never_kills_the_next_statement() {
    let e = manual_engine();
    let c = conn(&e, "acme", "alice", "member");
    let mut pool = LocalPool::new();
    let (slot, first) = start_sleep(&mut pool, &c);
    assert_eq!(c.cancel(Some(first)), KillOutcome::Killed);
    assert_eq!(finish(&mut pool, &slot).unwrap_err().code, 1317);
    // A second click on Cancel arrives after the next statement started.
    let (slot, second) = start_sleep(&mut pool, &c);
    assert_eq!(
        c.cancel(Some(first)),
        KillOutcome::NotRunning {
            connection: c.id(),
            statement: first
        }
    );
    pool.run_until_stalled();
    assert!(slot.borrow().is_none(), "the next statement goes on");
    // Without an id: whatever runs now.
    assert_eq!(c.cancel(None), KillOutcome::Killed);
    let err = finish(&mut pool, &slot).unwrap_err();
    assert_eq!(err.query_id, Some(second));
    let cause = err.cause.as_ref().expect("a cause");
    assert!(
        matches!(&cause.reason, Reason::KillQuery { by_connection, .. } if *by_connection == c.id()),
        "{cause:?}"
    );
    assert_eq!(c.cancel(None), KillOutcome::Nothing, "nothing runs");
    assert_eq!(c.running_statement(), None);
}

#[test]
fn kill_connection_of_an_idle_transaction_rolls_it_back_on_the_fast_path() {
    let e = manual_engine();
    let admin = conn(&e, "acme", "root", "admin");
    ok(&admin, "CREATE TABLE t (x BIGINT)");
    let victim = conn(&e, "acme", "alice", "member");
    ok(&victim, "BEGIN");
    ok(&victim, "INSERT INTO t VALUES (1)");
    ok(&admin, &format!("KILL {}", victim.id()));
    let err = run(&victim, "COMMIT").unwrap_err();
    assert_eq!(err.code, 1927, "{err}");
    assert_eq!(cell(&admin, "SELECT count(*) FROM t"), "0");
    assert!(e
        .processes(&Identity::new("sys", "root", "admin"))
        .iter()
        .any(|p| p.id == victim.id() && p.command == "Killed" && p.txn_id.is_none()));
}
