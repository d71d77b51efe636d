//! Lowering: a [`Plan`] to instrumented operators, each blocking
//! operator's input in a nested Pipeline context.

use super::Plan;

use crate::context::Context;
use crate::error::ContextError;
use crate::level::Level;
use crate::pipeline::aggregate::HashAggregate;
use crate::pipeline::basic::{Filter, Limit, Project, UnionAll};
use crate::pipeline::dml::{Delete, Update};
use crate::pipeline::join::HashJoin;
use crate::pipeline::recursive::{RecursiveUnion, TermBuilder, WorkTableScan};
use crate::pipeline::scan::{SeriesScan, TableScan, ValuesScan};
use crate::pipeline::setop::SetOp;
use crate::pipeline::sort::Sort;
use crate::pipeline::subquery::Apply;
use crate::pipeline::window::Window;
use crate::pipeline::Instrumented;

impl Plan {
    /// Builds operators; blocking operators get their input in a nested
    /// Pipeline context.
    pub fn build(self, pipeline: &Context) -> Result<Instrumented, ContextError> {
        let nested = |p: &Context, what: &str| -> Result<Context, ContextError> {
            p.child(Level::Pipeline)
                .name(format!("pipeline ({what} input)"))
                .build()
        };
        let op: Box<dyn crate::pipeline::Operator> = match self {
            Plan::Series { start, stop, step } => Box::new(SeriesScan::new(start, stop, step)),
            Plan::Scan { table, data } => Box::new(TableScan::new(table, data)),
            Plan::Values { rows, types } => Box::new(ValuesScan::new(rows, types)),
            Plan::Filter { input, pred, text } => {
                let input = match *input {
                    // A filter straight over a table scan may read through
                    // an index (plan/index.rs); the filter stays above.
                    Plan::Scan { table, data } => Instrumented::new(
                        super::index::access(table, data, &pred),
                        pipeline.clone(),
                    ),
                    other => other.build(pipeline)?,
                };
                Box::new(Filter::new(input, pred, text))
            }
            Plan::Project {
                input,
                exprs,
                types,
                text,
            } => Box::new(Project::new(input.build(pipeline)?, exprs, types, text)),
            Plan::Aggregate {
                input,
                keys,
                key_types,
                aggs,
                text,
            } => {
                let p = nested(pipeline, "aggregate")?;
                Box::new(HashAggregate::new(
                    input.build(&p)?,
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
                Box::new(Sort::new(input.build(&p)?, keys, limit, text))
            }
            Plan::Limit {
                input,
                offset,
                limit,
            } => Box::new(Limit::new(input.build(pipeline)?, offset, limit)),
            Plan::Window {
                input,
                partition,
                order,
                calls,
                text,
            } => {
                let p = nested(pipeline, "window")?;
                Box::new(Window::new(input.build(&p)?, partition, order, calls, text))
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
                // This join's key filter, for a join below on its probe side.
                let publish = super::joins::push_key_filter(&mut left, &left_keys, int_keys, kind);
                let p = nested(pipeline, "join build")?;
                let mut join = HashJoin::new(
                    probe_side(*left, pipeline)?,
                    right.build(&p)?,
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
                    built.push(i.build(pipeline)?);
                }
                Box::new(UnionAll::new(built, types))
            }
            Plan::Apply { input, subs } => {
                Box::new(Apply::new(input.build(pipeline)?, subs, pipeline.clone()))
            }
            Plan::SetOp {
                inputs,
                steps,
                types,
            } => {
                let p = nested(pipeline, "set operation")?;
                let mut built = Vec::new();
                for i in inputs {
                    built.push(i.build(&p)?);
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
                let anchor = anchor.build(&p)?;
                let first = (*term).clone().build(&p)?;
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
fn probe_side(plan: Plan, pipeline: &Context) -> Result<Instrumented, ContextError> {
    let columns_only = |exprs: &[crate::expr::Expr]| {
        exprs
            .iter()
            .all(|e| matches!(e, crate::expr::Expr::Column(_)))
    };
    match plan {
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
            let input = probe_side(*input, pipeline)?;
            Ok(Instrumented::new(
                Box::new(Project::new(input, exprs, types, text)),
                pipeline.clone(),
            ))
        }
        other => other.build(pipeline),
    }
}
