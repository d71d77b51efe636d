//! A whole query: its CTEs, set operations (`UNION`, `EXCEPT`,
//! `INTERSECT`), ORDER BY, LIMIT.

use super::compile::{const_int, names_text, Compiler};
use super::scope::Scope;
use super::select::plan_select;
use super::subquery::Outer;
use super::{Plan, PlanCx, Planned};
use sqlparser::ast;

use crate::data::DataType;
use crate::expr::Expr;
use crate::pipeline::setop::{SetOpKind, SetStep};
use crate::pipeline::sort::SortKey;
use crate::sql::error::SqlError;
use crate::sql::shape;

/// Plans a query.
pub fn plan_query(q: &ast::Query, cx: &PlanCx<'_>) -> Result<Planned, SqlError> {
    plan_query_in(q, cx, None)
}

/// Plans a query; a subquery in an expression plans inside `outer`, its
/// enclosing queries.
pub(super) fn plan_query_in(
    q: &ast::Query,
    cx: &PlanCx<'_>,
    outer: Option<&Outer<'_>>,
) -> Result<Planned, SqlError> {
    match &q.with {
        Some(with) => super::cte::with_ctes(with, cx, || plan_query_body(q, cx, outer)),
        None => plan_query_body(q, cx, outer),
    }
}

/// `LIMIT` / `OFFSET` of `q` over `p` (a recursive CTE's own limit).
pub(super) fn apply_limit(
    p: Planned,
    q: &ast::Query,
    cx: &PlanCx<'_>,
) -> Result<Planned, SqlError> {
    let compiler = Compiler {
        connection_id: cx.connection_id,
        now_micros: Some(cx.now_micros),
        cx: Some(cx),
        outer: None,
        subs: Default::default(),
        windows: None,
    };
    let shape = query_shape(q, &compiler)?;
    apply_shape(
        p,
        &Shape {
            order: vec![],
            ..shape
        },
        &compiler,
    )
}

fn plan_query_body(
    q: &ast::Query,
    cx: &PlanCx<'_>,
    outer: Option<&Outer<'_>>,
) -> Result<Planned, SqlError> {
    if q.fetch.is_some() || !q.locks.is_empty() {
        return Err(SqlError::Unsupported("FETCH / FOR UPDATE".into()));
    }
    let compiler = Compiler {
        connection_id: cx.connection_id,
        now_micros: Some(cx.now_micros),
        cx: Some(cx),
        outer,
        subs: Default::default(),
        windows: None,
    };
    let shape = query_shape(q, &compiler)?;
    match q.body.as_ref() {
        ast::SetExpr::Select(s) => plan_select(s, &shape, cx, &compiler),
        other => {
            let inner = plan_set_expr(other, cx, &compiler)?;
            apply_shape(inner, &shape, &compiler)
        }
    }
}

/// `q`'s ORDER BY, LIMIT and OFFSET.
fn query_shape<'a>(q: &'a ast::Query, compiler: &Compiler<'_>) -> Result<Shape<'a>, SqlError> {
    let (limit, offset) = match &q.limit_clause {
        None => (None, 0),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::Unsupported("LIMIT BY".into()));
            }
            let l = match limit {
                Some(e) => Some(const_int(compiler, e, "LIMIT")?),
                None => None,
            };
            let o = match offset {
                Some(o) => const_int(compiler, &o.value, "OFFSET")?,
                None => 0,
            };
            (l, o)
        }
        Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => (
            Some(const_int(compiler, limit, "LIMIT")?),
            const_int(compiler, offset, "OFFSET")?,
        ),
    };
    if limit.is_some_and(|l| l < 0) || offset < 0 {
        return Err(SqlError::InvalidValue(
            "LIMIT and OFFSET must not be negative".into(),
        ));
    }
    let order: Vec<&ast::OrderByExpr> = match &q.order_by {
        None => vec![],
        Some(ob) => match &ob.kind {
            ast::OrderByKind::Expressions(v) => v.iter().collect(),
            ast::OrderByKind::All(_) => return Err(SqlError::Unsupported("ORDER BY ALL".into())),
        },
    };
    Ok(Shape {
        order,
        limit: limit.map(|l| l as u64),
        offset: offset as u64,
    })
}

