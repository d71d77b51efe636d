//! Common table expressions (`WITH`, `WITH RECURSIVE`) and views: names in
//! `FROM` that stand for a query.
//!
//! Both are expanded where they are referenced: the defining query is
//! planned again at each reference, in the scope of its definition (a CTE
//! sees the CTEs before it and those of enclosing queries, itself too when
//! recursive; a view sees only tables and views). [`Names`] holds the CTEs
//! in scope while a statement is planned, as a stack that planning a nested
//! `WITH` pushes onto and pops.
//!
//! Bounds (user-shaped nesting): a reference inside a definition plans that
//! definition inside the one being planned, so expansions nest at most
//! [`MAX_EXPANSION_DEPTH`] deep, and a statement expands at most
//! [`MAX_EXPANSIONS`] references in all (a chain of CTEs each referencing
//! the last twice would otherwise take `2^n` plans). A view that reaches
//! itself again is error 1462, as in MySQL.
//!
//! A recursive CTE is planned as a [`Plan::Recursive`]: the non-recursive
//! query blocks (the anchor) as a plan, and the recursive blocks as a plan
//! whose reference to the CTE reads the working table
//! ([`Plan::WorkTable`]); the pipeline's
//! [`RecursiveUnion`](crate::pipeline::recursive::RecursiveUnion) runs the
//! iterations. MySQL's rules for it are kept, with its error codes: a UNION
//! (3573), anchors first (3574), no aggregation or window function in a
//! recursive block (3575), one reference per recursive block (3577), no
//! `ORDER BY` / `DISTINCT` / `LIMIT` in a recursive block (1235), and at most
//! `cte_max_recursion_depth` iterations (3636, at run time).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlparser::ast;

use super::query::{plan_query, plan_set_run};
use super::scope::{Scope, ScopeCol};
use super::{Plan, PlanCx, Planned};
use crate::data::{DataType, Value};
use crate::pipeline::recursive::{RecursionSpec, WorkTable};
use crate::sql::error::SqlError;
use crate::sql::shape;
use crate::sql::walk::{walk, OnExpr, OnRelation};
use crate::sync::lock_std as lock;

/// How deep references may nest inside definitions (a CTE referencing a CTE
/// referencing a view …).
pub const MAX_EXPANSION_DEPTH: usize = 32;

/// How many references to CTEs and views one statement may expand.
pub const MAX_EXPANSIONS: usize = 4096;

/// MySQL's default `cte_max_recursion_depth`.
pub const DEFAULT_MAX_RECURSION_DEPTH: u64 = 1000;

/// The working table of a recursive CTE while its recursive blocks are
/// planned.
struct WorkRef {
    table: Arc<WorkTable>,
    names: Vec<String>,
    types: Vec<DataType>,
    /// References planned in the current recursive block.
    uses: AtomicUsize,
}

/// One CTE in scope.
struct CteDef {
    /// Lower-cased name.
    name: String,
    /// As written (for messages).
    display: String,
    query: Arc<ast::Query>,
    /// The column list `WITH t(a, b) AS …` (empty: the query's names).
    columns: Vec<String>,
    /// Whether it references itself (under `WITH RECURSIVE`).
    recursive: bool,
    /// How many entries of the stack its definition sees (those before it;
    /// a recursive CTE's own entry is added while its body is planned).
    visible: usize,
    /// Set on the entry that stands for the CTE inside its own recursive
    /// blocks.
    work: Option<Arc<WorkRef>>,
}

/// The CTEs in scope and the expansion bounds, while one statement is
/// planned (part of [`PlanCx`]).
#[derive(Default)]
pub struct Names {
    ctes: Mutex<Vec<Arc<CteDef>>>,
    /// Views being expanded, outermost first.
    views: Mutex<Vec<String>>,
    depth: AtomicUsize,
    expansions: AtomicUsize,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("ctes", &self.ctes_mut().len())
            .field("views", &*lock(&self.views))
            .finish()
    }
}

