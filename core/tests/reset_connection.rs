//! `COM_RESET_CONNECTION` on the engine side ([`Connection::reset`]): the
//! open transaction rolls back on a cleanup context, the session variables
//! go back to their defaults; with tracing on. Its own test binary: `tracing`
//! caches callsite interest process-wide.

mod common;
use common::spans::Collect;

use cascade::{Connection, Engine, EngineConfig, Identity, ManualHost};
use futures::executor::block_on;
use std::future::Future;
use std::sync::Arc;
use std::task::Context as TaskCx;
use tracing_subscriber::layer::SubscriberExt;

fn cell(c: &Connection, sql: &str) -> String {
    block_on(c.execute(sql)).unwrap().rows[0][0].to_string()
}

#[test]
fn reset_rolls_back_on_a_cleanup_context_and_resets_variables() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    common::with_subscriber(subscriber, || {
        let host = Arc::new(ManualHost::new());
        let e = Engine::new(EngineConfig::new(1, host));
        let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
        let b = e.connect(Identity::new("acme", "bob", "member")).unwrap();
        block_on(a.execute("CREATE TABLE t (x BIGINT)")).unwrap();
        block_on(a.execute("SET autocommit = 0")).unwrap();
        block_on(a.execute("SET max_execution_time = 50")).unwrap();
        block_on(a.execute("SET cascade_memory_budget = 1000")).unwrap();
        let q = block_on(a.execute("INSERT INTO t VALUES (1), (2)"))
            .unwrap()
            .query_id;
        assert_eq!(cell(&a, "SELECT count(*) FROM t"), "2");

        a.reset().unwrap();

        // Rolled back: nobody sees the rows, no transaction is open.
        assert_eq!(cell(&b, "SELECT count(*) FROM t"), "0");
        assert_eq!(cell(&a, "SELECT count(*) FROM t"), "0");
        assert!(e.processes(a.identity())[0].txn_id.is_none());
        // On a cleanup context whose span is a child of the Txn span, in
        // the recorder and in tracing.
        let trace = e.trace(q).unwrap();
        let rb = common::rollback_span_under_txn(&trace);
        assert_eq!(
            rb.attrs.get("reason"),
            Some(&cascade::trace::AttrValue::Str(
                "COM_RESET_CONNECTION".into()
            ))
        );
        assert_eq!(
            rb.attrs.get("cleanup"),
            Some(&cascade::trace::AttrValue::Bool(true))
        );
        let seen = collect.named("rollback");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].fields.get("status").map(String::as_str), Some("ok"));
        assert_eq!(collect.parent_name(&seen[0]).as_deref(), Some("txn"));
        // The variables are back to their defaults; the connection is the
        // same one.
        assert_eq!(cell(&a, "SELECT @@autocommit"), "1");
        assert_eq!(cell(&a, "SELECT @@max_execution_time"), "0");
        assert_eq!(
            cell(&a, "SELECT @@cascade_memory_budget"),
            (1u64 << 30).to_string()
        );
        assert_eq!(cell(&a, "SELECT connection_id()"), a.id().to_string());
        // Autocommit again: a write is visible to others at once.
        block_on(a.execute("INSERT INTO t VALUES (3)")).unwrap();
        assert_eq!(cell(&b, "SELECT count(*) FROM t"), "1");
        // A reset with nothing open is fine.
        a.reset().unwrap();
    });
}

#[test]
fn reset_refuses_while_a_statement_runs_and_after_a_kill() {
    // Under a subscriber too: a test of this binary without one could make
    // the spans' callsites look disabled to the other.
    let subscriber = tracing_subscriber::registry().with(Collect::default());
    common::with_subscriber(subscriber, refuses);
}

fn refuses() {
    let host = Arc::new(ManualHost::new());
    let e = Engine::new(EngineConfig::new(1, host));
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    let mut running = Box::pin(a.execute("SELECT sleep(1)"));
    let waker = futures::task::noop_waker();
    assert!(running
        .as_mut()
        .poll(&mut TaskCx::from_waker(&waker))
        .is_pending());
    assert_eq!(a.reset().unwrap_err().code, 2014);
    drop(running);
    a.reset().unwrap();
    a.context().cancel(cascade::Reason::ClientDisconnected);
    assert_eq!(a.reset().unwrap_err().code, 1927);
    block_on(a.close());
    assert_eq!(a.reset().unwrap_err().code, 2006);
}
