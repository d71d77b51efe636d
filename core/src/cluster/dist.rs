//! The distributed aggregate: an aggregate over `generate_series` split by
//! range across the nodes of a cluster (docs/across-nodes.md, "A statement
//! that spans servers").
//!
//! With `SET cascade_distribute = ON` and peers configured, a SELECT whose
//! plan is an aggregate (count, sum, min, max, avg; no DISTINCT) over
//! filters and projections of one `generate_series`, under any projections,
//! filters (HAVING), sorts and limits, is rewritten:
//!
//! ```text
//! Project / Filter / Sort / Limit …                       (unchanged, on the coordinator)
//!   [AvgFinish]                                           (avg = merged sum / merged count)
//!     HashAggregate (merge): counts and sums add, min/max compare
//!       RemoteScan: fragment i on node i, in range order
//!         ── on node i: HashAggregate (partial) over generate_series(range i) …
//! ```
//!
//! Each node (the coordinator included) gets one contiguous range; the
//! coordinator merges the fragments' partial groups in range order, so the
//! groups come out in the order the one-node plan emits them and results
//! are identical (floating-point sums may differ in the last bits, as with
//! parallel stages). The fragment is the statement's SQL text plus its
//! range ([`super::Fragment::PartialAggregate`]): the remote node plans the
//! same statement and runs only the partial aggregate of it.

use std::sync::Arc;

use super::remote_scan::{AvgFinish, Output, RemoteScan};
use super::{Fragment, SharedNodes};
use crate::context::Context;
use crate::data::DataType;
use crate::error::ContextError;
use crate::expr::Expr;
use crate::level::Level;
use crate::pipeline::aggregate::{AggFunc, AggSpec, HashAggregate};
use crate::pipeline::scan::series_len;
use crate::pipeline::Instrumented;
use crate::sql::plan::{Plan, RemoteStage};

/// Whether `plan` is an aggregate this module distributes: no DISTINCT,
/// over filters and projections of a `generate_series`.
fn is_distributable(plan: &Plan) -> bool {
    match plan {
        Plan::Aggregate { input, aggs, .. } => {
            aggs.iter().all(|a| !a.distinct) && series_of(input).is_some()
        }
        _ => false,
    }
}

/// The `generate_series` under filters and projections.
fn series_of(mut plan: &Plan) -> Option<(i64, i64, i64)> {
    loop {
        match plan {
            Plan::Series { start, stop, step } => return Some((*start, *stop, *step)),
            Plan::Filter { input, .. } | Plan::Project { input, .. } => plan = input,
            _ => return None,
        }
    }
}

/// Sets the range of the `generate_series` under filters and projections.
fn set_series(mut plan: &mut Plan, range: (i64, i64, i64)) {
    loop {
        match plan {
            Plan::Series { start, stop, step } => {
                (*start, *stop, *step) = range;
                return;
            }
            Plan::Filter { input, .. } | Plan::Project { input, .. } => plan = input,
            _ => return,
        }
    }
}

/// The distributable aggregate of `plan`: the statement's root through
/// projections, filters, sorts and limits (nothing else: no join, no
/// subquery, no set operation, no window).
fn find(plan: &mut Plan) -> Option<&mut Plan> {
    let mut cur = plan;
    loop {
        if is_distributable(cur) {
            return Some(cur);
        }
        cur = match cur {
            Plan::Project { input, .. }
            | Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. } => input,
            _ => return None,
        };
    }
}

