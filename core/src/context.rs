//! The context tree: levels, cancellation, deadlines, values, cleanup
//! contexts.
//!
//! A [`Context`] is a thin handle on an `Arc<Node>`; the tree logic lives in
//! the private functions of this module (the shape of tokio-util's
//! `CancellationToken`, plus causes, deadlines, levels, values, links and
//! spans).
//!
//! # Invariants
//!
//! * `Node::cancelled` goes from `false` to `true` once, under the node's own
//!   lock, after `Inner::cause` was set: whoever reads `true` (Acquire) and
//!   then takes the lock finds the cause. [`Context::is_cancelled`] is that
//!   one atomic load.
//! * A node is in its parent's `children` at index `parent_idx` iff its
//!   `parent` is that parent. `parent` is changed only while holding the
//!   parent's lock *and* the child's lock; `parent_idx` is read and written
//!   only while holding the parent's lock (or before the node is shared).
//! * A cancelled node has no children: the cancel detaches them, and the
//!   descendants it reaches through their parents lose their parent too. A
//!   node derived from a cancelled parent is born cancelled with the
//!   parent's cause, and is never attached.
//! * Links (a Query's link to its Txn) are `Weak` edges kept by the link
//!   target; a cancel takes them under the lock and cancels the linked nodes
//!   after releasing every lock. Links and waiters live in a box allocated
//!   on first use, so that the many nodes without them stay small.
//! * When the last handle of a node is dropped, the node leaves the tree and
//!   its children move to its parent, so a long-lived parent does not collect
//!   dead descendants. A [`WaitCancelled`] holds a handle.
//! * A deadline is an `Arc` shared by the node that set it and every
//!   descendant that inherits it; its `owner` is the node that set it.
//!
//! # Why it cannot deadlock
//!
//! Locks are only ever *waited for* from ancestor to descendant (parent,
//! then child, then grandchild), never the other way; two siblings are only
//! locked together while their common parent's lock is held, which
//! serialises every thread that could lock them in the opposite order.
//! Links are followed with no lock held. A removal takes its own lock first
//! and its parent's only with `try_lock`, which never waits; if that fails it
//! lets go and takes them parent first, retrying if the parent changed in
//! between.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use serde::Serialize;

use crate::cause::{CancelKind, Cancelled, Cause, Reason};
use crate::error::ContextError;
use crate::host::{Host, HostFuture, Instant};
use crate::level::levels::{ChildOf, StaticLevel};
use crate::level::Level;
use crate::sync::{
    lock, try_lock, Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, Weak,
};
use crate::trace::{AttrValue, Recorder, SpanId, SpanStatus};
use crate::trace_context::{SpanContext, TraceParent, TraceSpanId};
use crate::values::{Identity, ValueKey, Values};

