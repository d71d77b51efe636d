//! The coordinator's operators of a distributed aggregate: [`RemoteScan`],
//! which runs the fragments on their nodes and yields their rows in
//! fragment order, and [`AvgFinish`], which turns merged sums and counts
//! into averages.
//!
//! [`RemoteScan`] is a context citizen: each fragment runs in a Pipeline
//! context of its own (a child of the scan's), which the transport exports
//! with the call, so a KILL, timeout or disconnect of the statement reaches
//! every remote fragment with its cause; the scan waits on the replies with
//! [`Step::Wait`] (the driver awaits that together with the Query's
//! cancellation); the rows it holds are reserved against the statement's
//! budget; a fragment that fails stops the others (cause "sibling fragment
//! failed" / "node N lost: …"); the scan's drop ends every fragment still
//! running. The spans a fragment sends back are grafted under its
//! fragment context's span, with the node as an attribute.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use futures::Stream;

use super::{Fragment, FragmentError, FragmentReply, FragmentSpan, FragmentStream, SharedNodes};
use crate::cause::{CancelKind, Cancelled, Cause, Reason};
use crate::context::Context;
use crate::data::{Batch, Column, DataType, Value};
use crate::decimal::Dec;
use crate::expr::ExecError;
use crate::host::Instant;
use crate::level::Level;
use crate::pipeline::aggregate::AggSpec;
use crate::pipeline::memory::MemoryUse;
use crate::pipeline::{Instrumented, OpCx, Operator, Resources, Step, BATCH_ROWS};
use crate::sync::lock_std as lock;
use crate::trace::{AttrValue, SpanStatus};

/// The cause given to the other fragments when one fails.
pub const SIBLING_FRAGMENT_FAILED: &str = "sibling fragment failed";

/// The memory of received rows, reserved as they arrive and given back as
/// they leave as batches (one function, so the two always agree).
fn rows_bytes(rows: &[Vec<Value>]) -> u64 {
    rows.iter()
        .map(|r| {
            std::mem::size_of::<Vec<Value>>()
                + r.len() * std::mem::size_of::<Value>()
                + r.iter().map(Value::heap_bytes).sum::<usize>()
        })
        .sum::<usize>() as u64
}

/// One fragment call.
struct Call {
    node: u64,
    ctx: Context,
    started: Instant,
    stream: Option<FragmentStream>,
    rows: VecDeque<Vec<Vec<Value>>>,
    received: u64,
    done: bool,
    error: Option<FragmentError>,
    spans: Option<Vec<FragmentSpan>>,
}

struct Shared {
    calls: Vec<Call>,
    resources: Arc<Resources>,
    mem: MemoryUse,
    /// A reservation that failed while receiving.
    budget_error: Option<ExecError>,
}

impl Shared {
    /// Polls every running call until it has nothing more now; whether
    /// anything arrived or ended.
    fn poll_calls(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut progress = false;
        let Shared {
            calls,
            resources,
            mem,
            budget_error,
        } = self;
        for call in calls.iter_mut() {
            while let Some(stream) = call.stream.as_mut() {
                match Pin::new(stream).poll_next(cx) {
                    Poll::Pending => break,
                    Poll::Ready(item) => {
                        progress = true;
                        match item {
                            Some(Ok(FragmentReply::Rows(rows))) => {
                                if let Err(e) = mem.grow(resources, rows_bytes(&rows)) {
                                    budget_error.get_or_insert(e);
                                    call.stream = None;
                                    break;
                                }
                                call.received += rows.len() as u64;
                                call.rows.push_back(rows);
                            }
                            Some(Ok(FragmentReply::End { spans, .. })) => {
                                call.spans = Some(spans);
                            }
                            Some(Err(e)) => {
                                call.error = Some(e);
                                call.stream = None;
                            }
                            None => {
                                call.done = true;
                                call.stream = None;
                            }
                        }
                    }
                }
            }
        }
        progress
    }
}

/// Runs the fragments of a distributed statement on their nodes and
/// yields their rows, fragment after fragment (range order).
pub struct RemoteScan {
    nodes: SharedNodes,
    fragments: Vec<(u64, Fragment)>,
    types: Vec<DataType>,
    shared: Option<Arc<Mutex<Shared>>>,
    /// The fragment whose rows are emitted now.
    at: usize,
    this_node: u64,
    /// The scan's pipeline context: the parent of the fragments'.
    ctx: Context,
}

