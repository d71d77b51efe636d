//! The in-memory trace recorder, timed by the host clock.
//!
//! Every context opens a span here when it is built with a recorder (and one
//! through the `tracing` crate, so an embedder's subscriber sees it too);
//! pipeline operators open spans of level [`Level::Operator`]. A span is
//! closed with a [`SpanStatus`] that carries the cancel cause when the context
//! was cancelled.
//!
//! A [`Trace`] is the subtree of one span plus its ancestors (a statement's
//! spans with its Request, Txn and Routine). It exports as a JSON tree
//! ([`Trace::tree`]), as Chrome Trace Event JSON that Perfetto opens
//! ([`Trace::to_chrome_json`]), and as an EXPLAIN ANALYZE-style text tree
//! ([`Trace::to_text`]).
//!
//! Every span also has W3C ids ([`crate::trace_context`]): the trace id of
//! its parent (a new one for a span without a parent, or the caller's for a
//! span with a remote parent, joined from a `traceparent` or a sqlcommenter
//! comment) and a span id of its own. The exports carry them as `traceId`,
//! `spanId` and `remoteParentId` (hex).
//!
//! Invariants: the recorder holds at most `capacity` spans; when it is over,
//! the oldest *closed* spans go first (open ones are never evicted). A parent
//! id that is unknown or evicted is treated as no parent: the span becomes a
//! root of its trace. Nothing here panics on a missing span.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::cause::{CancelKind, Cause};
use crate::host::{Host, Instant};
use crate::level::Level;
use crate::sync::{lock, AtomicU64, Mutex, Ordering};
use crate::trace_context::{SpanContext, TraceId, TraceSpanId};

/// A span id, unique within a recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SpanId(pub u64);

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Str(String),
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for AttrValue {
    fn from(v: usize) -> Self {
        AttrValue::from(v as u64)
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}
impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::Str(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::Str(v)
    }
}

/// How a span ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SpanStatus {
    /// Still running.
    Open,
    /// Finished normally.
    Ok,
    /// Finished with an error.
    Error {
        /// The error in words.
        message: String,
    },
    /// Cancelled (kill, disconnect, rollback, …).
    Canceled {
        /// Why, in words.
        message: String,
        /// The cause.
        cause: Arc<Cause>,
    },
    /// Its deadline passed.
    DeadlineExceeded {
        /// Why, in words.
        message: String,
        /// The cause.
        cause: Arc<Cause>,
    },
}

impl SpanStatus {
    /// The status for a cancel cause.
    pub fn from_cause(cause: &Arc<Cause>) -> Self {
        let message = cause.to_string();
        match cause.kind {
            CancelKind::Canceled => SpanStatus::Canceled {
                message,
                cause: cause.clone(),
            },
            CancelKind::DeadlineExceeded => SpanStatus::DeadlineExceeded {
                message,
                cause: cause.clone(),
            },
        }
    }
    /// A short name: `open`, `ok`, `error`, `canceled`, `deadline_exceeded`.
    pub fn code(&self) -> &'static str {
        match self {
            SpanStatus::Open => "open",
            SpanStatus::Ok => "ok",
            SpanStatus::Error { .. } => "error",
            SpanStatus::Canceled { .. } => "canceled",
            SpanStatus::DeadlineExceeded { .. } => "deadline_exceeded",
        }
    }
}

/// Records a closing span's status on its `tracing` span: `status` (the
/// [`SpanStatus::code`]), `cause` (the cause or error in words), and
/// `otel.status_code` / `otel.status_message` for OpenTelemetry. The span
/// must have been made with these fields (every cascade span is).
pub fn record_status(span: &tracing::Span, status: &SpanStatus) {
    span.record("status", status.code());
    match status {
        SpanStatus::Open => {}
        SpanStatus::Ok => {
            span.record("otel.status_code", "OK");
        }
        SpanStatus::Error { message }
        | SpanStatus::Canceled { message, .. }
        | SpanStatus::DeadlineExceeded { message, .. } => {
            span.record("cause", message.as_str());
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", message.as_str());
        }
    }
}

