//! [`LocalNodes`]: an in-memory transport joining engines of one process
//! (tests, and the playground's two engines in one worker). No thread, no
//! timer: a fragment runs when its caller polls the reply stream, so in the
//! browser the remote statement is driven by the coordinator's wait.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context as TaskContext, Poll};

use futures::stream::{self, Stream};

use super::{Fragment, FragmentError, FragmentReply, FragmentStream, Nodes, SharedNodes};
use crate::context::{Context, WaitCancelled};
use crate::host::Instant;
use crate::remote::{PeerGrant, RemoteChild, WireCause, WireContext};
use crate::session::{Engine, QueryError, WeakEngine};
use crate::sync::lock_std as lock;
use crate::trace::SpanStatus;

/// A live call: its target node, its remote child, and where
/// [`LocalNodes::lose`] says why the node was lost.
type LiveCall = (u64, Weak<RemoteChild>, Arc<Mutex<Option<String>>>);

#[derive(Default)]
struct Hub {
    engines: BTreeMap<u64, WeakEngine>,
    /// Grants by (receiving node, calling node); default: any tenant but
    /// `sys`, no `admin`.
    grants: BTreeMap<(u64, u64), PeerGrant>,
    /// Nodes made unreachable ([`LocalNodes::lose`]).
    lost: BTreeMap<u64, String>,
    /// Live calls: (target node, the call's remote child).
    calls: Vec<LiveCall>,
}

/// Engines of one process joined as a cluster.
///
/// ```
/// use cascade::cluster::LocalNodes;
/// use cascade::{Engine, EngineConfig, Identity, StdHost, Value};
/// let hub = LocalNodes::new();
/// let engines: Vec<Engine> = (1..=3)
///     .map(|n| {
///         let mut cfg = EngineConfig::new(n, StdHost::shared());
///         cfg.nodes = Some(hub.node(n));
///         let e = Engine::new(cfg);
///         hub.add(&e);
///         e
///     })
///     .collect();
/// let conn = engines[0].connect(Identity::new("acme", "alice", "member")).unwrap();
/// futures::executor::block_on(conn.execute("SET cascade_distribute = ON")).unwrap();
/// let r = futures::executor::block_on(
///     conn.execute("SELECT count(*), sum(x) FROM generate_series(1, 100000) AS t(x)"),
/// )
/// .unwrap();
/// assert_eq!(r.rows, vec![vec![Value::Int(100000), Value::Int(5000050000)]]);
/// ```
#[derive(Clone, Default)]
pub struct LocalNodes {
    hub: Arc<Mutex<Hub>>,
}

