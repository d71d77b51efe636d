//! Lowering: a [`Plan`] to instrumented operators, each blocking
//! operator's input in a nested Pipeline context.
//!
//! With more than one thread ([`Parallelism`]), an aggregate, a sort or a
//! top-N over a scan (a table or `generate_series`, through filters,
//! projections and the probe sides of hash joins, of at least two morsels,
//! not read through an index) becomes a parallel stage: N pipelines, each a
//! Pipeline context under the operator's, each a partial aggregate (or
//! sort) over a [`MorselScan`] of the shared [`Morsels`], and a
//! [`ParallelAggregate`] (or [`ParallelSort`]) that merges them (see
//! [`crate::pipeline::parallel`]). The joins on the way are split by
//! `stage`: one build, shared; a probe per pipeline. A plain query over
//! such a scan (filters, projections, join probes, under an optional
//! LIMIT; no aggregate or sort above) becomes a gather: N pipelines, each
//! a [`GatherSink`] over the stage's operators, and a [`ParallelGather`]
//! that emits their output in morsel order. With one thread the plan is
//! the serial one, operator for operator.

use std::cell::Cell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::Plan;

use crate::context::Context;
use crate::error::ContextError;
use crate::level::Level;
use crate::pipeline::aggregate::HashAggregate;
use crate::pipeline::basic::{Filter, Limit, Project, UnionAll};
use crate::pipeline::dml::{Delete, Update};
use crate::pipeline::join::{HashJoin, SharedBuild};
use crate::pipeline::parallel::{
    Empty, GatherShared, GatherSink, MorselScan, Morsels, ParallelAggregate, ParallelGather,
    ParallelSort, PipelineSpec,
};
use crate::pipeline::recursive::{RecursiveUnion, TermBuilder, WorkTableScan};
use crate::pipeline::scan::{SeriesScan, TableScan, ValuesScan};
use crate::pipeline::setop::SetOp;
use crate::pipeline::sort::Sort;
use crate::pipeline::subquery::Apply;
use crate::pipeline::window::Window;
use crate::pipeline::{Instrumented, YieldPolicy};

/// How many pipelines a parallel stage runs, and how they yield.
#[derive(Clone, Copy, Debug)]
pub struct Parallelism {
    /// Pipelines per parallel stage (1: the serial plan).
    pub threads: usize,
    /// The pipelines' yield policy.
    pub policy: YieldPolicy,
}

impl Parallelism {
    /// One thread: the serial plan.
    pub fn serial() -> Self {
        Parallelism {
            threads: 1,
            policy: YieldPolicy::default(),
        }
    }
}

/// What lowering carries down the tree.
struct Lower {
    par: Parallelism,
    /// Inside one pipeline of a parallel stage: its scan's morsels, and
    /// the cell where the scan writes each morsel's sequence number.
    morsels: Option<(Arc<Morsels>, Arc<AtomicU64>)>,
    /// Inside one pipeline of a parallel stage: the shared build sides of
    /// the joins between the stage's root and its scan, top down, and how
    /// many of them this pipeline's joins took so far.
    shared: Vec<SharedBuild>,
    next_shared: Cell<usize>,
    /// Inside one pipeline of a gather: the gather's shared state and the
    /// pipeline's index (its scan takes morsels through it).
    gather: Option<(Arc<GatherShared>, usize)>,
}

impl Lower {
    fn new(par: Parallelism) -> Self {
        Lower {
            par,
            morsels: None,
            shared: Vec::new(),
            next_shared: Cell::new(0),
            gather: None,
        }
    }
}

/// The morsels of `plan` when it is a scan that a parallel stage of
/// `threads` pipelines can split: filters, projections and hash joins'
/// probe sides over a table scan or `generate_series`, at least two
/// morsels, and no index access path for a filter over the table.
///
/// A table scanned straight by a join's probe (or through a projection of
/// its columns) is split into its stored chunks, shared rather than copied
/// (the join works through a big batch in bounded steps, as the serial
/// plan's probe does), when there are at least two per pipeline; else into
/// batches of 4096 rows.
fn morsel_source(plan: &Plan, threads: usize) -> Option<Arc<Morsels>> {
    let columns_only = |exprs: &[crate::expr::Expr]| {
        exprs
            .iter()
            .all(|e| matches!(e, crate::expr::Expr::Column(_)))
    };
    // Down the spine (a loop: join trees may be deep).
    let mut node = plan;
    let mut probed = false;
    let m = loop {
        match node {
            Plan::Series { start, stop, step } => break Morsels::series(*start, *stop, *step),
            Plan::Scan { table, data } => {
                if probed && data.chunks.len() >= 2 * threads {
                    break Morsels::table_chunks(table.clone(), data.clone());
                }
                break Morsels::table(table.clone(), data.clone());
            }
            Plan::Filter { input, pred, .. } => {
                if let Plan::Scan { data, .. } = &**input {
                    let types: Vec<crate::data::DataType> = match data.chunks.first() {
                        Some(c) => c.columns.iter().map(|c| c.data_type()).collect(),
                        None => return None,
                    };
                    if super::index::choose(data, &types, pred).is_some() {
                        return None;
                    }
                }
                probed = false;
                node = input;
            }
            Plan::Project { input, exprs, .. } => {
                probed = probed && columns_only(exprs);
                node = input;
            }
            // A join's probe side: its build side is built once and shared.
            Plan::Join { left, .. } => {
                probed = true;
                node = left;
            }
            _ => return None,
        }
    };
    (m.len() >= 2).then_some(m)
}

