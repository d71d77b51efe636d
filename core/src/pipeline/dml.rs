//! DML as operators: `UPDATE` and `DELETE` rewrite a table's chunks one at
//! a time, so that they are checked, yielded, timed, counted and traced by
//! the same [`super::Instrumented`] node and [`super::drive`] loop as every
//! query operator (a KILL lands between two chunks; EXPLAIN ANALYZE shows
//! them).
//!
//! Each operator's output is the table's new chunks, in order: a chunk that
//! no row of changes is passed on as it is (its columns are shared with the
//! snapshot, never copied); a rewritten one is reserved against the
//! statement's memory budget, and the reservation lives as long as the
//! operator. The caller collects the output into the transaction's new
//! [`crate::storage::TableData`]. Rows affected are counted in a shared
//! [`Affected`] counter, as MySQL counts them: for UPDATE the rows whose
//! values changed, for DELETE the rows deleted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Instrumented, MemoryUse, OpCx, Operator, Step};
use crate::data::{Batch, Column, Value};
use crate::expr::assign::coerce;
use crate::expr::{ExecError, Expr};
use crate::storage::{ColumnDef, TableData};

/// Rows affected by a DML operator, read by the statement after it ran.
#[derive(Clone, Debug, Default)]
pub struct Affected(Arc<AtomicU64>);

impl Affected {
    /// Rows counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }
}

/// Evaluates a DML expression (WHERE, SET) on a chunk: row by row when it
/// calls `SLEEP`, so only the rows MySQL would evaluate it on sleep (the
/// driver waits the time owed after the step).
fn eval(e: &Expr, b: &Batch, cx: &mut OpCx<'_>) -> Result<Arc<Column>, ExecError> {
    let d = if e.has_sleep() {
        e.eval_each_row(b, cx.eval)?
    } else {
        e.eval(b, cx.eval)?
    };
    Ok(d.into_column(b.len))
}

/// Which rows of `chunk` the predicate holds for (all without one).
fn matches(pred: &Option<Expr>, chunk: &Batch, cx: &mut OpCx<'_>) -> Result<Vec<bool>, ExecError> {
    Ok(match pred {
        Some(p) => {
            let d = eval(p, chunk, cx)?;
            (0..chunk.len)
                .map(|i| d.value(i).truthy() == Some(true))
                .collect()
        }
        None => vec![true; chunk.len],
    })
}

/// The chunks of a table snapshot, one per step.
struct Chunks {
    table: String,
    data: Arc<TableData>,
    next: usize,
}

impl Chunks {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Option<Arc<Batch>> {
        let c = self.data.chunks.get(self.next)?.clone();
        self.next += 1;
        cx.progress.fetch_add(c.len as u64, Ordering::Relaxed);
        Some(c)
    }
}

/// `UPDATE t SET c = e, … [WHERE p]`.
pub struct Update {
    chunks: Chunks,
    pred: Option<Expr>,
    /// Column index, its definition, and the new value.
    sets: Vec<(usize, ColumnDef, Expr)>,
    affected: Affected,
    mem: MemoryUse,
    text: String,
}

impl Update {
    /// Updates `data` (a snapshot of `table`), counting into `affected`.
    pub fn new(
        table: String,
        data: Arc<TableData>,
        pred: Option<Expr>,
        sets: Vec<(usize, ColumnDef, Expr)>,
        affected: Affected,
        text: String,
    ) -> Self {
        Update {
            chunks: Chunks {
                table,
                data,
                next: 0,
            },
            pred,
            sets,
            affected,
            mem: MemoryUse::default(),
            text,
        }
    }
}

impl Operator for Update {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let Some(chunk) = self.chunks.next(cx) else {
            return Ok(Step::Done);
        };
        let mask = matches(&self.pred, &chunk, cx)?;
        let hits: Vec<u32> = (0..chunk.len as u32)
            .filter(|&i| mask[i as usize])
            .collect();
        if hits.is_empty() {
            return Ok(Step::Batch((*chunk).clone()));
        }
        // SET is evaluated on the matched rows only, as in MySQL: a row that
        // is not updated raises no overflow and sleeps no SLEEP.
        let matched = if hits.len() == chunk.len {
            (*chunk).clone()
        } else {
            chunk.gather(&hits)
        };
        // MySQL reports the rows whose values changed, not the rows matched.
        let mut changed = vec![false; chunk.len];
        let mut cols = chunk.columns.clone();
        for (i, def, e) in &self.sets {
            let newv = eval(e, &matched, cx)?;
            let newv = coerce(&newv, def, 0)?;
            let old = &chunk.columns[*i];
            let mut next = 0;
            let vals: Vec<Value> = (0..chunk.len)
                .map(|r| {
                    let before = old.value(r);
                    if !mask[r] {
                        return before;
                    }
                    let after = newv.value(next);
                    next += 1;
                    changed[r] |= after != before;
                    after
                })
                .collect();
            cols[*i] = Arc::new(Column::from_values(def.ty, &vals));
        }
        self.affected
            .add(changed.iter().filter(|c| **c).count() as u64);
        let bytes: usize = self.sets.iter().map(|(i, ..)| cols[*i].heap_bytes()).sum();
        self.mem.grow(cx.resources, bytes as u64)?;
        Ok(Step::Batch(Batch::new(cols, chunk.len)))
    }
    fn describe(&self) -> String {
        format!(
            "Update {} ({} rows) {}",
            self.chunks.table,
            self.chunks.data.rows(),
            self.text
        )
    }
    fn name(&self) -> &'static str {
        "Update"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// `DELETE FROM t [WHERE p]`.
pub struct Delete {
    chunks: Chunks,
    pred: Option<Expr>,
    affected: Affected,
    mem: MemoryUse,
    text: String,
}

impl Delete {
    /// Deletes from `data` (a snapshot of `table`) the rows `pred` holds
    /// for (all without one), counting into `affected`.
    pub fn new(
        table: String,
        data: Arc<TableData>,
        pred: Option<Expr>,
        affected: Affected,
        text: String,
    ) -> Self {
        Delete {
            chunks: Chunks {
                table,
                data,
                next: 0,
            },
            pred,
            affected,
            mem: MemoryUse::default(),
            text,
        }
    }
}

impl Operator for Delete {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let Some(chunk) = self.chunks.next(cx) else {
            return Ok(Step::Done);
        };
        let keep: Vec<u32> = match &self.pred {
            Some(p) => {
                let m = eval(p, &chunk, cx)?;
                (0..chunk.len as u32)
                    .filter(|&i| m.value(i as usize).truthy() != Some(true))
                    .collect()
            }
            None => Vec::new(),
        };
        self.affected.add((chunk.len - keep.len()) as u64);
        if keep.len() == chunk.len {
            return Ok(Step::Batch((*chunk).clone()));
        }
        if keep.is_empty() {
            return Ok(Step::Pending);
        }
        let kept = chunk.gather(&keep);
        self.mem.grow(cx.resources, kept.heap_bytes() as u64)?;
        Ok(Step::Batch(kept))
    }
    fn describe(&self) -> String {
        format!(
            "Delete {} ({} rows) {}",
            self.chunks.table,
            self.chunks.data.rows(),
            self.text
        )
    }
    fn name(&self) -> &'static str {
        "Delete"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}
