//! Which index, if any, serves a table's pushed-down conjuncts: point
//! (`=`, `IN` list) and range (`<`, `<=`, `>`, `>=`, `BETWEEN`)
//! predicates on the first column of an ordered index become the ranges
//! of an [`IndexScan`]. The hook is at lowering ([`access`], called for a
//! filter straight over a table scan, wherever the planner put it).
//!
//! Only a comparison of a column with a literal of the column's own type
//! (or an integer literal with a DOUBLE column) is used: then the index
//! order is the engine's comparison order, and the rows the ranges hold
//! are a superset of the rows the conjunct keeps. The planner keeps every
//! conjunct as a filter above the scan.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::expr::{BinOp, Expr};
use std::sync::Arc;

use crate::data::{DataType, Value};
use crate::index::KeyRange;
use crate::pipeline::index_scan::IndexScan;
use crate::pipeline::scan::TableScan;
use crate::pipeline::Operator;
use crate::storage::TableData;

/// The index scan chosen for a table.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexChoice {
    /// Position of the index in the table version's indexes.
    pub index: usize,
    /// The table column the ranges bound (the index's first key part).
    pub column: usize,
    /// Disjoint ranges, in index order.
    pub ranges: Vec<KeyRange>,
}

/// What one conjunct says about one column.
#[derive(Clone, Debug)]
enum Constraint {
    /// Equal to one of these values.
    Points(Vec<Value>),
    /// Between these ends.
    Range(Bound<Value>, Bound<Value>),
}

/// `v` as a value of a column of type `ty` that compares as the engine
/// compares them, if there is one.
fn probe(ty: DataType, v: &Value) -> Option<Value> {
    match (ty, v) {
        (DataType::Int, Value::Int(_))
        | (DataType::Float, Value::Float(_))
        | (DataType::Text, Value::Text(_)) => Some(v.clone()),
        (DataType::Float, Value::Int(i)) => Some(Value::Float(*i as f64)),
        _ => None,
    }
}

/// A literal operand (`5`, `-5`).
fn literal(e: &Expr) -> Option<Value> {
    match e {
        Expr::Literal(v) => Some(v.clone()),
        Expr::Neg(inner) => match inner.as_ref() {
            Expr::Literal(Value::Int(i)) => i.checked_neg().map(Value::Int),
            Expr::Literal(Value::Float(f)) => Some(Value::Float(-f)),
            _ => None,
        },
        _ => None,
    }
}

/// The conjuncts of `e` (`a AND b AND …`), flattened.
fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    // Iterative: an AND run is a Chain (see Expr::Chain) or a balanced
    // tree of bounded depth (sql/shape.rs).
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Binary {
                op: BinOp::And,
                l,
                r,
            } => {
                stack.push(r);
                stack.push(l);
            }
            Expr::Chain { first, rest } if rest.iter().all(|(op, _)| *op == BinOp::And) => {
                for (_, x) in rest.iter().rev() {
                    stack.push(x);
                }
                stack.push(first);
            }
            other => out.push(other),
        }
    }
}

/// The column constraint a conjunct states, if it is one the index can use.
fn constraint(e: &Expr, types: &[DataType]) -> Option<(usize, Constraint)> {
    let ty = |c: usize| types.get(c).copied();
    match e {
        Expr::Binary { op, l, r } => {
            let (c, v, op) = match (l.as_ref(), r.as_ref()) {
                (Expr::Column(c), other) => (*c, literal(other)?, *op),
                (other, Expr::Column(c)) => (*c, literal(other)?, flip(*op)?),
                _ => return None,
            };
            if v.is_null() {
                // `a = NULL`, `a < NULL`: never true; the filter says so.
                return None;
            }
            let v = probe(ty(c)?, &v)?;
            let k = match op {
                BinOp::Eq => Constraint::Points(vec![v]),
                BinOp::Lt => Constraint::Range(Bound::Unbounded, Bound::Excluded(v)),
                BinOp::LtEq => Constraint::Range(Bound::Unbounded, Bound::Included(v)),
                BinOp::Gt => Constraint::Range(Bound::Excluded(v), Bound::Unbounded),
                BinOp::GtEq => Constraint::Range(Bound::Included(v), Bound::Unbounded),
                _ => return None,
            };
            Some((c, k))
        }
        Expr::InList {
            e,
            list,
            negated: false,
        } => {
            let Expr::Column(c) = e.as_ref() else {
                return None;
            };
            let t = ty(*c)?;
            let mut points = Vec::with_capacity(list.len());
            for x in list {
                let v = literal(x)?;
                if !v.is_null() {
                    points.push(probe(t, &v)?);
                }
            }
            Some((*c, Constraint::Points(points)))
        }
        Expr::Between {
            e,
            lo,
            hi,
            negated: false,
        } => {
            let Expr::Column(c) = e.as_ref() else {
                return None;
            };
            let t = ty(*c)?;
            let (lo, hi) = (literal(lo)?, literal(hi)?);
            if lo.is_null() || hi.is_null() {
                return None;
            }
            Some((
                *c,
                Constraint::Range(
                    Bound::Included(probe(t, &lo)?),
                    Bound::Included(probe(t, &hi)?),
                ),
            ))
        }
        _ => None,
    }
}