/// The partial aggregates a fragment computes for `aggs`: each aggregate
/// as itself, but `avg(x)` as `sum(x)` and `count(x)`.
pub fn partial_specs(aggs: &[AggSpec]) -> Vec<AggSpec> {
    let mut out = Vec::with_capacity(aggs.len());
    for a in aggs {
        match a.func {
            AggFunc::Avg => {
                out.push(AggSpec {
                    func: AggFunc::Sum,
                    text: format!("sum of {}", a.text),
                    ..a.clone()
                });
                out.push(AggSpec {
                    func: AggFunc::Count,
                    text: format!("count of {}", a.text),
                    ..a.clone()
                });
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

/// The fragment plan of a node: `plan`'s distributable aggregate over
/// `generate_series(start, stop, step)`, with partial aggregates. `None` if
/// `plan` has no distributable aggregate.
pub fn partial_plan(mut plan: Plan, start: i64, stop: i64, step: i64) -> Option<Plan> {
    let node = find(&mut plan)?;
    let taken = std::mem::replace(
        node,
        Plan::Values {
            rows: Vec::new(),
            types: Vec::new(),
        },
    );
    let Plan::Aggregate {
        mut input,
        keys,
        key_types,
        aggs,
        text,
    } = taken
    else {
        return None;
    };
    set_series(&mut input, (start, stop, step));
    Some(Plan::Aggregate {
        input,
        keys,
        key_types,
        aggs: partial_specs(&aggs),
        text: format!("{text} (partial)"),
    })
}

/// `generate_series(start, stop, step)` cut into at most `n` contiguous
/// ranges in order, none empty (one range, the whole, when it is empty).
pub fn split_series(start: i64, stop: i64, step: i64, n: usize) -> Vec<(i64, i64)> {
    let count = series_len(start, stop, step);
    if count == 0 || n <= 1 {
        return vec![(start, stop)];
    }
    let per = count.div_ceil(n as u128);
    let mut out = Vec::new();
    let mut first = 0u128;
    while first < count {
        let last = (first + per).min(count) - 1;
        // Every value lies between start and stop: exact in i64.
        let at = |i: u128| (start as i128 + i as i128 * step as i128) as i64;
        out.push((at(first), at(last)));
        first = last + 1;
    }
    out
}

/// The coordinator's stage of a distributed aggregate (a
/// [`Plan::Remote`]): fragments on the nodes, the merge here.
pub struct DistributedAggregate {
    nodes: SharedNodes,
    fragments: Vec<(u64, Fragment)>,
    key_types: Vec<DataType>,
    aggs: Vec<AggSpec>,
    text: String,
}

impl DistributedAggregate {
    /// The fragments: (node, fragment), in range order.
    pub fn fragments(&self) -> &[(u64, Fragment)] {
        &self.fragments
    }
}

/// Rewrites `plan` (the plan of `sql`, a SELECT) into a distributed
/// aggregate over `nodes` (this node and its peers) when it has a
/// distributable aggregate; whether it did.
pub fn distribute(plan: &mut Plan, sql: &str, nodes: &SharedNodes) -> bool {
    let Some(node) = find(plan) else {
        return false;
    };
    let Plan::Aggregate { input, .. } = &*node else {
        return false;
    };
    let Some((start, stop, step)) = series_of(input) else {
        return false;
    };
    let mut members = vec![nodes.this_node()];
    members.extend(
        nodes
            .peers()
            .into_iter()
            .filter(|p| *p != nodes.this_node()),
    );
    let ranges = split_series(start, stop, step, members.len());
    let fragments: Vec<(u64, Fragment)> = ranges
        .into_iter()
        .zip(members)
        .map(|((a, b), n)| {
            (
                n,
                Fragment::PartialAggregate {
                    sql: sql.to_owned(),
                    start: a,
                    stop: b,
                    step,
                },
            )
        })
        .collect();
    // Replaced only once it is known to be the aggregate: a `false` never
    // leaves the plan changed.
    let Plan::Aggregate {
        key_types,
        aggs,
        text,
        ..
    } = &mut *node
    else {
        return false;
    };
    let stage = DistributedAggregate {
        nodes: nodes.clone(),
        fragments,
        key_types: std::mem::take(key_types),
        aggs: std::mem::take(aggs),
        text: std::mem::take(text),
    };
    *node = Plan::Remote(Arc::new(stage));
    true
}

impl RemoteStage for DistributedAggregate {
    fn lower(&self, pipeline: &Context) -> Result<Instrumented, ContextError> {
        let k = self.key_types.len();
        let partial = partial_specs(&self.aggs);
        let mut types = self.key_types.clone();
        types.extend(partial.iter().map(AggSpec::output_type));
        let input_ctx = pipeline
            .child(Level::Pipeline)
            .name("pipeline (remote fragments)")
            .build()?;
        let scan = Instrumented::new(
            Box::new(RemoteScan::new(
                self.nodes.clone(),
                self.fragments.clone(),
                types.clone(),
                input_ctx.clone(),
            )),
            input_ctx,
        );
        // Merge: counts and sums add, min and max compare.
        let merge: Vec<AggSpec> = partial
            .iter()
            .enumerate()
            .map(|(j, p)| AggSpec {
                func: match p.func {
                    AggFunc::CountStar | AggFunc::Count | AggFunc::Sum | AggFunc::Avg => {
                        AggFunc::Sum
                    }
                    f => f,
                },
                arg: Some(Expr::Column(k + j)),
                distinct: false,
                arg_type: types[k + j],
                text: p.text.clone(),
            })
            .collect();
        let keys = (0..k).map(Expr::Column).collect();
        let agg = Instrumented::new(
            Box::new(HashAggregate::new(
                scan,
                keys,
                self.key_types.clone(),
                merge,
                format!(
                    "{} (merge of {} fragments)",
                    self.text,
                    self.fragments.len()
                ),
            )),
            pipeline.clone(),
        );
        if !self.aggs.iter().any(|a| a.func == AggFunc::Avg) {
            return Ok(agg);
        }
        let mut outputs: Vec<Output> = (0..k).map(Output::Column).collect();
        let mut j = k;
        for a in &self.aggs {
            if a.func == AggFunc::Avg {
                outputs.push(Output::Avg {
                    sum: j,
                    count: j + 1,
                    spec: a.clone(),
                });
                j += 2;
            } else {
                outputs.push(Output::Column(j));
                j += 1;
            }
        }
        Ok(Instrumented::new(
            Box::new(AvgFinish::new(agg, outputs)),
            pipeline.clone(),
        ))
    }

    fn describe(&self) -> String {
        format!("distributed aggregate over {} nodes", self.fragments.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_series_covers_the_range_in_order() {
        assert_eq!(split_series(1, 10, 1, 3), vec![(1, 4), (5, 8), (9, 10)]);
        assert_eq!(split_series(10, 1, -2, 2), vec![(10, 6), (4, 2)]);
        assert_eq!(split_series(1, 2, 1, 5), vec![(1, 1), (2, 2)]);
        assert_eq!(split_series(5, 1, 1, 3), vec![(5, 1)], "empty: one range");
        assert_eq!(
            split_series(i64::MIN, i64::MAX, 1, 2),
            vec![(i64::MIN, -1), (0, i64::MAX)]
        );
    }
}
