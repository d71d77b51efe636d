//! `REPLACE` and `INSERT … ON DUPLICATE KEY UPDATE`, row by row through the
//! table's unique indexes ([`crate::index`]).
//!
//! Affected rows as MySQL counts them: `REPLACE` 1 per row inserted plus 1
//! per row it deleted; `ON DUPLICATE KEY UPDATE` 1 per row inserted, 2 per
//! row updated, 0 per row whose update changed nothing.

use std::sync::Arc;

use sqlparser::ast;

use super::{coerce, QueryError};
use crate::data::{Batch, Column, Value};
use crate::expr::{EvalCx, Expr};
use crate::sql::error::SqlError;
use crate::sql::plan;
use crate::sql::walk::{walk_mut, OnExprMut};
use crate::storage::{ColumnDef, RowWriter, Schema, Table};

/// `ON DUPLICATE KEY UPDATE`'s assignments, compiled over the table's
/// columns followed by the inserted row's (`VALUES(col)`).
pub(super) struct OnDuplicate {
    sets: Vec<(usize, Expr)>,
}

/// The name `VALUES(col)` is compiled as: a column of the synthetic table
/// that follows the real columns.
fn values_name(col: &str) -> String {
    format!("values({col})")
}

impl OnDuplicate {
    /// Compiles `assignments` for table `table`.
    pub(super) fn compile(
        assignments: &[ast::Assignment],
        table: &Table,
        connection_id: u64,
        now_micros: i64,
    ) -> Result<Self, QueryError> {
        let schema = &table.schema;
        let mut columns = schema.columns.clone();
        columns.extend(schema.columns.iter().map(|c| ColumnDef {
            name: values_name(&c.name),
            ..c.clone()
        }));
        let wide = Table::detached(&table.name, Schema { columns });
        let mut sets = Vec::with_capacity(assignments.len());
        for a in assignments {
            let ast::AssignmentTarget::ColumnName(col) = &a.target else {
                return Err(QueryError::unsupported("tuple assignment"));
            };
            let n = plan::object_name(col);
            let n = n.rsplit('.').next().unwrap_or(&n).to_owned();
            let i = schema
                .columns
                .iter()
                .position(|d| d.name == n)
                .ok_or_else(|| {
                    QueryError::from(SqlError::UnknownColumn {
                        name: n.clone(),
                        clause: "field list",
                    })
                })?;
            let mut value = a.value.clone();
            let mut bad = None;
            let _ = walk_mut(
                &mut value,
                &mut OnExprMut(|e: &mut ast::Expr| {
                    if let ast::Expr::Function(f) = e {
                        if plan::object_name(&f.name) == "values" {
                            match values_arg(f) {
                                Some(c) => {
                                    *e = ast::Expr::Identifier(ast::Ident::new(values_name(&c)))
                                }
                                None => bad = Some(f.to_string()),
                            }
                        }
                    }
                    std::ops::ControlFlow::Continue(())
                }),
            );
            if let Some(f) = bad {
                return Err(SqlError::WrongArgs(f).into());
            }
            sets.push((
                i,
                plan::compile_over_table(&value, &wide, connection_id, now_micros, "field list")?,
            ));
        }
        Ok(Self { sets })
    }

    /// The row `old` becomes when `new` conflicts with it: the assignments
    /// applied left to right (a later one sees an earlier one's value),
    /// each converted to its column's type.
    fn apply(
        &self,
        old: &[Value],
        new: &[Value],
        schema: &Schema,
        eval: &mut EvalCx,
    ) -> Result<Vec<Value>, QueryError> {
        let mut row = old.to_vec();
        for (i, e) in &self.sets {
            let cols: Vec<Arc<Column>> = row
                .iter()
                .chain(new)
                .map(|v| Arc::new(Column::from_values(v.data_type(), std::slice::from_ref(v))))
                .collect();
            let v = e
                .eval_row(&Batch::new(cols, 1), 0, eval)
                .map_err(QueryError::from)?;
            let def = &schema.columns[*i];
            let col = coerce(&Column::from_values(v.data_type(), &[v]), def, 0)?;
            row[*i] = col.value(0);
        }
        Ok(row)
    }
}

/// The column name in `VALUES(col)`.
fn values_arg(f: &ast::Function) -> Option<String> {
    let ast::FunctionArguments::List(l) = &f.args else {
        return None;
    };
    match l.args.as_slice() {
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => match e {
            ast::Expr::Identifier(i) => Some(i.value.to_lowercase()),
            ast::Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_lowercase()),
            _ => None,
        },
        _ => None,
    }
}

/// Writes `rows` (converted to the table's types) with `REPLACE` (when
/// `on_dup` is `None`) or `ON DUPLICATE KEY UPDATE`; returns the affected
/// rows.
pub(super) fn write_rows(
    w: &mut RowWriter,
    rows: &Batch,
    table: &Table,
    on_dup: Option<&OnDuplicate>,
    eval: &mut EvalCx,
) -> Result<u64, QueryError> {
    let dup = |d: crate::index::Duplicate| QueryError::from(d.into_error(&table.name));
    let mut affected = 0u64;
    for i in 0..rows.len {
        let row = rows.row(i);
        let conflicts = w.conflicts(&row);
        match on_dup {
            None => {
                for r in conflicts {
                    w.delete(r);
                    affected += 1;
                }
                w.insert(&row).map_err(dup)?;
                affected += 1;
            }
            Some(od) => match conflicts.first() {
                None => {
                    w.insert(&row).map_err(dup)?;
                    affected += 1;
                }
                Some(&r) => {
                    let old = w.row(r);
                    let new = od.apply(&old, &row, &table.schema, eval)?;
                    if new != old {
                        w.update(r, &new).map_err(dup)?;
                        affected += 2;
                    }
                }
            },
        }
    }
    Ok(affected)
}