/// One recorded span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanRecord {
    /// Its id.
    pub id: SpanId,
    /// Its parent, if any.
    pub parent: Option<SpanId>,
    /// Spans it is linked to (a cleanup span links to what it cleans up).
    pub links: Vec<SpanId>,
    /// Name (`"query"`, `"HashAggregate"`, …).
    pub name: String,
    /// Level.
    pub level: Level,
    /// Start on the host clock.
    pub start: Instant,
    /// End on the host clock; `None` while open.
    pub end: Option<Instant>,
    /// Status.
    pub status: SpanStatus,
    /// Attributes, sorted by key.
    pub attrs: BTreeMap<String, AttrValue>,
    /// The W3C trace id (shared with the parent, or the remote parent's).
    pub trace_id: TraceId,
    /// The W3C span id.
    pub trace_span_id: TraceSpanId,
    /// The parent span in another process (a `traceparent` or sqlcommenter
    /// comment): then `trace_id` is that caller's trace.
    pub remote_parent: Option<TraceSpanId>,
}

/// The spans by id. A B-tree, not a hash map: ids only grow, so opening a
/// span appends at the right edge, and no insert or removal ever moves the
/// whole table (a `HashMap` of the default 200,000 spans stalled every
/// statement recording spans — under the lock — for tens of milliseconds
/// when it grew, or rehashed in place to clear the tombstones of evicted
/// spans: up to 0.1 s in a model of 200,000 records of 200 B under churn,
/// against no stall beyond the machine's noise for the B-tree).
#[derive(Debug)]
struct Inner {
    spans: BTreeMap<u64, SpanRecord>,
    closed: VecDeque<u64>,
}

/// The in-memory span recorder. Share it as `Arc<Recorder>`.
pub struct Recorder {
    host: Arc<dyn Host>,
    next: AtomicU64,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("capacity", &self.capacity)
            .field("spans", &self.len())
            .finish()
    }
}

