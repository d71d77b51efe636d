//! Streaming operators: filter, project, limit, union all.
//!
//! An expression that calls `SLEEP` is evaluated row by row (so a `SLEEP`
//! in a branch not taken, `x > 5 AND SLEEP(1)`, is not slept, as in MySQL);
//! the time it owes is waited by the driver ([`super::drive`]) before the
//! batch moves on.

use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Step};
use crate::data::{Batch, Column, ColumnData, DataType};
use crate::expr::ExecError;
use crate::expr::{Datum, Expr};

/// The rows of `batch` where `pred` is true (not NULL, not 0).
pub fn filter_batch(batch: &Batch, pred: &Expr, cx: &mut OpCx<'_>) -> Result<Batch, ExecError> {
    filter_with(batch, pred, false, cx)
}

/// [`filter_batch`], row by row when `each_row` (a predicate with `SLEEP`).
fn filter_with(
    batch: &Batch,
    pred: &Expr,
    each_row: bool,
    cx: &mut OpCx<'_>,
) -> Result<Batch, ExecError> {
    if each_row {
        let d = pred.eval_each_row(batch, cx.eval)?.into_column(batch.len);
        let sel: Vec<u32> = (0..batch.len)
            .filter(|&i| d.value(i).truthy() == Some(true))
            .map(|i| i as u32)
            .collect();
        return Ok(batch.gather(&sel));
    }
    if let Some(sel) = pred.select_rows(batch) {
        return Ok(if sel.len() == batch.len {
            batch.clone()
        } else {
            batch.gather(&sel)
        });
    }
    let d = pred.eval(batch, cx.eval)?;
    let sel: Vec<u32> = match &d {
        Datum::Scalar(v) => {
            return Ok(if v.truthy() == Some(true) {
                batch.clone()
            } else {
                batch.slice(0, 0)
            })
        }
        Datum::Col(c) => match (&c.data, &c.nulls) {
            (ColumnData::Int(v), None) => v
                .iter()
                .enumerate()
                .filter(|(_, x)| **x != 0)
                .map(|(i, _)| i as u32)
                .collect(),
            _ => (0..batch.len)
                .filter(|&i| c.value(i).truthy() == Some(true))
                .map(|i| i as u32)
                .collect(),
        },
    };
    Ok(if sel.len() == batch.len {
        batch.clone()
    } else {
        batch.gather(&sel)
    })
}

/// `WHERE` / `HAVING`.
pub struct Filter {
    input: Box<Instrumented>,
    pred: Expr,
    sleeps: bool,
    text: String,
}

impl Filter {
    /// Keeps rows where `pred` is true.
    pub fn new(input: Instrumented, pred: Expr, text: String) -> Self {
        Filter {
            input: Box::new(input),
            sleeps: pred.has_sleep(),
            pred,
            text,
        }
    }
}

impl Operator for Filter {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match self.input.next(cx)? {
            Step::Batch(b) => {
                let out = filter_with(&b, &self.pred, self.sleeps, cx)?;
                Ok(if out.len == 0 {
                    Step::Pending
                } else {
                    Step::Batch(out)
                })
            }
            other => Ok(other),
        }
    }
    fn describe(&self) -> String {
        format!("Filter {}", self.text)
    }
    fn name(&self) -> &'static str {
        "Filter"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

/// Computes the output columns.
pub struct Project {
    input: Box<Instrumented>,
    exprs: Vec<Expr>,
    /// Which expressions call `SLEEP` (evaluated row by row).
    sleeps: Vec<bool>,
    types: Vec<DataType>,
    text: String,
}

impl Project {
    /// Projects `exprs`; their output types are `types`.
    pub fn new(input: Instrumented, exprs: Vec<Expr>, types: Vec<DataType>, text: String) -> Self {
        Project {
            input: Box::new(input),
            sleeps: exprs.iter().map(Expr::has_sleep).collect(),
            exprs,
            types,
            text,
        }
    }

