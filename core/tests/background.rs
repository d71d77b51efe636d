//! Engine-internal work runs as a background session of tenant `sys` with
//! its own contexts, ticking on the host's timer, and closes on a cleanup
//! context at shutdown; with tracing on. Its own test binary: `tracing`
//! caches callsite interest process-wide.

mod common;
use common::spans::Collect;

use cascade::{Engine, EngineConfig, Identity, ManualHost, Reason};
use futures::executor::block_on;
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

#[test]
fn a_background_session_trims_the_trace_buffer_and_closes_on_shutdown() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    common::with_subscriber(subscriber, || {
        let host = Arc::new(ManualHost::new());
        let e = Engine::new(EngineConfig::new(1, host.clone()));
        let bg = e
            .background(Duration::from_secs(1), Duration::from_secs(60))
            .unwrap();
        let bg_id = bg.id();
        let values = bg.context().values();
        assert_eq!(
            (values.tenant(), values.user(), values.node_id()),
            (Some("sys"), Some(Engine::BACKGROUND_USER), Some(1))
        );
        let mut running = Box::pin(bg.run());
        // A server spawns it on a multi-threaded runtime.
        fn spawnable<T: Send + 'static>(_: &T) {}
        spawnable(&running);
        assert!(poll_once(running.as_mut()).is_pending());

        // `sys`'s admin sees it in the process list; other tenants do not.
        let sys = Identity::new("sys", "root", "admin");
        assert!(e
            .processes(&sys)
            .iter()
            .any(|p| p.id == bg_id && p.tenant == "sys"));
        let acme = Identity::new("acme", "alice", "member");
        assert!(e.processes(&acme).iter().all(|p| p.id != bg_id));

        let c = e.connect(acme).unwrap();
        let old = block_on(c.execute("SELECT 1")).unwrap().query_id;
        assert!(e.trace(old).is_some());

        // Ticks within the retention keep the statement's trace.
        host.advance(Duration::from_secs(1));
        assert!(poll_once(running.as_mut()).is_pending());
        assert!(e.trace(old).is_some());
        let ticks = collect.named("trim trace buffer");
        assert_eq!(ticks.len(), 1, "one round so far");
        assert_eq!(
            ticks[0].fields.get("status").map(String::as_str),
            Some("ok")
        );
        assert_eq!(
            ticks[0].fields.get("level").map(String::as_str),
            Some("Query")
        );
        assert_eq!(
            collect.parent_name(&ticks[0]).as_deref(),
            Some("maintenance")
        );

        // Past the retention, a round trims it.
        for _ in 0..61 {
            host.advance(Duration::from_secs(1));
            assert!(poll_once(running.as_mut()).is_pending());
        }
        assert!(e.trace(old).is_none(), "trimmed after its retention");
        let recent = block_on(c.execute("SELECT 2")).unwrap().query_id;
        host.advance(Duration::from_secs(1));
        assert!(poll_once(running.as_mut()).is_pending());
        assert!(e.trace(recent).is_some());

        // Shutdown ends it: closed on a cleanup context, out of the list.
        e.shutdown();
        assert!(poll_once(running.as_mut()).is_ready());
        drop(running);
        assert!(e.processes(&sys).iter().all(|p| p.id != bg_id));
        let close = collect.named("close");
        assert_eq!(close.len(), 1);
        assert_eq!(
            close[0].fields.get("status").map(String::as_str),
            Some("ok")
        );
        assert_eq!(
            close[0].fields.get("level").map(String::as_str),
            Some("Routine")
        );
        assert_eq!(
            collect.parent_name(&close[0]).as_deref(),
            Some("background (sys)"),
            "the cleanup span is a child of the background Routine's"
        );
        let routine = collect.named("background (sys)");
        assert_eq!(
            routine[0].fields.get("status").map(String::as_str),
            Some("canceled"),
            "{:?}",
            routine[0]
        );
        assert!(routine[0].fields["cause"].contains(&Reason::Shutdown.to_string()));
        block_on(c.close());
        drop(c);
        assert_eq!(e.root().subtree_len(), 1, "{:#?}", e.contexts());
        assert!(e.process_list().is_empty());
    });
}