/// A `tracing` span with the fields every cascade span has: `level`, `ctx`
/// (the context id), `span` (the recorder's span id, 0 if not recorded),
/// `otel.name` (the recorder's name: `select`, `rollback`, `HashAggregate`),
/// the W3C ids ([`crate::trace_context`]): `trace_id`, `span_id`,
/// `trace_flags`, and for a span whose parent is in another process
/// `parent_span_id` and `tracestate` (an OpenTelemetry bridge should export
/// these ids, so that ids sent to other nodes name spans that exist),
/// and, recorded when it closes ([`record_status`](crate::trace::record_status)),
/// `status`, `cause`, `otel.status_code` and `otel.status_message` — the
/// fields `tracing-opentelemetry` maps to an OpenTelemetry span's name and
/// status.
macro_rules! tracing_span {
    ($callsite:literal, $parent:expr, $level:expr, $ctx:expr, $rec:expr, $name:expr, $tc:expr, $remote:expr) => {
        tracing::info_span!(
            target: "cascade",
            parent: $parent,
            $callsite,
            level = $level,
            ctx = $ctx,
            span = $rec,
            otel.name = $name,
            trace_id = $tc.map(|t: &SpanContext| tracing::field::display(t.trace_id)),
            span_id = $tc.map(|t: &SpanContext| tracing::field::display(t.span_id)),
            trace_flags = $tc.map(|t: &SpanContext| t.flags),
            parent_span_id = $remote.map(|p: TraceSpanId| tracing::field::display(p)),
            tracestate = $remote
                .and($tc)
                .and_then(|t: &SpanContext| t.tracestate.as_deref()),
            status = tracing::field::Empty,
            cause = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        )
    };
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Ids are handed to threads in blocks, so that deriving a context does not
/// bounce one shared cache line between cores.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's block of ids: the next one, and the end of the block.
    static IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn next_id() -> u64 {
    let from_block = IDS.try_with(|ids| {
        let (next, end) = ids.get();
        if next < end {
            ids.set((next + 1, end));
            next
        } else {
            let start = NEXT_ID.fetch_add(ID_BLOCK, std::sync::atomic::Ordering::Relaxed);
            ids.set((start + 1, start + ID_BLOCK));
            start
        }
    });
    // During thread teardown, when the block is gone: one id at a time.
    from_block.unwrap_or_else(|_| NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// What every node of one tree shares: the host and the recorder.
struct Env {
    host: Arc<dyn Host>,
    recorder: Option<std::sync::Arc<Recorder>>,
}

/// A deadline: when, and the cause it cancels with.
#[derive(Clone)]
pub struct Deadline {
    /// When, on the host clock.
    pub at: Instant,
    /// The cause (kind `DeadlineExceeded`).
    pub cause: std::sync::Arc<Cause>,
    owner: Weak<Node>,
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("at", &self.at)
            .field("cause", &self.cause)
            .finish()
    }
}

/// The parts of a node's locked state that few nodes use (links point at
/// Txns; waiters at contexts someone awaits), allocated on first use so
/// that every other node stays small.
#[derive(Default)]
struct Extra {
    links: Vec<Weak<Node>>,
    waiters: Vec<(u64, Waker)>,
    next_waiter: u64,
}

struct Inner {
    parent: Option<Arc<Node>>,
    children: Vec<Arc<Node>>,
    cause: Option<std::sync::Arc<Cause>>,
    extra: Option<Box<Extra>>,
}

impl Inner {
    fn new(parent: Option<Arc<Node>>) -> Self {
        Inner {
            parent,
            children: Vec::new(),
            cause: None,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

pub(crate) struct Node {
    id: u64,
    handles: AtomicUsize,
    /// Index in the parent's `children`. Read and written only while holding
    /// the parent's lock (or before the node is shared): an atomic only so
    /// that it can live outside `inner`, and be set without the node's lock.
    parent_idx: AtomicUsize,
    level: Level,
    cancelled: AtomicBool,
    span_closed: AtomicBool,
    /// The effective deadline, shared with the descendants that inherit it.
    deadline: Option<Arc<Deadline>>,
    values: Values,
    env: Arc<Env>,
    /// The `tracing` span, boxed and only when a subscriber records it.
    span: Option<Box<tracing::Span>>,
    span_id: Option<std::num::NonZeroU64>,
    /// The W3C ids of this context's span: only when it is recorded or
    /// traced (or joined a remote trace).
    trace: Option<SpanContext>,
    inner: Mutex<Inner>,
}

/// Bytes of one context node (the `Arc` allocation, without the values'
/// shared parts and without the lazily allocated links and waiters).
pub fn node_size_bytes() -> usize {
    std::mem::size_of::<Node>() + 2 * std::mem::size_of::<usize>()
}

impl Node {
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn set_parent(&self, g: &mut Inner, parent: Option<Arc<Node>>, idx: usize) {
        g.parent = parent;
        self.parent_idx.store(idx, Ordering::Relaxed);
    }
}

/// Sets the cause and flag of a node whose lock is held, taking its waiters
/// and links.
fn mark(
    node: &Node,
    g: &mut Inner,
    cause: &std::sync::Arc<Cause>,
    wakers: &mut Vec<(u64, Waker)>,
    links: &mut Vec<Arc<Node>>,
) {
    g.cause = Some(cause.clone());
    node.cancelled.store(true, Ordering::Release);
    if let Some(x) = g.extra.as_mut() {
        if wakers.is_empty() {
            // The usual case, one node with waiters: take its list whole,
            // no allocation.
            std::mem::swap(wakers, &mut x.waiters);
        } else {
            wakers.append(&mut x.waiters);
        }
        links.extend(x.links.drain(..).filter_map(|w| w.upgrade()));
    }
}

/// Cancels `node` and everything under or linked to it. Iterative; at most
/// three locks held, in ancestor-to-descendant order; wakers run with no lock
/// held. Returns whether `node` itself was cancelled by this call (false if
/// it already was).
fn cancel_node(node: &Arc<Node>, cause: std::sync::Arc<Cause>) -> bool {
    let mut wakers = Vec::new();
    let mut links = Vec::new();
    let did = cancel_subtree(node, &cause, &mut wakers, &mut links);
    wake_all(&mut wakers);
    while let Some(linked) = links.pop() {
        cancel_subtree(&linked, &cause, &mut wakers, &mut links);
        wake_all(&mut wakers);
    }
    did
}

fn wake_all(wakers: &mut Vec<(u64, Waker)>) {
    wakers.drain(..).for_each(|(_, w)| w.wake());
}

/// Cancels `n` and its subtree, collecting wakers and linked nodes for the
/// caller to handle once the locks are released. False if `n` already was.
fn cancel_subtree(
    n: &Arc<Node>,
    cause: &std::sync::Arc<Cause>,
    wakers: &mut Vec<(u64, Waker)>,
    links: &mut Vec<Arc<Node>>,
) -> bool {
    let mut g = n.lock();
    if n.cancelled.load(Ordering::Relaxed) {
        return false;
    }
    mark(n, &mut g, cause, wakers, links);
    while let Some(child) = g.children.pop() {
        let mut cg = child.lock();
        child.set_parent(&mut cg, None, 0);
        if child.cancelled.load(Ordering::Relaxed) {
            continue;
        }
        while let Some(gc) = cg.children.pop() {
            let mut gg = gc.lock();
            gc.set_parent(&mut gg, None, 0);
            if gc.cancelled.load(Ordering::Relaxed) {
                continue;
            }
            if gg.children.is_empty() {
                mark(&gc, &mut gg, cause, wakers, links);
            } else {
                // Move it up to `n`, which is locked: processed later in
                // this loop, with only two levels locked below it.
                gc.set_parent(&mut gg, Some(n.clone()), g.children.len());
                drop(gg);
                g.children.push(gc);
            }
        }
        mark(&child, &mut cg, cause, wakers, links);
    }
    true
}

/// Takes `node` (whose lock is `g`) out of its parent `p` (whose lock is
/// `pg`); its children move to `p`.
fn unlink_from(node: &Arc<Node>, g: &mut Inner, p: &Arc<Node>, pg: &mut Inner) {
    let idx = node.parent_idx.load(Ordering::Relaxed);
    if idx < pg.children.len() && Arc::ptr_eq(&pg.children[idx], node) {
        pg.children.swap_remove(idx);
        if let Some(moved) = pg.children.get(idx) {
            moved.parent_idx.store(idx, Ordering::Relaxed);
        }
    }
    node.parent_idx.store(0, Ordering::Relaxed);
    if g.extra.is_some() {
        g.extra = None;
    }
    if g.children.is_empty() {
        return;
    }
    for c in g.children.drain(..) {
        let mut cg = c.lock();
        c.set_parent(&mut cg, Some(p.clone()), pg.children.len());
        drop(cg);
        pg.children.push(c);
    }
}

/// Takes `node` out of the tree after its last handle was dropped; its
/// children move to its parent.
fn remove_node(node: &Arc<Node>) {
    // Fast path: the node's lock, then its parent's with `try_lock`. Taking
    // them child first is safe only because `try_lock` never waits.
    {
        let mut g = node.lock();
        match g.parent.take() {
            None => {
                for c in g.children.drain(..) {
                    let mut cg = c.lock();
                    c.set_parent(&mut cg, None, 0);
                }
                g.extra = None;
                return;
            }
            Some(p) => {
                if let Some(mut pg) = try_lock(&p.inner) {
                    unlink_from(node, &mut g, &p, &mut pg);
                    return;
                }
                g.parent = Some(p);
            }
        }
    }
    // Slow path: parent first, then the node, and check that the parent did
    // not change in between.
    loop {
        let parent = node.lock().parent.clone();
        match parent {
            None => {
                let mut g = node.lock();
                if g.parent.is_some() {
                    continue;
                }
                for c in g.children.drain(..) {
                    let mut cg = c.lock();
                    c.set_parent(&mut cg, None, 0);
                }
                g.extra = None;
                return;
            }
            Some(p) => {
                let mut pg = p.lock();
                let mut g = node.lock();
                if !g.parent.as_ref().is_some_and(|x| Arc::ptr_eq(x, &p)) {
                    continue;
                }
                g.parent = None;
                unlink_from(node, &mut g, &p, &mut pg);
                return;
            }
        }
    }
}

fn expire(node: &Arc<Node>, d: &Deadline) {
    match d.owner.upgrade() {
        Some(owner) => {
            cancel_node(&owner, d.cause.clone());
            // The owner may have left the tree while we held it: make sure.
            cancel_node(node, d.cause.clone());
        }
        None => {
            cancel_node(node, d.cause.clone());
        }
    }
}

/// A handle on one context of the tree. Cloning is cheap; the context leaves
/// the tree (and its span closes) when the last handle is dropped.
///
/// # Examples
///
/// ```
/// use cascade::{Context, Identity, Level, Reason, StdHost};
///
/// let root = Context::root(StdHost::shared()).node_id(1).build().unwrap();
/// let conn = root
///     .child(Level::Routine)
///     .identity(Identity::new("acme", "alice", "member"))
///     .connection_id(7)
///     .session_id(7)
///     .build()
///     .unwrap();
/// let req = conn.child(Level::Request).build().unwrap();
/// let query = req.child(Level::Query).statement_id(1).build().unwrap();
///
/// conn.cancel(Reason::ClientDisconnected);
/// assert!(query.is_cancelled());
/// let cause = query.cause().unwrap();
/// assert_eq!(cause.level, Level::Routine);
/// assert_eq!(query.values().tenant(), Some("acme"));
/// assert!(!root.is_cancelled());
/// ```
pub struct Context {
    node: Arc<Node>,
}

impl Clone for Context {
    fn clone(&self) -> Self {
        self.node.handles.fetch_add(1, Ordering::Relaxed);
        Context {
            node: self.node.clone(),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.node.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Most nodes have no span: no call at all then.
            if self.node.span_id.is_some() || self.node.span.is_some() {
                self.close_span(None);
            }
            remove_node(&self.node);
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.node.id)
            .field("level", &self.node.level)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Context {
    /// Starts building a Root context on `host`.
    pub fn root(host: Arc<dyn Host>) -> ContextBuilder<'static> {
        ContextBuilder::new_root(host)
    }

    /// Starts building a child of level `level`. An out-of-order level is
    /// reported by [`ContextBuilder::build`].
    #[inline]
    pub fn child(&self, level: Level) -> ContextBuilder<'_> {
        ContextBuilder::new_child(self, level)
    }

    /// A unique id (unique in the process).
    #[inline]
    pub fn id(&self) -> u64 {
        self.node.id
    }

    /// The level.
    #[inline]
    pub fn level(&self) -> Level {
        self.node.level
    }

    /// The values: O(1) at any depth.
    #[inline]
    pub fn values(&self) -> &Values {
        &self.node.values
    }

    /// Whether this context is cancelled: one atomic load, no lock. Does not
    /// read the clock; see [`Context::check`] for deadlines.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// The cause, once cancelled.
    pub fn cause(&self) -> Option<std::sync::Arc<Cause>> {
        if !self.is_cancelled() {
            return None;
        }
        self.node.lock().cause.clone()
    }

    /// The kind (`Canceled` / `DeadlineExceeded`), once cancelled: Go's
    /// `ctx.Err()`.
    pub fn err(&self) -> Option<CancelKind> {
        self.cause().map(|c| c.kind)
    }

    /// `Ok` while live; the cancellation otherwise. Also fires the deadline
    /// when the host clock has passed it (one clock read when a deadline is
    /// set, none otherwise).
    #[inline]
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            return Err(self.cancelled_error());
        }
        if let Some(d) = &self.node.deadline {
            if self.node.env.host.now() >= d.at {
                expire(&self.node, d);
                return Err(self.cancelled_error());
            }
        }
        Ok(())
    }

    fn cancelled_error(&self) -> Cancelled {
        let cause = self.node.lock().cause.clone().unwrap_or_else(|| {
            std::sync::Arc::new(Cause::canceled(Reason::Requested, self.level(), self.id()))
        });
        Cancelled(cause)
    }

    /// Cancels this context and every descendant and linked context, with
    /// `reason` starting at this level. Returns false if it was already
    /// cancelled (the first cause wins).
    pub fn cancel(&self, reason: Reason) -> bool {
        self.cancel_with(Cause::canceled(reason, self.level(), self.id()))
    }

    /// Cancels with a complete cause.
    pub fn cancel_with(&self, cause: Cause) -> bool {
        cancel_node(&self.node, std::sync::Arc::new(cause))
    }

    /// A future that completes when this context is cancelled, or when its
    /// deadline passes on the host's timer (which then cancels it).
    pub fn cancelled(&self) -> WaitCancelled {
        WaitCancelled {
            ctx: self.clone(),
            key: None,
            timer: None,
        }
    }

    /// The effective deadline (earliest of its own and its ancestors').
    pub fn deadline(&self) -> Option<&Deadline> {
        self.node.deadline.as_deref()
    }

    /// Time left before the deadline, if any.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.at.saturating_since(self.node.env.host.now()))
    }

    /// The host.
    pub fn host(&self) -> &Arc<dyn Host> {
        &self.node.env.host
    }

    /// The recorder, when the tree records spans.
    pub fn recorder(&self) -> Option<&std::sync::Arc<Recorder>> {
        self.node.env.recorder.as_ref()
    }

    /// This context's span in the recorder.
    pub fn span_id(&self) -> Option<SpanId> {
        self.node.span_id.map(|s| SpanId(s.get()))
    }

    /// The W3C ids of this context's span (trace id, span id, flags,
    /// tracestate); `None` when it is neither recorded nor traced.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.node.trace.as_ref()
    }

    /// The `traceparent` (with `tracestate`) for a call made on behalf of
    /// this context: the callee's spans become children of this context's
    /// span, in the same trace.
    pub fn traceparent(&self) -> Option<TraceParent> {
        self.node.trace.as_ref().map(SpanContext::to_traceparent)
    }

    /// This context's `tracing` span (a child of its parent's).
    /// A disabled span when no subscriber records it.
    pub fn tracing_span(&self) -> &tracing::Span {
        static DISABLED: std::sync::OnceLock<tracing::Span> = std::sync::OnceLock::new();
        match &self.node.span {
            Some(span) => span,
            None => DISABLED.get_or_init(tracing::Span::none),
        }
    }

    /// Sets an attribute on this context's recorded span.
    pub fn set_attr(&self, key: &str, value: impl Into<AttrValue>) {
        if let (Some(r), Some(s)) = (self.recorder(), self.span_id()) {
            r.set_attr(s, key, value);
        }
    }

    /// Closes this context's span now with `status` (an error, say).
    /// Without it the span closes when the last handle is dropped, with the
    /// cancel cause or `Ok`.
    pub fn finish(&self, status: SpanStatus) {
        self.close_span(Some(status));
    }

    fn close_span(&self, status: Option<SpanStatus>) {
        let recorded = self.span_id();
        if recorded.is_none() && self.node.span.is_none() {
            return;
        }
        if self.node.span_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let status = status.unwrap_or_else(|| match self.cause() {
            Some(c) => SpanStatus::from_cause(&c),
            None => SpanStatus::Ok,
        });
        if let Some(span) = &self.node.span {
            crate::trace::record_status(span, &status);
        }
        if let (Some(r), Some(s)) = (self.recorder(), recorded) {
            r.close(s, status);
        }
    }

    /// A `tracing` span for work inside this context that has no context of
    /// its own (a pipeline operator): a child of this context's span, with
    /// the same fields as the contexts' spans (`rec` is its recorder span,
    /// 0 if none). `None` when no subscriber records this context's span.
    pub fn tracing_child(
        &self,
        name: &str,
        level: Level,
        rec: Option<SpanId>,
    ) -> Option<tracing::Span> {
        let parent = self.node.span.as_deref()?;
        let id = self.node.id;
        // The recorder's ids when it has the span; fresh ones otherwise.
        let ids = self.node.trace.as_ref().map(|t| {
            match rec.and_then(|r| self.recorder().and_then(|x| x.trace_ids(r))) {
                Some((trace_id, span_id)) => SpanContext {
                    trace_id,
                    span_id,
                    ..t.clone()
                },
                None => t.child(&*self.node.env.host),
            }
        });
        let rec = rec.map_or(0, |s| s.0);
        let level_name = level.as_str();
        let tc = ids.as_ref();
        let span = child_span(Some(parent), |p| {
            tracing_span!(
                "operator",
                p,
                level_name,
                id,
                rec,
                name,
                tc,
                None::<TraceSpanId>
            )
        });
        recorded(span).map(|b| *b)
    }

    /// A cleanup context: same level and values, its span a child of this
    /// one's, but a new cancellation root with its own deadline `timeout`.
    /// It is live even when `self` is cancelled, so a rollback after
    /// `KILL CONNECTION` can run on it.
    ///
    /// ```
    /// use cascade::{Context, Level, Reason, StdHost};
    /// use std::time::Duration;
    /// let root = Context::root(StdHost::shared()).node_id(1).build().unwrap();
    /// root.cancel(Reason::Shutdown);
    /// let cleanup = root.cleanup(Duration::from_secs(5));
    /// assert!(!cleanup.is_cancelled());
    /// assert_eq!(cleanup.values().node_id(), Some(1));
    /// ```
    pub fn cleanup(&self, timeout: Duration) -> Context {
        self.cleanup_linked(timeout, None)
    }

    /// Like [`Context::cleanup`], with the span also linked to `cleans_up`
    /// (the request whose work it cleans up).
    pub fn cleanup_linked(&self, timeout: Duration, cleans_up: Option<&Context>) -> Context {
        let name = format!("cleanup {}", self.level().as_str().to_lowercase());
        self.cleanup_named(&name, timeout, cleans_up)
    }

    /// Like [`Context::cleanup_linked`], with the span named `name`: the
    /// cleanup work itself (`commit`, `rollback`), a child of this
    /// context's span in the recorder and in `tracing`.
    pub fn cleanup_named(
        &self,
        name: &str,
        timeout: Duration,
        cleans_up: Option<&Context>,
    ) -> Context {
        let id = next_id();
        let env = self.node.env.clone();
        let at = env.host.now().saturating_add(timeout);
        let limit_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let trace = self.node.trace.as_ref().map(|t| t.child(&*env.host));
        let span_id = env.recorder.as_ref().map(|r| {
            let attrs = [("cleanup".to_owned(), AttrValue::Bool(true))];
            let s = match &trace {
                Some(t) => r.open_traced(self.span_id(), t, None, name, self.level(), attrs),
                None => r.open(self.span_id(), name, self.level(), attrs),
            };
            if let Some(l) = cleans_up.and_then(Context::span_id) {
                r.add_link(s, l);
            }
            s
        });
        let level_name = self.level().as_str();
        let rec = span_id.map_or(0, |s| s.0);
        let tc = trace.as_ref();
        let span = recorded(child_span(self.node.span.as_deref(), |parent| {
            tracing_span!(
                "cleanup",
                parent,
                level_name,
                id,
                rec,
                name,
                tc,
                None::<TraceSpanId>
            )
        }));
        let node = Arc::new_cyclic(|weak| Node {
            id,
            handles: AtomicUsize::new(1),
            parent_idx: AtomicUsize::new(0),
            level: self.level(),
            cancelled: AtomicBool::new(false),
            span_closed: AtomicBool::new(false),
            deadline: Some(Arc::new(Deadline {
                at,
                cause: std::sync::Arc::new(Cause::deadline(
                    Reason::CleanupTimeout { limit_ms },
                    self.level(),
                    id,
                )),
                owner: weak.clone(),
            })),
            values: self.node.values.clone(),
            env,
            span,
            span_id: span_id.and_then(|s| std::num::NonZeroU64::new(s.0)),
            trace,
            inner: Mutex::new(Inner::new(None)),
        });
        Context { node }
    }

    /// A snapshot of this context and its live descendants.
    pub fn snapshot(&self) -> ContextInfo {
        snapshot_node(&self.node, self.node.env.host.now())
    }

    /// Number of nodes in this context's subtree, itself included.
    pub fn subtree_len(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self.node.clone()];
        while let Some(x) = stack.pop() {
            n += 1;
            stack.extend(x.lock().children.iter().cloned());
        }
        n
    }

    /// Whether two handles point at the same context.
    pub fn same(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

/// A live context as shown in a context-tree view.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextInfo {
    /// Context id.
    pub id: u64,
    /// Level.
    pub level: Level,
    /// Whether cancelled.
    pub cancelled: bool,
    /// The cause, when cancelled.
    pub cause: Option<std::sync::Arc<Cause>>,
    /// Node id.
    pub node_id: Option<u64>,
    /// Connection id.
    pub connection_id: Option<u64>,
    /// Session id.
    pub session_id: Option<u64>,
    /// Statement id.
    pub statement_id: Option<u64>,
    /// Transaction id.
    pub txn_id: Option<u64>,
    /// Tenant, user, role.
    pub identity: Option<Arc<Identity>>,
    /// Milliseconds left before the deadline.
    pub deadline_in_ms: Option<f64>,
    /// Children.
    pub children: Vec<ContextInfo>,
}

fn snapshot_node(node: &Arc<Node>, now: Instant) -> ContextInfo {
    let (children, cause) = {
        let g = node.lock();
        (g.children.clone(), g.cause.clone())
    };
    ContextInfo {
        id: node.id,
        level: node.level,
        cancelled: node.cancelled.load(Ordering::Acquire),
        cause,
        node_id: node.values.node_id(),
        connection_id: node.values.connection_id(),
        session_id: node.values.session_id(),
        statement_id: node.values.statement_id(),
        txn_id: node.values.txn_id(),
        identity: node.values.identity.clone(),
        deadline_in_ms: node
            .deadline
            .as_ref()
            .map(|d| d.at.0.saturating_sub(now.0) as f64 / 1e6),
        children: children.iter().map(|c| snapshot_node(c, now)).collect(),
    }
}

/// The future returned by [`Context::cancelled`]. It holds a handle on the
/// context, so the context stays in the tree (and the cascade reaches the
/// waiter) even when every other handle is dropped while it waits.
pub struct WaitCancelled {
    ctx: Context,
    key: Option<u64>,
    timer: Option<HostFuture>,
}

impl Future for WaitCancelled {
    type Output = std::sync::Arc<Cause>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        {
            let mut g = this.ctx.node.lock();
            if this.ctx.node.cancelled.load(Ordering::Acquire) {
                if let (Some(k), Some(x)) = (this.key.take(), g.extra.as_mut()) {
                    x.waiters.retain(|(w, _)| *w != k);
                }
                if let Some(c) = g.cause.clone() {
                    return Poll::Ready(c);
                }
            }
            let x = g.extra();
            match this.key {
                Some(k) => {
                    if let Some(slot) = x.waiters.iter_mut().find(|(w, _)| *w == k) {
                        if !slot.1.will_wake(cx.waker()) {
                            slot.1 = cx.waker().clone();
                        }
                    } else {
                        x.waiters.push((k, cx.waker().clone()));
                    }
                }
                None => {
                    let k = x.next_waiter;
                    x.next_waiter += 1;
                    x.waiters.push((k, cx.waker().clone()));
                    this.key = Some(k);
                }
            }
        }
        if let Some(d) = this.ctx.node.deadline.clone() {
            let host = this.ctx.node.env.host.clone();
            let timer = this.timer.get_or_insert_with(|| host.sleep_until(d.at));
            if timer.as_mut().poll(cx).is_ready() {
                expire(&this.ctx.node, &d);
                let cause = this.ctx.node.lock().cause.clone();
                return Poll::Ready(cause.unwrap_or_else(|| d.cause.clone()));
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitCancelled {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            if let Some(x) = self.ctx.node.lock().extra.as_mut() {
                x.waiters.retain(|(w, _)| *w != k);
            }
        }
    }
}

/// What a builder produces: a [`Context`] or a typed [`Ctx`].
pub trait Built: Sized {
    /// Wraps a freshly built context.
    fn wrap(ctx: Context) -> Self;
}

impl Built for Context {
    fn wrap(ctx: Context) -> Self {
        ctx
    }
}

impl<L: StaticLevel> Built for Ctx<L> {
    fn wrap(ctx: Context) -> Self {
        Ctx {
            ctx,
            _level: PhantomData,
        }
    }
}

/// Builds a context: all of its values, its deadline, link and span
/// attributes in one derivation. Mandatory values of the level must be set
/// here, or [`build`](Self::build) names the missing one.
///
/// ```
/// use cascade::{Context, ContextError, Level, StdHost, ValueKey};
/// let root = Context::root(StdHost::shared()).node_id(1).build().unwrap();
/// let err = root.child(Level::Routine).connection_id(1).build().unwrap_err();
/// assert!(matches!(err, ContextError::MissingValue { key: ValueKey::Identity, .. }));
/// ```
#[must_use = "a builder does nothing until built"]
pub struct ContextBuilder<'a, K: Built = Context> {
    parent: Option<&'a Context>,
    link: Option<&'a Context>,
    level: Level,
    /// Bits of the `ValueKey`s given. A full word: it is read right after
    /// being written, and a narrow field merged with its neighbours into
    /// one load stalls on store forwarding.
    set: u64,
    /// The ids given, by `ValueKey` (valid where `set` has the key's bit).
    /// The node's values are made from the parent's and these in one step
    /// when it is built, rather than copied through the builder.
    ids: [u64; 6],
    identity: Option<Arc<Identity>>,
    /// What few derivations set, boxed so that the builder stays small.
    rare: Option<Box<Rare>>,
    _out: PhantomData<fn() -> K>,
}

#[derive(Default)]
struct Rare {
    host: Option<Arc<dyn Host>>,
    timeout: Option<(Duration, Reason)>,
    /// The level the deadline's cause names, when not the context's own
    /// (a remote child's deadline started at its caller's level).
    timeout_level: Option<Level>,
    name: Option<Cow<'static, str>>,
    attrs: Vec<(String, AttrValue)>,
    recorder: Option<std::sync::Arc<Recorder>>,
    /// A parent span in another process (a `traceparent`).
    remote_parent: Option<TraceParent>,
    /// Extension values, in the order given.
    ext: Vec<(
        std::any::TypeId,
        std::sync::Arc<dyn std::any::Any + Send + Sync>,
    )>,
}

fn key_bit(k: ValueKey) -> u64 {
    1 << (k as u64)
}

impl<'a, K: Built> ContextBuilder<'a, K> {
    fn new_root(host: Arc<dyn Host>) -> Self {
        ContextBuilder {
            parent: None,
            link: None,
            level: Level::Root,
            set: 0,
            ids: [0; 6],
            identity: None,
            rare: Some(Box::new(Rare {
                host: Some(host),
                ..Rare::default()
            })),
            _out: PhantomData,
        }
    }

    #[inline]
    fn new_child(parent: &'a Context, level: Level) -> Self {
        ContextBuilder {
            parent: Some(parent),
            link: None,
            level,
            set: 0,
            ids: [0; 6],
            identity: None,
            rare: None,
            _out: PhantomData,
        }
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    #[inline]
    fn set_id(mut self, k: ValueKey, id: u64) -> Self {
        self.ids[k as usize] = id;
        self.set |= key_bit(k);
        self
    }

    /// Node id (mandatory for Root).
    #[inline]
    pub fn node_id(self, id: u64) -> Self {
        self.set_id(ValueKey::NodeId, id)
    }
    /// Tenant, user and role (mandatory for Routine).
    #[inline]
    pub fn identity(mut self, identity: impl Into<Arc<Identity>>) -> Self {
        self.identity = Some(identity.into());
        self.set |= key_bit(ValueKey::Identity);
        self
    }
    /// Connection id (mandatory for Routine).
    #[inline]
    pub fn connection_id(self, id: u64) -> Self {
        self.set_id(ValueKey::ConnectionId, id)
    }
    /// Session id (mandatory for Routine).
    #[inline]
    pub fn session_id(self, id: u64) -> Self {
        self.set_id(ValueKey::SessionId, id)
    }
    /// Transaction id (mandatory for Txn).
    #[inline]
    pub fn txn_id(self, id: u64) -> Self {
        self.set_id(ValueKey::TxnId, id)
    }
    /// Statement id (mandatory for Query).
    #[inline]
    pub fn statement_id(self, id: u64) -> Self {
        self.set_id(ValueKey::StatementId, id)
    }
    /// An embedder-defined value, looked up by type with
    /// [`Values::get`].
    pub fn value<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.rare()
            .ext
            .push((std::any::TypeId::of::<T>(), std::sync::Arc::new(value)));
        self
    }
    /// A deadline `timeout` from now on the host clock, cancelling with
    /// `reason` (kind `DeadlineExceeded`). The effective deadline is the
    /// earliest of this and the parent's.
    pub fn timeout(mut self, timeout: Duration, reason: Reason) -> Self {
        self.rare().timeout = Some((timeout, reason));
        self
    }
    /// Like [`ContextBuilder::timeout`], with the cause naming `level` as
    /// where the deadline started (a remote child's deadline is its
    /// caller's, set at the caller's level: `core/src/remote.rs`).
    pub(crate) fn timeout_from_level(
        mut self,
        timeout: Duration,
        reason: Reason,
        level: Level,
    ) -> Self {
        let rare = self.rare();
        rare.timeout = Some((timeout, reason));
        rare.timeout_level = Some(level);
        self
    }
    /// Also cancel this context when `target` is cancelled (a Query's link
    /// to its Txn). The target must be a Txn for a Query; any level may link
    /// to any shallower context otherwise.
    #[inline]
    pub fn link(mut self, target: &'a Context) -> Self {
        self.link = Some(target);
        self
    }
    /// The span's name (default: the level in lower case).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.rare().name = Some(name.into());
        self
    }
    /// A span attribute.
    pub fn attr(mut self, key: &str, value: impl Into<AttrValue>) -> Self {
        self.rare().attrs.push((key.to_owned(), value.into()));
        self
    }
    /// Joins the trace of a parent span in another process: this context's
    /// span gets `parent`'s trace id (and flags and tracestate), and
    /// `parent`'s span as its remote parent; its descendants follow. Its
    /// local parent stays its parent in the recorder and in `tracing`
    /// (where the ids say the rest: fields `trace_id`, `parent_span_id`).
    pub fn trace_parent(mut self, parent: TraceParent) -> Self {
        self.rare().remote_parent = Some(parent);
        self
    }

    /// Record this tree's spans in `recorder` (Root only; children inherit).
    pub fn recorder(mut self, recorder: std::sync::Arc<Recorder>) -> Self {
        self.rare().recorder = Some(recorder);
        self
    }

    /// Builds the context: checks the level order and the mandatory values,
    /// attaches it to its parent (born cancelled if the parent is) and to its
    /// link, and opens its spans.
    pub fn build(mut self) -> Result<K, ContextError> {
        if let Some(p) = self.parent {
            p.level().check_derive(self.level)?;
        }
        for &k in ValueKey::mandatory(self.level) {
            if self.set & key_bit(k) == 0 {
                return Err(ContextError::MissingValue {
                    level: self.level,
                    key: k,
                });
            }
        }
        if let Some(t) = self.link {
            if t.level() >= self.level || (self.level == Level::Query && t.level() != Level::Txn) {
                return Err(ContextError::BadLink {
                    child: self.level,
                    target: t.level(),
                });
            }
            // A Query's link is its second parent: it carries the Txn's id,
            // and may not claim another. (Other links only cancel.)
            if let (Level::Query, Some(txn_id)) = (self.level, t.values().txn_id()) {
                let bit = key_bit(ValueKey::TxnId);
                if self.set & bit != 0 && self.ids[ValueKey::TxnId as usize] != txn_id {
                    return Err(ContextError::ValueOverride {
                        level: self.level,
                        key: ValueKey::TxnId,
                    });
                }
                self.ids[ValueKey::TxnId as usize] = txn_id;
                self.set |= bit;
            }
        }
        if let Some(p) = self.parent {
            if let Some(key) = p
                .node
                .values
                .overridden(self.set, &self.ids, self.identity.as_ref())
            {
                return Err(ContextError::ValueOverride {
                    level: self.level,
                    key,
                });
            }
        }
        Ok(K::wrap(self.attach()))
    }

    fn attach(self) -> Context {
        let ContextBuilder {
            parent,
            level,
            set,
            ids,
            identity,
            link,
            mut rare,
            ..
        } = self;
        let mut values = match parent {
            Some(p) => p.node.values.derive(set, &ids, identity),
            None => Values::default().derive(set, &ids, identity),
        };
        if let Some(r) = rare.as_mut() {
            for (key, value) in r.ext.drain(..) {
                values.insert_ext(key, value);
            }
        }
        let host = rare.as_mut().and_then(|r| r.host.take());
        let recorder = rare.as_mut().and_then(|r| r.recorder.take());
        let id = next_id();
        let env = match (parent, host, recorder) {
            (Some(p), _, None) => p.node.env.clone(),
            (Some(p), _, recorder) => Arc::new(Env {
                host: p.node.env.host.clone(),
                recorder,
            }),
            (None, Some(host), recorder) => Arc::new(Env { host, recorder }),
            (None, None, _) => unreachable!("a root builder always has a host"),
        };
        let name = rare.as_mut().and_then(|r| r.name.take());
        // The W3C ids: only for a span someone records (the recorder or a
        // subscriber), or one that joins a remote trace. A connection
        // (Routine) starts a trace of its own: the node's Root span lives as
        // long as the process and is no one's trace.
        let remote = rare.as_mut().and_then(|r| r.remote_parent.take());
        let tracing_on = tracing::level_enabled!(tracing::Level::INFO);
        let trace = if env.recorder.is_some() || tracing_on || remote.is_some() {
            let inherited = parent
                .and_then(|p| p.node.trace.as_ref())
                .filter(|_| level != Level::Routine);
            Some(match (&remote, inherited) {
                (Some(tp), _) => SpanContext::child_of_remote(tp, &*env.host),
                (None, Some(pt)) => pt.child(&*env.host),
                (None, None) => SpanContext::new_root(&*env.host),
            })
        } else {
            None
        };
        let remote_id = remote.as_ref().map(|tp| tp.parent_id);
        let span_id = env.recorder.as_ref().map(|r| {
            let mut attrs = match rare.as_mut() {
                Some(rare) => std::mem::take(&mut rare.attrs),
                None => Vec::new(),
            };
            attrs.push(("ctx".into(), AttrValue::from(id)));
            if let Some(c) = values.connection_id() {
                attrs.push(("connection_id".into(), c.into()));
            }
            if let (Some(t), Level::Txn | Level::Query) = (values.txn_id(), level) {
                attrs.push(("txn_id".into(), t.into()));
            }
            if let (Some(s), Level::Query | Level::Pipeline) = (values.statement_id(), level) {
                attrs.push(("statement_id".into(), s.into()));
            }
            let name = name.as_deref().unwrap_or(span_name(level));
            let parent_span = parent.and_then(Context::span_id);
            match &trace {
                Some(t) => r.open_traced(parent_span, t, remote_id, name, level, attrs),
                None => r.open(parent_span, name, level, attrs),
            }
        });
        // No subscriber that could want an INFO span (the usual case in
        // production without tracing): no span at all, and no cost.
        let span = if tracing_on {
            let name = name.as_deref().unwrap_or(span_name(level));
            let rec = span_id.map_or(0, |s| s.0);
            let tc = trace.as_ref();
            recorded(child_span(
                parent.and_then(|p| p.node.span.as_deref()),
                |ps| make_tracing_span(level, id, rec, name, ps, tc, remote_id),
            ))
        } else {
            None
        };
        // Boxed: the common case (no timeout) never moves the large
        // `(Instant, Reason)` around on the stack.
        let own: Option<Box<(Instant, Reason, Level)>> = match rare.as_mut() {
            Some(r) => {
                let cause_level = r.timeout_level.take().unwrap_or(level);
                r.timeout.take().map(|(d, reason)| {
                    Box::new((env.host.now().saturating_add(d), reason, cause_level))
                })
            }
            None => None,
        };
        let parent_deadline = parent.and_then(|p| p.node.deadline.clone());
        let span_nz = span_id.and_then(|s| std::num::NonZeroU64::new(s.0));
        let parent_node = parent.map(|p| p.node.clone());
        // The node is built before the parent is locked, already pointing at
        // its parent, and published in the parent's children under its lock.
        // One literal per branch (no closure): the values are moved once.
        macro_rules! node {
            ($deadline:expr) => {
                Node {
                    id,
                    handles: AtomicUsize::new(1),
                    parent_idx: AtomicUsize::new(0),
                    level,
                    cancelled: AtomicBool::new(false),
                    span_closed: AtomicBool::new(false),
                    deadline: $deadline,
                    values,
                    env,
                    span,
                    span_id: span_nz,
                    trace,
                    inner: Mutex::new(Inner::new(parent_node)),
                }
            };
        }
        let node = match own {
            None => Arc::new(node!(parent_deadline)),
            Some(own) => Arc::new_cyclic(|weak| {
                let (at, reason, cause_level) = *own;
                // The effective deadline: the parent's if strictly earlier.
                let deadline = match parent_deadline {
                    Some(pd) if pd.at < at => pd,
                    _ => Arc::new(Deadline {
                        at,
                        cause: std::sync::Arc::new(Cause::deadline(reason, cause_level, id)),
                        owner: weak.clone(),
                    }),
                };
                node!(Some(deadline))
            }),
        };
        let mut born_cancelled = None;
        if let Some(p) = parent {
            let mut pg = p.node.lock();
            if p.node.cancelled.load(Ordering::Relaxed) {
                born_cancelled = pg.cause.clone();
                drop(pg);
                // Never attached: it lets go of its parent too.
                node.lock().parent = None;
            } else {
                node.parent_idx.store(pg.children.len(), Ordering::Relaxed);
                pg.children.push(node.clone());
            }
        }
        if born_cancelled.is_none() {
            if let Some(t) = link {
                let mut tg = t.node.lock();
                if t.node.cancelled.load(Ordering::Relaxed) {
                    born_cancelled = tg.cause.clone();
                } else {
                    let x = tg.extra();
                    if x.links.len() == x.links.capacity() {
                        x.links.retain(|w| w.strong_count() > 0);
                    }
                    x.links.push(Arc::downgrade(&node));
                    if let (Some(r), Some(from), Some(to)) =
                        (node.env.recorder.as_ref(), span_id, t.span_id())
                    {
                        r.add_link(from, to);
                    }
                }
            }
        }
        if let Some(cause) = born_cancelled {
            cancel_node(&node, cause);
        }
        Context { node }
    }
}