impl Names {
    fn ctes_mut(&self) -> std::sync::MutexGuard<'_, Vec<Arc<CteDef>>> {
        lock(&self.ctes)
    }

    fn find(&self, name: &str) -> Option<Arc<CteDef>> {
        self.ctes_mut()
            .iter()
            .rev()
            .find(|d| d.name == name)
            .cloned()
    }

    /// Runs `f` with the stack cut to its first `visible` entries (plus
    /// `extra`), then puts it back as it was, on every path.
    fn scoped<T>(
        &self,
        visible: usize,
        extra: Option<Arc<CteDef>>,
        f: impl FnOnce() -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let depth = self.depth.load(Ordering::Relaxed) + 1;
        if depth > MAX_EXPANSION_DEPTH {
            return Err(SqlError::ExpansionTooDeep(MAX_EXPANSION_DEPTH));
        }
        let n = self.expansions.load(Ordering::Relaxed) + 1;
        if n > MAX_EXPANSIONS {
            return Err(SqlError::TooManyExpansions(MAX_EXPANSIONS));
        }
        self.expansions.store(n, Ordering::Relaxed);
        let (at, tail) = {
            let mut s = self.ctes_mut();
            let at = visible.min(s.len());
            let tail = s.split_off(at);
            s.extend(extra);
            (at, tail)
        };
        self.depth.store(depth, Ordering::Relaxed);
        let r = on_enough_stack(f);
        self.depth.store(depth - 1, Ordering::Relaxed);
        let mut s = self.ctes_mut();
        s.truncate(at);
        s.extend(tail);
        r
    }
}

impl Names {
    /// Runs `f` (which plans view `name`) with `name` on the stack of views
    /// being expanded and no CTE in scope (a view's query sees only tables
    /// and views): `Err(ViewRecursion)` when `name` is being expanded
    /// already.
    ///
    /// With `database`, `f` runs with that current database in `ns` (a
    /// view's query resolves its names in its own), put back after.
    pub(super) fn in_view<T>(
        &self,
        db: &str,
        name: &str,
        database: Option<(&super::Namespace<'_>, Option<String>)>,
        f: impl FnOnce() -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let full = format!("{db}.{name}");
        if lock(&self.views).contains(&full) {
            return Err(SqlError::ViewRecursion(format!("`{db}`.`{name}`")));
        }
        lock(&self.views).push(full);
        let outer = database.map(|(ns, d)| (ns, ns.set_database(d)));
        let r = self.scoped(0, None, f);
        if let Some((ns, d)) = outer {
            ns.set_database(d);
        }
        lock(&self.views).pop();
        r
    }
}

/// Runs `f`, the planning of a CTE or view inside another. Each level costs
/// the planner's whole descent (tens of KB unoptimized), and the depth is
/// bounded by [`MAX_EXPANSION_DEPTH`], not by the caller's stack: natively,
/// when less than 256 KiB of stack is left, `f` runs on a fresh 2 MiB
/// segment (`stacker`, as rustc does). In wasm the bound alone holds (its
/// optimized frames fit the module's stack).
fn on_enough_stack<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(not(target_arch = "wasm32"))]
    {
        stacker::maybe_grow(256 * 1024, 2 * 1024 * 1024, f)
    }
    #[cfg(target_arch = "wasm32")]
    {
        f()
    }
}

