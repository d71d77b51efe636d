//! Join planning: the FROM clause, its ON conditions and the WHERE clause
//! read as one problem.
//!
//! A SELECT's FROM items, the ON conditions of its inner joins and its WHERE
//! are one *group*: members (a table, a subquery, a `generate_series`, or an
//! outer join planned as a unit) and a list of conjuncts over them. For
//! each group the planner
//!
//! 1. folds constant subexpressions ([`fold`]); a conjunct that folds to
//!    false or NULL empties the group (`WHERE 1 = 0` reads nothing), one that
//!    folds to true is dropped;
//! 2. turns a `LEFT` / `RIGHT JOIN` into an inner one when a conjunct rejects
//!    its NULL-extended rows (`a LEFT JOIN b ON … WHERE b.y = 5`), as MySQL
//!    does (its "outer join simplification");
//! 3. pushes each conjunct over one member down to it: a Filter right above
//!    the table's scan;
//! 4. orders the joins greedily by estimated cardinality ("greedy operator
//!    ordering"): of all pairs of parts connected by an equality, the pair
//!    with the smallest estimated result is joined first, its smaller side
//!    building the hash table; two parts are cross-joined only when no
//!    equality connects any pair (the join graph is not connected);
//! 5. uses every equality between the two sides (`x.a = y.b`, or
//!    expressions over one side each) as a hash key, and applies each other
//!    conjunct at the first join where all its tables are present.
//!
//! Outer joins are not reordered: the preserved side and the NULL-supplying
//! side are groups of their own. A conjunct over the preserved side only
//! (WHERE) goes down into it; an ON conjunct over the NULL-supplying side only
//! goes down into that side; the rest of the ON decides matches.
//!
//! Columns are numbered once, in FROM order (the order `SELECT *` shows):
//! every conjunct is compiled against that *global* scope and remapped to
//! the layout of the operator it lands on; a final projection restores FROM
//! order when the joins were reordered.
//!
//! Estimates: a table's row count from its snapshot, a `generate_series`'
//! length; each pushed conjunct multiplies by a fixed selectivity
//! ([`selectivity`]); an equi-join of `L` and `R` rows is
//! `L · R / min(rows of the two key columns' tables)`: a key is assumed
//! unique in the smaller table (a foreign key join keeps the larger side's
//! rows). No statistics beyond row counts are kept.

use sqlparser::ast;

use super::compile::{chain, const_eval, contains_agg, Compiler};
use super::scope::Scope;
use super::select::plan_factor;
use super::types::{ident_name, MAX_JOIN_TABLES};
use super::{Plan, PlanCx};
use crate::data::{DataType, Value};
use crate::expr::{BinOp, Expr, Func};
use crate::pipeline::join::{FilterSlot, JoinKind};
use crate::sql::error::SqlError;

/// No member owns this column (see [`Tables::owner`]).
const NONE: usize = usize::MAX;

/// The FROM clause as read: its leaves in FROM order and the global scope.
#[derive(Default)]
struct Tables {
    /// Each leaf's plan, taken when it is planned.
    plans: Vec<Option<Plan>>,
    /// Each leaf's first global column and width.
    spans: Vec<(usize, usize)>,
    /// Every column, in FROM order.
    scope: Scope,
}

/// A member of a group.
enum Member {
    /// A leaf of [`Tables`].
    Leaf(usize),
    /// An outer join, planned as one unit.
    Outer(Box<Outer>),
}

/// Members joined by inner joins, and conjuncts over them.
#[derive(Default)]
struct Group {
    members: Vec<Member>,
    conds: Vec<Expr>,
}

impl Group {
    fn of(m: Member) -> Group {
        Group {
            members: vec![m],
            conds: vec![],
        }
    }
}

/// `preserved LEFT JOIN nullable ON on` (a RIGHT JOIN with its sides
/// swapped).
struct Outer {
    preserved: Group,
    nullable: Group,
    on: Vec<Expr>,
}

/// A planned part: its plan, which global column each output column is,
/// and its estimated rows.
struct Node {
    plan: Plan,
    layout: Vec<usize>,
    rows: f64,
}

/// What a plan of a group needs besides the group: the leaves, the global
/// column types, and the qualified column names for EXPLAIN.
struct Cx {
    tables: Tables,
    types: Vec<DataType>,
    names: Vec<String>,
}

fn internal(what: &str) -> SqlError {
    SqlError::Unsupported(format!(
        "a join plan ({what}: a planner bug, please report)"
    ))
}

/// A SELECT's FROM clause and WHERE, read and compiled, not yet planned:
/// the select list is compiled against [`FromClause::scope`] first, so that
/// the plan carries only the columns something reads.
pub(super) struct FromClause {
    tables: Tables,
    top: Group,
}

impl FromClause {
    /// Every FROM column, in FROM order.
    pub(super) fn scope(&self) -> &Scope {
        &self.tables.scope
    }
    /// The plan: it outputs every FROM column in FROM order; a column that
    /// `needed` (by position in [`FromClause::scope`]) says nothing above
    /// reads is left out of the joins and is NULL in the output.
    pub(super) fn plan(self, needed: Option<&[bool]>) -> Result<Plan, SqlError> {
        finish(self.tables, self.top, needed)
    }
}

