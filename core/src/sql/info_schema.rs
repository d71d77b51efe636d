//! The catalog as MySQL shows it: `DESCRIBE` / `SHOW COLUMNS` rows,
//! `SHOW CREATE TABLE` text, and the virtual tables
//! `information_schema.tables` and `information_schema.columns`, made at
//! planning time from the catalog as the statement's snapshot sees it, and
//! then queried like any table (WHERE, ORDER BY, joins).

use std::sync::Arc;

use super::error::SqlError;
use crate::data::{Batch, Column, DataType, Value};
use crate::index::{IndexDef, IndexKind};
use crate::storage::{ColumnDef, ColumnLimit, Schema, Table, TableData, TableKey};

/// A table and the version of its rows a statement reads.
pub type TableVersion = (Arc<Table>, Arc<TableData>);

/// The database a tenant's connections start in unless the login names
/// another (created on demand for each tenant).
pub const SCHEMA_NAME: &str = "cascade";

/// The database of the virtual tables.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// A table of a database and the version of its rows a statement reads.
pub type SchemaTable = (String, TableVersion);

/// A column's type as MySQL prints it (`int`, `varchar(40)`,
/// `decimal(10,2)`), from its storage type and declared limit.
pub fn column_type(def: &ColumnDef) -> String {
    match (def.ty, def.limit) {
        (DataType::Int, ColumnLimit::IntRange(lo, hi)) => match (lo, hi) {
            (-128, 127) => "tinyint".into(),
            (-32_768, 32_767) => "smallint".into(),
            (-8_388_608, 8_388_607) => "mediumint".into(),
            (-2_147_483_648, 2_147_483_647) => "int".into(),
            (0, 255) => "tinyint unsigned".into(),
            (0, 65_535) => "smallint unsigned".into(),
            (0, 16_777_215) => "mediumint unsigned".into(),
            (0, 4_294_967_295) => "int unsigned".into(),
            (0, _) => "bigint unsigned".into(),
            _ => "bigint".into(),
        },
        (DataType::Int, _) => "bigint".into(),
        (DataType::Float, ColumnLimit::Decimal { precision, scale }) => {
            format!("decimal({precision},{scale})")
        }
        (DataType::Float, _) => "double".into(),
        (DataType::Decimal, ColumnLimit::Decimal { precision, scale }) => {
            format!("decimal({precision},{scale})")
        }
        (DataType::Decimal, _) => "decimal(10,0)".into(),
        (DataType::Date, _) => "date".into(),
        (DataType::DateTime, _) => "datetime".into(),
        (DataType::Time, _) => "time".into(),
        (DataType::Text, ColumnLimit::MaxChars(n)) => format!("varchar({n})"),
        (DataType::Text, ColumnLimit::MaxBytes(255)) => "tinytext".into(),
        (DataType::Text, ColumnLimit::MaxBytes(65_535)) => "text".into(),
        (DataType::Text, ColumnLimit::MaxBytes(_)) => "mediumtext".into(),
        (DataType::Text, _) => "longtext".into(),
        (DataType::Null, _) => "null".into(),
    }
}

/// The type's name alone (`information_schema.columns.data_type`).
fn data_type_name(def: &ColumnDef) -> String {
    let t = column_type(def);
    t.split(['(', ' ']).next().unwrap_or("").to_owned()
}

/// The index MySQL treats as the primary key: the `PRIMARY KEY`, or else
/// the first `UNIQUE` index whose columns are all NOT NULL.
fn primary<'a>(schema: &Schema, indexes: &'a [IndexDef]) -> Option<&'a IndexDef> {
    indexes
        .iter()
        .find(|d| d.kind == IndexKind::Primary)
        .or_else(|| {
            indexes.iter().find(|d| {
                d.kind == IndexKind::Unique
                    && d.parts
                        .iter()
                        .all(|p| p.prefix.is_none() && !schema.columns[p.column].nullable)
            })
        })
}

/// `DESCRIBE`'s `Key` for column `c`: `PRI` (part of the primary key),
/// `UNI` (a one-column unique index), `MUL` (the first column of another
/// index), or empty.
pub fn key_flag(schema: &Schema, indexes: &[IndexDef], c: usize) -> &'static str {
    if primary(schema, indexes).is_some_and(|p| p.columns().any(|x| x == c)) {
        return "PRI";
    }
    if indexes
        .iter()
        .any(|d| d.unique() && d.parts.len() == 1 && d.parts[0].column == c)
    {
        return "UNI";
    }
    if indexes
        .iter()
        .any(|d| d.parts.first().is_some_and(|p| p.column == c))
    {
        return "MUL";
    }
    ""
}