/// `l op r` read as `r op' l`.
fn flip(op: BinOp) -> Option<BinOp> {
    Some(match op {
        BinOp::Eq => BinOp::Eq,
        BinOp::Lt => BinOp::Gt,
        BinOp::LtEq => BinOp::GtEq,
        BinOp::Gt => BinOp::Lt,
        BinOp::GtEq => BinOp::LtEq,
        _ => return None,
    })
}

/// The higher of two low ends.
fn max_lo(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    use Bound::*;
    match (&a, &b) {
        (Unbounded, _) => b,
        (_, Unbounded) => a,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => match x.sort_cmp(y) {
            Ordering::Less => b,
            Ordering::Greater => a,
            Ordering::Equal if matches!(a, Excluded(_)) => a,
            Ordering::Equal => b,
        },
    }
}

/// The lower of two high ends.
fn min_hi(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    use Bound::*;
    match (&a, &b) {
        (Unbounded, _) => b,
        (_, Unbounded) => a,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => match x.sort_cmp(y) {
            Ordering::Less => a,
            Ordering::Greater => b,
            Ordering::Equal if matches!(a, Excluded(_)) => a,
            Ordering::Equal => b,
        },
    }
}

/// The ranges of one column's constraints: the points of its first
/// equality or IN list if it has one, else the intersection of its ranges.
fn ranges(cs: Vec<Constraint>) -> Option<Vec<KeyRange>> {
    let mut lo = Bound::Unbounded;
    let mut hi = Bound::Unbounded;
    let mut any_range = false;
    for c in cs {
        match c {
            Constraint::Points(mut p) => {
                p.sort_by(|a, b| a.sort_cmp(b));
                p.dedup_by(|a, b| a.sort_cmp(b) == Ordering::Equal);
                return Some(p.into_iter().map(KeyRange::point).collect());
            }
            Constraint::Range(l, h) => {
                lo = max_lo(lo, l);
                hi = min_hi(hi, h);
                any_range = true;
            }
        }
    }
    if !any_range {
        return None;
    }
    let r = KeyRange { lo, hi };
    Some(if r.is_empty() { Vec::new() } else { vec![r] })
}

/// The index scan for a table version whose columns have `types`, given
/// the predicate its rows must meet (`None`: no usable index, or one that
/// would read too much of the table).
pub fn choose(data: &TableData, types: &[DataType], predicate: &Expr) -> Option<IndexChoice> {
    let mut cs = Vec::new();
    conjuncts(predicate, &mut cs);
    let mut by_column: Vec<(usize, Vec<Constraint>)> = Vec::new();
    for e in cs {
        if let Some((c, k)) = constraint(e, types) {
            match by_column.iter_mut().find(|(x, _)| *x == c) {
                Some((_, v)) => v.push(k),
                None => by_column.push((c, vec![k])),
            }
        }
    }
    // The candidate that reads the fewest rows (counted in the index), a
    // unique index first among equals; none if it would read more than a
    // quarter of the table (a full scan is cheaper then).
    let mut best: Option<(usize, bool, IndexChoice)> = None;
    for (column, cs) in by_column {
        let serves = |ix: &crate::index::KeyIndex| {
            ix.def
                .parts
                .first()
                .is_some_and(|p| p.column == column && p.prefix.is_none())
        };
        let Some(plain) = data.indexes.iter().position(serves) else {
            continue;
        };
        let unique_at = data
            .indexes
            .iter()
            .position(|ix| serves(ix) && ix.def.unique() && ix.def.parts.len() == 1);
        let index = unique_at.unwrap_or(plain);
        let Some(ranges) = ranges(cs) else {
            continue;
        };
        let ix = &data.indexes[index];
        let rows: usize = ranges.iter().map(|r| ix.count_in(&data.chunks, r)).sum();
        let unique = unique_at.is_some();
        let better = match &best {
            None => true,
            Some((n, u, _)) => rows < *n || (rows == *n && unique && !u),
        };
        if better {
            best = Some((
                rows,
                unique,
                IndexChoice {
                    index,
                    column,
                    ranges,
                },
            ));
        }
    }
    let total = data.rows();
    best.filter(|(n, _, _)| *n <= total / 4 || total < 64)
        .map(|(_, _, c)| c)
}

