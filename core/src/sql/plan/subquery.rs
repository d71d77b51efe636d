//! Planning subqueries in expressions: scalar `(SELECT …)`, `[NOT] EXISTS`,
//! `x [NOT] IN (SELECT …)` and `x op ANY | SOME | ALL (SELECT …)`,
//! correlated or not.
//!
//! A subquery is planned as a query of its own, with its enclosing query
//! as an [`Outer`]: a name that the subquery's own FROM does not have is
//! looked up there (and further out), and becomes a parameter
//! ([`Expr::Param`]) whose value the enclosing row supplies. The clause's
//! expression gets a placeholder column for the subquery's value; once the
//! clause is compiled, the placeholders are numbered after the columns of
//! the plan they run over ([`place`]) and a [`Plan::Apply`] appends those
//! columns (see [`crate::pipeline::subquery`]).
//!
//! Subqueries are accepted in WHERE, the select list, HAVING and ORDER BY
//! of a SELECT. Elsewhere (GROUP BY, aggregate arguments, ON, LIMIT,
//! VALUES, UPDATE / DELETE) they are refused with 1235 as before.

use std::cell::{Cell, RefCell};

use sqlparser::ast;

use super::compile::{chain, split_and, walk, AggCx, Compiler};
use super::query::plan_query_in;
use super::scope::{Scope, ScopeCol};
use super::{Plan, PlanCx};
use crate::data::DataType;
use crate::expr::{BinOp, Expr};
use crate::pipeline::subquery::{Subquery, SubqueryKind, SubqueryPlan};
use crate::sql::error::SqlError;

/// Placeholder columns of a clause's subqueries start here (far past any
/// real column); [`place`] renumbers them.
const PLACEHOLDER: usize = usize::MAX / 2;

/// The enclosing query of a subquery being planned: where its correlated
/// names resolve, and the parameters they became.
pub struct Outer<'a> {
    scope: Scope,
    params: RefCell<Vec<Expr>>,
    parent: Option<&'a Outer<'a>>,
}

impl<'a> Outer<'a> {
    /// The enclosing query's columns `scope`, itself inside `parent`.
    pub fn new(scope: Scope, parent: Option<&'a Outer<'a>>) -> Self {
        Outer {
            scope,
            params: RefCell::new(Vec::new()),
            parent,
        }
    }

    /// `parts` as a name of an enclosing query: a parameter of the
    /// subquery, or `None` when no enclosing query has it.
    pub fn resolve(
        &self,
        parts: &[ast::Ident],
        clause: &'static str,
    ) -> Result<Option<Expr>, SqlError> {
        let (expr, ty) = match self.scope.resolve(parts, clause) {
            Ok(i) => (
                Expr::Column(i),
                self.scope.cols.get(i).map_or(DataType::Null, |c| c.ty),
            ),
            Err(SqlError::UnknownColumn { .. }) => {
                match self.parent.map(|p| p.resolve(parts, clause)).transpose()? {
                    Some(Some(e @ Expr::Param { ty, .. })) => (e, ty),
                    _ => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        };
        let mut params = self.params.borrow_mut();
        let index = match params.iter().position(|p| *p == expr) {
            Some(i) => i,
            None => {
                params.push(expr);
                params.len() - 1
            }
        };
        Ok(Some(Expr::Param { index, ty }))
    }
}

/// The subqueries met while compiling one clause of a SELECT.
#[derive(Default)]
pub struct Collected {
    open: Cell<bool>,
    subs: RefCell<Vec<Subquery>>,
}

impl Collected {
    /// Accepts subqueries until [`Collected::close`].
    pub fn open(&self) {
        self.open.set(true);
    }
    /// Stops accepting subqueries; returns those met since
    /// [`Collected::open`].
    pub fn close(&self) -> Vec<Subquery> {
        self.open.set(false);
        self.subs.take()
    }
    fn len(&self) -> usize {
        self.subs.borrow().len()
    }
}

/// A subquery's plan, cloned for every run.
struct PlanOf(Plan);

impl SubqueryPlan for PlanOf {
    fn build(
        &self,
        pipeline: &crate::context::Context,
    ) -> Result<crate::pipeline::Instrumented, crate::error::ContextError> {
        self.0.clone().build(pipeline)
    }
    fn clone_box(&self) -> Box<dyn SubqueryPlan> {
        Box::new(PlanOf(self.0.clone()))
    }
}

/// Whether `e` is (or holds, outside nested queries) a subquery.
pub fn contains_subquery(e: &ast::Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if is_subquery(x) {
            found = true;
        }
    });
    found
}

