//! Leaf operators: `generate_series`, table scans and literal rows.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Step, BATCH_ROWS};
use crate::data::{Batch, Column, DataType, Value};
use crate::expr::ExecError;
use crate::expr::Expr;
use crate::storage::TableData;

/// `generate_series(start, stop[, step])`: integers, both ends included.
pub struct SeriesScan {
    next: i64,
    stop: i64,
    step: i64,
    done: bool,
}

impl SeriesScan {
    /// A series; `step` must not be 0 (the planner checks).
    pub fn new(start: i64, stop: i64, step: i64) -> Self {
        let done = series_len(start, stop, step) == 0;
        SeriesScan {
            next: start,
            stop,
            step,
            done,
        }
    }
}

/// How many values `generate_series(start, stop, step)` has (0 for a step
/// of 0 or one that moves away from `stop`); up to 2^64, hence `u128`.
pub fn series_len(start: i64, stop: i64, step: i64) -> u128 {
    if step == 0 || (step > 0 && start > stop) || (step < 0 && start < stop) {
        return 0;
    }
    ((stop as i128 - start as i128) / step as i128 + 1) as u128
}

/// `n` values of a series from `first` by `step`, all of which lie between
/// the series' start and stop: the wrapping sums are then exact even where
/// `i * step` alone would overflow (and the loop vectorises). Shared by the
/// serial scan and the parallel stage's morsels.
pub(crate) fn series_values(first: i64, step: i64, n: usize) -> Vec<i64> {
    if step == 1 {
        (0..n as i64).map(|i| first.wrapping_add(i)).collect()
    } else {
        (0..n as i64)
            .map(|i| first.wrapping_add(i.wrapping_mul(step)))
            .collect()
    }
}

impl Operator for SeriesScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.done {
            return Ok(Step::Done);
        }
        let remaining = (self.stop as i128 - self.next as i128) / self.step as i128 + 1;
        let n = remaining.clamp(0, BATCH_ROWS as i128) as usize;
        let start = self.next;
        let step = self.step;
        let v = series_values(start, step, n);
        match (n as i64)
            .checked_mul(step)
            .and_then(|d| start.checked_add(d))
        {
            Some(nx) if n as i128 == BATCH_ROWS as i128 && remaining > n as i128 => self.next = nx,
            _ => self.done = true,
        }
        cx.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Step::Batch(Batch::new(vec![Arc::new(Column::ints(v))], n)))
    }
    fn describe(&self) -> String {
        format!("GenerateSeries (step {})", self.step)
    }
    fn name(&self) -> &'static str {
        "GenerateSeries"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// A scan of one table version, a batch at a time.
pub struct TableScan {
    table: String,
    data: Arc<TableData>,
    chunk: usize,
    offset: usize,
    /// Whole stored chunks as batches (shared, not copied).
    whole: bool,
}

impl TableScan {
    /// Scans `data` (a snapshot of `table`).
    pub fn new(table: String, data: Arc<TableData>) -> Self {
        TableScan {
            table,
            data,
            chunk: 0,
            offset: 0,
            whole: false,
        }
    }

    /// Returns each stored chunk (up to `storage::CHUNK_ROWS` rows) as one
    /// batch, shared with the table instead of copied in
    /// [`BATCH_ROWS`]-row slices. Only for a consumer that works through
    /// a big batch in bounded steps (a hash join's probe side).
    pub fn whole_chunks(mut self) -> Self {
        self.whole = true;
        self
    }
}

impl Operator for TableScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        loop {
            let Some(c) = self.data.chunks.get(self.chunk) else {
                return Ok(Step::Done);
            };
            if self.offset >= c.len {
                self.chunk += 1;
                self.offset = 0;
                continue;
            }
            let n = if self.whole {
                c.len - self.offset
            } else {
                BATCH_ROWS.min(c.len - self.offset)
            };
            let b = if self.offset == 0 && n == c.len {
                (**c).clone()
            } else {
                c.slice(self.offset, n)
            };
            self.offset += n;
            cx.progress.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(Step::Batch(b));
        }
    }
    fn describe(&self) -> String {
        format!("TableScan {} ({} rows)", self.table, self.data.rows())
    }
    fn name(&self) -> &'static str {
        "TableScan"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// Literal rows (`VALUES (…), (…)` and `SELECT` without `FROM`).
pub struct ValuesScan {
    rows: Vec<Vec<Expr>>,
    types: Vec<DataType>,
    done: bool,
}

impl ValuesScan {
    /// Rows of constant expressions, with the output column types.
    pub fn new(rows: Vec<Vec<Expr>>, types: Vec<DataType>) -> Self {
        ValuesScan {
            rows,
            types,
            done: false,
        }
    }
}

impl Operator for ValuesScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.done {
            return Ok(Step::Done);
        }
        self.done = true;
        let unit = Batch::new(Vec::new(), 1);
        let mut cols: Vec<Vec<Value>> = vec![Vec::with_capacity(self.rows.len()); self.types.len()];
        for row in &self.rows {
            for (i, e) in row.iter().enumerate() {
                cols[i].push(e.eval_row(&unit, 0, cx.eval)?);
            }
        }
        let columns = cols
            .iter()
            .zip(&self.types)
            .map(|(v, t)| Arc::new(Column::from_values(*t, v)))
            .collect();
        Ok(Step::Batch(Batch::new(columns, self.rows.len())))
    }
    fn describe(&self) -> String {
        format!("Values ({} rows)", self.rows.len())
    }
    fn name(&self) -> &'static str {
        "Values"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}
