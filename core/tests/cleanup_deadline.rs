//! Commit and rollback run on cleanup contexts with their own deadline: a
//! storage hook that makes them slow (it moves the deterministic clock past
//! the cleanup deadline) shows the deadline fire, its cause recorded, and
//! the connection freed with nothing leaked. The hooks also see the phase
//! the process list shows meanwhile.

mod common;

use cascade::session::{TxnHooks, CLEANUP_TIMEOUT};
use cascade::trace::SpanStatus;
use cascade::{
    CancelKind, Cancelled, Connection, Context, Engine, EngineConfig, Identity, ManualHost,
    ProcessList, QueryError, QueryResult, Reason,
};
use futures::executor::block_on;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A storage whose commit or rollback takes `slow` on the host clock, and
/// that notes the connection's `State` while it works.
struct SlowStorage {
    host: Arc<ManualHost>,
    slow_commit: Mutex<Option<Duration>>,
    slow_rollback: Mutex<Option<Duration>>,
    processes: Mutex<Option<Arc<ProcessList>>>,
    seen: Mutex<Vec<(&'static str, u64, String)>>,
}

impl SlowStorage {
    fn note(&self, hook: &'static str, cx: &Context) {
        let conn = cx.values().connection_id().unwrap_or(0);
        let state = self
            .processes
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|p| p.get(conn))
            .map(|m| m.info().state.to_owned())
            .unwrap_or_default();
        self.seen.lock().unwrap().push((hook, conn, state));
    }

    fn work(&self, slow: &Mutex<Option<Duration>>, cx: &Context) -> Result<(), Cancelled> {
        if let Some(d) = *slow.lock().unwrap() {
            self.host.advance(d);
        }
        cx.check()
    }
}

impl TxnHooks for SlowStorage {
    fn commit(&self, cx: &Context, _txn_id: u64) -> Result<(), Cancelled> {
        self.note("commit", cx);
        self.work(&self.slow_commit, cx)
    }
    fn rollback(&self, cx: &Context, _txn_id: u64) -> Result<(), Cancelled> {
        self.note("rollback", cx);
        self.work(&self.slow_rollback, cx)
    }
}

fn setup() -> (Arc<ManualHost>, Arc<SlowStorage>, Engine) {
    let host = Arc::new(ManualHost::new());
    let storage = Arc::new(SlowStorage {
        host: host.clone(),
        slow_commit: Mutex::new(None),
        slow_rollback: Mutex::new(None),
        processes: Mutex::new(None),
        seen: Mutex::new(Vec::new()),
    });
    let mut config = EngineConfig::new(1, host.clone());
    config.txn_hooks = Some(storage.clone());
    let e = Engine::new(config);
    *storage.processes.lock().unwrap() = Some(e.process_list().clone());
    (host, storage, e)
}

fn run(c: &Connection, sql: &str) -> Result<QueryResult, QueryError> {
    block_on(c.execute(sql))
}

fn count(c: &Connection) -> String {
    run(c, "SELECT count(*) FROM t").unwrap().rows[0][0].to_string()
}

#[test]
fn a_slow_rollback_after_kill_hits_the_cleanup_deadline_and_still_frees_everything() {
    let (_host, storage, e) = setup();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    let admin = e.connect(Identity::new("acme", "root", "admin")).unwrap();
    run(&a, "CREATE TABLE t (x BIGINT)").unwrap();
    run(&a, "BEGIN").unwrap();
    let q = run(&a, "INSERT INTO t VALUES (1), (2)").unwrap().query_id;
    *storage.slow_rollback.lock().unwrap() = Some(CLEANUP_TIMEOUT * 2);

    run(&admin, &format!("KILL CONNECTION {}", a.id())).unwrap();

    // The rollback ran on its cleanup context, shown as `cleaning up`.
    let seen = storage.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![("rollback", a.id(), "cleaning up".to_owned())]);
    // Its span, a child of the Txn span, ended with the cleanup deadline
    // and its cause.
    let trace = e.trace(q).unwrap();
    let rb = common::rollback_span_under_txn(&trace);
    let SpanStatus::DeadlineExceeded { cause, .. } = &rb.status else {
        panic!("the rollback's deadline fired: {:?}", rb.status);
    };
    assert_eq!(cause.kind, CancelKind::DeadlineExceeded);
    assert_eq!(
        cause.reason,
        Reason::CleanupTimeout {
            limit_ms: CLEANUP_TIMEOUT.as_millis() as u64
        }
    );
    // Freed all the same: the writes are gone, the connection leaves, no
    // context or memory is left behind.
    assert_eq!(count(&admin), "0");
    block_on(a.close());
    assert!(e.process_list().get(a.id()).is_none());
    block_on(admin.close());
    drop((a, admin));
    assert!(e.process_list().is_empty());
    assert_eq!(e.memory_in_use(), 0);
    assert_eq!(e.root().subtree_len(), 1, "{:#?}", e.contexts());
}

#[test]
fn a_slow_commit_hits_the_cleanup_deadline_and_publishes_nothing() {
    let (_host, storage, e) = setup();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    run(&a, "CREATE TABLE t (x BIGINT)").unwrap();
    run(&a, "BEGIN").unwrap();
    run(&a, "INSERT INTO t VALUES (1)").unwrap();
    *storage.slow_commit.lock().unwrap() = Some(CLEANUP_TIMEOUT + Duration::from_millis(1));
    let err = run(&a, "COMMIT").unwrap_err();
    assert_eq!(err.code, 3024, "{err}");
    assert!(matches!(
        err.cause.as_deref().map(|c| &c.reason),
        Some(Reason::CleanupTimeout { .. })
    ));
    let seen = storage.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("commit", a.id(), "committing".to_owned()),
            ("rollback", a.id(), "committing".to_owned()),
        ],
        "the failed commit is rolled back"
    );
    *storage.slow_commit.lock().unwrap() = None;
    assert_eq!(count(&a), "0", "nothing was published");
    assert!(e.processes(a.identity())[0].txn_id.is_none());
    // The connection goes on.
    run(&a, "INSERT INTO t VALUES (2)").unwrap();
    assert_eq!(count(&a), "1");
}

#[test]
fn the_process_list_shows_the_statement_phase() {
    let (_host, storage, e) = setup();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    run(&a, "CREATE TABLE t (x BIGINT)").unwrap();
    // An implicit transaction commits in phase `committing`.
    run(&a, "INSERT INTO t VALUES (1)").unwrap();
    run(&a, "BEGIN; INSERT INTO t VALUES (2)").unwrap();
    run(&a, "ROLLBACK").unwrap();
    let states: Vec<(&str, String)> = storage
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _, s)| (*h, s.clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("commit", "committing".to_owned()),
            ("rollback", "rolling back".to_owned()),
        ]
    );
    // A running statement is `executing`; an idle connection shows nothing.
    let running = a.clone();
    let mut sleep = Box::pin(running.execute("SELECT sleep(1)"));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    let row = &e.processes(a.identity())[0];
    assert_eq!((row.command, row.state), ("Query", "executing"));
    let shown = run(
        &e.connect(Identity::new("acme", "alice", "member")).unwrap(),
        "SHOW PROCESSLIST",
    )
    .unwrap();
    let state_col = shown
        .columns
        .iter()
        .position(|c| c.name == "State")
        .unwrap();
    assert!(shown
        .rows
        .iter()
        .any(|r| r[state_col].to_string() == "executing"));
    a.context().cancel(Reason::Requested);
    assert!(sleep.as_mut().poll(&mut cx).is_ready());
    drop(sleep);
    assert_eq!(e.processes(a.identity())[0].state, "");
}
