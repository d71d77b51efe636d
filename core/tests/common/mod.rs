//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

pub mod parallel;
pub mod spans;
pub mod tables;

use cascade::{
    Connection, Engine, EngineConfig, Identity, QueryError, QueryResult, StdHost, Value,
};
use futures::executor::block_on;

/// Runs `f` with `subscriber` as the thread's default `tracing`
/// subscriber, after asking every callsite's interest again: `tracing`
/// caches it process-wide at a callsite's first use, and a sibling test
/// with no subscriber may have cached "never" (its spans then disabled here).
pub fn with_subscriber<S, T>(subscriber: S, f: impl FnOnce() -> T) -> T
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    })
}

/// The `rollback` span whose parent is the transaction's span: rollback
/// runs on a cleanup context, and its span stays a child of the Txn span.
pub fn rollback_span_under_txn(trace: &cascade::Trace) -> &cascade::trace::SpanRecord {
    let txn = trace
        .spans
        .iter()
        .find(|s| s.level == cascade::Level::Txn && s.name == "txn")
        .expect("a txn span");
    trace
        .spans
        .iter()
        .find(|s| s.name == "rollback" && s.parent == Some(txn.id))
        .expect("a rollback span under the txn span")
}

pub fn engine() -> Engine {
    Engine::new(EngineConfig::new(1, StdHost::shared()))
}

pub fn conn(e: &Engine, tenant: &str, user: &str, role: &str) -> Connection {
    e.connect(Identity::new(tenant, user, role))
        .expect("connect")
}

pub fn run(c: &Connection, sql: &str) -> Result<QueryResult, QueryError> {
    block_on(c.execute(sql))
}

pub fn ok(c: &Connection, sql: &str) -> QueryResult {
    match run(c, sql) {
        Ok(r) => r,
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Rows rendered as text, NULL as "NULL".
pub fn rows(r: &QueryResult) -> Vec<Vec<String>> {
    r.rows
        .iter()
        .map(|row| row.iter().map(Value::to_string).collect())
        .collect()
}

pub fn cell(c: &Connection, sql: &str) -> String {
    let r = ok(c, sql);
    assert_eq!(
        r.rows.len(),
        1,
        "{sql}: expected one row, got {:?}",
        rows(&r)
    );
    r.rows[0][0].to_string()
}

/// A result as text: cells joined by `|`, rows by `;`.
pub fn table(c: &Connection, sql: &str) -> String {
    rows(&ok(c, sql))
        .iter()
        .map(|r| r.join("|"))
        .collect::<Vec<_>>()
        .join(";")
}