/// Whether `e` itself is a subquery expression.
pub fn is_subquery(e: &ast::Expr) -> bool {
    matches!(
        e,
        ast::Expr::Subquery(_)
            | ast::Expr::Exists { .. }
            | ast::Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            }
            | ast::Expr::AnyOp { .. }
            | ast::Expr::AllOp { .. }
    )
}

/// Whether `e` reads a placeholder column.
fn has_placeholder(e: &Expr) -> bool {
    let mut found = false;
    e.visit(&mut |x| {
        if matches!(x, Expr::Column(c) if *c >= PLACEHOLDER) {
            found = true;
        }
    });
    found
}

/// Numbers the placeholder columns of `e` from `base`.
pub fn place(e: &mut Expr, base: usize) {
    e.visit_mut(&mut |x| {
        if let Expr::Column(c) = x {
            if *c >= PLACEHOLDER {
                *c = *c - PLACEHOLDER + base;
            }
        }
    });
}

/// The comparison whose truth is the negation of `op`'s.
fn negate(op: BinOp) -> BinOp {
    match op {
        BinOp::Eq => BinOp::NotEq,
        BinOp::NotEq => BinOp::Eq,
        BinOp::Lt => BinOp::GtEq,
        BinOp::LtEq => BinOp::Gt,
        BinOp::Gt => BinOp::LtEq,
        BinOp::GtEq => BinOp::Lt,
        other => other,
    }
}

fn comparison(op: &ast::BinaryOperator) -> Result<BinOp, SqlError> {
    Ok(match op {
        ast::BinaryOperator::Eq => BinOp::Eq,
        ast::BinaryOperator::NotEq => BinOp::NotEq,
        ast::BinaryOperator::Lt => BinOp::Lt,
        ast::BinaryOperator::LtEq => BinOp::LtEq,
        ast::BinaryOperator::Gt => BinOp::Gt,
        ast::BinaryOperator::GtEq => BinOp::GtEq,
        other => {
            return Err(SqlError::Syntax(format!(
                "{other} cannot compare with ANY / ALL"
            )))
        }
    })
}

/// The columns an aggregated query's later clauses see, as a scope for
/// its subqueries: the group keys that are plain columns keep their names.
fn agg_scope(a: &AggCx) -> Scope {
    Scope {
        cols: a
            .group_exprs
            .iter()
            .zip(&a.group_types)
            .map(|(g, ty)| match g {
                Expr::Column(c) => a.input.cols.get(*c).cloned().unwrap_or(ScopeCol {
                    qualifier: None,
                    name: String::new(),
                    ty: *ty,
                }),
                _ => ScopeCol {
                    qualifier: None,
                    name: String::new(),
                    ty: *ty,
                },
            })
            .collect(),
    }
}

