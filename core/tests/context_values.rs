//! The seed plan's "Context Integrity" check: the values set at every level
//! reach a live Pipeline context intact while its statement runs, inside a
//! transaction too, and no descendant can claim another tenant, connection
//! or transaction.

use cascade::context::ContextInfo;
use cascade::{
    ContextError, Engine, EngineConfig, Identity, Level, ManualHost, QueryError, QueryResult,
    ValueKey,
};
use futures::FutureExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

fn find<'a>(info: &'a ContextInfo, pred: &dyn Fn(&ContextInfo) -> bool) -> Vec<&'a ContextInfo> {
    let mut out = Vec::new();
    let mut stack = vec![info];
    while let Some(x) = stack.pop() {
        if pred(x) {
            out.push(x);
        }
        stack.extend(x.children.iter());
    }
    out
}

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    f.poll(&mut TaskCx::from_waker(&waker))
}

type Running<'a> = Pin<Box<dyn Future<Output = Result<QueryResult, QueryError>> + 'a>>;

#[test]
fn a_live_pipeline_carries_every_value_of_its_ancestors() {
    let host = Arc::new(ManualHost::new());
    let e = Engine::new(EngineConfig::new(7, host.clone()));
    let c = e
        .connect(Identity::new("acme", "alice", "analyst"))
        .unwrap();
    futures::executor::block_on(c.execute("BEGIN")).unwrap();
    let txn_id = c
        .context()
        .snapshot()
        .children
        .iter()
        .find(|x| x.level == Level::Txn)
        .and_then(|t| t.txn_id)
        .expect("an open transaction");

    // A statement that waits on the host timer: it stays in its pipeline
    // until the clock moves.
    let mut running: Running<'_> =
        Box::pin(c.execute("SELECT sleep(1) FROM generate_series(1, 2) AS t(x)"));
    assert!(poll_once(running.as_mut()).is_pending());

    let tree = e.contexts();
    let pipelines = find(&tree, &|x| x.level == Level::Pipeline);
    assert!(!pipelines.is_empty(), "the statement is in its pipeline");
    let statement_id = e.processes(c.identity())[0]
        .statement_id
        .expect("a running statement");
    for p in pipelines {
        let id = p.identity.as_deref().expect("identity");
        assert_eq!(
            (&*id.tenant, &*id.user, &*id.role),
            ("acme", "alice", "analyst")
        );
        assert_eq!(p.node_id, Some(7));
        assert_eq!(p.connection_id, Some(c.id()));
        assert_eq!(p.session_id, Some(c.id()));
        assert_eq!(p.txn_id, Some(txn_id), "inside a transaction");
        assert_eq!(p.statement_id, Some(statement_id));
    }
    let queries = find(&tree, &|x| x.level == Level::Query);
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].txn_id, Some(txn_id), "the Query carries its txn");

    host.advance(Duration::from_secs(3));
    let r = loop {
        match poll_once(running.as_mut()) {
            Poll::Ready(r) => break r,
            Poll::Pending => host.advance(Duration::from_secs(1)),
        }
    };
    assert_eq!(r.unwrap().rows.len(), 2);
    assert!(c.execute("COMMIT").now_or_never().unwrap().is_ok());
}

#[test]
fn a_descendant_cannot_claim_another_tenant_or_connection() {
    let host = Arc::new(ManualHost::new());
    let e = Engine::new(EngineConfig::new(7, host));
    let c = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    let req = c.context().child(Level::Request).build().unwrap();
    let err = req
        .child(Level::Query)
        .statement_id(1)
        .identity(Identity::new("globex", "root", "admin"))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ContextError::ValueOverride {
            level: Level::Query,
            key: ValueKey::Identity
        }
    );
    assert!(err.to_string().contains("tenant"), "{err}");
    let err = req
        .child(Level::Query)
        .statement_id(1)
        .connection_id(c.id() + 1)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("connection_id"), "{err}");
    let q: QueryError = err.into();
    assert_eq!(q.code, 1105);
}