impl RemoteScan {
    /// A scan of `fragments` (node, fragment) whose rows have `types`,
    /// running in pipeline context `ctx` (the one its [`Instrumented`]
    /// gets).
    pub fn new(
        nodes: SharedNodes,
        fragments: Vec<(u64, Fragment)>,
        types: Vec<DataType>,
        ctx: Context,
    ) -> Self {
        let this_node = nodes.this_node();
        RemoteScan {
            nodes,
            fragments,
            types,
            shared: None,
            at: 0,
            this_node,
            ctx,
        }
    }

    fn start(&mut self, ctx: &Context, resources: &Arc<Resources>) -> Result<(), ExecError> {
        let n = self.fragments.len();
        let mut calls = Vec::with_capacity(n);
        for (i, (node, fragment)) in self.fragments.iter().enumerate() {
            let fctx = ctx
                .child(Level::Pipeline)
                .name(format!("fragment {}/{n} on node {node}", i + 1))
                .attr("node", *node)
                .attr("fragment", fragment.describe())
                .build()?;
            let stream = self.nodes.run_fragment(*node, &fctx, fragment.clone());
            calls.push(Call {
                node: *node,
                started: ctx.host().now(),
                ctx: fctx,
                stream: Some(stream),
                rows: VecDeque::new(),
                received: 0,
                done: false,
                error: None,
                spans: None,
            });
        }
        self.shared = Some(Arc::new(Mutex::new(Shared {
            calls,
            resources: resources.clone(),
            mem: MemoryUse::default(),
            budget_error: None,
        })));
        Ok(())
    }

    /// A failed fragment: the others stop, and the statement gets the
    /// error: the remote's own (code, cause), or a cancellation whose cause
    /// names a lost node.
    fn fail(&self, s: &Shared, i: usize, e: FragmentError) -> ExecError {
        let cause_for_others = match &e {
            FragmentError::Lost { node, message } => format!("node {node} lost: {message}"),
            FragmentError::Failed(_) => SIBLING_FRAGMENT_FAILED.to_owned(),
        };
        for (j, c) in s.calls.iter().enumerate() {
            if j != i {
                c.ctx.cancel(Reason::Other {
                    message: cause_for_others.clone().into(),
                });
            }
        }
        match e {
            FragmentError::Lost { node, message } => {
                let call = &s.calls[i];
                call.ctx.cancel(Reason::Other {
                    message: format!("node {node} lost: {message}").into(),
                });
                match call.ctx.cause() {
                    Some(c) => ExecError::Cancelled(Cancelled(c)),
                    None => ExecError::Remote {
                        node,
                        code: 1105,
                        sqlstate: "HY000",
                        message: format!("node {node} lost: {message}"),
                    },
                }
            }
            FragmentError::Failed(q) => {
                // A cancellation that started here (our own deadline, seen
                // by the remote first) is our cancellation.
                if let Some(cause) = &q.cause {
                    let local = match &cause.reason {
                        Reason::Remote { node_id, reason } if *node_id == self.this_node => {
                            Some((**reason).clone())
                        }
                        _ => None,
                    };
                    if let Some(reason) = local {
                        let c = Arc::new(Cause {
                            kind: cause.kind,
                            reason,
                            level: cause.level,
                            context_id: cause.context_id,
                        });
                        return ExecError::Cancelled(Cancelled(c));
                    }
                    if matches!(
                        cause.kind,
                        CancelKind::DeadlineExceeded | CancelKind::Canceled
                    ) && q.code != 1041
                    {
                        return ExecError::Cancelled(Cancelled(cause.clone()));
                    }
                }
                ExecError::Remote {
                    node: s.calls[i].node,
                    code: q.code,
                    sqlstate: q.sqlstate,
                    message: q.message,
                }
            }
        }
    }

    /// Grafts a finished fragment's spans under its context's span.
    fn graft(call: &mut Call) {
        let Some(spans) = call.spans.take() else {
            return;
        };
        call.ctx.set_attr("rows_received", call.received);
        graft_spans(&call.ctx, call.node, call.started, &spans);
    }

    fn batch_of(&self, rows: Vec<Vec<Value>>) -> Batch {
        let n = rows.len();
        let columns = self
            .types
            .iter()
            .enumerate()
            .map(|(c, ty)| {
                let col: Vec<Value> = rows
                    .iter()
                    .map(|r| r.get(c).cloned().unwrap_or(Value::Null))
                    .collect();
                Arc::new(Column::from_values(*ty, &col))
            })
            .collect();
        Batch::new(columns, n)
    }
}