impl Compiler<'_> {
    /// A name that `scope` does not have (error `err`), looked up in the
    /// enclosing queries of a subquery.
    pub(super) fn outer_ref(
        &self,
        parts: &[ast::Ident],
        clause: &'static str,
        err: SqlError,
    ) -> Result<Expr, SqlError> {
        if !matches!(err, SqlError::UnknownColumn { .. }) {
            return Err(err);
        }
        match self.outer {
            Some(o) => o.resolve(parts, clause)?.ok_or(err),
            None => Err(err),
        }
    }

    /// Compiles a subquery expression (see [`is_subquery`]) to its
    /// placeholder column, and collects the subquery.
    pub(super) fn compile_subquery(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let refused = || {
            SqlError::Unsupported(format!(
                "subqueries in this place ({clause}); they work in WHERE, the select list, HAVING and ORDER BY"
            ))
        };
        let cx: &PlanCx<'_> = match self.cx {
            Some(cx) if self.subs.open.get() => cx,
            _ => return Err(refused()),
        };
        let (query, kind, probe, not) = match e {
            ast::Expr::Subquery(q) => (q, SubqueryKind::Scalar, None, false),
            ast::Expr::Exists { subquery, negated } => {
                (subquery, SubqueryKind::Exists, None, *negated)
            }
            ast::Expr::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                ..
            } => (
                q,
                SubqueryKind::Any {
                    op: BinOp::Eq,
                    negated: *negated,
                },
                Some(expr),
                false,
            ),
            ast::Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => match right.as_ref() {
                ast::Expr::Subquery(q) => (
                    q,
                    SubqueryKind::Any {
                        op: comparison(compare_op)?,
                        negated: false,
                    },
                    Some(left),
                    false,
                ),
                _ => return Err(SqlError::Unsupported("ANY over a non-subquery".into())),
            },
            // `x op ALL (S)` is `NOT (x negop ANY (S))`.
            ast::Expr::AllOp {
                left,
                compare_op,
                right,
            } => match right.as_ref() {
                ast::Expr::Subquery(q) => (
                    q,
                    SubqueryKind::Any {
                        op: negate(comparison(compare_op)?),
                        negated: true,
                    },
                    Some(left),
                    false,
                ),
                _ => return Err(SqlError::Unsupported("ALL over a non-subquery".into())),
            },
            _ => return Err(refused()),
        };
        let probe = match probe {
            Some(p) => {
                if matches!(p.as_ref(), ast::Expr::Tuple(_)) {
                    return Err(SqlError::Unsupported(
                        "row constructors with IN / ANY / ALL subqueries".into(),
                    ));
                }
                let x = self.compile_in(p, scope, clause, agg)?;
                if has_placeholder(&x) {
                    return Err(SqlError::Unsupported(
                        "a subquery as the left operand of IN / ANY / ALL (SELECT …)".into(),
                    ));
                }
                Some(x)
            }
            None => None,
        };
        let outer_scope = match agg.as_deref() {
            Some(a) => agg_scope(a),
            None => scope.clone(),
        };
        let outer = Outer::new(outer_scope, self.outer);
        let planned = plan_query_in(query, cx, Some(&outer))?;
        if kind != SubqueryKind::Exists && planned.types.len() != 1 {
            return Err(SqlError::OperandColumns(1));
        }
        // A scalar subquery needs to know whether there is a second row,
        // EXISTS whether there is a first.
        let limit = match kind {
            SubqueryKind::Scalar => Some(2),
            SubqueryKind::Exists => Some(1),
            SubqueryKind::Any { .. } => None,
        };
        let plan = match limit {
            Some(l) => Plan::Limit {
                input: Box::new(planned.plan),
                offset: 0,
                limit: Some(l),
            },
            None => planned.plan,
        };
        let ty = match kind {
            SubqueryKind::Scalar => planned.types.first().copied().unwrap_or(DataType::Null),
            _ => DataType::Int,
        };
        let mut text = e.to_string();
        if text.chars().count() > 80 {
            text = text.chars().take(79).chain(['…']).collect();
        }
        let mut subs = self.subs.subs.borrow_mut();
        subs.push(Subquery {
            plan: Box::new(PlanOf(plan)),
            kind,
            params: outer.params.into_inner(),
            probe,
            ty,
            text,
        });
        let col = Expr::Column(PLACEHOLDER + subs.len() - 1);
        Ok(if not { Expr::Not(Box::new(col)) } else { col })
    }
}