/// Whether `e` names the relation `name` (lower-cased) anywhere.
fn references<V: ast::Visit>(e: &V, name: &str) -> bool {
    walk(
        e,
        &mut OnRelation(|r: &ast::ObjectName| {
            let is = r.0.len() == 1 && super::object_name(r) == name;
            if is {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }),
    )
    .is_break()
}

/// Plans `q`'s body (with `body`) with the CTEs of `with` in scope.
pub(super) fn with_ctes(
    with: &ast::With,
    cx: &PlanCx<'_>,
    body: impl FnOnce() -> Result<Planned, SqlError>,
) -> Result<Planned, SqlError> {
    let names = &cx.names;
    let base = names.ctes_mut().len();
    let mut seen: Vec<String> = Vec::new();
    let mut defs = Vec::new();
    for cte in &with.cte_tables {
        if cte.from.is_some() {
            return Err(SqlError::Unsupported("WITH … FROM".into()));
        }
        let name = cte.alias.name.value.to_lowercase();
        if seen.contains(&name) {
            return Err(SqlError::NonUniqueTable(cte.alias.name.value.clone()));
        }
        seen.push(name.clone());
        let recursive = with.recursive && references(&*cte.query, &name);
        defs.push(Arc::new(CteDef {
            display: cte.alias.name.value.clone(),
            name,
            query: Arc::new((*cte.query).clone()),
            columns: cte
                .alias
                .columns
                .iter()
                .map(|c| c.name.value.clone())
                .collect(),
            recursive,
            visible: base + defs.len(),
            work: None,
        }));
    }
    names.ctes_mut().extend(defs);
    let r = body();
    names.ctes_mut().truncate(base);
    r
}

/// Renames `p`'s columns to `columns` (when given), checking MySQL's rules
/// for a CTE's or a view's columns: as many as the query has (1353), no name
/// twice (1060).
pub(super) fn name_columns(mut p: Planned, columns: &[String]) -> Result<Planned, SqlError> {
    if !columns.is_empty() {
        if columns.len() != p.names.len() {
            return Err(SqlError::DerivedColumnCount);
        }
        p.names = columns.to_vec();
    }
    for (i, n) in p.names.iter().enumerate() {
        if p.names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(SqlError::DuplicateColumn(n.clone()));
        }
    }
    Ok(p)
}

/// The relation `name` (lower-cased, unqualified) when it is a CTE in scope:
/// its plan and scope, qualified by `alias` or the name. `None` when no CTE
/// has that name.
pub(super) fn resolve_cte(
    name: &str,
    alias: Option<&ast::TableAlias>,
    cx: &PlanCx<'_>,
) -> Option<Result<(Plan, Scope), SqlError>> {
    let def = cx.names.find(name)?;
    Some(plan_reference(&def, alias, cx))
}

fn plan_reference(
    def: &Arc<CteDef>,
    alias: Option<&ast::TableAlias>,
    cx: &PlanCx<'_>,
) -> Result<(Plan, Scope), SqlError> {
    let (plan, names, types) = match &def.work {
        Some(w) => {
            if w.uses.fetch_add(1, Ordering::Relaxed) >= 1 {
                return Err(SqlError::RecursiveReferencedTwice(def.display.clone()));
            }
            (
                Plan::WorkTable {
                    name: def.display.clone(),
                    table: w.table.clone(),
                },
                w.names.clone(),
                w.types.clone(),
            )
        }
        None if def.recursive => {
            let p = cx
                .names
                .scoped(def.visible, None, || plan_recursive(def, cx))?;
            (p.plan, p.names, p.types)
        }
        None => {
            let p = cx.names.scoped(def.visible, None, || {
                name_columns(plan_query(&def.query, cx)?, &def.columns)
            })?;
            (p.plan, p.names, p.types)
        }
    };
    let scope = qualified_scope(names, types, &def.display, alias)?;
    Ok((plan, scope))
}

/// The scope of a named relation's columns (`names`, `types`), qualified by
/// `alias` or `name`, and renamed by the alias's column list.
pub(super) fn qualified_scope(
    names: Vec<String>,
    types: Vec<DataType>,
    name: &str,
    alias: Option<&ast::TableAlias>,
) -> Result<Scope, SqlError> {
    let qualifier = alias.map_or(name, |a| a.name.value.as_str());
    let mut scope = Scope {
        cols: names
            .into_iter()
            .zip(types)
            .map(|(name, ty)| ScopeCol {
                qualifier: Some(qualifier.to_lowercase()),
                name,
                ty,
            })
            .collect(),
    };
    if let Some(a) = alias {
        if !a.columns.is_empty() {
            if a.columns.len() != scope.cols.len() {
                return Err(SqlError::DerivedColumnCount);
            }
            for (sc, ac) in scope.cols.iter_mut().zip(&a.columns) {
                sc.name = ac.name.value.clone();
            }
        }
    }
    Ok(scope)
}

