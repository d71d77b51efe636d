//! One SELECT: FROM and joins, WHERE, GROUP BY, HAVING, the select list.

use super::compile::{col_ast, const_int, contains_agg, names_text, AggCx, Compiler};
use super::query::{is_desc, plan_query, Shape};
use super::scope::{Scope, ScopeCol};
use super::subquery;
use super::types::object_name;
use super::window::{first_window, rebase, WindowCalls, WindowError};
use super::{Plan, PlanCx, Planned};
use sqlparser::ast;

use crate::data::DataType;
use crate::expr::Expr;
use crate::pipeline::sort::SortKey;
use crate::sql::error::SqlError;

pub(super) fn plan_factor(
    tf: &ast::TableFactor,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    match tf {
        ast::TableFactor::Table {
            name, alias, args, ..
        } => {
            let tname = object_name(name);
            if let Some(args) = args {
                if tname != "generate_series" {
                    return Err(SqlError::Unsupported(format!("the table function {tname}")));
                }
                let mut vals = Vec::new();
                for a in &args.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            vals.push(const_int(c, e, "generate_series")?)
                        }
                        _ => return Err(SqlError::WrongArgs("generate_series".into())),
                    }
                }
                let (start, stop, step) = match vals.as_slice() {
                    [a, b] => (*a, *b, 1),
                    [a, b, s] => (*a, *b, *s),
                    _ => return Err(SqlError::WrongArgs("generate_series".into())),
                };
                if step == 0 {
                    return Err(SqlError::InvalidValue(
                        "generate_series step must not be 0".into(),
                    ));
                }
                let (qual, col) = match alias {
                    Some(a) => {
                        if a.columns.len() > 1 {
                            return Err(SqlError::DerivedColumnCount);
                        }
                        (
                            a.name.value.clone(),
                            a.columns.first().map(|c| c.name.value.clone()),
                        )
                    }
                    None => ("generate_series".to_owned(), None),
                };
                let scope = Scope {
                    cols: vec![ScopeCol {
                        qualifier: Some(qual.to_lowercase()),
                        name: col.unwrap_or_else(|| "generate_series".into()),
                        ty: DataType::Int,
                    }],
                };
                return Ok((Plan::Series { start, stop, step }, scope));
            }
            // `information_schema.tables` / `.columns` (sql/info_schema.rs).
            let virtual_table = crate::sql::info_schema::lookup(name, cx)?;
            // A CTE in scope (an unqualified name), or a view, before a
            // table (views and tables share a namespace).
            if name.0.len() == 1 {
                if let Some(r) = super::cte::resolve_cte(&tname, alias.as_ref(), cx) {
                    return r;
                }
            }
            if virtual_table.is_none() {
                if let Some(r) = super::view::resolve_view(name, alias.as_ref(), cx) {
                    return r;
                }
            }
            let (table, data) = match virtual_table {
                Some(v) => v,
                None => cx.named_table(name).map(|(_, t, d)| (t, d))?,
            };
            let qual = alias
                .as_ref()
                .map_or(tname.clone(), |a| a.name.value.clone());
            let mut scope = Scope::of_table(&table, &qual);
            if let Some(a) = alias {
                if !a.columns.is_empty() && a.columns.len() != scope.cols.len() {
                    return Err(SqlError::DerivedColumnCount);
                }
                for (sc, ac) in scope.cols.iter_mut().zip(&a.columns) {
                    sc.name = ac.name.value.clone();
                }
            }
            Ok((Plan::Scan { table: tname, data }, scope))
        }
        ast::TableFactor::Derived {
            subquery,
            alias,
            lateral,
            ..
        } => {
            if *lateral {
                return Err(SqlError::Unsupported("LATERAL".into()));
            }
            let p = plan_query(subquery, cx)?;
            let mut scope = p.scope();
            if let Some(a) = alias {
                if !a.columns.is_empty() && a.columns.len() != scope.cols.len() {
                    return Err(SqlError::DerivedColumnCount);
                }
                scope = scope.with_qualifier(&a.name.value);
                for (sc, ac) in scope.cols.iter_mut().zip(&a.columns) {
                    sc.name = ac.name.value.clone();
                }
            }
            Ok((p.plan, scope))
        }
        ast::TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            let (p, s) = super::joins::plan_nested(table_with_joins, cx, c)?;
            Ok((
                p,
                match alias {
                    Some(a) => s.with_qualifier(&a.name.value),
                    None => s,
                },
            ))
        }
        other => Err(SqlError::Unsupported(format!("the FROM item {other}"))),
    }
}

