//! Streaming operators: filter, project (with SLEEP), limit, union all.

use std::sync::Arc;
use std::time::Duration;

use super::{Instrumented, OpCx, Operator, Step};
use crate::data::{Batch, Column, ColumnData, DataType};
use crate::sql::error::ExecError;
use crate::sql::expr::{Datum, Expr, Func};

/// The rows of `batch` where `pred` is true (not NULL, not 0).
pub fn filter_batch(batch: &Batch, pred: &Expr, cx: &mut OpCx<'_>) -> Result<Batch, ExecError> {
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
    text: String,
}

impl Filter {
    /// Keeps rows where `pred` is true.
    pub fn new(input: Instrumented, pred: Expr, text: String) -> Self {
        Filter {
            input: Box::new(input),
            pred,
            text,
        }
    }
}

impl Operator for Filter {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match self.input.next(cx)? {
            Step::Batch(b) => {
                let out = filter_batch(&b, &self.pred, cx)?;
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

/// Computes the output columns. Runs `SLEEP(n)` by asking the driver to
/// wait (cancellably) before it evaluates the batch.
pub struct Project {
    input: Box<Instrumented>,
    exprs: Vec<Expr>,
    types: Vec<DataType>,
    text: String,
    sleeps: Vec<Expr>,
    held: Option<Batch>,
}

impl Project {
    /// Projects `exprs`; their output types are `types`.
    pub fn new(input: Instrumented, exprs: Vec<Expr>, types: Vec<DataType>, text: String) -> Self {
        let mut sleeps = Vec::new();
        for e in &exprs {
            e.visit(&mut |x| {
                if let Expr::Func {
                    f: Func::Sleep,
                    args,
                } = x
                {
                    if let Some(a) = args.first() {
                        sleeps.push(a.clone());
                    }
                }
            });
        }
        Project {
            input: Box::new(input),
            exprs,
            types,
            text,
            sleeps,
            held: None,
        }
    }

    fn project(&self, b: &Batch, cx: &mut OpCx<'_>) -> Result<Batch, ExecError> {
        let mut cols = Vec::with_capacity(self.exprs.len());
        for (e, t) in self.exprs.iter().zip(&self.types) {
            let c = e.eval(b, cx.eval)?.into_column(b.len);
            cols.push(conform(c, *t));
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
        if let Some(b) = self.held.take() {
            return Ok(Step::Batch(self.project(&b, cx)?));
        }
        match self.input.next(cx)? {
            Step::Batch(b) => {
                if !self.sleeps.is_empty() {
                    let mut secs = 0.0f64;
                    for s in &self.sleeps {
                        let d = s.eval(&b, cx.eval)?.into_column(b.len);
                        for i in 0..b.len {
                            let s = d.value(i).as_f64().unwrap_or(0.0);
                            if s.is_finite() && s > 0.0 {
                                secs += s;
                            }
                        }
                    }
                    if secs.is_finite() && secs > 0.0 {
                        self.held = Some(b);
                        return Ok(Step::Sleep(Duration::from_secs_f64(secs.min(1e9))));
                    }
                }
                Ok(Step::Batch(self.project(&b, cx)?))
            }
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
