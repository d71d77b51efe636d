//! `CREATE TABLE`'s AST to a [`Schema`]: columns with their declared
//! limits and defaults, and the table's unique keys.
//!
//! Every option either has its MySQL meaning in cascade or is refused with
//! 1235: none is accepted and then ignored (a `CHECK` that is not checked,
//! a `FOREIGN KEY` that is not enforced, an `AUTO_INCREMENT` that does not
//! count would each answer differently from MySQL without saying so).
//! Plain indexes (`INDEX`, `KEY`, `FULLTEXT`) change no answer and are
//! accepted.

use sqlparser::ast;

use super::error::SqlError;
use super::plan;
use crate::data::{Batch, DataType, Value};
use crate::expr::{cast, EvalCx};
use crate::storage::{ColumnDef, Schema, UniqueKey};

/// The schema `ct` declares.
pub fn table_schema(ct: &ast::CreateTable, connection_id: u64) -> Result<Schema, SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::Unsupported("CREATE TABLE … AS SELECT".into()));
    }
    let mut cols: Vec<ColumnDef> = Vec::new();
    let mut keys: Vec<UniqueKey> = Vec::new();
    let mut primary = false;
    for col in &ct.columns {
        let name = col.name.value.to_lowercase();
        if cols.iter().any(|c| c.name == name) {
            return Err(SqlError::DuplicateColumn(name));
        }
        let index = cols.len();
        let mut def = ColumnDef {
            name: name.clone(),
            ty: plan::sql_type(&col.data_type)?,
            nullable: true,
            limit: plan::column_limit(&col.data_type)?,
            default: None,
        };
        let mut default = None;
        for o in &col.options {
            match &o.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => def.nullable = false,
                ast::ColumnOption::PrimaryKey(_) => {
                    if primary {
                        return Err(SqlError::MultiplePrimaryKey);
                    }
                    primary = true;
                    def.nullable = false;
                    keys.push(UniqueKey {
                        name: "PRIMARY".into(),
                        columns: vec![index],
                    });
                }
                ast::ColumnOption::Unique(_) => keys.push(UniqueKey {
                    name: name.clone(),
                    columns: vec![index],
                }),
                ast::ColumnOption::Default(e) => default = Some(e),
                ast::ColumnOption::Comment(_) | ast::ColumnOption::CharacterSet(_) => {}
                ast::ColumnOption::Collation(c) if is_binary_collation(c) => {}
                other => {
                    return Err(SqlError::Unsupported(format!(
                        "the column option {other} (it would be ignored)"
                    )))
                }
            }
        }
        if let Some(e) = default {
            def.default = Some(default_value(e, &def, connection_id)?);
        }
        cols.push(def);
    }
    if cols.is_empty() {
        return Err(SqlError::NoColumns);
    }
    let position = |c: &ast::IndexColumn| -> Result<usize, SqlError> {
        let n = c.column.expr.to_string().trim_matches('`').to_lowercase();
        cols.iter()
            .position(|d| d.name == n)
            .ok_or(SqlError::KeyColumn(n))
    };
    for t in &ct.constraints {
        match t {
            ast::TableConstraint::PrimaryKey(pk) => {
                if primary {
                    return Err(SqlError::MultiplePrimaryKey);
                }
                primary = true;
                let columns = pk
                    .columns
                    .iter()
                    .map(position)
                    .collect::<Result<Vec<_>, _>>()?;
                keys.push(UniqueKey {
                    name: "PRIMARY".into(),
                    columns,
                });
            }
            ast::TableConstraint::Unique(u) => {
                let columns = u
                    .columns
                    .iter()
                    .map(position)
                    .collect::<Result<Vec<_>, _>>()?;
                let name = u
                    .name
                    .as_ref()
                    .or(u.index_name.as_ref())
                    .map(|n| n.value.clone())
                    .or_else(|| columns.first().map(|&i| cols[i].name.clone()))
                    .unwrap_or_default();
                keys.push(UniqueKey { name, columns });
            }
            ast::TableConstraint::Index(_) | ast::TableConstraint::FulltextOrSpatial(_) => {}
            other => {
                return Err(SqlError::Unsupported(format!(
                    "the constraint {other} (it would be ignored)"
                )))
            }
        }
    }
    // A primary key's columns are NOT NULL (MySQL makes them so).
    for k in keys.iter().filter(|k| k.name == "PRIMARY") {
        for &i in &k.columns {
            cols[i].nullable = false;
        }
    }
    Ok(Schema {
        columns: cols,
        keys,
    })
}

fn is_binary_collation(c: &ast::ObjectName) -> bool {
    let n = c.to_string().to_lowercase();
    n == "binary" || n.ends_with("_bin")
}

/// A `DEFAULT` expression's value, converted to the column's type.
fn default_value(e: &ast::Expr, def: &ColumnDef, connection_id: u64) -> Result<Value, SqlError> {
    let invalid = || SqlError::InvalidDefault(def.name.clone());
    // A DEFAULT is fixed at CREATE TABLE: `DEFAULT NOW()` (re-read at
    // every INSERT in MySQL) is refused rather than frozen.
    let expr = plan::compile_const(e, connection_id, None)?;
    let v = expr
        .eval_row(&Batch::new(Vec::new(), 1), 0, &mut EvalCx::default())
        .map_err(|_| invalid())?;
    if v.is_null() {
        return if def.nullable {
            Ok(Value::Null)
        } else {
            Err(invalid())
        };
    }
    match (def.ty, &v) {
        (DataType::Int | DataType::Float | DataType::Decimal, Value::Text(s))
            if s.trim().parse::<f64>().is_err() =>
        {
            Err(invalid())
        }
        // `cast` makes a value that is no date NULL: refuse it instead.
        (t, v) if t.is_temporal() => match cast(v.clone(), t) {
            Ok(x) if !x.is_null() => Ok(x),
            _ => Err(invalid()),
        },
        _ => cast(v, def.ty).map_err(|_| invalid()),
    }
}