impl Plan {
    /// Builds operators; blocking operators get their input in a nested
    /// Pipeline context.
    pub fn build(self, pipeline: &Context) -> Result<Instrumented, ContextError> {
        self.build_parallel(pipeline, Parallelism::serial())
    }

    /// Builds operators with parallel stages of `par.threads` pipelines
    /// where the plan allows (the serial plan when `par.threads` is 1).
    pub fn build_parallel(
        self,
        pipeline: &Context,
        par: Parallelism,
    ) -> Result<Instrumented, ContextError> {
        self.lower(pipeline, &Lower::new(par))
    }

    fn lower(self, pipeline: &Context, lw: &Lower) -> Result<Instrumented, ContextError> {
        if let (Some((m, seq)), Plan::Series { .. } | Plan::Scan { .. }) = (&lw.morsels, &self) {
            // One pipeline of a parallel stage: its scan takes morsels.
            let scan = MorselScan::new(m.clone(), seq.clone());
            let scan = match &lw.gather {
                Some((g, i)) => scan.gathered(g.clone(), *i),
                None => scan,
            };
            return Ok(Instrumented::new(Box::new(scan), pipeline.clone()));
        }
        if lw.par.threads > 1 && lw.morsels.is_none() {
            if let Some(m) = gather_source(&self, lw.par.threads) {
                return gather(self, m, pipeline, lw);
            }
            if let Plan::Limit {
                input,
                offset,
                limit,
            } = self
            {
                if tiny_limit(&input, offset, limit) {
                    // The serial plan reads about one batch: it stays
                    // serial (no gather further down either).
                    let serial = Lower::new(Parallelism::serial());
                    let input = input.lower(pipeline, &serial)?;
                    return Ok(Instrumented::new(
                        Box::new(Limit::new(input, offset, limit)),
                        pipeline.clone(),
                    ));
                }
                return Plan::Limit {
                    input,
                    offset,
                    limit,
                }
                .lower_here(pipeline, lw);
            }
        }
        self.lower_here(pipeline, lw)
    }

