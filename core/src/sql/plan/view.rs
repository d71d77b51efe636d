//! Views: `CREATE VIEW` checks and records a query; a reference to a view
//! plans that query in its place (see [`super::cte`] for the bounds on
//! nested expansion).
//!
//! As in MySQL: the view's columns are fixed when it is created (from its
//! column list, or its query's output names), two columns of one name are
//! 1060, a column list of the wrong length 1353; a view whose tables or
//! columns have gone since is 1356 when used, and a view that reaches itself
//! (through `CREATE OR REPLACE` of a view it reads) is 1462.

use sqlparser::ast;

use super::cte::{name_columns, qualified_scope};
use super::query::plan_query;
use super::scope::Scope;
use super::{Plan, PlanCx};
use crate::sql::error::SqlError;
use crate::storage::{TableKey, View};

/// The view that `CREATE VIEW` records: its query is planned first (in the
/// statement's snapshot), so a view over missing tables or columns is
/// refused when created (1146, 1054), as in MySQL.
///
/// Returns the view's key with it: `CREATE VIEW db.v` puts it in `db`, and
/// its query's unqualified names resolve in the creator's current database
/// (then and at every use), as in MySQL.
pub fn define_view(cv: &ast::CreateView, cx: &PlanCx<'_>) -> Result<(TableKey, View), SqlError> {
    if cv.materialized || cv.temporary || cv.to.is_some() || cv.or_alter {
        return Err(SqlError::Unsupported(
            "this CREATE VIEW form (MATERIALIZED, TEMPORARY, OR ALTER, TO)".into(),
        ));
    }
    let key = cx.ns.resolve(&cv.name)?;
    let columns: Vec<String> = cv.columns.iter().map(|c| c.name.value.clone()).collect();
    let planned = cx
        .names
        .in_view(&key.db.name, &key.name, None, || plan_query(&cv.query, cx))?;
    let planned = name_columns(planned, &columns)?;
    Ok((
        key.clone(),
        View {
            name: key.name,
            default_db: cx.ns.current(),
            query: cv.query.to_string(),
            columns: planned.names,
        },
    ))
}

/// The relation `name` when it is a view of the caller's tenant: its plan
/// and scope, qualified by `alias` or the name. `Ok(None)` when no view has
/// that name (1046 for an unqualified name without a current database).
pub(super) fn resolve_view(
    name: &ast::ObjectName,
    alias: Option<&ast::TableAlias>,
    cx: &PlanCx<'_>,
) -> Option<Result<(Plan, Scope), SqlError>> {
    let key = match cx.ns.resolve(name) {
        Ok(k) => k,
        Err(e) => return Some(Err(e)),
    };
    let view = cx.catalog.view(&key)?;
    Some(expand(&key, &view, alias, cx))
}

fn expand(
    key: &TableKey,
    view: &View,
    alias: Option<&ast::TableAlias>,
    cx: &PlanCx<'_>,
) -> Result<(Plan, Scope), SqlError> {
    let invalid = || SqlError::InvalidView(format!("{}.{}", key.db.name, view.name));
    let mut stmts = crate::sql::parse(&view.query).map_err(|_| invalid())?;
    let (Some(ast::Statement::Query(q)), None) = (stmts.pop(), stmts.pop()) else {
        return Err(invalid());
    };
    // The view's query reads its own database's tables, whatever the
    // reader's current database (in_view swaps it in and back).
    let planned = cx
        .names
        .in_view(
            &key.db.name,
            &view.name,
            Some((&cx.ns, view.default_db.clone())),
            || plan_query(&q, cx),
        )
        .map_err(|e| match e {
            // What the view reads is gone or changed.
            SqlError::UnknownTable(_)
            | SqlError::UnknownColumn { .. }
            | SqlError::Ambiguous(_)
            | SqlError::UnionArity
            | SqlError::NoDatabase => invalid(),
            other => other,
        })?;
    if planned.names.len() != view.columns.len() {
        return Err(invalid());
    }
    let scope = qualified_scope(view.columns.clone(), planned.types, &view.name, alias)?;
    Ok((planned.plan, scope))
}