impl Recorder {
    /// A recorder keeping at most `capacity` spans.
    pub fn new(host: Arc<dyn Host>, capacity: usize) -> Arc<Self> {
        Arc::new(Recorder {
            host,
            next: AtomicU64::new(1),
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                spans: BTreeMap::new(),
                closed: VecDeque::new(),
            }),
        })
    }

    /// The host clock's now.
    pub fn now(&self) -> Instant {
        self.host.now()
    }

    /// Number of spans held.
    pub fn len(&self) -> usize {
        lock(&self.inner).spans.len()
    }

    /// Whether no span is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Opens a span now. An unknown `parent` is recorded as no parent.
    pub fn open(
        &self,
        parent: Option<SpanId>,
        name: &str,
        level: Level,
        attrs: impl IntoIterator<Item = (String, AttrValue)>,
    ) -> SpanId {
        let start = self.host.now();
        self.open_at(parent, name, level, start, attrs)
    }

    /// Opens a span with an explicit start time. Its W3C trace id is its
    /// parent's (a new trace without a parent); its span id is new.
    pub fn open_at(
        &self,
        parent: Option<SpanId>,
        name: &str,
        level: Level,
        start: Instant,
        attrs: impl IntoIterator<Item = (String, AttrValue)>,
    ) -> SpanId {
        self.open_inner(parent, None, name, level, start, attrs)
    }

    /// Opens a span now with the W3C ids of `ids` (a context's, which
    /// chose them: inherited, new, or joined from a remote parent), and
    /// `remote_parent`, its parent span in another process, if any.
    pub fn open_traced(
        &self,
        parent: Option<SpanId>,
        ids: &SpanContext,
        remote_parent: Option<TraceSpanId>,
        name: &str,
        level: Level,
        attrs: impl IntoIterator<Item = (String, AttrValue)>,
    ) -> SpanId {
        let start = self.host.now();
        self.open_inner(
            parent,
            Some((ids.trace_id, ids.span_id, remote_parent)),
            name,
            level,
            start,
            attrs,
        )
    }

    fn open_inner(
        &self,
        parent: Option<SpanId>,
        ids: Option<(TraceId, TraceSpanId, Option<TraceSpanId>)>,
        name: &str,
        level: Level,
        start: Instant,
        attrs: impl IntoIterator<Item = (String, AttrValue)>,
    ) -> SpanId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let attrs = attrs.into_iter().collect();
        let mut inner = lock(&self.inner);
        let parent_rec = parent.and_then(|p| inner.spans.get(&p.0));
        let parent = parent_rec.map(|p| p.id);
        let (trace_id, trace_span_id, remote_parent) = match ids {
            Some(ids) => ids,
            None => (
                parent_rec.map_or_else(|| TraceId::random(&*self.host), |p| p.trace_id),
                TraceSpanId::random(&*self.host),
                None,
            ),
        };
        inner.spans.insert(
            id,
            SpanRecord {
                id: SpanId(id),
                parent,
                links: Vec::new(),
                name: name.to_owned(),
                level,
                start,
                end: None,
                status: SpanStatus::Open,
                attrs,
                trace_id,
                trace_span_id,
                remote_parent,
            },
        );
        SpanId(id)
    }

    /// The W3C trace id and span id of span `id`, if it is held.
    pub fn trace_ids(&self, id: SpanId) -> Option<(TraceId, TraceSpanId)> {
        lock(&self.inner)
            .spans
            .get(&id.0)
            .map(|s| (s.trace_id, s.trace_span_id))
    }

    /// Sets an attribute of a span (ignored if the span is gone).
    pub fn set_attr(&self, id: SpanId, key: &str, value: impl Into<AttrValue>) {
        if let Some(s) = lock(&self.inner).spans.get_mut(&id.0) {
            s.attrs.insert(key.to_owned(), value.into());
        }
    }

    /// Links span `id` to span `to`.
    pub fn add_link(&self, id: SpanId, to: SpanId) {
        if let Some(s) = lock(&self.inner).spans.get_mut(&id.0) {
            if !s.links.contains(&to) {
                s.links.push(to);
            }
        }
    }

    /// Closes a span now with `status`. Closing twice keeps the first end.
    pub fn close(&self, id: SpanId, status: SpanStatus) {
        let end = self.host.now();
        self.close_at(id, end, status);
    }

    /// Closes a span at `end`.
    pub fn close_at(&self, id: SpanId, end: Instant, status: SpanStatus) {
        self.close_with(id, [], end, status);
    }

    /// Sets `attrs` on span `id` and closes it at `end`, under one lock (an
    /// operator's span closes with its metrics as a statement ends: one
    /// lock per span rather than one per attribute keeps a killed
    /// statement's teardown short).
    pub fn close_with<const N: usize>(
        &self,
        id: SpanId,
        attrs: [(&str, AttrValue); N],
        end: Instant,
        status: SpanStatus,
    ) {
        // The keys are made before the lock: pipelines on other threads
        // close their spans at the same moment (a killed statement's).
        let attrs = attrs.map(|(k, v)| (k.to_owned(), v));
        let mut inner = lock(&self.inner);
        let Some(s) = inner.spans.get_mut(&id.0) else {
            return;
        };
        for (k, v) in attrs {
            s.attrs.insert(k, v);
        }
        if s.end.is_some() {
            return;
        }
        s.end = Some(end.max(s.start));
        s.status = status;
        inner.closed.push_back(id.0);
        // Evicted spans are freed after the lock is let go.
        let mut evicted = Vec::new();
        while inner.spans.len() > self.capacity {
            match inner.closed.pop_front() {
                Some(old) => evicted.extend(inner.spans.remove(&old)),
                None => break,
            }
        }
        drop(inner);
        drop(evicted);
    }

    /// Whether span `id` is still held.
    pub fn contains(&self, id: SpanId) -> bool {
        lock(&self.inner).spans.contains_key(&id.0)
    }

    /// Removes the closed spans that ended before `cutoff` (a retention
    /// window, on top of the capacity); open spans stay. Returns how many
    /// were removed.
    pub fn trim_closed_before(&self, cutoff: Instant) -> usize {
        let mut inner = lock(&self.inner);
        let Inner { spans, closed } = &mut *inner;
        let before = spans.len();
        closed.retain(|id| match spans.get(id) {
            Some(s) if s.end.is_some_and(|end| end < cutoff) => {
                spans.remove(id);
                false
            }
            Some(_) => true,
            None => false,
        });
        before - spans.len()
    }

    /// A copy of one span.
    pub fn get(&self, id: SpanId) -> Option<SpanRecord> {
        lock(&self.inner).spans.get(&id.0).cloned()
    }

    /// The spans under `id` (itself included) plus all its ancestors.
    /// `None` if `id` is unknown.
    pub fn trace(&self, id: SpanId) -> Option<Trace> {
        let now = self.host.now();
        let inner = lock(&self.inner);
        inner.spans.get(&id.0)?;
        let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
        for s in inner.spans.values() {
            if let Some(p) = s.parent {
                children.entry(p.0).or_default().push(s.id.0);
            }
        }
        let mut picked = Vec::new();
        let mut stack = vec![id.0];
        while let Some(x) = stack.pop() {
            picked.push(x);
            if let Some(c) = children.get(&x) {
                stack.extend(c);
            }
        }
        let mut up = inner.spans[&id.0].parent;
        while let Some(p) = up {
            match inner.spans.get(&p.0) {
                Some(s) => {
                    picked.push(p.0);
                    up = s.parent;
                }
                None => break,
            }
        }
        let mut spans: Vec<SpanRecord> = picked
            .into_iter()
            .filter_map(|x| inner.spans.get(&x).cloned())
            .collect();
        spans.sort_by_key(|s| (s.start, s.id));
        let trace_id = spans.first().map_or(id, |s| s.id);
        Some(Trace {
            trace_id,
            focus: id,
            now,
            spans,
        })
    }
}