/// Keeps a span only if a subscriber records it: a disabled span, or one
/// issued while no subscriber was set, costs the node nothing.
fn recorded(span: tracing::Span) -> Option<Box<tracing::Span>> {
    let live = span
        .with_subscriber(|(_, d)| !d.is::<tracing::subscriber::NoSubscriber>())
        .unwrap_or(false);
    live.then(|| Box::new(span))
}

/// Opens a context's `tracing` span under `parent`'s span.
///
/// A span id only means something to the subscriber that issued it (handing
/// a foreign id to `tracing-subscriber`'s registry panics), so the child is
/// opened in the parent span's own dispatcher. A parent with no live span, or
/// one issued while no subscriber was set, gives a root span in the current
/// dispatcher instead.
fn child_span(
    parent: Option<&tracing::Span>,
    make: impl Fn(Option<tracing::Id>) -> tracing::Span,
) -> tracing::Span {
    let in_parent = parent.and_then(|p| {
        p.with_subscriber(|(id, dispatch)| {
            if dispatch.is::<tracing::subscriber::NoSubscriber>() {
                None
            } else {
                Some(tracing::dispatcher::with_default(dispatch, || {
                    make(Some(id.clone()))
                }))
            }
        })
        .flatten()
    });
    in_parent.unwrap_or_else(|| make(None))
}