/// The subqueries of a clause, applied over `plan` (whose rows have
/// `width` columns): their placeholders in `exprs` are numbered from
/// `width`. Returns the plan and the types of the added columns.
pub fn apply(
    plan: Plan,
    width: usize,
    subs: Vec<Subquery>,
    exprs: &mut [&mut Expr],
) -> (Plan, Vec<DataType>) {
    if subs.is_empty() {
        return (plan, Vec::new());
    }
    for e in exprs.iter_mut() {
        place(e, width);
    }
    let types = subs.iter().map(|s| s.ty).collect();
    (
        Plan::Apply {
            input: Box::new(plan),
            subs,
        },
        types,
    )
}

/// The subqueries of the select list, HAVING and ORDER BY over `plan`,
/// whose columns have `types` and `names` (both grown by the subqueries'
/// columns): their placeholders in `exprs` are numbered after them.
pub(super) fn apply_clause(
    plan: Plan,
    types: &mut Vec<DataType>,
    names: &mut Vec<String>,
    subs: Vec<Subquery>,
    exprs: &mut [&mut Expr],
) -> Plan {
    names.extend(subs.iter().map(|s| s.text.clone()));
    let (plan, added) = apply(plan, types.len(), subs, exprs);
    types.extend(added);
    plan
}

/// `WHERE` with subqueries over `plan` (columns `scope`): the conjuncts
/// without one filter first, then the subqueries run for the rows left
/// and the other conjuncts filter. Returns the plan and the types of the
/// columns the subqueries added.
pub(super) fn plan_where(
    c: &Compiler<'_>,
    w: &ast::Expr,
    scope: &Scope,
    mut plan: Plan,
) -> Result<(Plan, Vec<DataType>), SqlError> {
    let mut conjuncts = Vec::new();
    split_and(w, &mut conjuncts);
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    c.subs.open();
    for x in &conjuncts {
        let before = c.subs.len();
        let e = match c.compile(x, scope, "where clause") {
            Ok(e) => e,
            Err(err) => {
                c.subs.close();
                return Err(err);
            }
        };
        if c.subs.len() > before {
            post.push(e);
        } else {
            pre.push(e);
        }
    }
    let subs = c.subs.close();
    let mut names = scope.names();
    if let Some(pred) = and_all(pre) {
        plan = Plan::Filter {
            input: Box::new(plan),
            text: pred.display(&names),
            pred,
        };
    }
    names.extend(subs.iter().map(|s| s.text.clone()));
    let Some(mut pred) = and_all(post) else {
        return Ok((plan, Vec::new()));
    };
    let (plan, types) = apply(plan, scope.cols.len(), subs, &mut [&mut pred]);
    Ok((
        Plan::Filter {
            input: Box::new(plan),
            text: pred.display(&names),
            pred,
        },
        types,
    ))
}

fn and_all(v: Vec<Expr>) -> Option<Expr> {
    let mut it = v.into_iter();
    let first = it.next()?;
    Some(chain(first, it.map(|x| (BinOp::And, x)).collect()))
}

/// An aggregate in a subquery whose argument names only the enclosing
/// queries' columns (`(SELECT sum(t1.a) FROM t2)`) belongs to the
/// enclosing query in MySQL; cascade refuses it rather than aggregate it
/// over the subquery's rows.
pub fn check_agg_arg(arg: &Expr) -> Result<(), SqlError> {
    let (mut outer, mut local) = (false, false);
    arg.visit(&mut |x| match x {
        Expr::Param { .. } => outer = true,
        Expr::Column(_) => local = true,
        _ => {}
    });
    if outer && !local {
        return Err(SqlError::Unsupported(
            "an aggregate of only the enclosing query's columns inside a subquery".into(),
        ));
    }
    Ok(())
}
