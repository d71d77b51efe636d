//! The serving side of a fragment call: [`Engine::serve_fragment`] runs a
//! [`Fragment`] in a remote child context and answers with its rows and
//! the spans it recorded.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::{dist, Fragment, FragmentError, FragmentReply, FragmentSpan, FragmentStream};
use crate::context::Context;
use crate::data::Value;
use crate::expr::{EvalCx, ExecError};
use crate::level::Level;
use crate::pipeline::memory::MemoryUse;
use crate::pipeline::{drive, OpCx, Resources};
use crate::remote::RemoteChild;
use crate::session::{Engine, QueryError};
use crate::sql::plan::{plan_query, Namespace, PlanCx};
use crate::storage::WriteSet;
use crate::trace::{AttrValue, SpanStatus};

impl Engine {
    /// Runs `fragment` for another node, in `child` (the remote child
    /// context the transport built from the call, checked against the
    /// peer's grant): the caller's identity, its remaining deadline, its
    /// cancellation. Replies: the rows, then [`FragmentReply::End`] with
    /// the spans recorded under the child's span; or the fragment's error
    /// (a cancel by the caller comes back as "cancelled by node N: …").
    ///
    /// The work runs when the stream is polled (no thread of its own): in a
    /// server on the call's task, in [`super::LocalNodes`] inside the
    /// caller's wait.
    pub fn serve_fragment(&self, child: Arc<RemoteChild>, fragment: Fragment) -> FragmentStream {
        let engine = self.clone();
        let fut = async move {
            let ctx = child.context().clone();
            let res = run(&engine, &ctx, fragment).await;
            match res {
                Ok(rows) => {
                    let spans = collect_spans(&ctx);
                    vec![
                        Ok(FragmentReply::Rows(rows)),
                        Ok(FragmentReply::End {
                            node: engine.node_id(),
                            spans,
                        }),
                    ]
                }
                Err(e) => vec![Err(FragmentError::Failed(e))],
            }
        };
        Box::pin(stream::once(fut).flat_map(stream::iter))
    }
}

/// Plans and runs a fragment in `ctx`; its output rows.
async fn run(
    engine: &Engine,
    ctx: &Context,
    fragment: Fragment,
) -> Result<Vec<Vec<Value>>, QueryError> {
    ctx.check().map_err(|c| QueryError::cancelled(c.0))?;
    let Fragment::PartialAggregate {
        sql,
        start,
        stop,
        step,
    } = fragment;
    let values = ctx.values();
    let identity = values
        .identity()
        .cloned()
        .ok_or_else(|| QueryError::new(1105, "HY000", "a fragment without an identity"))?;
    let stmts = crate::sql::parse(&sql)?;
    let query = match stmts.as_slice() {
        [sqlparser::ast::Statement::Query(q)] => q,
        _ => {
            return Err(QueryError::new(
                1105,
                "HY000",
                "a fragment must be one SELECT statement",
            ))
        }
    };
    let catalog = engine.catalog().clone();
    let snapshot = catalog.snapshot();
    let empty = WriteSet::new();
    let pcx = PlanCx {
        catalog: &catalog,
        snapshot_ts: snapshot.ts,
        writes: &empty,
        connection_id: values.connection_id().unwrap_or(0),
        vars: Vec::new(),
        now_micros: engine.host().unix_micros(),
        names: Default::default(),
        ns: Namespace::new(
            identity.tenant.clone(),
            Some(crate::sql::info_schema::SCHEMA_NAME.to_owned()),
        ),
    };
    let planned = plan_query(query, &pcx)?;
    drop(pcx);
    let plan = dist::partial_plan(planned.plan, start, stop, step).ok_or_else(|| {
        QueryError::new(
            1105,
            "HY000",
            "the fragment's statement has no distributable aggregate",
        )
    })?;
    let pipeline = ctx
        .child(Level::Pipeline)
        .name("fragment")
        .attr(
            "fragment",
            format!("partial aggregate over generate_series({start}, {stop}, {step})"),
        )
        .attr("node", engine.node_id())
        .build()?;
    let mut root = plan.build_parallel(&pipeline, engine.parallelism())?;
    let resources = Resources::with_tenant(
        engine.config().memory_budget,
        engine.memory_counter().clone(),
        Some(engine.tenant_budget(&identity.tenant)),
    );
    let progress = AtomicU64::new(0);
    let mut eval = EvalCx::default();
    let mut cx = OpCx {
        eval: &mut eval,
        resources: &resources,
        progress: &progress,
        clock: Some(ctx.host().clone()),
    };
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut mem = MemoryUse::default();
    let res = drive(&mut root, ctx, &mut cx, engine.config().yield_policy, |b| {
        mem.grow(&resources, b.heap_bytes() as u64)?;
        rows.extend((0..b.len).map(|i| b.row(i)));
        Ok(())
    })
    .await;
    drop(root);
    pipeline.finish(match (&res, ctx.cause()) {
        (Ok(()), _) => SpanStatus::Ok,
        (Err(_), Some(c)) => SpanStatus::from_cause(&c),
        (Err(e), None) => SpanStatus::Error {
            message: e.to_string(),
        },
    });
    drop(pipeline);
    drop(snapshot);
    res.map_err(|e| match e {
        ExecError::Cancelled(c) => QueryError::cancelled(ctx.cause().unwrap_or(c.0)),
        other => other.into(),
    })?;
    drop(mem);
    Ok(rows)
}