pub(super) fn plan_select(
    s: &ast::Select,
    shape: &Shape<'_>,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Planned, SqlError> {
    if s.into.is_some() || !s.lateral_views.is_empty() || s.qualify.is_some() || s.top.is_some() {
        return Err(SqlError::Unsupported("this SELECT form".into()));
    }
    // `SELECT ALL` is the default, not `DISTINCT ON`.
    let distinct = match &s.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(SqlError::Unsupported("DISTINCT ON".into())),
    };
    // Window functions may only be in the select list and ORDER BY (3593),
    // checked before anything else, so that one is never answered as a
    // grouping error (1055).
    let group_asts: &[ast::Expr] = match &s.group_by {
        ast::GroupByExpr::Expressions(v, _) => v,
        ast::GroupByExpr::All(_) => &[],
    };
    for e in s.selection.iter().chain(&s.having).chain(group_asts) {
        if let Some(w) = first_window(e) {
            return Err(WindowError::InvalidUse(w).into());
        }
    }
    // FROM, its joins and WHERE, planned together (see joins.rs). A WHERE
    // with a subquery is applied whole after the joins instead
    // (subquery::plan_where orders its conjuncts), and then, as with
    // subqueries elsewhere, every FROM column is kept: a correlated
    // subquery reads them as parameters, not as `Expr::Column`s.
    let where_sub = s
        .selection
        .as_ref()
        .filter(|w| subquery::contains_subquery(w));
    if let Some(w) = where_sub {
        if contains_agg(w) {
            return Err(SqlError::InvalidGroupFunction);
        }
    }
    let from = super::joins::read_from(
        &s.from,
        s.selection.as_ref().filter(|_| where_sub.is_none()),
        cx,
        c,
    )?;
    let scope = from.scope().clone();
    // The types of the columns that WHERE's subqueries add after the scope's.
    let mut where_types = Vec::new();
    // Select items as (ast, output name).
    let mut items: Vec<(ast::Expr, String)> = Vec::new();
    for it in &s.projection {
        match it {
            ast::SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    ast::Expr::Identifier(i) => i.value.clone(),
                    ast::Expr::CompoundIdentifier(p) => {
                        p.last().map(|i| i.value.clone()).unwrap_or_default()
                    }
                    other => other.to_string(),
                };
                items.push((e.clone(), name));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), alias.value.clone()))
            }
            ast::SelectItem::ExprWithAliases { .. } => {
                return Err(SqlError::Unsupported("multiple aliases".into()))
            }
            ast::SelectItem::Wildcard(_) => {
                for col in &scope.cols {
                    items.push((col_ast(col), col.name.clone()));
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let q = kind.to_string().to_lowercase();
                let q = q
                    .trim_end_matches(".*")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let before = items.len();
                for col in scope
                    .cols
                    .iter()
                    .filter(|col| col.qualifier.as_deref() == Some(q.as_str()))
                {
                    items.push((col_ast(col), col.name.clone()));
                }
                if items.len() == before {
                    return Err(SqlError::UnknownTable(q));
                }
            }
        }
    }
    let windows = {
        let mut exprs: Vec<&ast::Expr> = items.iter().map(|(e, _)| e).collect();
        exprs.extend(shape.order.iter().map(|o| &o.expr));
        WindowCalls::collect(&exprs, &s.named_window)?
    };
    let wc = Compiler {
        connection_id: c.connection_id,
        now_micros: c.now_micros,
        cx: c.cx,
        outer: c.outer,
        subs: Default::default(),
        windows: Some(&windows),
    };
    let c = &wc;
    let group_by: Vec<ast::Expr> = match &s.group_by {
        ast::GroupByExpr::Expressions(v, mods) if mods.is_empty() => v.clone(),
        ast::GroupByExpr::Expressions(..) | ast::GroupByExpr::All(_) => {
            return Err(SqlError::Unsupported("GROUP BY modifiers".into()))
        }
    };
    let aggregating = !group_by.is_empty()
        || items.iter().any(|(e, _)| contains_agg(e))
        || s.having.as_ref().is_some_and(contains_agg)
        || shape.order.iter().any(|o| contains_agg(&o.expr))
        || windows.spec_exprs().any(contains_agg);
    let alias_of = |name: &str| {
        items
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(e, _)| e.clone())
    };

    // The scope the select items are compiled in, and the aggregation.
    let mut agg_cx: Option<AggCx> = None;
    if aggregating {
        let mut group_names = Vec::new();
        let mut group_exprs = Vec::new();
        for g in &group_by {
            let resolved = match g {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n = const_int(c, g, "GROUP BY")?;
                    items
                        .get((n as usize).wrapping_sub(1))
                        .map(|(e, _)| e.clone())
                        .ok_or(SqlError::UnknownColumn {
                            name: n.to_string(),
                            clause: "group statement",
                        })?
                }
                ast::Expr::Identifier(i)
                    if scope
                        .resolve(std::slice::from_ref(i), "group statement")
                        .is_err() =>
                {
                    alias_of(&i.value).unwrap_or_else(|| g.clone())
                }
                other => other.clone(),
            };
            if contains_agg(&resolved) {
                return Err(SqlError::InvalidGroupFunction);
            }
            group_exprs.push(c.compile(&resolved, &scope, "group statement")?);
            group_names.push(resolved.to_string());
        }
        let group_types = group_exprs
            .iter()
            .map(|e| e.data_type(&scope.types()))
            .collect();
        agg_cx = Some(AggCx {
            group_names,
            group_exprs,
            group_types,
            aggs: Vec::new(),
            input: scope.clone(),
            aliases: items.iter().map(|(e, n)| (n.clone(), e.clone())).collect(),
        });
    }
    let compile_item =
        |e: &ast::Expr, clause: &'static str, agg: &mut Option<AggCx>| -> Result<Expr, SqlError> {
            match agg {
                Some(a) => {
                    let mut r = Some(&mut *a);
                    c.compile_in(e, &Scope::default(), clause, &mut r)
                }
                None => c.compile(e, &scope, clause),
            }
        };
    // Subqueries of the select list, HAVING and ORDER BY run after the
    // aggregation (or WHERE). (An error leaves the collector open: the
    // statement is over then.)
    c.subs.open();
    let mut exprs = Vec::new();
    for (e, _) in &items {
        exprs.push(compile_item(e, "field list", &mut agg_cx)?);
    }
    let mut having = match &s.having {
        Some(h) => Some(compile_item(h, "having clause", &mut agg_cx)?),
        None => None,
    };
    // ORDER BY keys: a select column, or a hidden extra column.
    let visible = exprs.len();
    let names: Vec<String> = items.iter().map(|(_, n)| n.clone()).collect();
    let mut sort_keys = Vec::new();
    for o in &shape.order {
        let col = match &o.expr {
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                let n = const_int(c, &o.expr, "ORDER BY")?;
                if n < 1 || n as usize > visible {
                    return Err(SqlError::UnknownColumn {
                        name: n.to_string(),
                        clause: "order clause",
                    });
                }
                n as usize - 1
            }
            e => {
                let by_alias = match e {
                    ast::Expr::Identifier(i) => {
                        names.iter().position(|n| n.eq_ignore_ascii_case(&i.value))
                    }
                    _ => None,
                };
                match by_alias {
                    Some(i) => i,
                    None => {
                        // A select item when it compiles to the same
                        // expression (structurally: `x = 'A'` is not
                        // `x = 'a'`), else a hidden extra column.
                        let x = compile_item(e, "order clause", &mut agg_cx)?;
                        match exprs[..visible].iter().position(|y| *y == x) {
                            Some(i) => i,
                            None if distinct => return Err(SqlError::Unsupported("ORDER BY an expression not in the SELECT list of a SELECT DISTINCT".into())),
                            None => {
                                exprs.push(x);
                                exprs.len() - 1
                            }
                        }
                    }
                }
            }
        };
        sort_keys.push(SortKey {
            expr: Expr::Column(col),
            desc: is_desc(o),
        });
    }
    let subs = c.subs.close();
    // The windows' arguments, partitioning and ordering, in the select
    // list's scope (they may add aggregates).
    let compiled_windows = if windows.is_empty() {
        None
    } else {
        Some(windows.compile(&mut |e, clause| compile_item(e, clause, &mut agg_cx))?)
    };
    // The FROM columns read above it, and the FROM plan carrying only those.
    let mut needed = vec![false; scope.cols.len()];
    let mut mark = |e: &Expr| {
        e.visit(&mut |x| {
            if let Expr::Column(i) = x {
                if let Some(n) = needed.get_mut(*i) {
                    *n = true;
                }
            }
        })
    };
    match &agg_cx {
        Some(a) => {
            a.group_exprs.iter().for_each(&mut mark);
            a.aggs
                .iter()
                .filter_map(|x| x.arg.as_ref())
                .for_each(&mut mark);
        }
        None => exprs.iter().for_each(&mut mark),
    }
    // Window calls read FROM columns too: with them, every column is kept.
    let prune = compiled_windows.is_none() && subs.is_empty() && where_sub.is_none();
    let mut plan = from.plan(prune.then_some(needed.as_slice()))?;
    if let Some(w) = where_sub {
        (plan, where_types) = subquery::plan_where(c, w, &scope, plan)?;
    }
    // Assemble: aggregate, having, windows, project, distinct, sort, limit,
    // trim.
    let mut pre_scope_types;
    let mut pre_names;
    if let Some(a) = agg_cx {
        let mut key_types = a.group_types.clone();
        key_types.extend(a.aggs.iter().map(|x| x.output_type()));
        let input_names = a.input.names();
        let text = format!(
            "group by [{}] aggregates [{}]",
            names_text(&a.group_exprs, &input_names),
            a.aggs
                .iter()
                .map(|x| x.text.clone())
                .collect::<Vec<_>>()
                .join(", ")
        );
        pre_names = a
            .group_names
            .iter()
            .cloned()
            .chain(a.aggs.iter().map(|x| x.text.clone()))
            .collect::<Vec<_>>();
        plan = Plan::Aggregate {
            input: Box::new(plan),
            keys: a.group_exprs,
            key_types: a.group_types,
            aggs: a.aggs,
            text,
        };
        pre_scope_types = key_types;
        let mut targets: Vec<&mut Expr> = exprs.iter_mut().chain(having.iter_mut()).collect();
        plan = subquery::apply_clause(
            plan,
            &mut pre_scope_types,
            &mut pre_names,
            subs,
            &mut targets,
        );
        if let Some(h) = having {
            plan = Plan::Filter {
                input: Box::new(plan),
                text: h.display(&pre_names),
                pred: h,
            };
        }
    } else {
        if having.is_some() {
            return Err(SqlError::Unsupported(
                "HAVING without GROUP BY or aggregates".into(),
            ));
        }
        pre_scope_types = scope.types();
        pre_names = scope.names();
        pre_names.extend((0..where_types.len()).map(|i| format!("#{}", pre_scope_types.len() + i)));
        pre_scope_types.extend(where_types);
        let mut targets: Vec<&mut Expr> = exprs.iter_mut().collect();
        plan = subquery::apply_clause(
            plan,
            &mut pre_scope_types,
            &mut pre_names,
            subs,
            &mut targets,
        );
    }
    if let Some(w) = compiled_windows {
        let planned = w.plan(&pre_scope_types, &pre_names)?;
        for n in planned.nodes {
            pre_names.extend(n.calls.iter().map(|c| c.text.clone()));
            plan = Plan::Window {
                input: Box::new(plan),
                partition: n.partition,
                order: n.order,
                calls: n.calls,
                text: n.text,
            };
        }
        pre_scope_types.extend(planned.types);
        for e in &mut exprs {
            rebase(e, &planned.cols);
        }
    }
    let types: Vec<DataType> = exprs
        .iter()
        .map(|e| e.data_type(&pre_scope_types))
        .collect();
    let ptext = names_text(&exprs, &pre_names);
    plan = Plan::Project {
        input: Box::new(plan),
        exprs,
        types: types.clone(),
        text: ptext,
    };
    if distinct {
        let keys: Vec<Expr> = (0..visible).map(Expr::Column).collect();
        plan = Plan::Aggregate {
            input: Box::new(plan),
            text: format!("distinct {}", names.join(", ")),
            keys,
            key_types: types[..visible].to_vec(),
            aggs: vec![],
        };
    }
    let mut all_names = names.clone();
    while all_names.len() < types.len() {
        all_names.push(format!("#{}", all_names.len()));
    }
    if !sort_keys.is_empty() {
        let text = sort_keys
            .iter()
            .map(|k| {
                format!(
                    "{}{}",
                    k.expr.display(&all_names),
                    if k.desc { " DESC" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        plan = Plan::Sort {
            input: Box::new(plan),
            keys: sort_keys,
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
    if types.len() > visible {
        let keep: Vec<Expr> = (0..visible).map(Expr::Column).collect();
        plan = Plan::Project {
            input: Box::new(plan),
            text: names.join(", "),
            exprs: keep,
            types: types[..visible].to_vec(),
        };
    }
    Ok(Planned {
        plan,
        names,
        types: types[..visible].to_vec(),
    })
}
