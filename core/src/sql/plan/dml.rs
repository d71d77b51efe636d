//! UPDATE and DELETE planned as pipeline operators
//! ([`crate::pipeline::dml`]): the target table, the compiled predicate and
//! assignments, checked here; the rows are rewritten by the operator.

use sqlparser::ast;
use std::sync::Arc;

use super::compile::compile_over_table;
use super::types::object_name;
use super::{Plan, PlanCx};
use crate::expr::Expr;
use crate::pipeline::dml::Affected;
use crate::sql::error::SqlError;
use crate::storage::{Table, TableKey};

/// A planned UPDATE or DELETE.
pub struct PlannedDml {
    /// The plan: one [`Plan::Update`] or [`Plan::Delete`].
    pub plan: Plan,
    /// The table's key.
    pub key: TableKey,
    /// The table written.
    pub table: Arc<Table>,
    /// Rows affected, counted while the plan runs.
    pub affected: Affected,
}

/// The compiled `WHERE` of a single-table UPDATE or DELETE.
fn where_clause(
    w: &Option<ast::Expr>,
    table: &Table,
    cx: &PlanCx<'_>,
) -> Result<Option<Expr>, SqlError> {
    w.as_ref()
        .map(|w| compile_over_table(w, table, cx.connection_id, cx.now_micros, "where clause"))
        .transpose()
}

/// Plans `UPDATE t SET … [WHERE …]` (one table, no ORDER BY / LIMIT).
pub fn plan_update(u: &ast::Update, cx: &PlanCx<'_>) -> Result<PlannedDml, SqlError> {
    if !u.table.joins.is_empty()
        || u.from.is_some()
        || u.returning.is_some()
        || u.limit.is_some()
        || !u.order_by.is_empty()
    {
        return Err(SqlError::Unsupported(
            "multi-table UPDATE, UPDATE … ORDER BY/LIMIT".into(),
        ));
    }
    let ast::TableFactor::Table { name, .. } = &u.table.relation else {
        return Err(SqlError::Unsupported("UPDATE of a derived table".into()));
    };
    let (key, table, data) = cx.named_table(name)?;
    let name = key.name.clone();
    let pred = where_clause(&u.selection, &table, cx)?;
    let mut sets = Vec::new();
    for a in &u.assignments {
        let ast::AssignmentTarget::ColumnName(col) = &a.target else {
            return Err(SqlError::Unsupported("tuple assignment".into()));
        };
        let n = object_name(col);
        let i = table
            .schema
            .columns
            .iter()
            .position(|d| d.name == n)
            .ok_or_else(|| SqlError::UnknownColumn {
                name: n.clone(),
                clause: "field list",
            })?;
        let e = compile_over_table(
            &a.value,
            &table,
            cx.connection_id,
            cx.now_micros,
            "field list",
        )?;
        sets.push((i, table.schema.columns[i].clone(), e));
    }
    let names: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let mut text = format!(
        "set [{}]",
        sets.iter()
            .map(|(i, _, e)| format!("{} = {}", names[*i], e.display(&names)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(p) = &pred {
        text.push_str(&format!(" where {}", p.display(&names)));
    }
    let affected = Affected::default();
    Ok(PlannedDml {
        plan: Plan::Update {
            table: name.clone(),
            data,
            pred,
            sets,
            affected: affected.clone(),
            text,
        },
        key,
        table,
        affected,
    })
}

/// Plans `DELETE FROM t [WHERE …]` (one table, no ORDER BY / LIMIT).
pub fn plan_delete(d: &ast::Delete, cx: &PlanCx<'_>) -> Result<PlannedDml, SqlError> {
    if d.using.is_some()
        || d.returning.is_some()
        || d.limit.is_some()
        || !d.order_by.is_empty()
        || d.tables.len() > 1
    {
        return Err(SqlError::Unsupported(
            "multi-table DELETE, DELETE … ORDER BY/LIMIT".into(),
        ));
    }
    let from = match &d.from {
        ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
    };
    let [twj] = from.as_slice() else {
        return Err(SqlError::Unsupported("multi-table DELETE".into()));
    };
    // `DELETE t FROM t JOIN u ON …` deletes only the joined rows: ignoring
    // the join would delete every row of `t` (found by the fuzzer).
    if !twj.joins.is_empty() {
        return Err(SqlError::Unsupported("multi-table DELETE".into()));
    }
    let ast::TableFactor::Table { name, alias, .. } = &twj.relation else {
        return Err(SqlError::Unsupported("DELETE from a derived table".into()));
    };
    let key = cx.ns.resolve(name)?;
    let name = key.name.clone();
    // `DELETE u FROM t` names a table that is not in FROM: deleting from
    // `t` instead would be wrong.
    if let [target] = d.tables.as_slice() {
        let alias = alias.as_ref().map(|a| a.name.value.to_lowercase());
        let is_alias = target.0.len() == 1 && alias.as_deref() == Some(&*object_name(target));
        if !is_alias && cx.ns.resolve(target)? != key {
            return Err(SqlError::UnknownTableInDelete(object_name(target)));
        }
    }
    let (table, data) = cx.table(&key)?;
    let pred = where_clause(&d.selection, &table, cx)?;
    let names: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let text = match &pred {
        Some(p) => format!("where {}", p.display(&names)),
        None => "all rows".to_owned(),
    };
    let affected = Affected::default();
    Ok(PlannedDml {
        plan: Plan::Delete {
            table: name.clone(),
            data,
            pred,
            affected: affected.clone(),
            text,
        },
        key,
        table,
        affected,
    })
}