impl std::fmt::Debug for LocalNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = lock(&self.hub);
        f.debug_struct("LocalNodes")
            .field("nodes", &h.engines.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LocalNodes {
    /// No nodes yet.
    pub fn new() -> Self {
        LocalNodes::default()
    }

    /// The [`Nodes`] of node `id`, for its [`crate::EngineConfig::nodes`]
    /// (before the engine exists); then [`LocalNodes::add`] the engine.
    pub fn node(&self, id: u64) -> SharedNodes {
        Arc::new(LocalNode {
            hub: self.clone(),
            id,
        })
    }

    /// Adds an engine (its config's node id is its id). The hub holds it
    /// weakly: dropping the engine takes it out of the cluster.
    pub fn add(&self, engine: &Engine) {
        lock(&self.hub)
            .engines
            .insert(engine.node_id(), engine.downgrade());
    }

    /// What node `to` lets node `from` do (default
    /// [`PeerGrant::any_tenant`]).
    pub fn grant(&self, to: u64, grant: PeerGrant) {
        lock(&self.hub).grants.insert((to, grant.node_id), grant);
    }

    /// Makes node `id` unreachable, as if its process died: calls to it
    /// fail with [`FragmentError::Lost`], and calls running on it end
    /// (their remote children are cancelled as lost calls).
    pub fn lose(&self, id: u64, why: &str) {
        let calls = {
            let mut h = lock(&self.hub);
            h.lost.insert(id, why.to_owned());
            h.calls.retain(|(_, w, _)| w.strong_count() > 0);
            h.calls
                .iter()
                .filter(|(n, _, _)| *n == id)
                .map(|(_, w, flag)| (w.clone(), flag.clone()))
                .collect::<Vec<_>>()
        };
        for (w, flag) in calls {
            *lock(&flag) = Some(why.to_owned());
            if let Some(child) = w.upgrade() {
                child.cancel_lost(&format!("node {id} lost: {why}"));
            }
        }
    }

    /// Live fragment calls (remote children not yet dropped) on node `id`.
    pub fn live_calls(&self, id: u64) -> usize {
        lock(&self.hub)
            .calls
            .iter()
            .filter(|(n, w, _)| *n == id && w.strong_count() > 0)
            .count()
    }

    fn peers_of(&self, id: u64) -> Vec<u64> {
        lock(&self.hub)
            .engines
            .keys()
            .copied()
            .filter(|n| *n != id)
            .collect()
    }

    fn call(&self, from: u64, to: u64, caller: &Context, fragment: Fragment) -> FragmentStream {
        let lost = |message: String| -> FragmentStream {
            Box::pin(stream::once(futures::future::ready(Err(
                FragmentError::Lost { node: to, message },
            ))))
        };
        let failed = |e: QueryError| -> FragmentStream {
            Box::pin(stream::once(futures::future::ready(Err(
                FragmentError::Failed(e),
            ))))
        };
        let (engine, grant) = {
            let h = lock(&self.hub);
            if let Some(why) = h.lost.get(&to) {
                return lost(why.clone());
            }
            let engine = h.engines.get(&to).and_then(WeakEngine::upgrade);
            let grant = h
                .grants
                .get(&(to, from))
                .cloned()
                .unwrap_or_else(|| PeerGrant::any_tenant(from));
            (engine, grant)
        };
        let Some(engine) = engine else {
            return lost("no such node".into());
        };
        if let Err(c) = caller.check() {
            return failed(QueryError::cancelled(c.0));
        }
        let wire = match WireContext::export(caller) {
            Ok(w) => w.with_trace(caller.traceparent().map(|t| t.to_string()), None),
            Err(e) => return failed(QueryError::new(e.mysql_code(), e.sqlstate(), e.to_string())),
        };
        let child = match RemoteChild::build(engine.root(), &grant, &wire) {
            Ok(c) => Arc::new(c),
            Err(e) => return failed(QueryError::new(e.mysql_code(), e.sqlstate(), e.to_string())),
        };
        let lost_flag = Arc::new(Mutex::new(None));
        {
            let mut h = lock(&self.hub);
            h.calls.retain(|(_, w, _)| w.strong_count() > 0);
            h.calls
                .push((to, Arc::downgrade(&child), lost_flag.clone()));
        }
        let inner = engine.serve_fragment(child.clone(), fragment);
        Box::pin(LocalCall {
            inner,
            started: caller.host().now(),
            ended: false,
            cancelled: Some(caller.cancelled()),
            caller: caller.clone(),
            child: Some(child),
            from,
            to,
            lost: lost_flag,
        })
    }
}

/// Node `id`'s view of a [`LocalNodes`].
struct LocalNode {
    hub: LocalNodes,
    id: u64,
}

impl Nodes for LocalNode {
    fn this_node(&self) -> u64 {
        self.id
    }
    fn peers(&self) -> Vec<u64> {
        self.hub.peers_of(self.id)
    }
    fn run_fragment(&self, node: u64, caller: &Context, fragment: Fragment) -> FragmentStream {
        self.hub.call(self.id, node, caller, fragment)
    }
}

/// One call: the serving stream, with the caller's cancellation carried
/// to the remote child (with its cause) whenever the call is polled or
/// dropped.
struct LocalCall {
    inner: FragmentStream,
    /// When the call started, on the caller's clock (grafted spans' origin).
    started: Instant,
    /// Whether the remote side sent its end (its spans went with it).
    ended: bool,
    cancelled: Option<WaitCancelled>,
    caller: Context,
    child: Option<Arc<RemoteChild>>,
    from: u64,
    to: u64,
    lost: Arc<Mutex<Option<String>>>,
}

impl LocalCall {
    /// The loss of the node, once: the call ends with it.
    fn take_lost(&mut self) -> Option<FragmentError> {
        let why = lock(&self.lost).take()?;
        self.child = None;
        self.cancelled = None;
        self.inner = Box::pin(stream::empty());
        Some(FragmentError::Lost {
            node: self.to,
            message: why,
        })
    }

    fn carry_cancel(&mut self) {
        if let (Some(cause), Some(child)) = (self.caller.cause(), &self.child) {
            child.cancel_from_remote(&WireCause::of(&cause, self.from));
        }
    }
}

impl Stream for LocalCall {
    type Item = Result<FragmentReply, FragmentError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(lost) = this.take_lost() {
            return Poll::Ready(Some(Err(lost)));
        }
        if let Some(w) = this.cancelled.as_mut() {
            if Pin::new(w).poll(cx).is_ready() {
                this.cancelled = None;
                this.carry_cancel();
            }
        }
        let polled = this.inner.as_mut().poll_next(cx);
        if matches!(polled, Poll::Ready(Some(Err(_)))) {
            // The node may have been lost while its stream was polled: the
            // loss cancels the remote child, whose failure would otherwise
            // reach the caller as the fragment's own error (and the
            // siblings as "sibling fragment failed") instead of the loss.
            if let Some(lost) = this.take_lost() {
                return Poll::Ready(Some(Err(lost)));
            }
        }
        match &polled {
            Poll::Ready(None) => this.child = None,
            Poll::Ready(Some(Ok(FragmentReply::End { .. }))) => this.ended = true,
            _ => {}
        }
        polled
    }
}

impl Drop for LocalCall {
    fn drop(&mut self) {
        self.carry_cancel();
        // A call that ends without the remote side's end (the caller gave up:
        // a KILL, a timeout, a failed sibling; or the fragment failed): over
        // a network its spans are lost with the call, but here they are at
        // hand, so the caller's trace gets them, with the cause they ended
        // with ("cancelled by node N: …"). Dropping the serving stream first
        // ends the fragment's work and closes its spans.
        if let Some(child) = self.child.take() {
            if !self.ended {
                self.inner = Box::pin(stream::empty());
                let ctx = child.context();
                ctx.finish(match ctx.cause() {
                    Some(c) => SpanStatus::from_cause(&c),
                    None => SpanStatus::Ok,
                });
                let spans = super::collect_spans(ctx);
                super::remote_scan::graft_spans(&self.caller, self.to, self.started, &spans);
            }
        }
    }
}

use std::future::Future as _;
