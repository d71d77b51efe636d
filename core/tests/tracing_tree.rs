//! Every span reaches `tracing`, not only the in-memory recorder: context
//! levels, cleanup work (the rollback after a kill, a child of the Txn
//! span) and operators, with their level, status and cause. A killed
//! statement's tree as a `tracing` layer collects it is the recorder's tree:
//! same spans, same parents, same statuses and causes. So an embedder's
//! OpenTelemetry sees what the page sees.
//!
//! Its own test binary: `tracing` caches callsite interest process-wide.

mod common;
use common::spans::{Collect, Seen};

use cascade::trace::SpanStatus;
use cascade::{Engine, EngineConfig, Identity, Level, ManualHost, QueryError, QueryResult};
use futures::executor::block_on;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    f.poll(&mut TaskCx::from_waker(&waker))
}

type Running<'a> = Pin<Box<dyn Future<Output = Result<QueryResult, QueryError>> + 'a>>;

#[test]
fn a_killed_statements_tree_in_tracing_is_the_recorders_tree() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    common::with_subscriber(subscriber, || {
        let host = Arc::new(ManualHost::new());
        let e = Engine::new(EngineConfig::new(1, host.clone()));
        let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
        let admin = e.connect(Identity::new("acme", "root", "admin")).unwrap();
        block_on(a.execute("CREATE TABLE t (x BIGINT)")).unwrap();
        block_on(a.execute("BEGIN; INSERT INTO t VALUES (1)")).unwrap();

        // A statement with operators, waiting on the host timer.
        let mut running: Running<'_> = Box::pin(
            a.execute("SELECT x, sleep(1) FROM generate_series(1, 3) AS t(x) WHERE x > 0"),
        );
        assert!(poll_once(running.as_mut()).is_pending());
        block_on(admin.execute(&format!("KILL CONNECTION {}", a.id()))).unwrap();
        host.advance(Duration::from_secs(1));
        let err = match poll_once(running.as_mut()) {
            Poll::Ready(r) => r.unwrap_err(),
            Poll::Pending => panic!("the killed statement ended"),
        };
        drop(running);
        assert_eq!(err.code, 1317, "{err}");
        block_on(a.close());

        let trace = e.trace(err.query_id.unwrap()).unwrap();
        let seen = collect.0.lock().unwrap().clone();
        // Recorder span id -> the tracing span that carries it.
        let by_rec: HashMap<u64, &Seen> = seen
            .values()
            .filter_map(|s| Some((s.fields.get("span")?.parse().ok()?, s)))
            .filter(|(rec, _)| *rec != 0)
            .collect();
        let rec_of = |tracing_id: Option<u64>| -> Option<u64> {
            seen.get(&tracing_id?)?.fields.get("span")?.parse().ok()
        };
        let mut levels = Vec::new();
        for s in &trace.spans {
            let t = by_rec
                .get(&s.id.0)
                .unwrap_or_else(|| panic!("{} ({}) reached tracing", s.name, s.level));
            let f = &t.fields;
            assert_eq!(
                f.get("otel.name").map(String::as_str),
                Some(s.name.as_str())
            );
            assert_eq!(f.get("level").map(String::as_str), Some(s.level.as_str()));
            assert_eq!(
                rec_of(t.parent),
                s.parent.map(|p| p.0),
                "{} has the same parent in both",
                s.name
            );
            assert_eq!(
                f.get("status").map_or("open", String::as_str),
                s.status.code(),
                "{} has the same status in both",
                s.name
            );
            let cause = match &s.status {
                SpanStatus::Canceled { message, .. }
                | SpanStatus::DeadlineExceeded { message, .. }
                | SpanStatus::Error { message } => Some(message.as_str()),
                _ => None,
            };
            assert_eq!(f.get("cause").map(String::as_str), cause, "{}", s.name);
            levels.push((s.level, s.name.clone(), s.status.code()));
        }
        // The tree holds every kind of span, with the kill's statuses.
        let has = |level: Level, name: &str, status: &str| {
            levels
                .iter()
                .any(|(l, n, st)| *l == level && n == name && *st == status)
        };
        assert!(has(Level::Query, "select", "canceled"), "{levels:?}");
        assert!(has(Level::Request, "request", "canceled"), "{levels:?}");
        assert!(has(Level::Pipeline, "pipeline", "canceled"), "{levels:?}");
        assert!(
            levels
                .iter()
                .any(|(l, _, st)| *l == Level::Operator && *st == "canceled"),
            "{levels:?}"
        );
        assert!(has(Level::Txn, "rollback", "ok"), "{levels:?}");
        assert!(has(Level::Txn, "txn", "canceled"), "{levels:?}");
        assert!(levels.iter().any(|(l, _, _)| *l == Level::Routine));
        assert!(levels.iter().any(|(l, _, _)| *l == Level::Root));
    });
}
