//! Lowering: a [`Plan`] to instrumented operators, each blocking
//! operator's input in a nested Pipeline context.

use super::Plan;

use crate::context::Context;
use crate::error::ContextError;
use crate::level::Level;
use crate::pipeline::aggregate::HashAggregate;
use crate::pipeline::basic::{Filter, Limit, Project, UnionAll};
use crate::pipeline::join::HashJoin;
use crate::pipeline::scan::{SeriesScan, TableScan, ValuesScan};
use crate::pipeline::sort::Sort;
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
                Box::new(Filter::new(input.build(pipeline)?, pred, text))
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
            } => {
                let p = nested(pipeline, "join build")?;
                Box::new(HashJoin::new(
                    left.build(pipeline)?,
                    right.build(&p)?,
                    left_keys,
                    right_keys,
                    int_keys,
                    residual,
                    kind,
                    right_types,
                    text,
                ))
            }
            Plan::Union { inputs, types } => {
                let mut built = Vec::new();
                for i in inputs {
                    built.push(i.build(pipeline)?);
                }
                Box::new(UnionAll::new(built, types))
            }
        };
        Ok(Instrumented::new(op, pipeline.clone()))
    }
}