/// The leaf that reads `data` (a snapshot of `table`) for a filter
/// `pred` over its rows: an [`IndexScan`] when an index serves `pred`,
/// else a full [`TableScan`].
pub fn access(table: String, data: Arc<TableData>, pred: &Expr) -> Box<dyn Operator> {
    let types: Vec<DataType> = match data.chunks.first() {
        Some(c) => c.columns.iter().map(|c| c.data_type()).collect(),
        None => return Box::new(TableScan::new(table, data)),
    };
    match choose(&data, &types, pred) {
        Some(c) => Box::new(IndexScan::new(table, data, c.index, types, c.ranges)),
        None => Box::new(TableScan::new(table, data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Batch, Column};
    use crate::index::{IndexDef, IndexKind, KeyPart};

    /// 100 rows: column 0 is 0..100 (primary key), column 1 is i % 10
    /// (indexed), column 2 text (not indexed).
    fn data() -> TableData {
        let def = |name: &str, kind, column| IndexDef {
            name: name.into(),
            kind,
            parts: vec![KeyPart {
                column,
                prefix: None,
                desc: false,
            }],
        };
        let mut d = TableData::with_index_defs(vec![
            def("PRIMARY", IndexKind::Primary, 0),
            def("ib", IndexKind::Plain, 1),
        ]);
        let n = 100;
        let batch = Batch::new(
            vec![
                Arc::new(Column::ints((0..n).collect())),
                Arc::new(Column::floats((0..n).map(|i| (i % 10) as f64).collect())),
                Arc::new(Column::from_values(
                    DataType::Text,
                    &(0..n)
                        .map(|i| Value::Text(i.to_string().into()))
                        .collect::<Vec<_>>(),
                )),
            ],
            n as usize,
        );
        d.push_rows(&batch).unwrap();
        d
    }

    fn cmp(op: BinOp, c: usize, v: Value) -> Expr {
        Expr::Binary {
            op,
            l: Box::new(Expr::Column(c)),
            r: Box::new(Expr::Literal(v)),
        }
    }

    fn and(a: Expr, b: Expr) -> Expr {
        Expr::Binary {
            op: BinOp::And,
            l: Box::new(a),
            r: Box::new(b),
        }
    }

    const TYPES: [DataType; 3] = [DataType::Int, DataType::Float, DataType::Text];

    #[test]
    fn the_candidate_reading_fewest_rows_wins_and_ranges_intersect() {
        let d = data();
        // id > 3 holds 96 rows, b = 2 holds 10.
        let p = and(
            cmp(BinOp::Gt, 0, Value::Int(3)),
            cmp(BinOp::Eq, 1, Value::Int(2)),
        );
        let c = choose(&d, &TYPES, &p).unwrap();
        assert_eq!((c.index, c.column), (1, 1));
        assert_eq!(c.ranges, vec![KeyRange::point(Value::Float(2.0))]);
        // id in (3, 9]: 6 rows, fewer than b = 2's 10.
        let p = and(
            and(
                cmp(BinOp::Gt, 0, Value::Int(3)),
                cmp(BinOp::LtEq, 0, Value::Int(9)),
            ),
            cmp(BinOp::Eq, 1, Value::Int(2)),
        );
        let c = choose(&d, &TYPES, &p).unwrap();
        assert_eq!((c.index, c.column), (0, 0));
        assert_eq!(
            c.ranges,
            vec![KeyRange {
                lo: Bound::Excluded(Value::Int(3)),
                hi: Bound::Included(Value::Int(9)),
            }]
        );
        let empty = and(
            cmp(BinOp::Gt, 0, Value::Int(9)),
            cmp(BinOp::Lt, 0, Value::Int(3)),
        );
        assert!(choose(&d, &TYPES, &empty).unwrap().ranges.is_empty());
        // Most of the table: a full scan is cheaper.
        assert!(choose(&d, &TYPES, &cmp(BinOp::Gt, 0, Value::Int(3))).is_none());
    }

    #[test]
    fn in_lists_are_sorted_points_and_mismatched_types_are_not_used() {
        let d = data();
        let p = Expr::InList {
            e: Box::new(Expr::Column(0)),
            list: [3, 1, 3, 2]
                .into_iter()
                .map(|i| Expr::Literal(Value::Int(i)))
                .chain([Expr::Literal(Value::Null)])
                .collect(),
            negated: false,
        };
        let c = choose(&d, &TYPES, &p).unwrap();
        let want: Vec<KeyRange> = [1, 2, 3]
            .into_iter()
            .map(|i| KeyRange::point(Value::Int(i)))
            .collect();
        assert_eq!(c.ranges, want);
        // '5' = an INT column compares numerically: not through the index.
        assert!(choose(&d, &TYPES, &cmp(BinOp::Eq, 0, Value::Text("5".into()))).is_none());
        assert!(choose(&d, &TYPES, &cmp(BinOp::Eq, 0, Value::Float(1.5))).is_none());
        // No index on column 2; NOT IN is no range.
        assert!(choose(&d, &TYPES, &cmp(BinOp::Eq, 2, Value::Text("a".into()))).is_none());
        assert!(choose(&d, &TYPES, &cmp(BinOp::NotEq, 0, Value::Int(1))).is_none());
    }
}
