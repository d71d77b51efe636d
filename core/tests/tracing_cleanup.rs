//! The seed plan's 4.1 check with tracing on: cleanup (KILL CONNECTION,
//! close, shutdown) with a `tracing` subscriber installed never panics, and
//! the contexts' spans reach the subscriber. Its own test binary: `tracing`
//! caches callsite interest process-wide, so tests running beside it with
//! no subscriber could make its spans look disabled.

mod common;
use common::*;

#[test]
fn cleanup_with_tracing_on_never_panics_and_spans_reach_the_subscriber() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;

    struct CountSpans(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountSpans {
        fn on_new_span(
            &self,
            _: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let spans = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountSpans(spans.clone()));
    common::with_subscriber(subscriber, || {
        let e = engine();
        let a = conn(&e, "acme", "alice", "member");
        let admin = conn(&e, "acme", "root", "admin");
        ok(&a, "CREATE TABLE t (x BIGINT)");
        ok(&a, "BEGIN");
        ok(&a, "INSERT INTO t VALUES (1)");
        ok(&admin, &format!("KILL {}", a.id()));
        futures::executor::block_on(a.close());
        futures::executor::block_on(a.close());
        assert_eq!(cell(&admin, "SELECT count(*) FROM t"), "0");
        // Shutdown with a connection mid-transaction: rollback, no panic.
        ok(&admin, "BEGIN; INSERT INTO t VALUES (2)");
        e.shutdown();
        assert_eq!(run(&admin, "SELECT 1").unwrap_err().code, 1053);
        futures::executor::block_on(admin.close());
        assert!(e.process_list().is_empty());
    });
    assert!(
        spans.load(Ordering::Relaxed) >= 8,
        "context spans go to the tracing subscriber"
    );
}