    fn lower_here(self, pipeline: &Context, lw: &Lower) -> Result<Instrumented, ContextError> {
        let nested = |p: &Context, what: &str| -> Result<Context, ContextError> {
            p.child(Level::Pipeline)
                .name(format!("pipeline ({what} input)"))
                .build()
        };
        let op: Box<dyn crate::pipeline::Operator> = match self {
            // A distributed stage (crate::cluster) lowers itself.
            Plan::Remote(stage) => return stage.lower(pipeline),
            Plan::Series { start, stop, step } => Box::new(SeriesScan::new(start, stop, step)),
            Plan::Scan { table, data } => Box::new(TableScan::new(table, data)),
            Plan::Values { rows, types } => Box::new(ValuesScan::new(rows, types)),
            Plan::Filter { input, pred, text } => {
                let input = match *input {
                    other if lw.morsels.is_some() => other.lower(pipeline, lw)?,
                    // A filter straight over a table scan may read through
                    // an index (plan/index.rs); the filter stays above.
                    Plan::Scan { table, data } => Instrumented::new(
                        super::index::access(table, data, &pred),
                        pipeline.clone(),
                    ),
                    other => other.lower(pipeline, lw)?,
                };
                Box::new(Filter::new(input, pred, text))
            }
            Plan::Project {
                input,
                exprs,
                types,
                text,
            } => Box::new(Project::new(input.lower(pipeline, lw)?, exprs, types, text)),
            Plan::Aggregate {
                input,
                keys,
                key_types,
                aggs,
                text,
            } => {
                let p = nested(pipeline, "aggregate")?;
                let morsels = if lw.par.threads > 1 && lw.morsels.is_none() {
                    morsel_source(&input, lw.par.threads)
                } else {
                    None
                };
                if let Some(m) = morsels {
                    let (specs, builds) = stage(
                        *input,
                        m,
                        &p,
                        lw,
                        "partial aggregate",
                        None,
                        |child, seq, _| {
                            Box::new(
                                HashAggregate::new(
                                    child,
                                    keys.clone(),
                                    key_types.clone(),
                                    aggs.clone(),
                                    text.clone(),
                                )
                                .partial(seq),
                            )
                        },
                    )?;
                    let merged = HashAggregate::new(
                        Instrumented::new(Box::new(Empty), p.clone()),
                        keys,
                        key_types,
                        aggs,
                        text,
                    )
                    .merging();
                    let op = ParallelAggregate::new(specs, builds, merged, lw.par.policy);
                    return Ok(Instrumented::new(Box::new(op), pipeline.clone()));
                }
                Box::new(HashAggregate::new(
                    input.lower(&p, lw)?,
                    keys,
                    key_types,
                    aggs,
                    text,
                ))
            }
            Plan::Sort {
                input,
                keys,
                limit,
                text,
            } => {
                let p = nested(pipeline, "sort")?;
                let morsels = if lw.par.threads > 1 && lw.morsels.is_none() {
                    morsel_source(&input, lw.par.threads)
                } else {
                    None
                };
                if let Some(m) = morsels {
                    let what = if limit.is_some() { "top-N" } else { "sort" };
                    let (specs, builds) = stage(*input, m, &p, lw, what, None, |child, seq, _| {
                        Box::new(
                            Sort::new(child, keys.clone(), limit, text.clone())
                                .partial(seq, lw.par.threads),
                        )
                    })?;
                    let op = ParallelSort::new(specs, builds, limit, text, lw.par.policy);
                    return Ok(Instrumented::new(Box::new(op), pipeline.clone()));
                }
                Box::new(Sort::new(input.lower(&p, lw)?, keys, limit, text))
            }
            Plan::Limit {
                input,
                offset,
                limit,
            } => Box::new(Limit::new(input.lower(pipeline, lw)?, offset, limit)),
            Plan::Window {
                input,
                partition,
                order,
                calls,
                text,
            } => {
                let p = nested(pipeline, "window")?;
                Box::new(Window::new(
                    input.lower(&p, lw)?,
                    partition,
                    order,
                    calls,
                    text,
                ))
            }
            Plan::Join {
                mut left,
                right,
                left_keys,
                right_keys,
                int_keys,
                residual,
                kind,
                right_types,
                text,
                emit,
                filters,
            } => {
                if lw.morsels.is_some() {
                    // One pipeline of a parallel stage: probe the build
                    // side the stage built (its key filter is published
                    // by the build, for the joins below that take it).
                    let slot = lw.shared.get(lw.next_shared.get()).cloned();
                    lw.next_shared.set(lw.next_shared.get() + 1);
                    let slot = slot.unwrap_or_default();
                    let join = HashJoin::new(
                        left.lower(pipeline, lw)?,
                        Instrumented::new(Box::new(Empty), pipeline.clone()),
                        left_keys,
                        right_keys,
                        int_keys,
                        residual,
                        kind,
                        right_types,
                        text,
                    )
                    .filtering_probe(filters)
                    .probing_shared(slot);
                    let join = match emit {
                        Some((l, r)) => join.emitting(l, r),
                        None => join,
                    };
                    return Ok(Instrumented::new(Box::new(join), pipeline.clone()));
                }
                // This join's key filter, for a join below on its probe side.
                let publish = super::joins::push_key_filter(&mut left, &left_keys, int_keys, kind);
                let p = nested(pipeline, "join build")?;
                let mut join = HashJoin::new(
                    probe_side(*left, pipeline, lw)?,
                    right.lower(&p, lw)?,
                    left_keys,
                    right_keys,
                    int_keys,
                    residual,
                    kind,
                    right_types,
                    text,
                )
                .filtering_probe(filters);
                if let Some(slot) = publish {
                    join = join.publishing_filter(slot);
                }
                Box::new(match emit {
                    Some((l, r)) => join.emitting(l, r),
                    None => join,
                })
            }
            Plan::Update {
                table,
                data,
                pred,
                sets,
                affected,
                text,
            } => Box::new(Update::new(table, data, pred, sets, affected, text)),
            Plan::Delete {
                table,
                data,
                pred,
                affected,
                text,
            } => Box::new(Delete::new(table, data, pred, affected, text)),
            Plan::Union { inputs, types } => {
                let mut built = Vec::new();
                for i in inputs {
                    built.push(i.lower(pipeline, lw)?);
                }
                Box::new(UnionAll::new(built, types))
            }
            Plan::Apply { input, subs } => Box::new(Apply::new(
                input.lower(pipeline, lw)?,
                subs,
                pipeline.clone(),
            )),
            Plan::SetOp {
                inputs,
                steps,
                types,
            } => {
                let p = nested(pipeline, "set operation")?;
                let mut built = Vec::new();
                for i in inputs {
                    built.push(i.lower(&p, lw)?);
                }
                Box::new(SetOp::new(built, steps, types))
            }
            Plan::Recursive {
                anchor,
                term,
                table,
                spec,
            } => {
                // The anchor and every iteration's recursive part run in one
                // nested pipeline: a kill or a deadline reaches them all.
                let p = nested(pipeline, "recursive union")?;
                let anchor = anchor.lower(&p, lw)?;
                let first = (*term).clone().lower(&p, lw)?;
                let builder: TermBuilder =
                    Box::new(move |ctx: &Context| Ok((*term).clone().build(ctx)?));
                Box::new(RecursiveUnion::new(spec, anchor, first, builder, table, p))
            }
            Plan::WorkTable { name, table } => Box::new(WorkTableScan::new(name, table)),
        };
        Ok(Instrumented::new(op, pipeline.clone()))
    }
}