/// `cte_max_recursion_depth` of the session.
fn max_recursion_depth(cx: &PlanCx<'_>) -> u64 {
    cx.vars
        .iter()
        .find(|(n, _)| *n == "cte_max_recursion_depth")
        .and_then(|(_, v)| match v {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        })
        .unwrap_or(DEFAULT_MAX_RECURSION_DEPTH)
}

/// How many times `e` names the relation `name` (lower-cased).
fn count_references<V: ast::Visit>(e: &V, name: &str) -> usize {
    let mut n = 0;
    let _ = walk(
        e,
        &mut OnRelation(|r: &ast::ObjectName| {
            if r.0.len() == 1 && super::object_name(r) == name {
                n += 1;
            }
            ControlFlow::Continue(())
        }),
    );
    n
}

/// The references to `name` among the tables a FROM item joins directly
/// (not inside a derived table), and whether one is the right side of a
/// LEFT JOIN.
fn direct_references(
    t: &ast::TableWithJoins,
    name: &str,
    count: &mut usize,
    left_right: &mut bool,
) {
    fn factor(tf: &ast::TableFactor, name: &str, count: &mut usize, left_right: &mut bool) -> bool {
        match tf {
            ast::TableFactor::Table {
                name: n,
                args: None,
                ..
            } if n.0.len() == 1 && super::object_name(n) == name => {
                *count += 1;
                true
            }
            ast::TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                let before = *count;
                direct_references(table_with_joins, name, count, left_right);
                *count > before
            }
            _ => false,
        }
    }
    factor(&t.relation, name, count, left_right);
    for j in &t.joins {
        let here = factor(&j.relation, name, count, left_right);
        if here
            && matches!(
                j.join_operator,
                ast::JoinOperator::Left(_) | ast::JoinOperator::LeftOuter(_)
            )
        {
            *left_right = true;
        }
    }
}

/// Checks a recursive query block against MySQL's rules; `name` is the
/// CTE's name lower-cased, `display` as written.
fn check_recursive_block(block: &ast::SetExpr, name: &str, display: &str) -> Result<(), SqlError> {
    let s = match block {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::Query(q) => {
            if q.order_by.is_some() || q.limit_clause.is_some() {
                return Err(SqlError::Unsupported(
                    "ORDER BY / LIMIT / SELECT DISTINCT in recursive query block of Common Table Expression".into(),
                ));
            }
            return check_recursive_block(&q.body, name, display);
        }
        _ => return Err(SqlError::RecursiveNeedsUnion(display.to_owned())),
    };
    // One reference, in the block's own FROM (not in a subquery), and not
    // on the right of a LEFT JOIN.
    let (mut direct, mut left_right) = (0, false);
    for t in &s.from {
        direct_references(t, name, &mut direct, &mut left_right);
    }
    if direct != 1 || count_references(block, name) != 1 {
        return Err(SqlError::RecursiveReferencedTwice(display.to_owned()));
    }
    if left_right {
        return Err(SqlError::RecursiveJoinOrder(display.to_owned()));
    }
    if matches!(s.distinct, Some(ast::Distinct::Distinct)) {
        return Err(SqlError::Unsupported(
            "ORDER BY / LIMIT / SELECT DISTINCT in recursive query block of Common Table Expression"
                .into(),
        ));
    }
    let grouped = match &s.group_by {
        ast::GroupByExpr::All(_) => true,
        ast::GroupByExpr::Expressions(e, _) => !e.is_empty(),
    };
    let mut aggregated = grouped || s.having.is_some();
    for item in &s.projection {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            aggregated |= walk(
                e,
                &mut OnExpr(|x: &ast::Expr| match x {
                    ast::Expr::Function(f)
                        if f.over.is_some()
                            || super::compile::AGG_NAMES
                                .contains(&super::object_name(&f.name).as_str()) =>
                    {
                        ControlFlow::Break(())
                    }
                    _ => ControlFlow::Continue(()),
                }),
            )
            .is_break();
        }
    }
    if aggregated {
        return Err(SqlError::RecursiveAggregation(display.to_owned()));
    }
    Ok(())
}