impl Operator for RemoteScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        // The scan's context: the parent of every fragment context.
        if self.shared.is_none() {
            let ctx = self.ctx.clone();
            self.start(&ctx, cx.resources)?;
        }
        let Some(shared) = self.shared.clone() else {
            return Ok(Step::Done);
        };
        let mut s = lock(&shared);
        if let Some(e) = s.budget_error.take() {
            return Err(e);
        }
        // Take what arrived without waiting.
        let waker = futures::task::noop_waker();
        s.poll_calls(&mut TaskContext::from_waker(&waker));
        if let Some((i, e)) = s
            .calls
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| c.error.take().map(|e| (i, e)))
        {
            return Err(self.fail(&s, i, e));
        }
        loop {
            let Some(call) = s.calls.get_mut(self.at) else {
                return Ok(Step::Done);
            };
            if let Some(mut rows) = call.rows.pop_front() {
                if rows.len() > BATCH_ROWS {
                    let rest = rows.split_off(BATCH_ROWS);
                    call.rows.push_front(rest);
                }
                s.mem.shrink(rows_bytes(&rows));
                drop(s);
                let b = self.batch_of(rows);
                cx.progress
                    .fetch_add(b.len as u64, std::sync::atomic::Ordering::Relaxed);
                return Ok(Step::Batch(b));
            }
            if call.done {
                RemoteScan::graft(call);
                call.ctx.finish(SpanStatus::Ok);
                self.at += 1;
                continue;
            }
            break;
        }
        drop(s);
        let wait = WaitReplies { shared };
        Ok(Step::Wait(Box::pin(wait)))
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .fragments
            .iter()
            .enumerate()
            .map(|(i, (node, f))| {
                let got = self
                    .shared
                    .as_ref()
                    .map(|s| lock(s).calls.get(i).map_or(0, |c| c.received));
                match got {
                    Some(n) => format!("node {node}: {} (rows={n})", f.describe()),
                    None => format!("node {node}: {}", f.describe()),
                }
            })
            .collect();
        format!(
            "RemoteScan ({} fragments: {})",
            self.fragments.len(),
            parts.join("; ")
        )
    }

    fn name(&self) -> &'static str {
        "RemoteScan"
    }

    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

impl Drop for RemoteScan {
    fn drop(&mut self) {
        // Fragments still running are not needed any more: end them (a
        // cause already there, a KILL's, wins).
        if let Some(shared) = &self.shared {
            let s = lock(shared);
            for c in &s.calls {
                if !c.done {
                    c.ctx.cancel(Reason::Other {
                        message: "the statement no longer needs this fragment".into(),
                    });
                }
            }
        }
    }
}

/// Grafts `spans`, recorded by a fragment on `node`, under `ctx`'s span
/// (the fragment call's context on the coordinator), their times relative
/// to `started`: each gets attributes `node` and `remote`, and keeps its
/// status and message (a remote cancel's "cancelled by node N: …").
pub(crate) fn graft_spans(ctx: &Context, node: u64, started: Instant, spans: &[FragmentSpan]) {
    let (Some(rec), Some(parent)) = (ctx.recorder(), ctx.span_id()) else {
        return;
    };
    let mut mapped: std::collections::HashMap<u64, crate::trace::SpanId> =
        std::collections::HashMap::new();
    let mut pending: Vec<&FragmentSpan> = spans.iter().collect();
    // Parents first; a span whose parent is unknown hangs under the
    // fragment's span.
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|s| {
            let p = match s.parent {
                None => parent,
                Some(p) => match mapped.get(&p) {
                    Some(id) => *id,
                    None => return true,
                },
            };
            let mut attrs: Vec<(String, AttrValue)> = s
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), AttrValue::Str(v.clone())))
                .collect();
            attrs.push(("node".into(), AttrValue::Int(node as i64)));
            attrs.push(("remote".into(), AttrValue::Bool(true)));
            let start = Instant(started.0.saturating_add(s.start_ns));
            let id = rec.open_at(Some(p), &s.name, s.level, start, attrs);
            let end = Instant(started.0.saturating_add(s.end_ns));
            let status = match s.status.as_str() {
                "ok" | "open" => SpanStatus::Ok,
                "canceled" | "deadline_exceeded" => {
                    let kind = if s.status == "canceled" {
                        CancelKind::Canceled
                    } else {
                        CancelKind::DeadlineExceeded
                    };
                    let cause = Arc::new(Cause {
                        kind,
                        reason: Reason::Other {
                            message: s.message.clone().into(),
                        },
                        level: s.level,
                        context_id: 0,
                    });
                    if kind == CancelKind::Canceled {
                        SpanStatus::Canceled {
                            message: s.message.clone(),
                            cause,
                        }
                    } else {
                        SpanStatus::DeadlineExceeded {
                            message: s.message.clone(),
                            cause,
                        }
                    }
                }
                _ => SpanStatus::Error {
                    message: s.message.clone(),
                },
            };
            rec.close_at(id, end, status);
            mapped.insert(s.id, id);
            false
        });
        if pending.len() == before {
            // Orphans: under the fragment's span.
            for s in pending.iter() {
                let start = Instant(started.0.saturating_add(s.start_ns));
                let id = rec.open_at(
                    Some(parent),
                    &s.name,
                    s.level,
                    start,
                    [
                        ("node".to_owned(), AttrValue::Int(node as i64)),
                        ("remote".to_owned(), AttrValue::Bool(true)),
                    ],
                );
                rec.close_at(
                    id,
                    Instant(started.0.saturating_add(s.end_ns)),
                    SpanStatus::Ok,
                );
            }
            break;
        }
    }
}