/// Builds a hash join's probe side. A table scan there (or a projection of
/// its columns) returns whole stored chunks, shared rather than copied: the
/// join works through a batch in bounded steps and gathers only the rows
/// that match.
fn probe_side(plan: Plan, pipeline: &Context, lw: &Lower) -> Result<Instrumented, ContextError> {
    let columns_only = |exprs: &[crate::expr::Expr]| {
        exprs
            .iter()
            .all(|e| matches!(e, crate::expr::Expr::Column(_)))
    };
    match plan {
        other if lw.morsels.is_some() => other.lower(pipeline, lw),
        Plan::Scan { table, data } => Ok(Instrumented::new(
            Box::new(TableScan::new(table, data).whole_chunks()),
            pipeline.clone(),
        )),
        Plan::Project {
            input,
            exprs,
            types,
            text,
        } if matches!(*input, Plan::Scan { .. }) && columns_only(&exprs) => {
            let input = probe_side(*input, pipeline, lw)?;
            Ok(Instrumented::new(
                Box::new(Project::new(input, exprs, types, text)),
                pipeline.clone(),
            ))
        }
        other => other.lower(pipeline, lw),
    }
}

/// The pipelines of a parallel stage over `input` (whose scan's morsels
/// are `m`), and the joins that build what they share.
///
/// Each pipeline is a Pipeline context under `p` running a copy of
/// `input`'s operators, its scan a [`MorselScan`] of `m`, under the root
/// that `root` makes of them (given the cell where the scan writes each
/// morsel's number). The joins between the root and the scan (on the probe
/// side, through filters and projections) are split: their build sides are
/// lowered once, here, as joins that only build (run by the stage's
/// consumer before the pipelines start), and each pipeline probes them.
fn stage(
    mut input: Plan,
    m: Arc<Morsels>,
    p: &Context,
    lw: &Lower,
    what: &str,
    gathered: Option<&Arc<GatherShared>>,
    root: impl Fn(Instrumented, Arc<AtomicU64>, usize) -> Box<dyn crate::pipeline::Operator>,
) -> Result<(Vec<PipelineSpec>, Vec<Instrumented>), ContextError> {
    let mut builds = Vec::new();
    let mut shared = Vec::new();
    // Down the probe spine (a loop: join trees may be deep).
    let mut node: &mut Plan = &mut input;
    loop {
        node = match node {
            Plan::Filter { input, .. } | Plan::Project { input, .. } => input,
            Plan::Join {
                left,
                right,
                left_keys,
                right_keys,
                int_keys,
                residual,
                kind,
                right_types,
                text,
                ..
            } => {
                // As the serial join: its key filter, for a join below.
                let publish = super::joins::push_key_filter(left, left_keys, *int_keys, *kind);
                let slot = SharedBuild::default();
                let bp = p
                    .child(Level::Pipeline)
                    .name("pipeline (join build input)")
                    .build()?;
                let mut join = HashJoin::new(
                    Instrumented::new(Box::new(Empty), p.clone()),
                    (**right).clone().lower(&bp, lw)?,
                    left_keys.clone(),
                    right_keys.clone(),
                    *int_keys,
                    residual.clone(),
                    *kind,
                    right_types.clone(),
                    text.clone(),
                )
                .building_shared(slot.clone());
                if let Some(f) = publish {
                    join = join.publishing_filter(f);
                }
                builds.push(Instrumented::new(Box::new(join), p.clone()));
                shared.push(slot);
                left
            }
            _ => break,
        };
    }
    let n = lw.par.threads;
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        let ctx = p
            .child(Level::Pipeline)
            .name(format!("pipeline {}/{n} ({what})", i + 1))
            .build()?;
        let seq = Arc::new(AtomicU64::new(0));
        let inner = Lower {
            par: Parallelism::serial(),
            morsels: Some((m.clone(), seq.clone())),
            shared: shared.clone(),
            next_shared: Cell::new(0),
            gather: gathered.map(|g| (g.clone(), i)),
        };
        let child = input.clone().lower(&ctx, &inner)?;
        specs.push(PipelineSpec {
            root: Instrumented::new(root(child, seq, i), ctx.clone()),
            ctx,
        });
    }
    Ok((specs, builds))
}