/// The default span name of a level (`"query"`).
fn span_name(level: Level) -> &'static str {
    match level {
        Level::Root => "root",
        Level::Routine => "routine",
        Level::Txn => "txn",
        Level::Request => "request",
        Level::Query => "query",
        Level::Pipeline => "pipeline",
        Level::Operator => "operator",
    }
}

fn make_tracing_span(
    level: Level,
    id: u64,
    rec: u64,
    name: &str,
    parent: Option<tracing::Id>,
    tc: Option<&SpanContext>,
    remote: Option<TraceSpanId>,
) -> tracing::Span {
    let l = level.as_str();
    match level {
        Level::Root => tracing_span!("root", parent, l, id, rec, name, tc, remote),
        Level::Routine => tracing_span!("routine", parent, l, id, rec, name, tc, remote),
        Level::Txn => tracing_span!("txn", parent, l, id, rec, name, tc, remote),
        Level::Request => tracing_span!("request", parent, l, id, rec, name, tc, remote),
        Level::Query => tracing_span!("query", parent, l, id, rec, name, tc, remote),
        Level::Pipeline | Level::Operator => {
            tracing_span!("pipeline", parent, l, id, rec, name, tc, remote)
        }
    }
}

/// A context whose level is known at compile time. Derivations out of order
/// do not compile.
///
/// ```
/// use cascade::{Ctx, Identity, StdHost};
/// use cascade::levels::{Pipeline, Query, Request, Root, Routine};
///
/// let root: Ctx<Root> = Ctx::root(StdHost::shared()).node_id(1).build().unwrap();
/// let conn: Ctx<Routine> = root
///     .derive::<Routine>()
///     .identity(Identity::new("t", "u", "r"))
///     .connection_id(1)
///     .session_id(1)
///     .build()
///     .unwrap();
/// let req: Ctx<Request> = conn.derive::<Request>().build().unwrap();
/// let q: Ctx<Query> = req.derive::<Query>().statement_id(9).build().unwrap();
/// let p: Ctx<Pipeline> = q.derive::<Pipeline>().build().unwrap();
/// let nested: Ctx<Pipeline> = p.derive::<Pipeline>().build().unwrap();
/// assert_eq!(nested.values().statement_id(), Some(9));
/// ```
///
/// ```compile_fail
/// use cascade::{Ctx, StdHost};
/// use cascade::levels::{Query, Root};
/// let root: Ctx<Root> = Ctx::root(StdHost::shared()).node_id(1).build().unwrap();
/// let q = root.derive::<Query>(); // a Query cannot hang under Root
/// ```
pub struct Ctx<L: StaticLevel> {
    ctx: Context,
    _level: PhantomData<L>,
}