/// The wait of a [`RemoteScan`]: ready when a fragment sent something or
/// ended.
struct WaitReplies {
    shared: Arc<Mutex<Shared>>,
}

impl Future for WaitReplies {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut s = lock(&self.shared);
        let progress = s.poll_calls(cx);
        let all_done = s.calls.iter().all(|c| c.stream.is_none());
        if progress || all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// One output column of [`AvgFinish`].
#[derive(Clone, Debug)]
pub enum Output {
    /// An input column as it is.
    Column(usize),
    /// `avg`: the merged sum over the merged count.
    Avg {
        /// The sum's column.
        sum: usize,
        /// The count's column.
        count: usize,
        /// The original aggregate (type, EXPLAIN text).
        spec: AggSpec,
    },
}

/// Turns the merge's columns into the aggregate's: averages from merged
/// sums and counts, exact for integers and decimals as one node's AVG.
pub struct AvgFinish {
    input: Box<Instrumented>,
    outputs: Vec<Output>,
}

impl AvgFinish {
    /// Over `input`, producing `outputs`.
    pub fn new(input: Instrumented, outputs: Vec<Output>) -> Self {
        AvgFinish {
            input: Box::new(input),
            outputs,
        }
    }
}

fn avg_of(sum: &Value, count: &Value, spec: &AggSpec) -> Result<Value, ExecError> {
    let c = count.as_i64().unwrap_or(0);
    if c == 0 || sum.is_null() {
        return Ok(Value::Null);
    }
    match spec.output_type() {
        DataType::Decimal => {
            let s = sum
                .to_dec()
                .ok_or_else(|| ExecError::decimal_overflow(spec.text.clone()))?;
            s.checked_div(Dec::from_i64(c))
                .map(Value::Decimal)
                .ok_or_else(|| ExecError::decimal_overflow(spec.text.clone()))
        }
        _ => {
            let v = sum.as_f64().unwrap_or(0.0) / c as f64;
            if v.is_finite() {
                Ok(Value::Float(v))
            } else {
                Err(ExecError::double_overflow(spec.text.clone()))
            }
        }
    }
}

impl Operator for AvgFinish {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let b = match self.input.next(cx)? {
            Step::Batch(b) => b,
            other => return Ok(other),
        };
        let mut columns = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            match o {
                Output::Column(i) => match b.columns.get(*i) {
                    Some(c) => columns.push(c.clone()),
                    None => columns.push(Arc::new(Column::nulls(b.len))),
                },
                Output::Avg { sum, count, spec } => {
                    let (Some(s), Some(c)) = (b.columns.get(*sum), b.columns.get(*count)) else {
                        columns.push(Arc::new(Column::nulls(b.len)));
                        continue;
                    };
                    let mut vals = Vec::with_capacity(b.len);
                    for r in 0..b.len {
                        vals.push(avg_of(&s.value(r), &c.value(r), spec)?);
                    }
                    columns.push(Arc::new(Column::from_values(spec.output_type(), &vals)));
                }
            }
        }
        Ok(Step::Batch(Batch::new(columns, b.len)))
    }

    fn describe(&self) -> String {
        "AvgFinish (avg = merged sum / merged count)".into()
    }

    fn name(&self) -> &'static str {
        "AvgFinish"
    }

    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}