/// The morsels of `plan` when a gather exchange should run it on
/// `threads` pipelines: a plain query (no aggregate, no sort above) whose
/// spine — filters, projections, hash joins' probe sides, under an
/// optional LIMIT — reaches a scan [`morsel_source`] can split, and does
/// some work per row on the way (a filter, a join, or a projection that
/// computes). Not when the serial plan streams a tiny input anyway: a
/// LIMIT of at most one batch (offset included) over a spine that cannot
/// drop rows (no filter, no inner join) reads one batch serially.
fn gather_source(plan: &Plan, threads: usize) -> Option<Arc<Morsels>> {
    let spine = match plan {
        Plan::Limit {
            input,
            offset,
            limit,
        } => {
            if tiny_limit(input, *offset, *limit) {
                return None;
            }
            &**input
        }
        other => other,
    };
    if !matches!(
        spine,
        Plan::Filter { .. } | Plan::Project { .. } | Plan::Join { .. }
    ) {
        return None;
    }
    let mut works = false;
    let mut node = spine;
    loop {
        node = match node {
            Plan::Filter { input, .. } => {
                works = true;
                input
            }
            Plan::Project { input, exprs, .. } => {
                works |= !exprs.iter().all(|e| {
                    matches!(
                        e,
                        crate::expr::Expr::Column(_) | crate::expr::Expr::Literal(_)
                    )
                });
                input
            }
            Plan::Join { left, .. } => {
                works = true;
                left
            }
            _ => break,
        };
    }
    if !works {
        return None;
    }
    morsel_source(spine, threads)
}

/// Whether `LIMIT limit OFFSET offset` over `input` reads about one batch
/// serially: at most one batch of rows (offset included) over a spine of
/// projections and left joins (which drop no rows).
fn tiny_limit(input: &Plan, offset: u64, limit: Option<u64>) -> bool {
    let Some(rows) = limit.map(|l| l.saturating_add(offset)) else {
        return false;
    };
    if rows > crate::pipeline::BATCH_ROWS as u64 {
        return false;
    }
    let mut node = input;
    loop {
        node = match node {
            Plan::Project { input, .. } => input,
            Plan::Join { left, kind, .. } if *kind == crate::pipeline::join::JoinKind::Left => left,
            Plan::Scan { .. } | Plan::Series { .. } => return true,
            _ => return false,
        };
    }
}

/// A gather exchange over `plan` (a spine that [`gather_source`] accepted,
/// whose scan's morsels are `m`): N pipelines, each a [`GatherSink`] over a
/// copy of the spine, and a [`ParallelGather`] that emits their output in
/// morsel order (applying the LIMIT, if `plan` is one).
fn gather(
    plan: Plan,
    m: Arc<Morsels>,
    pipeline: &Context,
    lw: &Lower,
) -> Result<Instrumented, ContextError> {
    let (input, offset, limit) = match plan {
        Plan::Limit {
            input,
            offset,
            limit,
        } => (*input, offset, limit),
        other => (other, 0, None),
    };
    let p = pipeline
        .child(Level::Pipeline)
        .name("pipeline (gather input)")
        .build()?;
    let shared = GatherShared::new(m.clone(), lw.par.threads);
    let (specs, builds) = stage(
        input,
        m,
        &p,
        lw,
        "gather",
        Some(&shared),
        |child, seq, i| Box::new(GatherSink::new(child, shared.clone(), i, seq)),
    )?;
    let op = ParallelGather::new(specs, builds, shared, offset, limit, lw.par.policy);
    Ok(Instrumented::new(Box::new(op), pipeline.clone()))
}