impl<L: StaticLevel> Clone for Ctx<L> {
    fn clone(&self) -> Self {
        Ctx {
            ctx: self.ctx.clone(),
            _level: PhantomData,
        }
    }
}

impl<L: StaticLevel> fmt::Debug for Ctx<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ctx.fmt(f)
    }
}

impl Ctx<crate::level::levels::Root> {
    /// Starts building a typed Root context.
    pub fn root(host: Arc<dyn Host>) -> ContextBuilder<'static, Self> {
        ContextBuilder::new_root(host)
    }
}

impl<L: StaticLevel> Ctx<L> {
    /// Starts building a child of level `C`; only levels allowed under `L`
    /// compile.
    pub fn derive<C: ChildOf<L>>(&self) -> ContextBuilder<'_, Ctx<C>> {
        ContextBuilder::new_child(&self.ctx, C::LEVEL)
    }

    /// The untyped handle.
    pub fn into_dyn(self) -> Context {
        self.ctx
    }

    /// Checks the level of an untyped handle.
    pub fn from_dyn(ctx: Context) -> Result<Self, ContextError> {
        if ctx.level() == L::LEVEL {
            Ok(Ctx {
                ctx,
                _level: PhantomData,
            })
        } else {
            Err(ContextError::OutOfOrder {
                parent: ctx.level(),
                child: L::LEVEL,
            })
        }
    }
}

impl<L: StaticLevel> Deref for Ctx<L> {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

// Keep the id generator's type honest under loom, which has no statics.
#[allow(dead_code)]
fn _assert_types() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Context>();
    send::<WaitCancelled>();
    let _ = AtomicU64::new(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ManualHost;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
    use std::task::Wake;

    /// Runs `f` with `dispatch` as the thread's default, after asking every
    /// callsite's interest again: `tracing` caches it process-wide at a
    /// callsite's first use, and a test with no subscriber may have cached
    /// "never" (the spans then disabled here).
    fn with_dispatch<T>(dispatch: &tracing::Dispatch, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(dispatch, || {
            tracing::callsite::rebuild_interest_cache();
            f()
        })
    }

    /// One session's tree: root, conn under it, txn and req under conn, a
    /// query under req (linked to txn), a pipeline under the query and a
    /// nested pipeline under that; plus a sibling connection with its own
    /// request and query.
    struct Tree {
        host: Arc<ManualHost>,
        root: Context,
        conn: Context,
        txn: Context,
        req: Context,
        query: Context,
        pipe: Context,
        nested: Context,
        other_conn: Context,
        other_query: Context,
    }

    fn routine(root: &Context, id: u64) -> Context {
        root.child(Level::Routine)
            .identity(Identity::new("acme", "alice", "member"))
            .connection_id(id)
            .session_id(id + 100)
            .build()
            .unwrap()
    }

    fn tree() -> Tree {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let txn = conn.child(Level::Txn).txn_id(10).build().unwrap();
        let req = conn.child(Level::Request).build().unwrap();
        let query = req
            .child(Level::Query)
            .statement_id(20)
            .link(&txn)
            .build()
            .unwrap();
        let pipe = query.child(Level::Pipeline).build().unwrap();
        let nested = pipe.child(Level::Pipeline).build().unwrap();
        let other_conn = routine(&root, 2);
        let other_req = other_conn.child(Level::Request).build().unwrap();
        let other_query = other_req
            .child(Level::Query)
            .statement_id(21)
            .build()
            .unwrap();
        // The request handle is dropped: the query moves up under the
        // connection and must still be reached from it.
        drop(other_req);
        Tree {
            host,
            root,
            conn,
            txn,
            req,
            query,
            pipe,
            nested,
            other_conn,
            other_query,
        }
    }

    fn kill_query(by: u64) -> Reason {
        Reason::KillQuery {
            by_connection: by,
            by_user: "root".into(),
        }
    }

    fn cancelled(ctxs: &[&Context]) -> Vec<bool> {
        ctxs.iter().map(|c| c.is_cancelled()).collect()
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(StdAtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, StdOrdering::SeqCst);
        }
    }