/// The spans recorded under `ctx`'s span (itself first), with times
/// relative to its start: what a fragment sends back to be grafted into
/// the caller's trace. Empty when the tree records no spans.
pub fn collect_spans(ctx: &Context) -> Vec<FragmentSpan> {
    let (Some(rec), Some(root)) = (ctx.recorder(), ctx.span_id()) else {
        return Vec::new();
    };
    let Some(trace) = rec.trace(root) else {
        return Vec::new();
    };
    let now = rec.now();
    let Some(root_rec) = trace.spans.iter().find(|s| s.id == root) else {
        return Vec::new();
    };
    let origin = root_rec.start;
    // The subtree: spans whose parent chain reaches `root` (the trace also
    // holds the ancestors, which stay on this node).
    let mut inside: HashSet<u64> = HashSet::from([root.0]);
    loop {
        let before = inside.len();
        for s in &trace.spans {
            if s.parent.is_some_and(|p| inside.contains(&p.0)) {
                inside.insert(s.id.0);
            }
        }
        if inside.len() == before {
            break;
        }
    }
    let mut out: Vec<FragmentSpan> = trace
        .spans
        .iter()
        .filter(|s| inside.contains(&s.id.0))
        .map(|s| {
            let (status, message) = match &s.status {
                SpanStatus::Open => ("open", String::new()),
                SpanStatus::Ok => ("ok", String::new()),
                SpanStatus::Error { message } => ("error", message.clone()),
                SpanStatus::Canceled { message, .. } => ("canceled", message.clone()),
                SpanStatus::DeadlineExceeded { message, .. } => {
                    ("deadline_exceeded", message.clone())
                }
            };
            FragmentSpan {
                id: s.id.0,
                parent: if s.id == root {
                    None
                } else {
                    s.parent.map(|p| p.0)
                },
                name: s.name.clone(),
                level: s.level,
                start_ns: s.start.0.saturating_sub(origin.0),
                end_ns: s.end.unwrap_or(now).0.saturating_sub(origin.0),
                status: status.to_owned(),
                message,
                attrs: s
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), attr_text(v)))
                    .collect(),
            }
        })
        .collect();
    out.sort_by_key(|s| (s.parent.is_some(), s.start_ns, s.id));
    out
}

fn attr_text(v: &AttrValue) -> String {
    match v {
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Float(f) => f.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Str(s) => s.clone(),
    }
}