/// Reads a SELECT's FROM clause and compiles its ON conditions and WHERE
/// (`selection`) into conjuncts over the FROM columns.
pub(super) fn read_from(
    from: &[ast::TableWithJoins],
    selection: Option<&ast::Expr>,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<FromClause, SqlError> {
    // MySQL's limit, and a bound on the depth of the join tree (nested
    // joins are counted as they are read).
    let tables: usize = from.iter().map(|t| 1 + t.joins.len()).sum();
    if tables > MAX_JOIN_TABLES {
        return Err(SqlError::TooManyTables(MAX_JOIN_TABLES));
    }
    let mut t = Tables::default();
    let mut top = Group::default();
    if from.is_empty() {
        // `SELECT … [WHERE …]` without FROM: one row of no columns.
        t.plans.push(Some(Plan::Values {
            rows: vec![vec![]],
            types: vec![],
        }));
        t.spans.push((0, 0));
        top.members.push(Member::Leaf(0));
    }
    for item in from {
        let g = read_item(&mut t, item, cx, c)?;
        top.members.extend(g.members);
        top.conds.extend(g.conds);
    }
    if let Some(w) = selection {
        if contains_agg(w) {
            return Err(SqlError::InvalidGroupFunction);
        }
        let pred = c.compile(w, &t.scope, "where clause")?;
        split_conjuncts(pred, &mut top.conds);
    }
    Ok(FromClause { tables: t, top })
}

/// Plans a parenthesised join (`(a JOIN b ON …) AS x`) on its own.
pub(super) fn plan_nested(
    item: &ast::TableWithJoins,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    let mut t = Tables::default();
    let g = read_item(&mut t, item, cx, c)?;
    let scope = t.scope.clone();
    Ok((finish(t, g, None)?, scope))
}

/// Plans the top group and restores FROM order.
fn finish(tables: Tables, top: Group, needed: Option<&[bool]>) -> Result<Plan, SqlError> {
    let scope = &tables.scope;
    let n = scope.cols.len();
    let names = scope
        .cols
        .iter()
        .map(|col| match &col.qualifier {
            Some(q) => format!("{q}.{}", col.name),
            None => col.name.clone(),
        })
        .collect();
    let live = (0..n)
        .map(|i| needed.is_none_or(|nd| nd.get(i).copied().unwrap_or(true)))
        .collect::<Vec<_>>();
    let mut cx = Cx {
        types: scope.types(),
        tables,
        names,
    };
    let node = plan_group(&mut cx, top, &live)?;
    if node.layout.iter().copied().eq(0..n) {
        return Ok(node.plan);
    }
    let mut pos = vec![NONE; n];
    for (i, g) in node.layout.iter().enumerate() {
        if let Some(p) = pos.get_mut(*g) {
            *p = i;
        }
    }
    let mut exprs = Vec::with_capacity(n);
    let mut shown = Vec::new();
    for (g, p) in pos.into_iter().enumerate() {
        if p != NONE {
            exprs.push(Expr::Column(p));
            shown.push(cx.names[g].clone());
        } else if live[g] {
            return Err(internal("a needed column lost"));
        } else {
            // Read by nothing above.
            exprs.push(Expr::Literal(Value::Null));
        }
    }
    Ok(Plan::Project {
        input: Box::new(node.plan),
        exprs,
        types: cx.types.clone(),
        text: format!("FROM order: {}", shown.join(", ")),
    })
}

// ---------------------------------------------------------------------------
// Reading the FROM clause.

fn read_item(
    t: &mut Tables,
    item: &ast::TableWithJoins,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Group, SqlError> {
    let start = t.scope.cols.len();
    let mut cur = read_factor(t, &item.relation, cx, c)?;
    for j in &item.joins {
        use ast::JoinOperator as J;
        #[derive(PartialEq)]
        enum Kind {
            Inner,
            Left,
            Right,
        }
        let (kind, constraint) = match &j.join_operator {
            J::Join(k) | J::Inner(k) | J::StraightJoin(k) | J::CrossJoin(k) => (Kind::Inner, k),
            J::Left(k) | J::LeftOuter(k) => (Kind::Left, k),
            J::Right(k) | J::RightOuter(k) => (Kind::Right, k),
            other => {
                return Err(SqlError::Unsupported(
                    format!("the join {other:?}").chars().take(60).collect(),
                ))
            }
        };
        let mid = t.scope.cols.len();
        let right = read_factor(t, &j.relation, cx, c)?;
        let end = t.scope.cols.len();
        let conds = on_conds(t, constraint, (start, mid, end), c)?;
        cur = match kind {
            Kind::Inner => {
                cur.members.extend(right.members);
                cur.conds.extend(right.conds);
                cur.conds.extend(conds);
                cur
            }
            Kind::Left => Group::of(Member::Outer(Box::new(Outer {
                preserved: cur,
                nullable: right,
                on: conds,
            }))),
            Kind::Right => Group::of(Member::Outer(Box::new(Outer {
                preserved: right,
                nullable: cur,
                on: conds,
            }))),
        };
    }
    Ok(cur)
}

fn read_factor(
    t: &mut Tables,
    tf: &ast::TableFactor,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Group, SqlError> {
    if let ast::TableFactor::NestedJoin {
        table_with_joins,
        alias: None,
    } = tf
    {
        return read_item(t, table_with_joins, cx, c);
    }
    if t.plans.len() >= MAX_JOIN_TABLES {
        return Err(SqlError::TooManyTables(MAX_JOIN_TABLES));
    }
    let (plan, scope) = plan_factor(tf, cx, c)?;
    let first = t.scope.cols.len();
    t.spans.push((first, scope.cols.len()));
    t.plans.push(Some(plan));
    t.scope.cols.extend(scope.cols);
    Ok(Group::of(Member::Leaf(t.plans.len() - 1)))
}

/// An ON / USING condition as conjuncts over global columns. The left side
/// of the join holds global columns `start..mid`, the right `mid..end`; an
/// ON sees only those (MySQL: `a, b JOIN c ON a.x = c.y` is error 1054).
fn on_conds(
    t: &Tables,
    constraint: &ast::JoinConstraint,
    (start, mid, end): (usize, usize, usize),
    c: &Compiler<'_>,
) -> Result<Vec<Expr>, SqlError> {
    let local = |a: usize, b: usize| Scope {
        cols: t.scope.cols[a..b].to_vec(),
    };
    let mut out = Vec::new();
    match constraint {
        ast::JoinConstraint::On(e) => {
            let local_pred = c.compile(e, &local(start, end), "on clause")?;
            let pred = map_columns(&local_pred, &|i| Some(i + start))
                .ok_or_else(|| internal("ON columns"))?;
            split_conjuncts(pred, &mut out);
        }
        ast::JoinConstraint::Using(cols) => {
            let (l, r) = (local(start, mid), local(mid, end));
            for col in cols {
                let id = [ast::Ident::new(ident_name(col))];
                out.push(Expr::Binary {
                    op: BinOp::Eq,
                    l: Box::new(Expr::Column(start + l.resolve(&id, "from clause")?)),
                    r: Box::new(Expr::Column(mid + r.resolve(&id, "from clause")?)),
                });
            }
        }
        ast::JoinConstraint::UsingAlias(..) => {
            return Err(SqlError::Unsupported("USING … AS".into()))
        }
        ast::JoinConstraint::Natural => return Err(SqlError::Unsupported("NATURAL JOIN".into())),
        ast::JoinConstraint::None => {}
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Expressions: conjuncts, columns, remapping, folding.

/// Appends the conjuncts of `e` (its `AND` operands, at any nesting of
/// `AND` runs) to `out`, in order.
fn split_conjuncts(e: Expr, out: &mut Vec<Expr>) {
    // An explicit stack, in reverse, so the order is kept.
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Binary {
                op: BinOp::And,
                l,
                r,
            } => {
                stack.push(*r);
                stack.push(*l);
            }
            Expr::Chain { first, rest } if rest.iter().all(|(op, _)| *op == BinOp::And) => {
                stack.extend(rest.into_iter().rev().map(|(_, x)| x));
                stack.push(*first);
            }
            other => out.push(other),
        }
    }
}

/// `e` with every column `i` replaced by `f(i)`; `None` if `f` has no
/// answer for a column. (Recursion over a compiled expression: its depth is
/// bounded by [`crate::sql::shape`], as its evaluation's is.)
fn map_columns(e: &Expr, f: &dyn Fn(usize) -> Option<usize>) -> Option<Expr> {
    let m = |x: &Expr| map_columns(x, f);
    let bm = |x: &Expr| m(x).map(Box::new);
    Some(match e {
        Expr::Column(i) => Expr::Column(f(*i)?),
        Expr::Literal(v) => Expr::Literal(v.clone()),
        // A correlated subquery's parameter: not a FROM column.
        Expr::Param { .. } => e.clone(),
        Expr::Binary { op, l, r } => Expr::Binary {
            op: *op,
            l: bm(l)?,
            r: bm(r)?,
        },
        Expr::Chain { first, rest } => Expr::Chain {
            first: bm(first)?,
            rest: rest
                .iter()
                .map(|(op, x)| Some((*op, m(x)?)))
                .collect::<Option<_>>()?,
        },
        Expr::Neg(x) => Expr::Neg(bm(x)?),
        Expr::Not(x) => Expr::Not(bm(x)?),
        Expr::IsNull { e, negated } => Expr::IsNull {
            e: bm(e)?,
            negated: *negated,
        },
        Expr::InList { e, list, negated } => Expr::InList {
            e: bm(e)?,
            list: list.iter().map(m).collect::<Option<_>>()?,
            negated: *negated,
        },
        Expr::Between { e, lo, hi, negated } => Expr::Between {
            e: bm(e)?,
            lo: bm(lo)?,
            hi: bm(hi)?,
            negated: *negated,
        },
        Expr::Like {
            e,
            pattern,
            negated,
        } => Expr::Like {
            e: bm(e)?,
            pattern: bm(pattern)?,
            negated: *negated,
        },
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => Expr::Case {
            operand: match operand {
                Some(o) => Some(bm(o)?),
                None => None,
            },
            whens: whens
                .iter()
                .map(|(w, t)| Some((m(w)?, m(t)?)))
                .collect::<Option<_>>()?,
            otherwise: match otherwise {
                Some(o) => Some(bm(o)?),
                None => None,
            },
        },
        Expr::Cast { e, ty } => Expr::Cast { e: bm(e)?, ty: *ty },
        Expr::Func { f: func, args } => Expr::Func {
            f: *func,
            args: args.iter().map(m).collect::<Option<_>>()?,
        },
    })
}

/// `e` over a part whose output column `k` is global column `layout[k]`.
fn remap(e: &Expr, layout: &[usize], width: usize) -> Result<Expr, SqlError> {
    let mut pos = vec![NONE; width];
    for (k, g) in layout.iter().enumerate() {
        if let Some(p) = pos.get_mut(*g) {
            *p = k;
        }
    }
    map_columns(e, &|g| pos.get(g).copied().filter(|p| *p != NONE))
        .ok_or_else(|| internal("a column not below its conjunct"))
}

/// The global columns `e` reads.
fn columns(e: &Expr) -> Vec<usize> {
    let mut out = Vec::new();
    e.visit(&mut |x| {
        if let Expr::Column(i) = x {
            out.push(*i);
        }
    });
    out
}

/// The operands of a node, for folding.
fn operands(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Column(_) | Expr::Literal(_) | Expr::Param { .. } => vec![],
        Expr::Binary { l, r, .. } => vec![l, r],
        Expr::Chain { first, rest } => std::iter::once(&**first)
            .chain(rest.iter().map(|(_, x)| x))
            .collect(),
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull { e: x, .. } | Expr::Cast { e: x, .. } => {
            vec![x]
        }
        Expr::InList { e, list, .. } => std::iter::once(&**e).chain(list).collect(),
        Expr::Between { e, lo, hi, .. } => vec![e, lo, hi],
        Expr::Like { e, pattern, .. } => vec![e, pattern],
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => operand
            .iter()
            .map(|o| &**o)
            .chain(whens.iter().flat_map(|(w, t)| [w, t]))
            .chain(otherwise.iter().map(|o| &**o))
            .collect(),
        Expr::Func { args, .. } => args.iter().collect(),
    }
}

/// Constant folding: every subexpression without columns (and without
/// `SLEEP`, which must be waited where it is evaluated) becomes its value,
/// when evaluating it succeeds and gives a value of the type the
/// subexpression has (so that no comparison changes its kernel); an error
/// (`9223372036854775807 + 1`) is left for execution, which raises it only
/// if the expression is evaluated at all. `0 AND x` is 0 and `1 OR x` is 1
/// whatever `x` is, as in MySQL, unless `x` sleeps.
pub(super) fn fold(e: Expr) -> Expr {
    let f = |x: Box<Expr>| Box::new(fold(*x));
    let e = match e {
        // A parameter varies per outer row: never a constant.
        Expr::Column(_) | Expr::Literal(_) | Expr::Param { .. } => return e,
        Expr::Binary { op, l, r } => Expr::Binary {
            op,
            l: f(l),
            r: f(r),
        },
        Expr::Chain { first, rest } => Expr::Chain {
            first: f(first),
            rest: rest.into_iter().map(|(op, x)| (op, fold(x))).collect(),
        },
        Expr::Neg(x) => Expr::Neg(f(x)),
        Expr::Not(x) => Expr::Not(f(x)),
        Expr::IsNull { e, negated } => Expr::IsNull { e: f(e), negated },
        Expr::InList { e, list, negated } => Expr::InList {
            e: f(e),
            list: list.into_iter().map(fold).collect(),
            negated,
        },
        Expr::Between { e, lo, hi, negated } => Expr::Between {
            e: f(e),
            lo: f(lo),
            hi: f(hi),
            negated,
        },
        Expr::Like {
            e,
            pattern,
            negated,
        } => Expr::Like {
            e: f(e),
            pattern: f(pattern),
            negated,
        },
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => Expr::Case {
            operand: operand.map(f),
            whens: whens.into_iter().map(|(w, t)| (fold(w), fold(t))).collect(),
            otherwise: otherwise.map(f),
        },
        Expr::Cast { e, ty } => Expr::Cast { e: f(e), ty },
        Expr::Func { f: func, args } => Expr::Func {
            f: func,
            args: args.into_iter().map(fold).collect(),
        },
    };
    let ops = operands(&e);
    if matches!(e, Expr::Func { f: Func::Sleep, .. }) {
        return e;
    }
    if ops.iter().all(|x| matches!(x, Expr::Literal(_))) {
        return match const_eval(&e) {
            Ok(v) if v.is_null() || v.data_type() == e.data_type(&[]) => Expr::Literal(v),
            _ => e,
        };
    }
    // `0 AND x`, `1 OR x`.
    let absorbing = match &e {
        Expr::Binary { op, .. } => Some(*op),
        Expr::Chain { rest, .. } if rest.iter().all(|(op, _)| *op == rest[0].0) => {
            rest.first().map(|(op, _)| *op)
        }
        _ => None,
    };
    let absorbed = match absorbing {
        Some(BinOp::And) => Some(false),
        Some(BinOp::Or) => Some(true),
        _ => None,
    };
    if let Some(want) = absorbed {
        let hit = ops
            .iter()
            .any(|x| matches!(x, Expr::Literal(v) if v.truthy() == Some(want)));
        if hit && !ops.iter().any(|x| x.has_sleep()) {
            return Expr::Literal(Value::Int(want as i64));
        }
    }
    e
}

/// Whether `e` (a conjunct) is false or NULL whenever the columns `null`
/// says are NULL are: then it rejects the NULL-extended rows of an outer
/// join whose NULL-supplying side has those columns. Conservative: a
/// comparison (not `<=>`), `IS NOT NULL`, `[NOT] BETWEEN`, `[NOT] LIKE` or
/// `[NOT] IN` of an operand that is NULL when one of those columns is
/// (a column, or arithmetic or a cast over one).
fn rejects_nulls(e: &Expr, null: &dyn Fn(usize) -> bool) -> bool {
    fn strict(e: &Expr, null: &dyn Fn(usize) -> bool) -> bool {
        match e {
            Expr::Column(i) => null(*i),
            Expr::Binary { op, l, r } => {
                matches!(
                    op,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::Mod
                ) && (strict(l, null) || strict(r, null))
            }
            Expr::Chain { first, rest } => {
                rest.iter().all(|(op, _)| {
                    matches!(
                        op,
                        BinOp::Add
                            | BinOp::Sub
                            | BinOp::Mul
                            | BinOp::Div
                            | BinOp::IntDiv
                            | BinOp::Mod
                    )
                }) && (strict(first, null) || rest.iter().any(|(_, x)| strict(x, null)))
            }
            Expr::Neg(x) | Expr::Cast { e: x, .. } => strict(x, null),
            _ => false,
        }
    }
    match e {
        Expr::Binary { op, l, r } => {
            matches!(
                op,
                BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
            ) && (strict(l, null) || strict(r, null))
        }
        Expr::IsNull {
            e: x,
            negated: true,
        } => strict(x, null),
        Expr::Between { e: x, .. } | Expr::Like { e: x, .. } | Expr::InList { e: x, .. } => {
            strict(x, null)
        }
        _ => false,
    }
}

/// The fraction of rows a conjunct over one table keeps, guessed from its
/// shape (no statistics).
fn selectivity(e: &Expr) -> f64 {
    match e {
        Expr::Binary { op, .. } => match op {
            BinOp::Eq | BinOp::NullSafeEq => 0.1,
            BinOp::NotEq => 0.9,
            BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => 0.33,
            _ => 0.5,
        },
        Expr::Between { negated: false, .. } | Expr::Like { negated: false, .. } => 0.25,
        Expr::InList {
            negated: false,
            list,
            ..
        } => (0.1 * list.len() as f64).min(0.5),
        Expr::IsNull { negated: false, .. } => 0.1,
        _ => 0.5,
    }
}

/// Rows a plan is expected to produce (row counts are known for tables and
/// series; the rest is guessed).
fn estimate(p: &Plan) -> f64 {
    match p {
        Plan::Scan { data, .. } => data.rows() as f64,
        Plan::Series { start, stop, step } => {
            let n = (*stop as i128 - *start as i128) / *step as i128 + 1;
            n.max(0) as f64
        }
        Plan::Values { rows, .. } => rows.len() as f64,
        Plan::Filter { input, pred, .. } => estimate(input) * selectivity(pred),
        Plan::Project { input, .. } => estimate(input),
        Plan::Sort { input, limit, .. } => {
            let n = estimate(input);
            limit.map_or(n, |l| n.min(l as f64))
        }
        Plan::Limit {
            input,
            offset,
            limit,
        } => {
            let n = (estimate(input) - *offset as f64).max(0.0);
            limit.map_or(n, |l| n.min(l as f64))
        }
        Plan::Aggregate { input, keys, .. } => {
            if keys.is_empty() {
                1.0
            } else {
                estimate(input).sqrt().max(1.0)
            }
        }
        Plan::Join { left, right, .. } => estimate(left).max(estimate(right)),
        Plan::Union { inputs, .. } => inputs.iter().map(estimate).sum(),
        // Not a FROM item (UPDATE, DELETE, …): a guess.
        _ => 1000.0,
    }
}

// ---------------------------------------------------------------------------
// Key filters (applied while lowering).

/// Output columns of a plan, where cheaply known (joins, projections,
/// filters, series); `None` otherwise.
fn width(p: &Plan) -> Option<usize> {
    let mut extra = 0;
    let mut node = p;
    loop {
        match node {
            Plan::Join {
                emit: Some((l, r)), ..
            } => return Some(extra + l.len() + r.len()),
            Plan::Join {
                emit: None,
                left,
                right_types,
                ..
            } => {
                extra += right_types.len();
                node = left;
            }
            Plan::Project { exprs, .. } => return Some(extra + exprs.len()),
            Plan::Filter { input, .. } => node = input,
            Plan::Series { .. } => return Some(extra + 1),
            _ => return None,
        }
    }
}

/// Where the key filter of a join (probe side `probe`, left keys `keys`)
/// is applied besides the join itself: for an inner join on one integer key
/// that is a column of its probe input, the deepest join down the probe
/// side (through the probe inputs of joins, filters and plain column
/// projections) whose probe input still holds that column unchanged.
/// Gives that join the filter's slot and returns the slot, for the join to
/// publish its filter in; `None` when there is no such join.
///
/// Dropping rows there is safe: each of them reaches this join with the
/// same key, which its build side lacks, and an inner join drops it (joins
/// in between are inner or left joins, whose rows keep the probe side's
/// columns; filters and projections are row by row).
pub(super) fn push_key_filter(
    probe: &mut Plan,
    keys: &[Expr],
    int_keys: bool,
    kind: JoinKind,
) -> Option<FilterSlot> {
    let ([Expr::Column(key)], true, JoinKind::Inner) = (keys, int_keys, kind) else {
        return None;
    };
    // Walk down (a loop: join trees may be deep), remembering the deepest
    // join reached: its depth in steps and the column in its probe input.
    let mut col = *key;
    let mut node: &Plan = probe;
    let mut depth = 0;
    let mut found = None;
    loop {
        match node {
            Plan::Join { left, emit, .. } => {
                let in_left = match emit {
                    Some((l, _)) => l.get(col).copied(),
                    None => width(left).filter(|w| col < *w).map(|_| col),
                };
                let Some(c) = in_left else { break };
                found = Some((depth, c));
                col = c;
                node = left;
            }
            Plan::Filter { input, .. } => node = input,
            Plan::Project { input, exprs, .. } => match exprs.get(col) {
                Some(Expr::Column(c)) => {
                    col = *c;
                    node = input;
                }
                _ => break,
            },
            _ => break,
        }
        depth += 1;
    }
    let (target, c) = found?;
    let mut node: &mut Plan = probe;
    for _ in 0..target {
        node = match node {
            Plan::Join { left, .. } => left,
            Plan::Filter { input, .. } | Plan::Project { input, .. } => input,
            _ => return None,
        };
    }
    let Plan::Join { filters, .. } = node else {
        return None;
    };
    let slot = FilterSlot::default();
    filters.push((c, slot.clone()));
    Some(slot)
}

// ---------------------------------------------------------------------------
// Planning a group.

/// The global columns of a group's members.
fn group_columns(t: &Tables, g: &Group, out: &mut Vec<usize>) {
    for m in &g.members {
        member_columns(t, m, out);
    }
}

fn member_columns(t: &Tables, m: &Member, out: &mut Vec<usize>) {
    match m {
        Member::Leaf(i) => {
            if let Some((first, width)) = t.spans.get(*i) {
                out.extend(*first..first + width);
            }
        }
        Member::Outer(o) => {
            group_columns(t, &o.preserved, out);
            group_columns(t, &o.nullable, out);
        }
    }
}

/// A part with no rows and the columns of `g`.
fn empty_node(cx: &Cx, g: &Group) -> Node {
    let mut layout = Vec::new();
    group_columns(&cx.tables, g, &mut layout);
    Node {
        plan: Plan::Values {
            rows: vec![],
            types: layout.iter().map(|c| cx.types[*c]).collect(),
        },
        layout,
        rows: 0.0,
    }
}

/// A conjunct of a group: which members it reads (a bit each), and its
/// two sides when it is an equality usable as a hash key.
struct Cond {
    expr: Expr,
    mask: u64,
    equi: Option<Equi>,
}

struct Equi {
    l: Expr,
    r: Expr,
    lmask: u64,
    rmask: u64,
    /// Rows of the largest table each side reads (its key's distinct values
    /// are assumed at most that).
    lbase: f64,
    rbase: f64,
}

/// Whether `a = b` can be a hash key: hashing must agree with SQL equality,
/// which holds for numbers with numbers and text with text (a number with a
/// text compares as numbers: `1 = '1.0'` stays a residual condition).
fn hashable(a: DataType, b: DataType) -> bool {
    use DataType::*;
    matches!((a, b), (Int | Float, Int | Float) | (Text, Text))
}

/// Plans a group; `live` says which global columns something above reads
/// (a column no one reads is dropped right above its table's scan).
fn plan_group(cx: &mut Cx, g: Group, live: &[bool]) -> Result<Node, SqlError> {
    let Group { mut members, conds } = g;
    // 1. Fold; a false conjunct empties the group.
    let mut folded = Vec::with_capacity(conds.len());
    for e in conds {
        match fold(e) {
            Expr::Literal(v) if v.truthy() == Some(true) => {}
            Expr::Literal(_) => {
                return Ok(empty_node(
                    cx,
                    &Group {
                        members,
                        conds: vec![],
                    },
                ))
            }
            e => folded.push(e),
        }
    }
    let mut conds = folded;
    // 2. Outer joins whose NULL-extended rows a conjunct rejects are inner.
    let width = cx.types.len();
    let mut i = 0;
    while i < members.len() {
        let convert = match &members[i] {
            Member::Outer(o) => {
                let mut cols = Vec::new();
                group_columns(&cx.tables, &o.nullable, &mut cols);
                let mut null = vec![false; width];
                for c in cols {
                    if let Some(x) = null.get_mut(c) {
                        *x = true;
                    }
                }
                let is_null = |c: usize| null.get(c).copied().unwrap_or(false);
                conds.iter().any(|e| rejects_nulls(e, &is_null))
            }
            Member::Leaf(_) => false,
        };
        if convert {
            if let Member::Outer(o) = members.remove(i) {
                let Outer {
                    preserved,
                    nullable,
                    on,
                } = *o;
                // Its conjuncts may make earlier outer joins inner too.
                i = 0;
                for e in preserved.conds.into_iter().chain(nullable.conds).chain(on) {
                    match fold(e) {
                        Expr::Literal(v) if v.truthy() == Some(true) => {}
                        Expr::Literal(_) => {
                            let mut all = preserved.members;
                            all.extend(nullable.members);
                            all.extend(members);
                            return Ok(empty_node(
                                cx,
                                &Group {
                                    members: all,
                                    conds: vec![],
                                },
                            ));
                        }
                        e => conds.push(e),
                    }
                }
                members.extend(preserved.members);
                members.extend(nullable.members);
            }
            continue;
        }
        i += 1;
    }
    if members.len() > 64 {
        return Err(SqlError::TooManyTables(MAX_JOIN_TABLES));
    }
    // 3. Who owns which column; conjuncts by the members they read.
    let mut owner = vec![NONE; width];
    let mut base = vec![0.0f64; members.len()];
    for (k, m) in members.iter().enumerate() {
        let mut cols = Vec::new();
        member_columns(&cx.tables, m, &mut cols);
        for c in cols {
            if let Some(o) = owner.get_mut(c) {
                *o = k;
            }
        }
    }
    let mask_of = |e: &Expr| -> Result<u64, SqlError> {
        let mut mask = 0u64;
        for c in columns(e) {
            match owner.get(c) {
                Some(&k) if k != NONE => mask |= 1 << k,
                _ => return Err(internal("a column outside its group")),
            }
        }
        Ok(mask)
    };
    let mut pushed: Vec<Vec<Expr>> = (0..members.len()).map(|_| Vec::new()).collect();
    let mut multi: Vec<(Expr, u64)> = Vec::new();
    let mut last: Vec<Expr> = Vec::new();
    for e in conds {
        if e.has_sleep() {
            last.push(e);
            continue;
        }
        let mask = mask_of(&e)?;
        match mask.count_ones() {
            0 => last.push(e),
            1 => pushed[mask.trailing_zeros() as usize].push(e),
            _ => multi.push((e, mask)),
        }
    }
    // What the joins of this group and everything above read.
    let mut live_here = live.to_vec();
    for e in multi.iter().map(|(e, _)| e).chain(&last) {
        for c in columns(e) {
            if let Some(x) = live_here.get_mut(c) {
                *x = true;
            }
        }
    }
    // 4. Plan each member, with its conjuncts.
    let mut parts: Vec<(Node, u64)> = Vec::with_capacity(members.len());
    for (k, (m, p)) in members.into_iter().zip(pushed).enumerate() {
        let (node, b) = match m {
            Member::Leaf(i) => {
                let plan = cx
                    .tables
                    .plans
                    .get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| internal("a table planned twice"))?;
                let (first, w) = cx.tables.spans[i];
                let rows = estimate(&plan);
                let node = Node {
                    plan,
                    layout: (first..first + w).collect(),
                    rows,
                };
                let node = filter(cx, node, p)?;
                (prune(cx, node, &live_here), rows)
            }
            Member::Outer(o) => {
                let node = plan_outer(cx, *o, p, &live_here)?;
                let rows = node.rows;
                (node, rows)
            }
        };
        base[k] = b;
        parts.push((node, 1 << k));
    }
    let base_of = |mask: u64| {
        (0..64)
            .filter(|k| mask & (1 << k) != 0)
            .map(|k| base.get(k).copied().unwrap_or(1.0))
            .fold(1.0f64, f64::max)
    };
    let mut conds: Vec<Cond> = Vec::with_capacity(multi.len());
    for (expr, mask) in multi {
        let mut equi = None;
        if let Expr::Binary {
            op: BinOp::Eq,
            l,
            r,
        } = &expr
        {
            let (lmask, rmask) = (mask_of(l)?, mask_of(r)?);
            if lmask != 0
                && rmask != 0
                && lmask & rmask == 0
                && hashable(l.data_type(&cx.types), r.data_type(&cx.types))
            {
                equi = Some(Equi {
                    l: (**l).clone(),
                    r: (**r).clone(),
                    lmask,
                    rmask,
                    lbase: base_of(lmask),
                    rbase: base_of(rmask),
                });
            }
        }
        conds.push(Cond { expr, mask, equi });
    }
    // 5. Greedy operator ordering.
    while parts.len() > 1 {
        let mut best: Option<(usize, usize, f64, f64)> = None;
        for a in 0..parts.len() {
            for b in a + 1..parts.len() {
                let (ma, mb) = (parts[a].1, parts[b].1);
                let mut div: Option<f64> = None;
                for c in &conds {
                    let Some(q) = &c.equi else { continue };
                    let across = (q.lmask & !ma == 0 && q.rmask & !mb == 0)
                        || (q.lmask & !mb == 0 && q.rmask & !ma == 0);
                    if across {
                        let d = q.lbase.min(q.rbase).max(1.0);
                        div = Some(div.map_or(d, |x: f64| x.max(d)));
                    }
                }
                let Some(div) = div else { continue };
                let (ra, rb) = (parts[a].0.rows, parts[b].0.rows);
                let est = ra * rb / div;
                let better = match best {
                    None => true,
                    Some((_, _, e, s)) => est < e || (est == e && ra + rb < s),
                };
                if better {
                    best = Some((a, b, est, ra + rb));
                }
            }
        }
        let (a, b, est) = match best {
            Some((a, b, est, _)) => (a, b, est),
            None => {
                // Not connected: cross-join the two smallest parts.
                let mut order: Vec<usize> = (0..parts.len()).collect();
                order.sort_by(|x, y| parts[*x].0.rows.total_cmp(&parts[*y].0.rows));
                let (a, b) = (order[0].min(order[1]), order[0].max(order[1]));
                (a, b, parts[a].0.rows * parts[b].0.rows)
            }
        };
        // `b > a`: remove `b` first.
        let (nb, mb) = parts.remove(b);
        let (na, ma) = parts.remove(a);
        // The larger side streams (probes); the smaller one is built.
        let ((probe, mp), (build, mbuild)) = if na.rows >= nb.rows {
            ((na, ma), (nb, mb))
        } else {
            ((nb, mb), (na, ma))
        };
        let mut keys = Vec::new();
        let mut residual = Vec::new();
        let mut rest = Vec::with_capacity(conds.len());
        for c in conds {
            if c.mask & !(mp | mbuild) != 0 {
                rest.push(c);
                continue;
            }
            match c.equi {
                Some(q) if q.lmask & !mp == 0 && q.rmask & !mbuild == 0 => keys.push((q.l, q.r)),
                Some(q) if q.rmask & !mp == 0 && q.lmask & !mbuild == 0 => keys.push((q.r, q.l)),
                _ => residual.push(c.expr),
            }
        }
        conds = rest;
        // Read after this join: above the group, and by the conjuncts still
        // to apply.
        let mut out = live.to_vec();
        for e in conds.iter().map(|c| &c.expr).chain(&last) {
            mark(&mut out, e);
        }
        let node = join_nodes(cx, probe, build, keys, residual, JoinKind::Inner, est, &out)?;
        parts.push((node, mp | mbuild));
    }
    let (node, _) = parts.pop().ok_or_else(|| internal("an empty group"))?;
    if !conds.is_empty() {
        return Err(internal("a conjunct left over"));
    }
    // Conjuncts without columns, and those that sleep, last and in order.
    filter(cx, node, last)
}

/// `node` filtered by `conds` (none: unchanged).
fn filter(cx: &Cx, node: Node, conds: Vec<Expr>) -> Result<Node, SqlError> {
    if conds.is_empty() {
        return Ok(node);
    }
    let width = cx.types.len();
    let mut rows = node.rows;
    let mut local = Vec::with_capacity(conds.len());
    for e in &conds {
        rows *= selectivity(e);
        local.push(remap(e, &node.layout, width)?);
    }
    let text = conds
        .iter()
        .map(|e| e.display(&cx.names))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut local = local.into_iter();
    let first = local.next().ok_or_else(|| internal("an empty filter"))?;
    let pred = chain(first, local.map(|x| (BinOp::And, x)).collect());
    Ok(Node {
        plan: Plan::Filter {
            input: Box::new(node.plan),
            pred,
            text,
        },
        layout: node.layout,
        rows: if node.rows > 0.0 { rows.max(1.0) } else { 0.0 },
    })
}

/// `node` without the columns `live` says nothing above reads (a
/// projection, which shares the columns it keeps).
fn prune(cx: &Cx, node: Node, live: &[bool]) -> Node {
    let keep: Vec<usize> = (0..node.layout.len())
        .filter(|k| live.get(node.layout[*k]).copied().unwrap_or(true))
        .collect();
    if keep.len() == node.layout.len() {
        return node;
    }
    let layout: Vec<usize> = keep.iter().map(|k| node.layout[*k]).collect();
    Node {
        plan: Plan::Project {
            input: Box::new(node.plan),
            exprs: keep.iter().map(|k| Expr::Column(*k)).collect(),
            types: layout.iter().map(|g| cx.types[*g]).collect(),
            text: layout
                .iter()
                .map(|g| cx.names[*g].clone())
                .collect::<Vec<_>>()
                .join(", "),
        },
        layout,
        rows: node.rows,
    }
}

/// Marks the global columns `e` reads in `set`.
fn mark(set: &mut [bool], e: &Expr) {
    for c in columns(e) {
        if let Some(x) = set.get_mut(c) {
            *x = true;
        }
    }
}

/// Joins `probe` (streamed, preserved by a left join) and `build` (hashed)
/// on `keys` (global expressions over probe and build) with `residual`; the
/// output keeps the columns `out` says are read after the join.
#[allow(clippy::too_many_arguments)]
fn join_nodes(
    cx: &Cx,
    probe: Node,
    build: Node,
    keys: Vec<(Expr, Expr)>,
    residual: Vec<Expr>,
    kind: JoinKind,
    est: f64,
    out: &[bool],
) -> Result<Node, SqlError> {
    let width = cx.types.len();
    let mut text = keys
        .iter()
        .map(|(a, b)| format!("{} = {}", a.display(&cx.names), b.display(&cx.names)))
        .collect::<Vec<_>>()
        .join(" AND ");
    if !residual.is_empty() {
        let r = residual
            .iter()
            .map(|e| e.display(&cx.names))
            .collect::<Vec<_>>()
            .join(" AND ");
        // A nested loop's condition reads as its ON.
        text.push_str(&if keys.is_empty() {
            format!("on {r}")
        } else {
            format!(" filter {r}")
        });
    } else if keys.is_empty() {
        text.push_str("cross");
    }
    let int_keys = keys.len() == 1
        && keys[0].0.data_type(&cx.types) == DataType::Int
        && keys[0].1.data_type(&cx.types) == DataType::Int;
    let mut left_keys = Vec::with_capacity(keys.len());
    let mut right_keys = Vec::with_capacity(keys.len());
    for (a, b) in &keys {
        left_keys.push(remap(a, &probe.layout, width)?);
        right_keys.push(remap(b, &build.layout, width)?);
    }
    // The columns the output keeps: read after the join, or by its residual.
    let mut keep = out.to_vec();
    residual.iter().for_each(|e| mark(&mut keep, e));
    let kept = |layout: &[usize]| -> Vec<usize> {
        (0..layout.len())
            .filter(|k| keep.get(layout[*k]).copied().unwrap_or(true))
            .collect()
    };
    let (kl, kr) = (kept(&probe.layout), kept(&build.layout));
    let emit = (kl.len() < probe.layout.len() || kr.len() < build.layout.len())
        .then(|| (kl.clone(), kr.clone()));
    let right_types = build.layout.iter().map(|c| cx.types[*c]).collect();
    let mut layout: Vec<usize> = kl.iter().map(|k| probe.layout[*k]).collect();
    layout.extend(kr.iter().map(|k| build.layout[*k]));
    if emit.is_some() {
        let names: Vec<&str> = layout.iter().map(|g| cx.names[*g].as_str()).collect();
        text.push_str(&format!(" keeps [{}]", names.join(", ")));
    }
    text.push_str(&format!(" (est. {} rows)", est.round().min(1e18) as u64));
    let mut res = Vec::with_capacity(residual.len());
    for e in &residual {
        res.push(remap(e, &layout, width)?);
    }
    let mut res = res.into_iter();
    let residual = res
        .next()
        .map(|first| chain(first, res.map(|x| (BinOp::And, x)).collect()));
    Ok(Node {
        plan: Plan::Join {
            left: Box::new(probe.plan),
            right: Box::new(build.plan),
            left_keys,
            right_keys,
            int_keys,
            residual,
            kind,
            right_types,
            text,
            emit,
            filters: Vec::new(),
        },
        layout,
        rows: est.max(if est > 0.0 { 1.0 } else { 0.0 }),
    })
}

/// Plans an outer join; `pushed` are the group's conjuncts over it alone.
fn plan_outer(cx: &mut Cx, o: Outer, pushed: Vec<Expr>, live: &[bool]) -> Result<Node, SqlError> {
    let Outer {
        mut preserved,
        mut nullable,
        on,
    } = o;
    let width = cx.types.len();
    let side = |g: &Group| {
        let mut cols = Vec::new();
        group_columns(&cx.tables, g, &mut cols);
        let mut set = vec![false; width];
        for c in cols {
            if let Some(x) = set.get_mut(c) {
                *x = true;
            }
        }
        set
    };
    let (in_p, in_n) = (side(&preserved), side(&nullable));
    let only = |e: &Expr, set: &[bool]| {
        let cols = columns(e);
        !cols.is_empty() && cols.iter().all(|c| set.get(*c).copied().unwrap_or(false))
    };
    // WHERE over the preserved side commutes with the join; the rest (say
    // `b.y IS NULL`) is applied after it.
    let mut post = Vec::new();
    for e in pushed {
        if only(&e, &in_p) {
            preserved.conds.push(e);
        } else {
            post.push(e);
        }
    }
    let mut keys = Vec::new();
    let mut residual = Vec::new();
    let mut no_match = false;
    for e in on {
        let e = fold(e);
        if let Expr::Literal(v) = &e {
            if v.truthy() != Some(true) {
                no_match = true;
            }
            continue;
        }
        if e.has_sleep() {
            residual.push(e);
        } else if only(&e, &in_n) {
            nullable.conds.push(e);
        } else {
            match &e {
                Expr::Binary {
                    op: BinOp::Eq,
                    l,
                    r,
                } if hashable(l.data_type(&cx.types), r.data_type(&cx.types)) => {
                    if only(l, &in_p) && only(r, &in_n) {
                        keys.push(((**l).clone(), (**r).clone()));
                    } else if only(r, &in_p) && only(l, &in_n) {
                        keys.push(((**r).clone(), (**l).clone()));
                    } else {
                        residual.push(e);
                    }
                }
                _ => residual.push(e),
            }
        }
    }
    // The join and what is applied after it read these, besides `live`.
    let mut live_here = live.to_vec();
    for e in keys
        .iter()
        .flat_map(|(a, b)| [a, b])
        .chain(&residual)
        .chain(&post)
    {
        for c in columns(e) {
            if let Some(x) = live_here.get_mut(c) {
                *x = true;
            }
        }
    }
    let pres = plan_group(cx, preserved, &live_here)?;
    let null = if no_match {
        // `ON 1 = 0`: every preserved row once, NULL-extended.
        empty_node(cx, &nullable)
    } else {
        plan_group(cx, nullable, &live_here)?
    };
    let est = if keys.is_empty() {
        pres.rows * null.rows.max(1.0)
    } else {
        pres.rows
    };
    let mut out = live.to_vec();
    post.iter().for_each(|e| mark(&mut out, e));
    let node = join_nodes(cx, pres, null, keys, residual, JoinKind::Left, est, &out)?;
    filter(cx, node, post)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(i: usize) -> Box<Expr> {
        Box::new(Expr::Column(i))
    }
    fn int(i: i64) -> Box<Expr> {
        Box::new(Expr::Literal(Value::Int(i)))
    }

    #[test]
    fn folding_evaluates_constant_parts_only() {
        // c0 = 1 + 2  ->  c0 = 3
        let e = Expr::Binary {
            op: BinOp::Eq,
            l: col(0),
            r: Box::new(Expr::Binary {
                op: BinOp::Add,
                l: int(1),
                r: int(2),
            }),
        };
        assert_eq!(
            fold(e),
            Expr::Binary {
                op: BinOp::Eq,
                l: col(0),
                r: int(3)
            }
        );
        // 1 = 0 -> 0; 0 AND c0 -> 0; 1 OR c0 -> 1.
        let f = Expr::Binary {
            op: BinOp::Eq,
            l: int(1),
            r: int(0),
        };
        assert_eq!(fold(f), Expr::Literal(Value::Int(0)));
        let g = Expr::Binary {
            op: BinOp::And,
            l: col(0),
            r: int(0),
        };
        assert_eq!(fold(g), Expr::Literal(Value::Int(0)));
        let h = Expr::Chain {
            first: col(0),
            rest: vec![(BinOp::Or, Expr::Column(1)), (BinOp::Or, *int(1))],
        };
        assert_eq!(fold(h), Expr::Literal(Value::Int(1)));
    }

    #[test]
    fn folding_leaves_errors_and_sleep_to_execution() {
        let overflow = Expr::Binary {
            op: BinOp::Add,
            l: int(i64::MAX),
            r: int(1),
        };
        assert_eq!(fold(overflow.clone()), overflow);
        let sleep = Expr::Func {
            f: Func::Sleep,
            args: vec![*int(0)],
        };
        assert_eq!(fold(sleep.clone()), sleep);
        // `SLEEP(0) AND 0` still sleeps, as MySQL evaluates it left to right.
        let s = Expr::Binary {
            op: BinOp::And,
            l: Box::new(sleep.clone()),
            r: int(0),
        };
        assert_eq!(fold(s.clone()), s);
    }

    #[test]
    fn folding_keeps_the_type() {
        // IF(1, 2, 'a') is text in MySQL ('2'), so it is not folded to 2.
        let e = Expr::Func {
            f: Func::If,
            args: vec![*int(1), *int(2), Expr::Literal(Value::Text("a".into()))],
        };
        assert_eq!(fold(e.clone()), e);
    }

    #[test]
    fn conjuncts_keep_their_order() {
        let e = Expr::Binary {
            op: BinOp::And,
            l: Box::new(Expr::Chain {
                first: col(0),
                rest: vec![(BinOp::And, Expr::Column(1)), (BinOp::And, Expr::Column(2))],
            }),
            r: col(3),
        };
        let mut out = Vec::new();
        split_conjuncts(e, &mut out);
        assert_eq!(out, (0..4).map(Expr::Column).collect::<Vec<_>>());
    }

    #[test]
    fn null_rejection() {
        let null = |c: usize| c == 1;
        let eq = |l: Box<Expr>, r: Box<Expr>| Expr::Binary {
            op: BinOp::Eq,
            l,
            r,
        };
        assert!(rejects_nulls(&eq(col(1), int(5)), &null));
        assert!(rejects_nulls(
            &eq(
                Box::new(Expr::Binary {
                    op: BinOp::Add,
                    l: col(1),
                    r: int(1)
                }),
                col(0)
            ),
            &null
        ));
        assert!(!rejects_nulls(&eq(col(0), int(5)), &null));
        assert!(!rejects_nulls(
            &Expr::IsNull {
                e: col(1),
                negated: false
            },
            &null
        ));
        assert!(!rejects_nulls(
            &Expr::Binary {
                op: BinOp::NullSafeEq,
                l: col(1),
                r: int(5)
            },
            &null
        ));
        assert!(!rejects_nulls(
            &eq(
                Box::new(Expr::Func {
                    f: Func::Coalesce,
                    args: vec![Expr::Column(1), *int(0)]
                }),
                int(0)
            ),
            &null
        ));
    }
}