    fn project(&self, b: &Batch, cx: &mut OpCx<'_>) -> Result<Batch, ExecError> {
        let mut cols = Vec::with_capacity(self.exprs.len());
        for ((e, t), sleeps) in self.exprs.iter().zip(&self.types).zip(&self.sleeps) {
            let d = if *sleeps {
                e.eval_each_row(b, cx.eval)?
            } else {
                e.eval(b, cx.eval)?
            };
            cols.push(conform(d.into_column(b.len), *t));
        }
        Ok(Batch::new(cols, b.len))
    }
}

/// Converts a column to `ty` when its stored type differs.
pub fn conform(c: Arc<Column>, ty: DataType) -> Arc<Column> {
    if ty == DataType::Null || c.data_type() == ty {
        return c;
    }
    let vals: Vec<_> = (0..c.len()).map(|i| c.value(i)).collect();
    Arc::new(Column::from_values(ty, &vals))
}

impl Operator for Project {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match self.input.next(cx)? {
            Step::Batch(b) => Ok(Step::Batch(self.project(&b, cx)?)),
            other => Ok(other),
        }
    }
    fn describe(&self) -> String {
        format!("Project {}", self.text)
    }
    fn name(&self) -> &'static str {
        "Project"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

/// `LIMIT n OFFSET m`.
pub struct Limit {
    input: Box<Instrumented>,
    skip: u64,
    left: u64,
    text: String,
}

impl Limit {
    /// Skips `offset` rows, then passes at most `limit`.
    pub fn new(input: Instrumented, offset: u64, limit: Option<u64>) -> Self {
        let text = match limit {
            Some(l) => format!("Limit {l} offset {offset}"),
            None => format!("Limit offset {offset}"),
        };
        Limit {
            input: Box::new(input),
            skip: offset,
            left: limit.unwrap_or(u64::MAX),
            text,
        }
    }
}

impl Operator for Limit {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.left == 0 {
            return Ok(Step::Done);
        }
        match self.input.next(cx)? {
            Step::Batch(mut b) => {
                if self.skip > 0 {
                    let s = self.skip.min(b.len as u64) as usize;
                    self.skip -= s as u64;
                    b = b.slice(s, b.len - s);
                }
                if b.len as u64 > self.left {
                    b = b.slice(0, self.left as usize);
                }
                self.left -= b.len as u64;
                Ok(if b.len == 0 {
                    Step::Pending
                } else {
                    Step::Batch(b)
                })
            }
            other => Ok(other),
        }
    }
    fn describe(&self) -> String {
        self.text.clone()
    }
    fn name(&self) -> &'static str {
        "Limit"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

/// `UNION ALL`: each input in turn, converted to the common types.
pub struct UnionAll {
    inputs: Vec<Instrumented>,
    types: Vec<DataType>,
    current: usize,
}

impl UnionAll {
    /// Concatenates `inputs`; output columns have `types`.
    pub fn new(inputs: Vec<Instrumented>, types: Vec<DataType>) -> Self {
        UnionAll {
            inputs,
            types,
            current: 0,
        }
    }
}

impl Operator for UnionAll {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let Some(input) = self.inputs.get_mut(self.current) else {
            return Ok(Step::Done);
        };
        match input.next(cx)? {
            Step::Done => {
                self.current += 1;
                Ok(Step::Pending)
            }
            Step::Batch(b) => {
                let cols = b
                    .columns
                    .into_iter()
                    .zip(&self.types)
                    .map(|(c, t)| conform(c, *t))
                    .collect();
                Ok(Step::Batch(Batch::new(cols, b.len)))
            }
            other => Ok(other),
        }
    }
    fn describe(&self) -> String {
        "UnionAll".into()
    }
    fn name(&self) -> &'static str {
        "UnionAll"
    }
    fn children(&self) -> Vec<&Instrumented> {
        self.inputs.iter().collect()
    }
}