impl Recorder {
    /// [`Recorder::trace`] of `id`, plus the spans it links to and their
    /// subtrees (a statement's Txn span with its Commit and Rollback spans).
    pub fn trace_with_links(&self, id: SpanId) -> Option<Trace> {
        let mut t = self.trace(id)?;
        let links = t
            .spans
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.links.clone())
            .unwrap_or_default();
        for l in links {
            if let Some(x) = self.trace(l) {
                for s in x.spans {
                    if !t.spans.iter().any(|y| y.id == s.id) {
                        t.spans.push(s);
                    }
                }
            }
        }
        t.spans.sort_by_key(|s| (s.start, s.id));
        t.trace_id = t.spans.first().map_or(id, |s| s.id);
        Some(t)
    }
}

/// A span as exported: times in microseconds on the host clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanView {
    /// Span id.
    pub id: u64,
    /// Parent span id.
    pub parent_id: Option<u64>,
    /// Linked span ids.
    pub links: Vec<u64>,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Start, µs since the host epoch.
    pub start_us: f64,
    /// Duration in µs (up to now for open spans).
    pub dur_us: f64,
    /// Status.
    pub status: SpanStatus,
    /// Attributes.
    pub attrs: BTreeMap<String, AttrValue>,
    /// The W3C trace id (32 hex digits).
    pub trace_id: TraceId,
    /// The W3C span id (16 hex digits; `id` is the recorder's own).
    pub span_id: TraceSpanId,
    /// The parent span in another process, if any (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_parent_id: Option<TraceSpanId>,
}

/// A span with its children, for the JSON tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanTree {
    /// The span.
    #[serde(flatten)]
    pub span: SpanView,
    /// Its children, by start time.
    pub children: Vec<SpanTree>,
}

/// The spans of one statement (or any span) and its ancestors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// Id of the outermost span.
    pub trace_id: SpanId,
    /// The span this trace was asked for.
    pub focus: SpanId,
    /// When the trace was taken (open spans end here).
    pub now: Instant,
    /// The spans, by start time.
    pub spans: Vec<SpanRecord>,
}

impl Trace {
    /// The W3C trace id of the focus span (a statement's: the one a
    /// sqlcommenter `traceparent` set, when it had one).
    pub fn focus_trace_id(&self) -> Option<TraceId> {
        self.spans
            .iter()
            .find(|s| s.id == self.focus)
            .map(|s| s.trace_id)
    }
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

impl Trace {
    /// Flat views with µs times.
    pub fn views(&self) -> Vec<SpanView> {
        self.spans
            .iter()
            .map(|s| {
                let end = s.end.unwrap_or(self.now).max(s.start);
                SpanView {
                    id: s.id.0,
                    parent_id: s.parent.map(|p| p.0),
                    links: s.links.iter().map(|l| l.0).collect(),
                    name: s.name.clone(),
                    level: s.level,
                    start_us: micros(s.start.0),
                    dur_us: micros(end.0 - s.start.0),
                    status: s.status.clone(),
                    attrs: s.attrs.clone(),
                    trace_id: s.trace_id,
                    span_id: s.trace_span_id,
                    remote_parent_id: s.remote_parent,
                }
            })
            .collect()
    }

