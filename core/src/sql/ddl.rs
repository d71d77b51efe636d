//! `CREATE TABLE`'s AST to a [`Schema`]: columns with their declared
//! limits and defaults, and the table's unique keys.
//!
//! Every option either has its MySQL meaning in cascade or is refused with
//! 1235: none is accepted and then ignored (a `CHECK` that is not checked,
//! a `FOREIGN KEY` that is not enforced, an `AUTO_INCREMENT` that does not
//! count would each answer differently from MySQL without saying so).
//! Keys (`PRIMARY KEY`, `UNIQUE`, `INDEX`, `KEY`) become ordered indexes
//! ([`crate::index`]); `FULLTEXT` / `SPATIAL` change no answer and are
//! accepted.

use sqlparser::ast;

use super::error::SqlError;
use super::plan;
use crate::data::{Batch, DataType, Value};
use crate::expr::{cast, EvalCx};
use crate::index::{IndexDef, IndexKind, KeyPart};
use crate::storage::{ColumnDef, Schema};

/// The schema `ct` declares, and its indexes (primary key first, then
/// unique keys, then plain indexes, as MySQL lists them).
pub fn table_schema(
    ct: &ast::CreateTable,
    connection_id: u64,
) -> Result<(Schema, Vec<IndexDef>), SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::Unsupported("CREATE TABLE … AS SELECT".into()));
    }
    let mut cols: Vec<ColumnDef> = Vec::new();
    let mut keys: Vec<IndexDef> = Vec::new();
    let part = |column| KeyPart {
        column,
        prefix: None,
        desc: false,
    };
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
                ast::ColumnOption::PrimaryKey(_) => add_key(
                    &mut keys,
                    None,
                    IndexKind::Primary,
                    vec![part(index)],
                    &name,
                )?,
                ast::ColumnOption::Unique(_) => {
                    add_key(&mut keys, None, IndexKind::Unique, vec![part(index)], &name)?
                }
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
    for t in &ct.constraints {
        let (name, kind, columns) = match t {
            ast::TableConstraint::PrimaryKey(pk) => (None, IndexKind::Primary, &pk.columns),
            ast::TableConstraint::Unique(u) => (
                u.name.as_ref().or(u.index_name.as_ref()),
                IndexKind::Unique,
                &u.columns,
            ),
            ast::TableConstraint::Index(i) => (i.name.as_ref(), IndexKind::Plain, &i.columns),
            // FULLTEXT / SPATIAL indexes change no answer.
            ast::TableConstraint::FulltextOrSpatial(_) => continue,
            other => {
                return Err(SqlError::Unsupported(format!(
                    "the constraint {other} (it would be ignored)"
                )))
            }
        };
        let parts = key_parts(columns, &cols)?;
        let first = cols[parts[0].column].name.clone();
        add_key(
            &mut keys,
            name.map(|n| n.value.clone()),
            kind,
            parts,
            &first,
        )?;
    }
    // A primary key's columns are NOT NULL (MySQL makes them so).
    for k in keys.iter().filter(|k| k.kind == IndexKind::Primary) {
        for p in &k.parts {
            cols[p.column].nullable = false;
        }
    }
    keys.sort_by_key(|k| match k.kind {
        IndexKind::Primary => 0,
        IndexKind::Unique => 1,
        IndexKind::Plain => 2,
    });
    Ok((Schema { columns: cols }, keys))
}

/// Adds a key to `keys` (see [`key_def`]).
fn add_key(
    keys: &mut Vec<IndexDef>,
    name: Option<String>,
    kind: IndexKind,
    parts: Vec<KeyPart>,
    first_column: &str,
) -> Result<(), SqlError> {
    let def = key_def(keys, name, kind, parts, first_column)?;
    keys.push(def);
    Ok(())
}