pub(super) struct Shape<'a> {
    pub(super) order: Vec<&'a ast::OrderByExpr>,
    pub(super) limit: Option<u64>,
    pub(super) offset: u64,
}

pub(super) fn is_desc(o: &ast::OrderByExpr) -> bool {
    matches!(o.options.sort, Some(ast::OrderBySort::Desc))
}

/// ORDER BY / LIMIT over a finished result (set operations).
pub(super) fn apply_shape(
    p: Planned,
    shape: &Shape<'_>,
    c: &Compiler<'_>,
) -> Result<Planned, SqlError> {
    let scope = p.scope();
    let mut plan = p.plan;
    if !shape.order.is_empty() {
        let mut keys = Vec::new();
        for o in &shape.order {
            let expr = match &o.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n = const_int(c, &o.expr, "ORDER BY")?;
                    if n < 1 || n as usize > p.names.len() {
                        return Err(SqlError::UnknownColumn {
                            name: n.to_string(),
                            clause: "order clause",
                        });
                    }
                    Expr::Column(n as usize - 1)
                }
                e => c.compile(e, &scope, "order clause")?,
            };
            keys.push(SortKey {
                expr,
                desc: is_desc(o),
            });
        }
        let text = keys
            .iter()
            .map(|k| {
                format!(
                    "{}{}",
                    k.expr.display(&p.names),
                    if k.desc { " DESC" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        plan = Plan::Sort {
            input: Box::new(plan),
            keys,
            limit: shape
                .limit
                .map(|l| l.saturating_add(shape.offset).min(usize::MAX as u64) as usize),
            text,
        };
    }
    if shape.limit.is_some() || shape.offset > 0 {
        plan = Plan::Limit {
            input: Box::new(plan),
            offset: shape.offset,
            limit: shape.limit,
        };
    }
    Ok(Planned {
        plan,
        names: p.names,
        types: p.types,
    })
}

pub(super) fn plan_set_expr(
    e: &ast::SetExpr,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Planned, SqlError> {
    match e {
        ast::SetExpr::Select(s) => plan_select(
            s,
            &Shape {
                order: vec![],
                limit: None,
                offset: 0,
            },
            cx,
            c,
        ),
        ast::SetExpr::Query(q) => plan_query_in(q, cx, c.outer),
        ast::SetExpr::SetOperation { .. } => plan_union(e, cx, c.outer),
        ast::SetExpr::Values(v) => {
            let mut rows = Vec::new();
            let mut width = None;
            for (i, r) in v.rows.iter().enumerate() {
                let row: Vec<Expr> = r
                    .iter()
                    .map(|x| c.compile(x, &Scope::default(), "VALUES"))
                    .collect::<Result<_, _>>()?;
                if *width.get_or_insert(row.len()) != row.len() {
                    return Err(SqlError::ColumnCount(i + 1));
                }
                rows.push(row);
            }
            let w = width.unwrap_or(0);
            let types: Vec<DataType> = (0..w)
                .map(|j| {
                    rows.iter()
                        .fold(DataType::Null, |t, r| t.unify(r[j].data_type(&[])))
                })
                .collect();
            Ok(Planned {
                plan: Plan::Values {
                    rows,
                    types: types.clone(),
                },
                names: (1..=w).map(|j| format!("column_{j}")).collect(),
                types,
            })
        }
        other => Err(SqlError::Unsupported(format!("the query form {other}"))),
    }
}

/// A run of set operations of one precedence (see [`shape::set_run`]:
/// `INTERSECT` binds tighter than `UNION` and `EXCEPT`, so an `INTERSECT`
/// inside a run of those is one operand of it).
pub(super) fn plan_union(
    e: &ast::SetExpr,
    cx: &PlanCx<'_>,
    outer: Option<&Outer<'_>>,
) -> Result<Planned, SqlError> {
    let Some(run) = shape::set_run(e) else {
        return Err(SqlError::Unsupported(format!("the query form {e}")));
    };
    plan_set_run(&run.operands, &run.ops, cx, outer)
}

/// A run of set operations `operands[0] ops[0] operands[1] …`, left to right
/// (one operand alone: that operand). A run of `UNION`s streams (see
/// [`plan_unions`]); with `EXCEPT` or `INTERSECT` it is one [`Plan::SetOp`],
/// which counts rows by hash. Output names are the first operand's, types
/// the operands' unified.
pub(super) fn plan_set_run(
    operands: &[&ast::SetExpr],
    ops: &[(&ast::SetOperator, &ast::SetQuantifier)],
    cx: &PlanCx<'_>,
    outer: Option<&Outer<'_>>,
) -> Result<Planned, SqlError> {
    let compiler = Compiler {
        connection_id: cx.connection_id,
        now_micros: Some(cx.now_micros),
        cx: Some(cx),
        outer,
        subs: Default::default(),
        windows: None,
    };
    let c = &compiler;
    let Some(first) = operands.first() else {
        return Err(SqlError::Syntax("an empty set operation".into()));
    };
    if ops.iter().all(|(op, _)| **op == ast::SetOperator::Union) {
        return plan_unions(operands, ops, cx, c);
    }
    let mut steps = Vec::with_capacity(ops.len());
    for (op, q) in ops {
        let kind = match op {
            ast::SetOperator::Union => SetOpKind::Union,
            ast::SetOperator::Except => SetOpKind::Except,
            ast::SetOperator::Intersect => SetOpKind::Intersect,
            other => return Err(SqlError::Unsupported(format!("the set operation {other}"))),
        };
        let all = match q {
            ast::SetQuantifier::All => true,
            ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
            other => {
                return Err(SqlError::Unsupported(format!(
                    "the set operation {op} {other}"
                )))
            }
        };
        steps.push(SetStep { kind, all });
    }
    let first = plan_set_expr(first, cx, c)?;
    let names = first.names;
    let mut types = first.types;
    let mut inputs = vec![first.plan];
    for operand in &operands[1..] {
        let r = plan_set_expr(operand, cx, c)?;
        if r.types.len() != types.len() {
            return Err(SqlError::UnionArity);
        }
        types = types
            .iter()
            .zip(&r.types)
            .map(|(a, b)| a.unify(*b))
            .collect();
        inputs.push(r.plan);
    }
    Ok(Planned {
        plan: Plan::SetOp {
            inputs,
            steps,
            types: types.clone(),
        },
        names,
        types,
    })
}

/// A run of `UNION [ALL | DISTINCT]`, left to right, as one flat
/// [`Plan::Union`]: a `UNION` (distinct) removes the duplicates of
/// everything before it, so the plan is at most a union of one DISTINCT
/// over a union and the branches after it, however long the run.
fn plan_unions(
    operands: &[&ast::SetExpr],
    ops: &[(&ast::SetOperator, &ast::SetQuantifier)],
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Planned, SqlError> {
    let first = plan_set_expr(operands[0], cx, c)?;
    let names = first.names;
    let mut types = first.types;
    // The branches a DISTINCT covers, and the branches after it.
    let mut under: Vec<Plan> = Vec::new();
    let mut plain: Vec<Plan> = Vec::new();
    let flat = |into: &mut Vec<Plan>, p: Plan| match p {
        Plan::Union { inputs, .. } => into.extend(inputs),
        other => into.push(other),
    };
    flat(&mut plain, first.plan);
    for ((_, q), operand) in ops.iter().zip(&operands[1..]) {
        let r = plan_set_expr(operand, cx, c)?;
        if r.types.len() != types.len() {
            return Err(SqlError::UnionArity);
        }
        types = types
            .iter()
            .zip(&r.types)
            .map(|(a, b)| a.unify(*b))
            .collect();
        flat(&mut plain, r.plan);
        if !matches!(q, ast::SetQuantifier::All) {
            under.append(&mut plain);
        }
    }
    let mut plan = Plan::Union {
        inputs: plain,
        types: types.clone(),
    };
    if !under.is_empty() {
        let keys: Vec<Expr> = (0..types.len()).map(Expr::Column).collect();
        let distinct = Plan::Aggregate {
            input: Box::new(Plan::Union {
                inputs: under,
                types: types.clone(),
            }),
            text: format!("distinct {}", names_text(&keys, &names)),
            keys,
            key_types: types.clone(),
            aggs: vec![],
        };
        plan = match plan {
            Plan::Union { inputs, types } if !inputs.is_empty() => {
                let mut all = vec![distinct];
                all.extend(inputs);
                Plan::Union { inputs: all, types }
            }
            _ => distinct,
        };
    }
    Ok(Planned { plan, names, types })
}
