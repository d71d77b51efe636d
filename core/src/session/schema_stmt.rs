//! Statements on a table's indexes and its description: `CREATE [UNIQUE]
//! INDEX`, `DROP INDEX … ON t`, `ALTER TABLE t ADD {INDEX | UNIQUE |
//! PRIMARY KEY} …` / `DROP INDEX`, `DESCRIBE t`, `SHOW COLUMNS FROM t`,
//! `SHOW CREATE TABLE t`.
//!
//! Index DDL commits at once a new version of the table that carries the
//! index (see [`crate::storage::Catalog::alter_data`]).

use std::time::Duration;

use sqlparser::ast;

use super::{ColumnInfo, QueryError, QueryResult};
use crate::data::{DataType, Value};
use crate::index::IndexKind;
use crate::sql::{ddl, info_schema, plan};
use crate::storage::{Catalog, StorageError, TableKey};

fn rows_result(query_id: u64, names: &[&str], rows: Vec<Vec<Value>>) -> QueryResult {
    QueryResult {
        query_id,
        columns: names
            .iter()
            .map(|n| ColumnInfo {
                name: (*n).into(),
                ty: DataType::Text,
            })
            .collect(),
        rows,
        rows_affected: 0,
        elapsed: Duration::ZERO,
        warnings: 0,
        message: None,
    }
}

/// `CREATE [UNIQUE] INDEX name ON t (cols)`: 1061 for a name taken, 1062
/// when the rows break a new unique index.
pub(super) fn create_index(
    cat: &Catalog,
    key: &TableKey,
    ci: &ast::CreateIndex,
) -> Result<(), QueryError> {
    cat.alter_data(key, |table, data| {
        let existing = info_schema::index_defs(data);
        let def = ddl::create_index_def(ci, &table.schema.columns, &existing)
            .map_err(QueryError::from)?;
        data.with_index(def)
            .map_err(|d| QueryError::from(d.into_error(&table.name)))
    })?;
    Ok(())
}

/// `DROP INDEX name ON t`: 1091 if the table has no such index.
pub(super) fn drop_index(cat: &Catalog, index: &str, table: &TableKey) -> Result<(), QueryError> {
    cat.alter_data(table, |_, data| {
        data.without_index(index)
            .ok_or_else(|| QueryError::from(StorageError::UnknownKey(index.to_owned())))
    })?;
    Ok(())
}

/// `ALTER TABLE t ADD INDEX … / ADD UNIQUE … / ADD PRIMARY KEY … / DROP
/// INDEX …`; other alterations are refused (1235).
pub(super) fn alter_table(
    cat: &Catalog,
    table: &TableKey,
    ops: &[ast::AlterTableOperation],
) -> Result<(), QueryError> {
    for op in ops {
        match op {
            ast::AlterTableOperation::AddConstraint { constraint, .. } => {
                let (iname, unique, columns) = match constraint {
                    ast::TableConstraint::Index(i) => {
                        (i.name.clone(), IndexKind::Plain, i.columns.clone())
                    }
                    ast::TableConstraint::Unique(u) => (
                        u.name.clone().or(u.index_name.clone()),
                        IndexKind::Unique,
                        u.columns.clone(),
                    ),
                    ast::TableConstraint::PrimaryKey(p) => {
                        (None, IndexKind::Primary, p.columns.clone())
                    }
                    other => {
                        return Err(QueryError::unsupported(format!(
                            "ALTER TABLE … ADD {other}"
                        )))
                    }
                };
                cat.alter_data(table, |t, data| {
                    let reject = QueryError::from;
                    let parts = ddl::key_parts(&columns, &t.schema.columns).map_err(reject)?;
                    if unique == IndexKind::Primary
                        && parts.iter().any(|p| t.schema.columns[p.column].nullable)
                    {
                        // Making the columns NOT NULL would change the
                        // table's schema, which ALTER does not do here.
                        return Err(QueryError::unsupported(
                            "ALTER TABLE … ADD PRIMARY KEY on nullable columns",
                        ));
                    }
                    let existing = info_schema::index_defs(data);
                    let first = t.schema.columns[parts[0].column].name.clone();
                    let def = ddl::key_def(
                        &existing,
                        iname.map(|n| n.value.clone()),
                        unique,
                        parts,
                        &first,
                    )
                    .map_err(reject)?;
                    data.with_index(def)
                        .map_err(|d| QueryError::from(d.into_error(&t.name)))
                })?;
            }
            ast::AlterTableOperation::DropIndex { name } => {
                drop_index(cat, &name.value, table)?;
            }
            ast::AlterTableOperation::DropPrimaryKey { .. } => {
                drop_index(cat, "PRIMARY", table)?;
            }
            other => return Err(QueryError::unsupported(format!("ALTER TABLE … {other}"))),
        }
    }
    Ok(())
}

/// `DESCRIBE t` / `SHOW COLUMNS FROM t`.
pub(super) fn describe(
    cat: &Catalog,
    table: &TableKey,
    query_id: u64,
) -> Result<QueryResult, QueryError> {
    let t = cat.table(table)?;
    let data = t.read(u64::MAX);
    let (names, rows) = info_schema::describe(&t, &data);
    let mut r = rows_result(query_id, &names, rows);
    r.columns[4].ty = DataType::Text;
    Ok(r)
}

/// `SHOW CREATE TABLE t`.
pub(super) fn show_create(
    cat: &Catalog,
    table: &TableKey,
    query_id: u64,
) -> Result<QueryResult, QueryError> {
    let t = cat.table(table)?;
    let data = t.read(u64::MAX);
    let text = info_schema::show_create(&t, &data);
    Ok(rows_result(
        query_id,
        &["Table", "Create Table"],
        vec![vec![
            Value::Text(t.name.as_str().into()),
            Value::Text(text.into()),
        ]],
    ))
}

/// The table `SHOW COLUMNS FROM t [FROM db]` names.
pub(super) fn show_columns_table(
    ns: &plan::Namespace<'_>,
    full: bool,
    extended: bool,
    opts: &ast::ShowStatementOptions,
) -> Result<TableKey, QueryError> {
    if full || extended || opts.starts_with.is_some() || opts.limit.is_some() {
        return Err(QueryError::unsupported(
            "SHOW FULL / EXTENDED COLUMNS, or with LIKE / LIMIT",
        ));
    }
    match opts.show_in.as_ref().and_then(|i| i.parent_name.as_ref()) {
        Some(n) => Ok(ns.resolve(n)?),
        None => Err(QueryError::new(
            1046,
            "3D000",
            "SHOW COLUMNS needs FROM <table>",
        )),
    }
}