/// A column's default as `DESCRIBE` shows it (NULL when none).
fn default_value(def: &ColumnDef) -> Value {
    match &def.default {
        None | Some(Value::Null) => Value::Null,
        Some(v) => Value::Text(v.to_string().into()),
    }
}

/// The index definitions of a table version.
pub fn index_defs(data: &TableData) -> Vec<IndexDef> {
    data.indexes.iter().map(|ix| (*ix.def).clone()).collect()
}

/// `DESCRIBE t` / `SHOW COLUMNS FROM t`: `Field`, `Type`, `Null`, `Key`,
/// `Default`, `Extra`, one row per column.
pub fn describe(table: &Table, data: &TableData) -> (Vec<&'static str>, Vec<Vec<Value>>) {
    let defs = index_defs(data);
    let rows = table
        .schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                Value::Text(c.name.as_str().into()),
                Value::Text(column_type(c).into()),
                Value::Text(if c.nullable { "YES" } else { "NO" }.into()),
                Value::Text(key_flag(&table.schema, &defs, i).into()),
                default_value(c),
                Value::Text("".into()),
            ]
        })
        .collect();
    (
        vec!["Field", "Type", "Null", "Key", "Default", "Extra"],
        rows,
    )
}

/// A string literal in MySQL's quoting.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `SHOW CREATE TABLE`'s text: a statement that makes the same table.
pub fn show_create(table: &Table, data: &TableData) -> String {
    let schema = &table.schema;
    let mut lines: Vec<String> = schema
        .columns
        .iter()
        .map(|c| {
            let ty = column_type(c);
            let mut l = format!("  `{}` {ty}", c.name);
            if !c.nullable {
                l.push_str(" NOT NULL");
            }
            match &c.default {
                Some(v) if !v.is_null() => {
                    l.push_str(&format!(" DEFAULT {}", quote(&v.to_string())))
                }
                // MySQL prints no `DEFAULT NULL` for TEXT columns.
                _ if c.nullable && !ty.ends_with("text") => l.push_str(" DEFAULT NULL"),
                _ => {}
            }
            l
        })
        .collect();
    for d in &data.indexes {
        let cols = d
            .def
            .parts
            .iter()
            .map(|p| {
                let mut s = format!("`{}`", schema.columns[p.column].name);
                if let Some(n) = p.prefix {
                    s.push_str(&format!("({n})"));
                }
                if p.desc {
                    s.push_str(" DESC");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(",");
        lines.push(match d.def.kind {
            IndexKind::Primary => format!("  PRIMARY KEY ({cols})"),
            IndexKind::Unique => format!("  UNIQUE KEY `{}` ({cols})", d.def.name),
            IndexKind::Plain => format!("  KEY `{}` ({cols})", d.def.name),
        });
    }
    format!("CREATE TABLE `{}` (\n{}\n)", table.name, lines.join(",\n"))
}

/// A column definition of a virtual table (named in upper case, as
/// MySQL names them; names resolve in any case).
fn col(name: &str, ty: DataType) -> ColumnDef {
    ColumnDef {
        name: name.to_uppercase(),
        ty,
        nullable: true,
        limit: ColumnLimit::None,
        default: None,
    }
}

/// Rows of values as one table version of `schema`'s types.
fn rows_data(schema: &Schema, rows: &[Vec<Value>]) -> TableData {
    let columns = schema
        .columns
        .iter()
        .enumerate()
        .map(|(c, def)| {
            let vals: Vec<Value> = rows.iter().map(|r| r[c].clone()).collect();
            Arc::new(Column::from_values(def.ty, &vals))
        })
        .collect();
    let mut data = TableData::default();
    if !rows.is_empty() {
        data.chunks.push(Arc::new(Batch::new(columns, rows.len())));
    }
    data
}

/// The virtual table a FROM item names (`information_schema.tables`,
/// `.columns`, `.schemata`, in any case), as the planning transaction sees
/// the catalog (its own writes included), listing only the caller's
/// tenant's databases; `Ok(None)` for a name outside
/// `information_schema`, 1109 for a table it lacks.
pub fn lookup(
    name: &sqlparser::ast::ObjectName,
    cx: &super::plan::PlanCx<'_>,
) -> Result<Option<TableVersion>, SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
        .collect();
    // `information_schema.t`, or `t` after `USE information_schema`.
    let table = match parts.as_slice() {
        [schema, table] if schema == INFORMATION_SCHEMA => table,
        [table] if cx.ns.current().as_deref() == Some(INFORMATION_SCHEMA) => table,
        _ => return Ok(None),
    };
    let schema = INFORMATION_SCHEMA;
    let dbs = cx.catalog.databases(&cx.ns.tenant);
    let mut tables: Vec<SchemaTable> = Vec::new();
    let mut views: Vec<(String, String)> = Vec::new();
    for db in &dbs {
        let key = cx.ns.db_key(db);
        for n in cx.catalog.table_names(&key) {
            if let Ok(tv) = cx.table(&TableKey::new(key.clone(), &n)) {
                tables.push((db.clone(), tv));
            }
        }
        views.extend(
            cx.catalog
                .view_names(&key)
                .into_iter()
                .map(|v| (db.clone(), v)),
        );
    }
    match virtual_table(&dbs, &tables, &views, &format!("{schema}.{table}")) {
        Some(v) => Ok(Some(v)),
        None => Err(SqlError::UnknownInformationSchemaTable(table.clone())),
    }
}

/// The virtual table `name` (`information_schema.tables`, `.columns` or
/// `.schemata`, lower case) over `dbs`, `tables` (each with its database
/// and the version the statement sees) and `views` (database, name; listed
/// in `tables` as MySQL lists them); `None` for any other name.
pub fn virtual_table(
    dbs: &[String],
    tables: &[SchemaTable],
    views: &[(String, String)],
    name: &str,
) -> Option<TableVersion> {
    let text = |s: &str| Value::Text(s.into());
    let (short, schema, rows) = match name {
        "information_schema.schemata" => {
            let schema = Schema {
                columns: vec![
                    col("catalog_name", DataType::Text),
                    col("schema_name", DataType::Text),
                    col("default_character_set_name", DataType::Text),
                    col("default_collation_name", DataType::Text),
                    col("sql_path", DataType::Text),
                ],
            };
            let rows = std::iter::once(INFORMATION_SCHEMA)
                .chain(dbs.iter().map(String::as_str))
                .map(|d| {
                    vec![
                        text("def"),
                        text(d),
                        text("utf8mb4"),
                        text("utf8mb4_bin"),
                        Value::Null,
                    ]
                })
                .collect::<Vec<_>>();
            ("schemata", schema, rows)
        }
        "information_schema.tables" => {
            let schema = Schema {
                columns: vec![
                    col("table_catalog", DataType::Text),
                    col("table_schema", DataType::Text),
                    col("table_name", DataType::Text),
                    col("table_type", DataType::Text),
                    col("engine", DataType::Text),
                    col("table_rows", DataType::Int),
                    col("data_length", DataType::Int),
                    col("table_collation", DataType::Text),
                    col("table_comment", DataType::Text),
                ],
            };
            let rows = tables
                .iter()
                .map(|(db, (t, d))| {
                    vec![
                        text("def"),
                        text(db),
                        text(&t.name),
                        text("BASE TABLE"),
                        text("cascade"),
                        Value::Int(d.rows() as i64),
                        Value::Int(d.heap_bytes() as i64),
                        text("utf8mb4_bin"),
                        text(""),
                    ]
                })
                .chain(views.iter().map(|(db, v)| {
                    vec![
                        text("def"),
                        text(db),
                        text(v),
                        text("VIEW"),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        text("VIEW"),
                    ]
                }))
                .collect::<Vec<_>>();
            ("tables", schema, rows)
        }
        "information_schema.columns" => {
            let schema = Schema {
                columns: vec![
                    col("table_catalog", DataType::Text),
                    col("table_schema", DataType::Text),
                    col("table_name", DataType::Text),
                    col("column_name", DataType::Text),
                    col("ordinal_position", DataType::Int),
                    col("column_default", DataType::Text),
                    col("is_nullable", DataType::Text),
                    col("data_type", DataType::Text),
                    col("character_maximum_length", DataType::Int),
                    col("numeric_precision", DataType::Int),
                    col("numeric_scale", DataType::Int),
                    col("column_type", DataType::Text),
                    col("column_key", DataType::Text),
                    col("extra", DataType::Text),
                    col("column_comment", DataType::Text),
                ],
            };
            let mut rows = Vec::new();
            for (db, (t, d)) in tables {
                let defs = index_defs(d);
                for (i, c) in t.schema.columns.iter().enumerate() {
                    let (chars, precision, scale) = match (c.ty, c.limit) {
                        (DataType::Text, ColumnLimit::MaxChars(n) | ColumnLimit::MaxBytes(n)) => {
                            (Value::Int(n as i64), Value::Null, Value::Null)
                        }
                        (DataType::Text, _) => {
                            (Value::Int(4_294_967_295), Value::Null, Value::Null)
                        }
                        (
                            DataType::Float | DataType::Decimal,
                            ColumnLimit::Decimal { precision, scale },
                        ) => (
                            Value::Null,
                            Value::Int(i64::from(precision)),
                            Value::Int(i64::from(scale)),
                        ),
                        (DataType::Float, _) => (Value::Null, Value::Int(22), Value::Null),
                        (DataType::Int, _) => {
                            let p = match column_type(c).as_str() {
                                "tinyint" | "tinyint unsigned" => 3,
                                "smallint" | "smallint unsigned" => 5,
                                "mediumint" => 7,
                                "mediumint unsigned" => 8,
                                "int" | "int unsigned" => 10,
                                "bigint unsigned" => 20,
                                _ => 19,
                            };
                            (Value::Null, Value::Int(p), Value::Int(0))
                        }
                        _ => (Value::Null, Value::Null, Value::Null),
                    };
                    rows.push(vec![
                        text("def"),
                        text(db),
                        text(&t.name),
                        text(&c.name),
                        Value::Int(i as i64 + 1),
                        default_value(c),
                        text(if c.nullable { "YES" } else { "NO" }),
                        text(&data_type_name(c)),
                        chars,
                        precision,
                        scale,
                        text(&column_type(c)),
                        text(key_flag(&t.schema, &defs, i)),
                        text(""),
                        text(""),
                    ]);
                }
            }
            ("columns", schema, rows)
        }
        _ => return None,
    };
    let data = rows_data(&schema, &rows);
    Some((Arc::new(Table::detached(short, schema)), Arc::new(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::KeyPart;

    fn def(name: &str, ty: DataType, limit: ColumnLimit, nullable: bool) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            nullable,
            limit,
            default: None,
        }
    }

    #[test]
    fn types_print_as_declared() {
        let cases = [
            (
                DataType::Int,
                ColumnLimit::IntRange(-2_147_483_648, 2_147_483_647),
                "int",
            ),
            (
                DataType::Int,
                ColumnLimit::IntRange(0, 255),
                "tinyint unsigned",
            ),
            (DataType::Int, ColumnLimit::None, "bigint"),
            (DataType::Text, ColumnLimit::MaxChars(40), "varchar(40)"),
            (DataType::Text, ColumnLimit::MaxBytes(65_535), "text"),
            (
                DataType::Float,
                ColumnLimit::Decimal {
                    precision: 10,
                    scale: 2,
                },
                "decimal(10,2)",
            ),
            (DataType::Float, ColumnLimit::None, "double"),
        ];
        for (ty, limit, want) in cases {
            assert_eq!(column_type(&def("a", ty, limit, true)), want);
        }
    }

    #[test]
    fn key_flags_follow_mysql() {
        let schema = Schema {
            columns: vec![
                def("a", DataType::Int, ColumnLimit::None, false),
                def("b", DataType::Int, ColumnLimit::None, true),
                def("c", DataType::Int, ColumnLimit::None, true),
                def("d", DataType::Int, ColumnLimit::None, true),
            ],
        };
        let part = |column| KeyPart {
            column,
            prefix: None,
            desc: false,
        };
        let idx = |name: &str, kind, cols: Vec<usize>| IndexDef {
            name: name.into(),
            kind,
            parts: cols.into_iter().map(part).collect(),
        };
        // A NOT NULL unique key stands for the missing primary key.
        let defs = vec![
            idx("a", IndexKind::Unique, vec![0]),
            idx("b", IndexKind::Unique, vec![1]),
            idx("c", IndexKind::Unique, vec![2, 3]),
        ];
        let flags: Vec<&str> = (0..4).map(|c| key_flag(&schema, &defs, c)).collect();
        assert_eq!(flags, ["PRI", "UNI", "MUL", ""]);
    }
}