    fn waiters(ctx: &Context) -> usize {
        ctx.node
            .lock()
            .extra
            .as_ref()
            .map_or(0, |x| x.waiters.len())
    }

    fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut TaskContext::from_waker(waker))
    }

    // ---- cascade ------------------------------------------------------

    #[test]
    fn cancel_reaches_every_descendant_but_no_sibling_or_ancestor() {
        let t = tree();
        assert!(t.req.cancel(kill_query(9)));
        assert_eq!(
            cancelled(&[&t.req, &t.query, &t.pipe, &t.nested]),
            [true; 4]
        );
        assert_eq!(
            cancelled(&[&t.root, &t.conn, &t.txn, &t.other_conn, &t.other_query]),
            [false; 5]
        );
        let cause = t.nested.cause().unwrap();
        assert_eq!(cause.level, Level::Request);
        assert_eq!(cause.context_id, t.req.id());
        assert_eq!(cause.kind, CancelKind::Canceled);
        assert_eq!(cause.reason.who(), Some(9));
    }

    #[test]
    fn cancel_of_a_middle_node_leaves_its_parent_and_siblings_alive() {
        let t = tree();
        let sibling = t.query.child(Level::Pipeline).build().unwrap();
        t.pipe.cancel(Reason::Requested);
        assert!(t.pipe.is_cancelled() && t.nested.is_cancelled());
        assert!(!sibling.is_cancelled() && !t.query.is_cancelled());
    }

    #[test]
    fn txn_cancel_reaches_the_linked_query_and_its_pipelines_only() {
        let t = tree();
        assert!(t.txn.cancel(Reason::TxnRolledBack { txn_id: 10 }));
        assert_eq!(
            cancelled(&[&t.txn, &t.query, &t.pipe, &t.nested]),
            [true; 4]
        );
        assert_eq!(
            cancelled(&[&t.req, &t.conn, &t.root, &t.other_query]),
            [false; 4]
        );
        let cause = t.nested.cause().unwrap();
        assert_eq!(cause.level, Level::Txn);
        assert_eq!(cause.reason, Reason::TxnRolledBack { txn_id: 10 });
    }

    #[test]
    fn routine_cancel_reaches_txn_query_and_moved_up_children() {
        let t = tree();
        t.other_conn.cancel(Reason::ClientDisconnected);
        assert!(t.other_query.is_cancelled(), "re-parented query is reached");
        assert!(!t.query.is_cancelled());
        t.conn.cancel(Reason::KillConnection {
            by_connection: 2,
            by_user: "alice".into(),
        });
        for c in [&t.txn, &t.req, &t.query, &t.pipe, &t.nested] {
            assert_eq!(c.cause().unwrap().level, Level::Routine, "{c:?}");
        }
        assert!(!t.root.is_cancelled());
    }

    #[test]
    fn root_cancel_reaches_a_deep_chain() {
        let t = tree();
        let mut chain = vec![t.nested.clone()];
        for _ in 0..200 {
            let next = chain
                .last()
                .unwrap()
                .child(Level::Pipeline)
                .build()
                .unwrap();
            chain.push(next);
        }
        t.root.cancel(Reason::Shutdown);
        assert!(chain.iter().all(Context::is_cancelled));
        assert!(t.other_query.is_cancelled());
    }

    #[test]
    fn child_of_a_cancelled_parent_is_born_cancelled_with_its_cause() {
        let t = tree();
        t.req.cancel(kill_query(3));
        let q = t.req.child(Level::Query).statement_id(30).build().unwrap();
        assert!(q.is_cancelled());
        assert_eq!(q.cause(), t.req.cause());
        let p = q.child(Level::Pipeline).build().unwrap();
        assert_eq!(p.cause(), t.req.cause());
        // A live parent still gives live children.
        let req2 = t.conn.child(Level::Request).build().unwrap();
        assert!(!req2.is_cancelled());
    }

    #[test]
    fn query_linked_to_a_cancelled_txn_is_born_cancelled_with_the_txns_cause() {
        let t = tree();
        t.txn.cancel(Reason::TxnRolledBack { txn_id: 10 });
        let q = t
            .req
            .child(Level::Query)
            .statement_id(31)
            .link(&t.txn)
            .build()
            .unwrap();
        assert_eq!(q.cause(), t.txn.cause());
        assert!(!t.req.is_cancelled());
    }

    #[test]
    fn first_cause_wins() {
        let t = tree();
        assert!(t.query.cancel(kill_query(5)));
        assert!(
            !t.query.cancel(Reason::Shutdown),
            "second cancel changes nothing"
        );
        assert!(t.conn.cancel(Reason::ClientDisconnected));
        assert!(t.txn.cancel(Reason::TxnRolledBack { txn_id: 10 }) || t.txn.is_cancelled());
        for c in [&t.query, &t.pipe, &t.nested] {
            let cause = c.cause().unwrap();
            assert_eq!(cause.reason.who(), Some(5), "{c:?}");
            assert_eq!(cause.level, Level::Query);
        }
        assert_eq!(t.req.cause().unwrap().reason, Reason::ClientDisconnected);
    }

    // ---- deadlines ----------------------------------------------------

    #[test]
    fn effective_deadline_is_the_earliest_in_the_chain() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let req = conn
            .child(Level::Request)
            .timeout(
                Duration::from_millis(100),
                Reason::Deadline { limit_ms: 100 },
            )
            .build()
            .unwrap();
        let late = req
            .child(Level::Query)
            .statement_id(1)
            .timeout(
                Duration::from_millis(500),
                Reason::StatementTimeout { limit_ms: 500 },
            )
            .build()
            .unwrap();
        let d = late.deadline().unwrap();
        assert_eq!(d.at, Instant(100_000_000));
        assert_eq!(d.cause.reason, Reason::Deadline { limit_ms: 100 });
        assert_eq!(d.cause.level, Level::Request);
        let early = req
            .child(Level::Query)
            .statement_id(2)
            .timeout(
                Duration::from_millis(50),
                Reason::StatementTimeout { limit_ms: 50 },
            )
            .build()
            .unwrap();
        assert_eq!(early.deadline().unwrap().at, Instant(50_000_000));
        assert_eq!(early.deadline().unwrap().cause.level, Level::Query);
        // Inherited through levels that set none.
        let p = early.child(Level::Pipeline).build().unwrap();
        assert_eq!(p.deadline().unwrap().at, Instant(50_000_000));
        assert!(conn.deadline().is_none());
        host.advance(Duration::from_millis(20));
        assert_eq!(p.remaining(), Some(Duration::from_millis(30)));
    }

    #[test]
    fn check_fires_a_deadline_and_is_cancelled_alone_reads_no_clock() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let req = conn.child(Level::Request).build().unwrap();
        let q = req
            .child(Level::Query)
            .statement_id(1)
            .timeout(
                Duration::from_millis(10),
                Reason::StatementTimeout { limit_ms: 10 },
            )
            .build()
            .unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let sibling = q.child(Level::Pipeline).build().unwrap();
        host.advance(Duration::from_millis(9));
        assert!(p.check().is_ok());
        host.advance(Duration::from_millis(1));
        assert!(!p.is_cancelled(), "is_cancelled does not read the clock");
        let err = p.check().unwrap_err();
        assert_eq!(err.kind(), CancelKind::DeadlineExceeded);
        assert_eq!(
            err.cause().reason,
            Reason::StatementTimeout { limit_ms: 10 }
        );
        assert_eq!(err.cause().level, Level::Query);
        // The deadline belongs to the query: firing it cancels the query and
        // all under it, not the request.
        assert!(q.is_cancelled() && sibling.is_cancelled());
        assert_eq!(sibling.err(), Some(CancelKind::DeadlineExceeded));
        assert!(!req.is_cancelled());
    }

    #[test]
    fn a_deadline_is_never_turned_into_a_plain_cancel() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let req = conn.child(Level::Request).build().unwrap();
        let q = req
            .child(Level::Query)
            .statement_id(1)
            .timeout(
                Duration::from_millis(10),
                Reason::StatementTimeout { limit_ms: 10 },
            )
            .build()
            .unwrap();
        host.advance(Duration::from_millis(11));
        assert!(q.check().is_err());
        assert!(!q.cancel(kill_query(1)));
        conn.cancel(Reason::ClientDisconnected);
        assert_eq!(q.err(), Some(CancelKind::DeadlineExceeded));
        assert_eq!(
            q.check().unwrap_err().cause().reason,
            Reason::StatementTimeout { limit_ms: 10 }
        );
        // And a cancel that came first is not turned into a deadline either.
        let q2 = conn.child(Level::Request).build().unwrap();
        assert_eq!(q2.err(), Some(CancelKind::Canceled));
    }

    // ---- waiting --------------------------------------------------------

    #[test]
    fn cancelled_future_is_woken_by_a_cancel() {
        let t = tree();
        let counter = std::sync::Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut fut = t.nested.cancelled();
        assert!(poll_once(&mut fut, &waker).is_pending());
        assert!(
            poll_once(&mut fut, &waker).is_pending(),
            "re-poll keeps one waiter"
        );
        assert_eq!(waiters(&t.nested), 1);
        t.req.cancel(kill_query(4));
        assert_eq!(counter.0.load(StdOrdering::SeqCst), 1);
        match poll_once(&mut fut, &waker) {
            Poll::Ready(cause) => assert_eq!(cause.level, Level::Request),
            Poll::Pending => panic!("not ready after cancel"),
        }
        // Already cancelled: ready at once.
        assert!(t.query.cancelled().now_or_never().is_some());
        assert!(t.other_query.cancelled().now_or_never().is_none());
    }

    #[test]
    fn dropped_cancelled_future_leaves_no_waiter() {
        let t = tree();
        let mut fut = t.query.cancelled();
        assert!(poll_once(&mut fut, Waker::noop()).is_pending());
        assert_eq!(waiters(&t.query), 1);
        drop(fut);
        assert_eq!(waiters(&t.query), 0);
    }

    #[test]
    fn cancelled_future_outlives_its_handles() {
        let t = tree();
        let mut fut = t.nested.cancelled();
        assert!(poll_once(&mut fut, Waker::noop()).is_pending());
        let Tree { nested, req, .. } = t;
        drop(nested);
        req.cancel(Reason::Requested);
        assert!(
            poll_once(&mut fut, Waker::noop()).is_ready(),
            "a waiter whose context handles were dropped still sees the cascade"
        );
    }

    #[test]
    fn cancelled_future_wakes_on_another_thread() {
        let t = tree();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let waiting = t.nested.clone();
        let th = std::thread::spawn(move || {
            let fut = waiting.cancelled();
            ready_tx.send(()).unwrap();
            let cause = futures::executor::block_on(fut);
            done_tx.send(cause).unwrap();
        });
        ready_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(done_rx.try_recv().is_err(), "woke before the cancel");
        t.conn.cancel(Reason::ClientDisconnected);
        let cause = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the waiting thread was not woken");
        assert_eq!(cause.reason, Reason::ClientDisconnected);
        th.join().unwrap();
    }

    #[test]
    fn cancelled_future_fires_on_the_host_timer() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let req = conn
            .child(Level::Request)
            .timeout(Duration::from_millis(10), Reason::Deadline { limit_ms: 10 })
            .build()
            .unwrap();
        let q = req.child(Level::Query).statement_id(1).build().unwrap();
        let counter = std::sync::Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut fut = q.cancelled();
        assert!(poll_once(&mut fut, &waker).is_pending());
        host.advance(Duration::from_millis(9));
        assert_eq!(counter.0.load(StdOrdering::SeqCst), 0);
        assert!(poll_once(&mut fut, &waker).is_pending());
        host.advance(Duration::from_millis(1));
        assert!(
            counter.0.load(StdOrdering::SeqCst) >= 1,
            "timer woke the task"
        );
        match poll_once(&mut fut, &waker) {
            Poll::Ready(cause) => {
                assert_eq!(cause.kind, CancelKind::DeadlineExceeded);
                assert_eq!(cause.level, Level::Request);
            }
            Poll::Pending => panic!("deadline passed but the future is pending"),
        }
        assert!(q.is_cancelled() && req.is_cancelled() && !conn.is_cancelled());
    }

    // ---- dropping handles -------------------------------------------------

    #[test]
    fn dropping_handles_reparents_children_and_shrinks_the_tree() {
        let t = tree();
        // root, conn, txn, req, query, pipe, nested, other_conn, other_query
        assert_eq!(t.root.subtree_len(), 9);
        let Tree {
            root,
            conn,
            txn,
            req,
            query,
            pipe,
            nested,
            other_conn,
            other_query,
            ..
        } = t;
        drop(req);
        drop(query);
        assert_eq!(root.subtree_len(), 7);
        assert_eq!(conn.subtree_len(), 4, "conn, txn, pipe, nested");
        // The moved pipeline is still cancelled through its new parent.
        drop(pipe);
        assert_eq!(conn.subtree_len(), 3);
        {
            let g = nested.node.lock();
            assert!(Arc::ptr_eq(g.parent.as_ref().unwrap(), &conn.node));
        }
        conn.cancel(Reason::ClientDisconnected);
        assert!(nested.is_cancelled());
        drop((nested, txn, other_query));
        drop(conn);
        assert_eq!(root.subtree_len(), 2);
        drop(other_conn);
        assert_eq!(root.subtree_len(), 1);
    }

    #[test]
    fn clones_keep_a_context_in_the_tree() {
        let t = tree();
        let kept = t.pipe.clone();
        let before = t.root.subtree_len();
        let Tree { root, pipe, .. } = t;
        drop(pipe);
        assert_eq!(root.subtree_len(), before);
        drop(kept);
        assert_eq!(root.subtree_len(), before - 1);
    }

    #[test]
    fn dropping_a_node_frees_it() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        let weak = Arc::downgrade(&conn.node);
        let req = conn.child(Level::Request).build().unwrap();
        drop(conn);
        assert!(
            weak.upgrade().is_none(),
            "no cycle keeps a dropped node alive"
        );
        assert_eq!(root.subtree_len(), 2);
        drop(req);
        assert_eq!(root.subtree_len(), 1);
    }

    // ---- cleanup contexts -----------------------------------------------

    #[test]
    fn cleanup_context_is_live_after_a_kill_keeps_values_and_has_its_own_deadline() {
        let t = tree();
        t.conn.cancel(Reason::KillConnection {
            by_connection: 2,
            by_user: "root".into(),
        });
        assert!(t.txn.is_cancelled());
        let cleanup = t.txn.cleanup(Duration::from_millis(200));
        assert!(!cleanup.is_cancelled());
        assert!(cleanup.check().is_ok());
        assert_eq!(cleanup.level(), Level::Txn);
        assert_eq!(cleanup.values().txn_id(), Some(10));
        assert_eq!(cleanup.values().connection_id(), Some(1));
        assert_eq!(cleanup.values().tenant(), Some("acme"));
        assert_eq!(cleanup.values().node_id(), Some(1));
        assert_ne!(cleanup.id(), t.txn.id());
        let d = cleanup.deadline().unwrap();
        assert_eq!(d.at, Instant(200_000_000));
        assert_eq!(d.cause.reason, Reason::CleanupTimeout { limit_ms: 200 });
        // A new cancellation root: nothing above reaches it.
        t.root.cancel(Reason::Shutdown);
        assert!(!cleanup.is_cancelled());
        t.host.advance(Duration::from_millis(199));
        assert!(cleanup.check().is_ok());
        t.host.advance(Duration::from_millis(1));
        let err = cleanup.check().unwrap_err();
        assert_eq!(err.kind(), CancelKind::DeadlineExceeded);
        assert_eq!(err.cause().reason, Reason::CleanupTimeout { limit_ms: 200 });
        // And its cancel does not go back to the original.
        assert_eq!(
            t.txn.cause().unwrap().reason,
            Reason::KillConnection {
                by_connection: 2,
                by_user: "root".into()
            }
        );
    }

    #[test]
    fn cleanup_context_cancel_stays_in_the_cleanup() {
        let t = tree();
        let cleanup = t.conn.cleanup(Duration::from_secs(1));
        let req = cleanup.child(Level::Request).build().unwrap();
        cleanup.cancel(Reason::Requested);
        assert!(req.is_cancelled());
        assert!(!t.conn.is_cancelled() && !t.query.is_cancelled());
    }

    #[test]
    fn cleanup_span_is_a_child_of_the_original_span_in_the_recorder() {
        let host = Arc::new(ManualHost::new());
        let rec = Recorder::new(host.clone(), 1000);
        let root = Context::root(host.clone())
            .node_id(1)
            .recorder(rec.clone())
            .build()
            .unwrap();
        let conn = routine(&root, 1);
        let txn = conn.child(Level::Txn).txn_id(3).build().unwrap();
        let req = conn.child(Level::Request).build().unwrap();
        conn.cancel(Reason::ClientDisconnected);
        let cleanup = txn.cleanup_linked(Duration::from_secs(1), Some(&req));
        let span = rec.get(cleanup.span_id().unwrap()).unwrap();
        assert_eq!(span.parent, txn.span_id());
        assert_eq!(span.links, vec![req.span_id().unwrap()]);
        assert_eq!(span.level, Level::Txn);
        assert_eq!(span.status, SpanStatus::Open);
        drop(cleanup);
        let span = rec.get(span.id).unwrap();
        assert_eq!(span.status, SpanStatus::Ok);
        // The original's span closes with its cause.
        let txn_span = txn.span_id().unwrap();
        drop(txn);
        assert_eq!(rec.get(txn_span).unwrap().status.code(), "canceled");
    }

    #[test]
    fn cleanup_with_tracing_on_and_no_parent_never_panics() {
        use tracing_subscriber::registry::LookupSpan;
        let dispatch = tracing::Dispatch::new(tracing_subscriber::Registry::default());
        with_dispatch(&dispatch, || {
            let registry = dispatch
                .downcast_ref::<tracing_subscriber::Registry>()
                .unwrap();
            let host = Arc::new(ManualHost::new());
            let root = Context::root(host.clone()).node_id(1).build().unwrap();
            let conn = routine(&root, 1);
            let txn = conn.child(Level::Txn).txn_id(3).build().unwrap();
            let txn_span = txn.tracing_span().id().expect("span enabled");
            let conn_span = conn.tracing_span().id().unwrap();
            assert_eq!(
                registry.span(&txn_span).unwrap().parent().unwrap().id(),
                conn_span
            );
            conn.cancel(Reason::ClientDisconnected);
            let cleanup = txn.cleanup(Duration::from_secs(1));
            let cleanup_span = cleanup.tracing_span().id().unwrap();
            assert_eq!(
                registry.span(&cleanup_span).unwrap().parent().unwrap().id(),
                txn_span
            );
            // The original goes away while the cleanup runs.
            drop((txn, conn, root));
            assert!(cleanup.check().is_ok());
            let nested = cleanup.cleanup(Duration::from_secs(1));
            assert!(!nested.is_cancelled());
            drop(cleanup);
            drop(nested);
        });
        // A tree made while no subscriber was set (its spans are disabled,
        // or carry ids no subscriber knows): deriving from it and cleaning
        // it up under a subscriber gives root spans, never a panic.
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host).node_id(1).build().unwrap();
        let conn = routine(&root, 1);
        with_dispatch(&dispatch, || {
            let registry = dispatch
                .downcast_ref::<tracing_subscriber::Registry>()
                .unwrap();
            for ctx in [
                root.cleanup(Duration::from_secs(1)),
                routine(&root, 2),
                conn.cleanup(Duration::from_secs(1)),
            ] {
                let id = ctx.tracing_span().id().unwrap();
                assert!(registry.span(&id).unwrap().parent().is_none());
            }
        });
        // A tree made under one subscriber and derived under another stays
        // in the first, as children of their parents.
        let other = tracing::Dispatch::new(tracing_subscriber::Registry::default());
        let (txn, txn_span) = with_dispatch(&dispatch, || {
            let txn = conn.child(Level::Txn).txn_id(1).build().unwrap();
            let id = txn.tracing_span().id().unwrap();
            (txn, id)
        });
        with_dispatch(&other, || {
            let cleanup = txn.cleanup(Duration::from_secs(1));
            let req = conn.child(Level::Request).build().unwrap();
            let first = dispatch
                .downcast_ref::<tracing_subscriber::Registry>()
                .unwrap();
            let id = cleanup.tracing_span().id().unwrap();
            assert_eq!(first.span(&id).unwrap().parent().unwrap().id(), txn_span);
            assert!(req.tracing_span().id().is_some());
        });
    }

    // ---- values -----------------------------------------------------------

    #[derive(Debug, PartialEq)]
    struct Budget(u64);
    #[derive(Debug, PartialEq)]
    struct Label(&'static str);
    #[derive(Debug, PartialEq)]
    struct Shadowed(u8);

    #[test]
    fn values_survive_a_combined_derivation() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host).node_id(7).build().unwrap();
        let conn = root
            .child(Level::Routine)
            .identity(Identity::new("acme", "alice", "analyst"))
            .connection_id(42)
            .session_id(43)
            .value(Budget(1 << 20))
            .value(Shadowed(1))
            .build()
            .unwrap();
        let txn = conn.child(Level::Txn).txn_id(44).build().unwrap();
        let req = conn
            .child(Level::Request)
            .value(Shadowed(2))
            .build()
            .unwrap();
        let q = req
            .child(Level::Query)
            .statement_id(45)
            .link(&txn)
            .value(Label("q45"))
            .build()
            .unwrap();
        let mut p = q.child(Level::Pipeline).build().unwrap();
        for _ in 0..10 {
            p = p.child(Level::Pipeline).build().unwrap();
        }
        let v = p.values();
        assert_eq!(v.node_id(), Some(7));
        assert_eq!(
            (v.tenant(), v.user(), v.role()),
            (Some("acme"), Some("alice"), Some("analyst"))
        );
        assert_eq!(v.connection_id(), Some(42));
        assert_eq!(v.session_id(), Some(43));
        assert_eq!(v.statement_id(), Some(45));
        assert_eq!(v.get::<Budget>(), Some(&Budget(1 << 20)));
        assert_eq!(v.get::<Label>(), Some(&Label("q45")));
        assert_eq!(v.get::<Shadowed>(), Some(&Shadowed(2)));
        // A Query carries the txn id of the Txn it is linked to, and so do
        // its pipelines, at any depth.
        assert_eq!(q.values().txn_id(), Some(44));
        assert_eq!(v.txn_id(), Some(44));
        // Immutable once built: children's values do not leak upwards.
        assert_eq!(conn.values().get::<Shadowed>(), Some(&Shadowed(1)));
        assert_eq!(conn.values().get::<Label>(), None);
        assert_eq!(req.values().statement_id(), None);
        assert_eq!(txn.values().txn_id(), Some(44));
        assert_eq!(root.values().connection_id(), None);
        assert_eq!(root.values().get::<Budget>(), None);
    }

    #[test]
    fn values_set_above_cannot_be_overridden_below() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host).node_id(7).build().unwrap();
        let conn = routine(&root, 42);
        let txn = conn.child(Level::Txn).txn_id(44).build().unwrap();
        let req = conn.child(Level::Request).build().unwrap();
        let q = req
            .child(Level::Query)
            .statement_id(45)
            .link(&txn)
            .build()
            .unwrap();
        let before = root.subtree_len();
        let over = |b: ContextBuilder<'_>, level: Level, key: ValueKey| {
            let err = b.build().unwrap_err();
            assert_eq!(err, ContextError::ValueOverride { level, key });
            assert!(err.to_string().contains(&key.to_string()), "{err}");
        };
        // Another tenant, connection, session, node below the Routine.
        over(
            conn.child(Level::Request)
                .identity(Identity::new("globex", "mallory", "admin")),
            Level::Request,
            ValueKey::Identity,
        );
        over(
            conn.child(Level::Request).connection_id(43),
            Level::Request,
            ValueKey::ConnectionId,
        );
        over(
            conn.child(Level::Txn).txn_id(1).session_id(1),
            Level::Txn,
            ValueKey::SessionId,
        );
        over(
            q.child(Level::Pipeline).node_id(8),
            Level::Pipeline,
            ValueKey::NodeId,
        );
        // Another statement or transaction below the Query.
        over(
            q.child(Level::Pipeline).statement_id(46),
            Level::Pipeline,
            ValueKey::StatementId,
        );
        over(
            q.child(Level::Pipeline).txn_id(3),
            Level::Pipeline,
            ValueKey::TxnId,
        );
        // A Query cannot claim another txn than the one it is linked to.
        over(
            req.child(Level::Query)
                .statement_id(46)
                .txn_id(3)
                .link(&txn),
            Level::Query,
            ValueKey::TxnId,
        );
        assert_eq!(
            root.subtree_len(),
            before,
            "a refused build attaches nothing"
        );
        // The same value again is not an override.
        let p = q
            .child(Level::Pipeline)
            .statement_id(45)
            .txn_id(44)
            .connection_id(42)
            .session_id(142)
            .identity(Identity::new("acme", "alice", "member"))
            .build()
            .unwrap();
        assert_eq!(p.values().tenant(), Some("acme"));
    }

    #[test]
    fn missing_mandatory_values_are_typed_errors_naming_the_key() {
        let host = Arc::new(ManualHost::new());
        let err = Context::root(host.clone()).build().unwrap_err();
        assert_eq!(
            err,
            ContextError::MissingValue {
                level: Level::Root,
                key: ValueKey::NodeId
            }
        );
        assert!(err.to_string().contains("node_id"), "{err}");
        let root = Context::root(host).node_id(1).build().unwrap();
        let id = || Identity::new("t", "u", "r");
        let cases: [(ContextBuilder<'_>, ValueKey); 3] = [
            (
                root.child(Level::Routine).connection_id(1).session_id(1),
                ValueKey::Identity,
            ),
            (
                root.child(Level::Routine).identity(id()).session_id(1),
                ValueKey::ConnectionId,
            ),
            (
                root.child(Level::Routine).identity(id()).connection_id(1),
                ValueKey::SessionId,
            ),
        ];
        for (builder, key) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(
                err,
                ContextError::MissingValue {
                    level: Level::Routine,
                    key
                }
            );
            assert!(err.to_string().contains(&key.to_string()), "{err}");
        }
        let conn = routine(&root, 1);
        assert_eq!(
            conn.child(Level::Txn).build().unwrap_err(),
            ContextError::MissingValue {
                level: Level::Txn,
                key: ValueKey::TxnId
            }
        );
        let req = conn.child(Level::Request).build().unwrap();
        let err = req.child(Level::Query).build().unwrap_err();
        assert_eq!(
            err,
            ContextError::MissingValue {
                level: Level::Query,
                key: ValueKey::StatementId
            }
        );
        assert!(err.to_string().contains("statement_id"));
        // A value inherited from the parent does not count as given.
        let q = req.child(Level::Query).statement_id(1).build().unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        assert_eq!(p.values().statement_id(), Some(1));
        // A failed build attaches nothing.
        assert_eq!(root.subtree_len(), 5);
    }

    #[test]
    fn out_of_order_derivation_is_a_typed_error() {
        let t = tree();
        let cases = [
            (&t.root, Level::Query),
            (&t.root, Level::Root),
            (&t.conn, Level::Query),
            (&t.conn, Level::Routine),
            (&t.req, Level::Txn),
            (&t.txn, Level::Query),
            (&t.query, Level::Query),
            (&t.pipe, Level::Query),
            (&t.pipe, Level::Operator),
        ];
        let before = t.root.subtree_len();
        for (parent, child) in cases {
            let err = parent
                .child(child)
                .statement_id(1)
                .txn_id(1)
                .node_id(1)
                .identity(Identity::new("t", "u", "r"))
                .connection_id(1)
                .session_id(1)
                .build()
                .unwrap_err();
            assert_eq!(
                err,
                ContextError::OutOfOrder {
                    parent: parent.level(),
                    child
                }
            );
        }
        assert_eq!(t.root.subtree_len(), before);
        assert!(t.pipe.child(Level::Pipeline).build().is_ok());
        let typed = Ctx::<crate::level::levels::Txn>::from_dyn(t.query.clone()).unwrap_err();
        assert_eq!(
            typed,
            ContextError::OutOfOrder {
                parent: Level::Query,
                child: Level::Txn
            }
        );
        assert!(Ctx::<crate::level::levels::Query>::from_dyn(t.query.clone()).is_ok());
    }

    #[test]
    fn bad_links_are_typed_errors() {
        let t = tree();
        let err = t
            .req
            .child(Level::Query)
            .statement_id(2)
            .link(&t.conn)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ContextError::BadLink {
                child: Level::Query,
                target: Level::Routine
            }
        );
        let err = t
            .pipe
            .child(Level::Pipeline)
            .link(&t.nested)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ContextError::BadLink {
                child: Level::Pipeline,
                target: Level::Pipeline
            }
        );
        // Any shallower target is fine below Query.
        let p = t
            .pipe
            .child(Level::Pipeline)
            .link(&t.other_query)
            .build()
            .unwrap();
        t.other_query.cancel(Reason::Requested);
        assert!(p.is_cancelled() && !t.pipe.is_cancelled());
    }

    // ---- concurrency smoke --------------------------------------------------

    #[test]
    fn concurrent_derive_cancel_and_drop_leave_a_consistent_tree() {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host).node_id(1).build().unwrap();
        for round in 0..20u64 {
            let conn = routine(&root, round);
            let txn = conn.child(Level::Txn).txn_id(round).build().unwrap();
            let handles: Vec<_> = (0..2u64)
                .map(|th| {
                    let conn = conn.clone();
                    let txn = txn.clone();
                    std::thread::spawn(move || {
                        let mut kept = Vec::new();
                        for i in 0..200u64 {
                            let req = conn.child(Level::Request).build().unwrap();
                            let q = req
                                .child(Level::Query)
                                .statement_id(i)
                                .link(&txn)
                                .build()
                                .unwrap();
                            let p = q.child(Level::Pipeline).build().unwrap();
                            if (i + th) % 3 == 0 {
                                kept.push(p);
                            }
                            if i == 100 + round * 3 {
                                if th == 0 {
                                    conn.cancel(Reason::ClientDisconnected);
                                } else {
                                    txn.cancel(Reason::TxnRolledBack { txn_id: round });
                                }
                            }
                        }
                        kept
                    })
                })
                .collect();
            let kept: Vec<Context> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            assert!(conn.is_cancelled() && txn.is_cancelled());
            assert!(kept.iter().all(Context::is_cancelled));
            let kinds: Vec<_> = kept.iter().map(|k| k.cause().unwrap().level).collect();
            assert!(kinds
                .iter()
                .all(|l| matches!(l, Level::Routine | Level::Txn)));
            drop((kept, txn, conn));
            assert_eq!(root.subtree_len(), 1);
        }
    }
}