/// Plans a recursive CTE (see the module doc).
fn plan_recursive(def: &Arc<CteDef>, cx: &PlanCx<'_>) -> Result<Planned, SqlError> {
    let q = &def.query;
    if let Some(with) = &q.with {
        // A WITH inside the CTE's own query: its CTEs are in scope of the
        // blocks.
        return with_ctes(with, cx, || plan_recursive_body(def, cx));
    }
    plan_recursive_body(def, cx)
}

fn plan_recursive_body(def: &Arc<CteDef>, cx: &PlanCx<'_>) -> Result<Planned, SqlError> {
    let q = &def.query;
    let name = &def.display;
    if q.order_by.is_some() {
        return Err(SqlError::Unsupported(
            "ORDER BY over UNION in recursive Common Table Expression".into(),
        ));
    }
    if q.fetch.is_some() || !q.locks.is_empty() {
        return Err(SqlError::Unsupported("FETCH / FOR UPDATE".into()));
    }
    let Some(run) = shape::set_run(&q.body) else {
        return Err(SqlError::RecursiveNeedsUnion(name.clone()));
    };
    if run
        .ops
        .iter()
        .any(|(op, _)| **op != ast::SetOperator::Union)
    {
        return Err(SqlError::RecursiveNeedsUnion(name.clone()));
    }
    let recursive: Vec<bool> = run
        .operands
        .iter()
        .map(|o| references(*o, &def.name))
        .collect();
    let anchors = recursive.iter().take_while(|r| !**r).count();
    if anchors == 0 || recursive[anchors..].iter().any(|r| !*r) {
        return Err(SqlError::RecursiveAnchorsFirst(name.clone()));
    }
    // The UNION that joins the recursive blocks, and those between them.
    let quantifiers: Vec<bool> = run.ops[anchors - 1..]
        .iter()
        .map(|(_, q)| matches!(q, ast::SetQuantifier::All))
        .collect();
    let distinct = match (
        quantifiers.iter().all(|a| *a),
        quantifiers.iter().all(|a| !*a),
    ) {
        (true, _) => false,
        (_, true) => true,
        _ => return Err(SqlError::Unsupported(
            "UNION ALL and UNION DISTINCT mixed in the recursive part of a Common Table Expression"
                .into(),
        )),
    };
    for block in &run.operands[anchors..] {
        check_recursive_block(block, &def.name, name)?;
    }
    let anchor = name_columns(
        plan_set_run(&run.operands[..anchors], &run.ops[..anchors - 1], cx, None)?,
        &def.columns,
    )?;
    let table = WorkTable::new();
    let work = Arc::new(WorkRef {
        table: table.clone(),
        names: anchor.names.clone(),
        types: anchor.types.clone(),
        uses: AtomicUsize::new(0),
    });
    let me = Arc::new(CteDef {
        name: def.name.clone(),
        display: def.display.clone(),
        query: def.query.clone(),
        columns: def.columns.clone(),
        recursive: true,
        visible: def.visible,
        work: Some(work.clone()),
    });
    let mut terms = Vec::new();
    for block in &run.operands[anchors..] {
        work.uses.store(0, Ordering::Relaxed);
        let visible = cx.names.ctes_mut().len();
        let p = cx.names.scoped(visible, Some(me.clone()), || {
            plan_set_run(&[*block], &[], cx, None)
        })?;
        if p.types.len() != anchor.types.len() {
            return Err(SqlError::UnionArity);
        }
        terms.push(p.plan);
    }
    let term = if terms.len() == 1 {
        terms
            .pop()
            .ok_or(SqlError::RecursiveAnchorsFirst(name.clone()))?
    } else {
        Plan::Union {
            inputs: terms,
            types: anchor.types.clone(),
        }
    };
    let limited = q.limit_clause.is_some();
    let plan = Plan::Recursive {
        anchor: Box::new(anchor.plan),
        term: Box::new(term),
        table,
        spec: RecursionSpec {
            name: def.display.clone(),
            types: anchor.types.clone(),
            distinct,
            max_iterations: max_recursion_depth(cx),
            materialize: !limited,
        },
    };
    let planned = Planned {
        plan,
        names: anchor.names,
        types: anchor.types,
    };
    if limited {
        super::query::apply_limit(planned, q, cx)
    } else {
        Ok(planned)
    }
}