/// A new key beside `keys`: 1068 for a second primary key, 1061 for a
/// name taken; an unnamed key is named after its first column (`a`,
/// `a_2`, …), as MySQL names it.
pub fn key_def(
    keys: &[IndexDef],
    name: Option<String>,
    kind: IndexKind,
    parts: Vec<KeyPart>,
    first_column: &str,
) -> Result<IndexDef, SqlError> {
    let taken = |n: &str| keys.iter().any(|k| k.name.eq_ignore_ascii_case(n));
    let name = if kind == IndexKind::Primary {
        if keys.iter().any(|k| k.kind == IndexKind::Primary) {
            return Err(SqlError::MultiplePrimaryKey);
        }
        "PRIMARY".to_owned()
    } else if let Some(n) = name {
        if taken(&n) || n.eq_ignore_ascii_case("PRIMARY") {
            return Err(SqlError::DuplicateKeyName(n));
        }
        n
    } else {
        let mut n = first_column.to_owned();
        let mut i = 2;
        while taken(&n) {
            n = format!("{first_column}_{i}");
            i += 1;
        }
        n
    };
    Ok(IndexDef { name, kind, parts })
}

/// The key parts of an index's column list: a column, a column with a
/// prefix length (`a(10)`, compared on its first characters, as MySQL),
/// `ASC` / `DESC`. 1072 for a column the table lacks.
pub fn key_parts(
    columns: &[ast::IndexColumn],
    cols: &[ColumnDef],
) -> Result<Vec<KeyPart>, SqlError> {
    let mut parts = Vec::with_capacity(columns.len());
    for c in columns {
        let (name, prefix) = match &c.column.expr {
            ast::Expr::Identifier(i) => (i.value.to_lowercase(), None),
            ast::Expr::Function(f) => {
                let n = plan::object_name(&f.name);
                let len = match &f.args {
                    ast::FunctionArguments::List(l) => match l.args.as_slice() {
                        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                            ast::Expr::Value(v),
                        ))] => match &v.value {
                            ast::Value::Number(n, _) => n.parse::<u32>().ok().filter(|n| *n > 0),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                match len {
                    Some(len) => (n, Some(len)),
                    None => return Err(SqlError::KeyColumn(c.column.expr.to_string())),
                }
            }
            other => return Err(SqlError::KeyColumn(other.to_string())),
        };
        let column = cols
            .iter()
            .position(|d| d.name == name)
            .ok_or(SqlError::KeyColumn(name))?;
        // MySQL 1089: a prefix on a column that is not text.
        if prefix.is_some() && cols[column].ty != DataType::Text {
            return Err(SqlError::IncorrectPrefixKey);
        }
        if parts.iter().any(|p: &KeyPart| p.column == column) {
            return Err(SqlError::DuplicateColumn(cols[column].name.clone()));
        }
        parts.push(KeyPart {
            column,
            prefix,
            desc: matches!(c.column.options.sort, Some(ast::OrderBySort::Desc)),
        });
    }
    if parts.is_empty() {
        return Err(SqlError::Syntax(
            "an index needs at least one column".into(),
        ));
    }
    Ok(parts)
}

/// The index `CREATE [UNIQUE] INDEX` adds to a table with columns `cols`
/// and indexes `existing` (1061 if the name is taken).
pub fn create_index_def(
    ci: &ast::CreateIndex,
    cols: &[ColumnDef],
    existing: &[IndexDef],
) -> Result<IndexDef, SqlError> {
    if ci.predicate.is_some() || !ci.include.is_empty() || !ci.with.is_empty() {
        return Err(SqlError::Unsupported(
            "partial or covering indexes (WHERE / INCLUDE / WITH)".into(),
        ));
    }
    let parts = key_parts(&ci.columns, cols)?;
    let name = match &ci.name {
        Some(n) => plan::object_name(n),
        None => return Err(SqlError::Syntax("CREATE INDEX needs a name".into())),
    };
    let kind = if ci.unique {
        IndexKind::Unique
    } else {
        IndexKind::Plain
    };
    key_def(existing, Some(name), kind, parts, "")
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
