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
        let outer = Outer::new(outer_scope.clone(), self.outer);
        let planned = plan_query_in(query, cx, Some(&outer))?;
        if kind != SubqueryKind::Exists && planned.types.len() != 1 {
            return Err(SqlError::OperandColumns(1));
        }
        let mut params = outer.params.into_inner();
        let mut keys = 0;
        let mut planned = planned;
        if !params.is_empty() && kind != SubqueryKind::Scalar {
            if let Some((p, outer_keys)) = self.decorrelate(query, kind, &outer_scope, cx) {
                keys = outer_keys.len();
                params = outer_keys;
                planned = p;
            }
        }
        // A scalar subquery needs to know whether there is a second row,
        // EXISTS whether there is a first.
        let limit = match kind {
            _ if keys > 0 => None,
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
        if keys > 0 {
            text.push_str(" [semi-join on the correlation]");
        }
        let mut subs = self.subs.subs.borrow_mut();
        subs.push(Subquery {
            plan: Box::new(PlanOf(plan)),
            kind,
            params,
            probe,
            ty,
            keys,
            text,
        });
        let col = Expr::Column(PLACEHOLDER + subs.len() - 1);
        Ok(if not { Expr::Not(Box::new(col)) } else { col })
    }
}

impl Compiler<'_> {
    /// `EXISTS` / `IN` whose only correlation is `inner = outer` conjuncts
    /// of its WHERE (`EXISTS (SELECT … FROM t WHERE t.k = o.a AND …)`), as
    /// an uncorrelated query of the inner sides (and, for `IN`, its value):
    /// run once, then looked up by the outer sides (a hash semi-join).
    /// `None` when the subquery has another shape, names the enclosing
    /// query elsewhere, or when the two sides of a key are not both numbers
    /// or both text (then `=` is not the hash table's equality).
    fn decorrelate(
        &self,
        q: &ast::Query,
        kind: SubqueryKind,
        outer_scope: &Scope,
        cx: &PlanCx<'_>,
    ) -> Option<(super::Planned, Vec<Expr>)> {
        if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || !q.locks.is_empty()
        {
            return None;
        }
        let ast::SetExpr::Select(sel) = q.body.as_ref() else {
            return None;
        };
        let grouped = !matches!(&sel.group_by, ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty());
        if grouped || sel.having.is_some() || sel.selection.is_none() {
            return None;
        }
        let item_expr = |it: &ast::SelectItem| match it {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(e.clone())
            }
            _ => None,
        };
        // An aggregate makes one row of any input: not a semi-join.
        if sel
            .projection
            .iter()
            .any(|it| item_expr(it).is_some_and(|e| super::compile::contains_agg(&e)))
        {
            return None;
        }
        let value = match kind {
            SubqueryKind::Any { .. } => match sel.projection.as_slice() {
                [one] => Some(item_expr(one)?),
                _ => return None,
            },
            _ => None,
        };
        let probe = Compiler {
            connection_id: self.connection_id,
            now_micros: self.now_micros,
            cx: Some(cx),
            outer: None,
            subs: Collected::default(),
            windows: None,
        };
        let inner_scope = super::joins::read_from(&sel.from, None, cx, &probe)
            .ok()?
            .scope()
            .clone();
        // The enclosing query's column a side names, if it names one the
        // subquery's FROM does not have.
        let outer_col = |e: &ast::Expr| -> Option<usize> {
            let parts = match e {
                ast::Expr::Identifier(i) => std::slice::from_ref(i),
                ast::Expr::CompoundIdentifier(p) => p.as_slice(),
                _ => return None,
            };
            match inner_scope.resolve(parts, "where clause") {
                Err(SqlError::UnknownColumn { .. }) => {
                    outer_scope.resolve(parts, "where clause").ok()
                }
                _ => None,
            }
        };
        let mut conjuncts = Vec::new();
        split_and(sel.selection.as_ref()?, &mut conjuncts);
        let (mut inner_keys, mut outer_keys, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for c in conjuncts {
            if let ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } = &c
            {
                let pair = match (outer_col(left), outer_col(right)) {
                    (None, Some(o)) => Some((left.as_ref().clone(), o)),
                    (Some(o), None) => Some((right.as_ref().clone(), o)),
                    _ => None,
                };
                if let Some((inner, o)) = pair {
                    inner_keys.push(inner);
                    outer_keys.push(o);
                    continue;
                }
            }
            rest.push(c);
        }
        if inner_keys.is_empty() {
            return None;
        }
        let mut sel2 = sel.as_ref().clone();
        sel2.projection = inner_keys
            .into_iter()
            .chain(value)
            .map(ast::SelectItem::UnnamedExpr)
            .collect();
        sel2.selection = rest.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
            left: Box::new(a),
            op: ast::BinaryOperator::And,
            right: Box::new(b),
        });
        let mut q2 = q.clone();
        *q2.body = ast::SetExpr::Select(Box::new(sel2));
        q2.order_by = None;
        // Still naming the enclosing query (elsewhere than in the keys):
        // not decorrelated.
        let check = Outer::new(outer_scope.clone(), self.outer);
        let planned = plan_query_in(&q2, cx, Some(&check)).ok()?;
        if !check.params.borrow().is_empty() {
            return None;
        }
        let family = |t: DataType| match t {
            DataType::Int | DataType::Float => Some(1),
            DataType::Text => Some(2),
            _ => None,
        };
        let mut params = Vec::with_capacity(outer_keys.len());
        for (j, o) in outer_keys.into_iter().enumerate() {
            let ot = outer_scope.cols.get(o)?.ty;
            let it = *planned.types.get(j)?;
            if family(ot)? != family(it)? {
                return None;
            }
            params.push(Expr::Column(o));
        }
        Some((planned, params))
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
/// without one filter first (unless one of them calls SLEEP), then the
/// subqueries run for the rows left and the other conjuncts filter. Returns the plan and the types of the
/// columns the subqueries added.
pub(super) fn plan_where(
    c: &Compiler<'_>,
    w: &ast::Expr,
    scope: &Scope,
    mut plan: Plan,
) -> Result<(Plan, Vec<DataType>), SqlError> {
    let mut conjuncts = Vec::new();
    split_and(w, &mut conjuncts);
    let mut compiled = Vec::with_capacity(conjuncts.len());
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
        compiled.push((e, c.subs.len() > before));
    }
    let subs = c.subs.close();
    // A conjunct that calls SLEEP keeps its place in the order of AND,
    // which sleeps only for the rows it is evaluated for.
    let keep_order = compiled.iter().any(|(e, sub)| !sub && e.has_sleep());
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for (e, sub) in compiled {
        if sub || keep_order {
            post.push(e);
        } else {
            pre.push(e);
        }
    }
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