    /// The spans as a tree (roots: spans whose parent is not in the trace).
    pub fn tree(&self) -> Vec<SpanTree> {
        let views = self.views();
        let ids: std::collections::HashSet<u64> = views.iter().map(|v| v.id).collect();
        let mut by_parent: HashMap<Option<u64>, Vec<SpanView>> = HashMap::new();
        for v in views {
            let p = v.parent_id.filter(|p| ids.contains(p));
            by_parent.entry(p).or_default().push(v);
        }
        fn build(p: Option<u64>, by: &mut HashMap<Option<u64>, Vec<SpanView>>) -> Vec<SpanTree> {
            let kids = by.remove(&p).unwrap_or_default();
            kids.into_iter()
                .map(|v| {
                    let id = v.id;
                    SpanTree {
                        span: v,
                        children: build(Some(id), by),
                    }
                })
                .collect()
        }
        build(None, &mut by_parent)
    }

    /// The tree as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.tree()).unwrap_or_else(|_| "[]".into())
    }

    /// Chrome Trace Event JSON (`X` events, µs, properly nested: a child is
    /// clamped into its parent's interval, and overlapping siblings go to
    /// separate threads). Opens in Perfetto and `chrome://tracing`.
    pub fn to_chrome_json(&self) -> String {
        #[derive(Serialize)]
        struct Event<'a> {
            name: &'a str,
            cat: &'static str,
            ph: &'static str,
            ts: f64,
            dur: f64,
            pid: u32,
            tid: u32,
            args: serde_json::Value,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct File<'a> {
            trace_events: Vec<Event<'a>>,
            display_time_unit: &'static str,
        }
        let roots = self.tree();
        let mut events = Vec::new();
        let mut next_tid = 1u32;
        // (node, clamp start, clamp end, tid)
        let mut stack: Vec<(&SpanTree, f64, f64, u32)> = Vec::new();
        for r in roots.iter().rev() {
            let tid = next_tid;
            next_tid += 1;
            stack.push((r, r.span.start_us, r.span.start_us + r.span.dur_us, tid));
        }
        while let Some((node, lo, hi, tid)) = stack.pop() {
            let s = &node.span;
            let start = s.start_us.clamp(lo, hi);
            let end = (s.start_us + s.dur_us).clamp(start, hi);
            let mut args = serde_json::json!({
                "id": s.id,
                "level": s.level,
                "status": s.status.code(),
                "trace_id": s.trace_id.to_string(),
                "span_id": s.span_id.to_string(),
            });
            if let SpanStatus::Canceled { message, .. }
            | SpanStatus::DeadlineExceeded { message, .. }
            | SpanStatus::Error { message } = &s.status
            {
                args["cause"] = message.clone().into();
            }
            for (k, v) in &s.attrs {
                args[k] = serde_json::to_value(v).unwrap_or_default();
            }
            events.push(Event {
                name: &s.name,
                cat: s.level.as_str(),
                ph: "X",
                ts: start,
                dur: end - start,
                pid: 1,
                tid,
                args,
            });
            // Lanes: children that overlap an earlier sibling get a new tid.
            let mut lane_end: Vec<(u32, f64)> = vec![(tid, f64::MIN)];
            let mut placed = Vec::new();
            for c in &node.children {
                let cs = c.span.start_us.clamp(start, end);
                let ce = (c.span.start_us + c.span.dur_us).clamp(cs, end);
                let lane = match lane_end.iter_mut().find(|(_, e)| *e <= cs) {
                    Some(l) => {
                        l.1 = ce;
                        l.0
                    }
                    None => {
                        let t = next_tid;
                        next_tid += 1;
                        lane_end.push((t, ce));
                        t
                    }
                };
                placed.push((c, start, end, lane));
            }
            stack.extend(placed.into_iter().rev());
        }
        serde_json::to_string(&File {
            trace_events: events,
            display_time_unit: "ms",
        })
        .unwrap_or_else(|_| "{\"traceEvents\":[]}".into())
    }

    /// An indented text tree: name, level, duration in human units, status,
    /// attributes.
    pub fn to_text(&self) -> String {
        fn walk(out: &mut String, t: &SpanTree, depth: usize) {
            let s = &t.span;
            let _ = write!(
                out,
                "{:indent$}{} [{}] {}",
                "",
                s.name,
                s.level,
                crate::format::duration_us(s.dur_us),
                indent = depth * 2
            );
            if s.status.code() != "ok" {
                let _ = write!(out, " {}", s.status.code());
            }
            for (k, v) in &s.attrs {
                let _ = match v {
                    AttrValue::Str(x) => write!(out, " {k}={}", x.replace(['\n', '\r'], " ")),
                    AttrValue::Int(x) => write!(out, " {k}={x}"),
                    AttrValue::Float(x) => write!(out, " {k}={x:.3}"),
                    AttrValue::Bool(x) => write!(out, " {k}={x}"),
                };
            }
            out.push('\n');
            for c in &t.children {
                walk(out, c, depth + 1);
            }
        }
        let mut out = String::new();
        for r in self.tree() {
            walk(&mut out, &r, 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ManualHost;
    use std::time::Duration;

    #[test]
    fn a_cause_status_says_its_own_cause_also_after_another_was_put_into_words() {
        use crate::cause::Reason;
        let kill = |by: u64| {
            Arc::new(Cause::canceled(
                Reason::KillQuery {
                    by_connection: by,
                    by_user: "alice".into(),
                },
                Level::Query,
                by,
            ))
        };
        let message = |c: &Arc<Cause>| match SpanStatus::from_cause(c) {
            SpanStatus::Canceled { message, .. } => message,
            other => panic!("{other:?}"),
        };
        let (a, b) = (kill(1), kill(2));
        for _ in 0..2 {
            assert_eq!(message(&a), a.to_string());
            assert_eq!(message(&a), a.to_string());
            assert_eq!(message(&b), b.to_string());
        }
        assert_ne!(message(&a), message(&b));
        // A cause gone and a new one made: the new one's words.
        drop(a);
        let c = kill(3);
        assert_eq!(message(&c), c.to_string());
        let deadline = Arc::new(Cause::deadline(
            Reason::StatementTimeout { limit_ms: 5 },
            Level::Query,
            4,
        ));
        assert!(matches!(
            SpanStatus::from_cause(&deadline),
            SpanStatus::DeadlineExceeded { message, .. } if message == deadline.to_string()
        ));
    }

    fn rec() -> (Arc<ManualHost>, Arc<Recorder>) {
        let host = Arc::new(ManualHost::new());
        let r = Recorder::new(host.clone(), 100);
        (host, r)
    }

    #[test]
    fn unknown_parent_becomes_root() {
        let (_, r) = rec();
        let s = r.open(Some(SpanId(999)), "x", Level::Query, []);
        assert_eq!(r.get(s).unwrap().parent, None);
    }

    #[test]
    fn trace_holds_subtree_and_ancestors_only() {
        let (host, r) = rec();
        let routine = r.open(None, "routine", Level::Routine, []);
        let req = r.open(Some(routine), "request", Level::Request, []);
        let q1 = r.open(Some(req), "q1", Level::Query, []);
        let p = r.open(Some(q1), "p", Level::Pipeline, []);
        let q2 = r.open(Some(req), "q2", Level::Query, []);
        host.advance(Duration::from_micros(10));
        r.close(p, SpanStatus::Ok);
        let t = r.trace(q1).unwrap();
        let ids: Vec<_> = t.spans.iter().map(|s| s.id).collect();
        assert!(
            ids.contains(&routine) && ids.contains(&req) && ids.contains(&q1) && ids.contains(&p)
        );
        assert!(!ids.contains(&q2));
        assert_eq!(t.trace_id, routine);
        let tree = t.tree();
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].children[0].children[0].span.name, "q1");
    }

    #[test]
    fn children_inherit_the_trace_id_and_get_their_own_span_id() {
        let (_, r) = rec();
        let a = r.open(None, "a", Level::Query, []);
        let b = r.open(Some(a), "b", Level::Pipeline, []);
        let c = r.open(Some(b), "c", Level::Operator, []);
        let other = r.open(None, "other", Level::Query, []);
        let (ta, sa) = r.trace_ids(a).unwrap();
        let (tb, sb) = r.trace_ids(b).unwrap();
        let (tc, sc) = r.trace_ids(c).unwrap();
        assert!(ta == tb && tb == tc);
        assert!(sa != sb && sb != sc && sa != sc);
        assert_ne!(r.trace_ids(other).unwrap().0, ta, "a root starts a trace");
        // Given ids (a context's, joined to a remote parent) are kept, and
        // the span's children follow them.
        let host = ManualHost::new();
        let remote = crate::trace_context::TraceParent::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let ids = crate::trace_context::SpanContext::child_of_remote(&remote, &host);
        let q = r.open_traced(Some(a), &ids, Some(remote.parent_id), "q", Level::Query, []);
        let p = r.open(Some(q), "p", Level::Pipeline, []);
        let got = r.get(q).unwrap();
        assert_eq!(
            (got.trace_id, got.trace_span_id),
            (ids.trace_id, ids.span_id)
        );
        assert_eq!(got.remote_parent, Some(remote.parent_id));
        assert_eq!(got.parent, Some(a), "the local parent stays");
        assert_eq!(r.trace_ids(p).unwrap().0, remote.trace_id);
        let view = &r.trace(p).unwrap().views()[0];
        let json = serde_json::to_value(view).unwrap();
        assert_eq!(json["traceId"], ta.to_string());
        assert_eq!(json["spanId"], sa.to_string());
    }

    #[test]
    fn capacity_evicts_closed_spans_first() {
        let host = Arc::new(ManualHost::new());
        let r = Recorder::new(host, 3);
        let open = r.open(None, "open", Level::Routine, []);
        for i in 0..10 {
            let s = r.open(Some(open), &format!("s{i}"), Level::Query, []);
            r.close(s, SpanStatus::Ok);
        }
        assert!(r.len() <= 3);
        assert!(r.get(open).is_some());
    }

    #[test]
    fn trim_removes_only_closed_spans_older_than_the_cutoff() {
        let (host, r) = rec();
        let open = r.open(None, "open", Level::Routine, []);
        let old = r.open(Some(open), "old", Level::Query, []);
        r.close(old, SpanStatus::Ok);
        host.advance(Duration::from_secs(10));
        let recent = r.open(Some(open), "recent", Level::Query, []);
        r.close(recent, SpanStatus::Ok);
        assert_eq!(r.trim_closed_before(Instant(5_000_000_000)), 1);
        assert!(!r.contains(old) && r.contains(recent) && r.contains(open));
        assert_eq!(r.trim_closed_before(Instant(5_000_000_000)), 0);
        // The capacity still evicts from what is left.
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn chrome_trace_is_properly_nested() {
        let (host, r) = rec();
        let a = r.open(None, "a", Level::Query, []);
        host.advance(Duration::from_micros(5));
        let b = r.open(Some(a), "b", Level::Pipeline, []);
        let c = r.open(Some(a), "c", Level::Pipeline, []);
        host.advance(Duration::from_micros(5));
        r.close(a, SpanStatus::Ok);
        host.advance(Duration::from_micros(5));
        r.close(b, SpanStatus::Ok);
        r.close(c, SpanStatus::Ok);
        let json: serde_json::Value =
            serde_json::from_str(&r.trace(a).unwrap().to_chrome_json()).unwrap();
        let ev = json["traceEvents"].as_array().unwrap();
        assert_eq!(ev.len(), 3);
        let get = |n: &str| ev.iter().find(|e| e["name"] == n).unwrap();
        let (pa, pb, pc) = (get("a"), get("b"), get("c"));
        let end = |e: &serde_json::Value| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap();
        assert!(
            end(pb) <= end(pa) && end(pc) <= end(pa),
            "children clamped into parent"
        );
        assert_ne!(
            pb["tid"], pc["tid"],
            "overlapping siblings get their own lanes"
        );
        assert_eq!(pa["ph"], "X");
    }
}
