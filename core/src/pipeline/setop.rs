//! Set operations by hash: `UNION [DISTINCT]`, `EXCEPT [ALL | DISTINCT]`,
//! `INTERSECT [ALL | DISTINCT]`, over a run of inputs of one precedence,
//! left to right.
//!
//! The state is one counted multiset of rows ([`RowCounts`]): the first
//! input is counted into it, and every later input changes the counts as
//! its operator says (`UNION ALL` adds, `EXCEPT ALL` takes away, `INTERSECT
//! ALL` keeps the smaller count; the `DISTINCT` forms cap the counts at one).
//! Rows of a later `EXCEPT` or `INTERSECT` input that the multiset does not
//! hold are never stored, so the state is bounded by the rows of the
//! `UNION` inputs. The result is emitted in the order rows were first seen
//! (MySQL gives no order without `ORDER BY`; a stable one reads better).
//! Rows compare as `DISTINCT` and `GROUP BY` compare them: NULLs equal, `1`
//! equal to `1.0` (inputs are first converted to the result's types).
//!
//! Context citizen: one input batch (at most [`BATCH_ROWS`] rows) or one
//! output batch per step; the rows, the table and the counts are reserved
//! from the statement's budget before they are stored.

use super::growth::{ChunkVec, StepMap, MOVE_PER_STEP};
use std::sync::Arc;

use super::basic::conform;
use super::memory::{vec_bytes, MemoryUse};
use super::{Instrumented, OpCx, Operator, Resources, Step, BATCH_ROWS};
use crate::data::{Batch, Column, DataType, Value};
use crate::expr::ExecError;

/// A set operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOpKind {
    /// `UNION`
    Union,
    /// `EXCEPT`
    Except,
    /// `INTERSECT`
    Intersect,
}

impl SetOpKind {
    /// The SQL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            SetOpKind::Union => "UNION",
            SetOpKind::Except => "EXCEPT",
            SetOpKind::Intersect => "INTERSECT",
        }
    }
}

/// One operator of a run and whether it is `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetStep {
    /// The operator.
    pub kind: SetOpKind,
    /// `ALL` (keep duplicates by count) rather than `DISTINCT`.
    pub all: bool,
}

/// A multiset of rows in the order they were first added, with the bytes it
/// holds reserved from a budget.
#[derive(Default)]
pub struct RowCounts {
    /// Row → index in `rows`; grows a bounded amount of work per step.
    map: StepMap<Vec<Value>, u32>,
    rows: ChunkVec<Vec<Value>>,
    counts: ChunkVec<u64>,
    mem: MemoryUse,
}

impl RowCounts {
    /// Distinct rows held (a count of 0 included).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes reserved for the state.
    pub fn bytes(&self) -> u64 {
        self.mem.bytes()
    }

    /// Makes room for `n` more distinct rows: false while the table grows
    /// (a bounded amount of work per call: call again on the next step).
    /// The grown table and vectors are reserved first.
    fn make_room(&mut self, n: usize, res: &Arc<Resources>) -> Result<bool, ExecError> {
        let mut budget = MOVE_PER_STEP;
        if !self.map.room(n, &mut budget, &mut self.mem, res)? {
            return Ok(false);
        }
        let len = self.rows.len();
        if n <= self.rows.capacity() - len {
            return Ok(true);
        }
        // New pieces only: nothing held is copied.
        let before = self.vec_bytes();
        let after = ChunkVec::<Vec<Value>>::bytes_for(len.saturating_add(n))
            + ChunkVec::<u64>::bytes_for(len.saturating_add(n));
        self.mem.grow(res, after.saturating_sub(before))?;
        self.rows.reserve(n);
        self.counts.reserve(n);
        Ok(true)
    }

    fn vec_bytes(&self) -> u64 {
        self.rows.bytes() + self.counts.bytes()
    }

    #[cfg(test)]
    fn structure_bytes(&self) -> u64 {
        self.map.table_bytes() + self.vec_bytes()
    }

    /// The index of `row`, if held.
    pub fn find(&self, row: &[Value]) -> Option<usize> {
        self.map.map().get(row).map(|&i| i as usize)
    }

    /// The index of `row`, adding it with a count of 0 when new (the
    /// caller has made room with [`RowCounts::reserve`]); the bytes of a
    /// new row are reserved first. Only a new row is copied.
    fn find_or_add(&mut self, row: &[Value], res: &Arc<Resources>) -> Result<usize, ExecError> {
        if let Some(&i) = self.map.map().get(row) {
            return Ok(i as usize);
        }
        let row = row.to_vec();
        // The row twice (table and list), its strings once (shared).
        let bytes = 2 * vec_bytes::<Value>(row.capacity())
            + row.iter().map(|v| v.heap_bytes() as u64).sum::<u64>();
        self.mem.grow(res, bytes)?;
        let i = self.rows.len();
        self.rows.push(row.clone());
        self.counts.push(0);
        self.map.map_mut().insert(row, i as u32);
        Ok(i)
    }

    /// Makes room for `n` more rows, a bounded amount of work per call:
    /// false while the table grows (call again before adding rows).
    pub fn reserve(&mut self, n: usize, res: &Arc<Resources>) -> Result<bool, ExecError> {
        self.make_room(n, res)
    }

    /// Makes room for `n` more rows now, however long the table takes to
    /// grow.
    pub fn reserve_now(&mut self, n: usize, res: &Arc<Resources>) -> Result<(), ExecError> {
        while !self.make_room(n, res)? {}
        Ok(())
    }

    /// Adds one occurrence of `row`; whether it was new (not held before,
    /// or held with a count of 0).
    pub fn add(&mut self, row: &[Value], res: &Arc<Resources>) -> Result<bool, ExecError> {
        let i = self.find_or_add(row, res)?;
        self.counts[i] += 1;
        Ok(self.counts[i] == 1)
    }

    /// Caps every count at one.
    fn cap_at_one(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = (*c).min(1));
    }

    /// The count of the row at `i`.
    fn count(&self, i: usize) -> u64 {
        self.counts[i]
    }
}

impl Drop for RowCounts {
    fn drop(&mut self) {
        let bytes = self.mem.bytes() as usize;
        super::reclaim::dispose((self.map.take(), std::mem::take(&mut self.rows)), bytes);
    }
}

/// Rows counted per step: each is a lookup in a table that may be far
/// larger than the caches (two cache misses: the bucket, then the row it
/// points to), and a step must stay short for a kill to be seen soon (a
/// whole 4096-row batch took ~4 ms per step under load; 512 rows of a
/// 100,000-row table 150–360 µs).
const STEP_ROWS: usize = 256;

/// A run of set operations: `inputs[0] steps[0] inputs[1] steps[1] …`,
/// evaluated left to right by counting rows in a hash table.
pub struct SetOp {
    inputs: Vec<Instrumented>,
    steps: Vec<SetStep>,
    types: Vec<DataType>,
    /// The input being read.
    current: usize,
    counts: RowCounts,
    /// Per held row, how often the current `INTERSECT` input has it.
    hits: Vec<u64>,
    hits_mem: MemoryUse,
    /// An input batch (converted to the output types) being consumed
    /// [`STEP_ROWS`] rows at a time, and where.
    pending: Option<(Batch, usize)>,
    /// The row being looked up (reused: a lookup allocates nothing).
    row: Vec<Value>,
    /// Emission: the next row index, and the copies of it already emitted.
    emit_row: usize,
    emit_copy: u64,
    text: String,
}

impl SetOp {
    /// `inputs[0] steps[0] inputs[1] …` (one step fewer than inputs),
    /// with output columns of `types`.
    pub fn new(inputs: Vec<Instrumented>, steps: Vec<SetStep>, types: Vec<DataType>) -> Self {
        let text = steps
            .iter()
            .map(|s| format!("{}{}", s.kind.keyword(), if s.all { " ALL" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ");
        SetOp {
            inputs,
            steps,
            types,
            current: 0,
            counts: RowCounts::default(),
            hits: Vec::new(),
            hits_mem: MemoryUse::default(),
            pending: None,
            row: Vec::new(),
            emit_row: 0,
            emit_copy: 0,
            text,
        }
    }

    /// The step that combines input `i` (none for the first).
    fn step_of(&self, i: usize) -> Option<SetStep> {
        i.checked_sub(1).and_then(|s| self.steps.get(s).copied())
    }

    /// Before input `i` is read.
    fn start_input(&mut self, i: usize, res: &Arc<Resources>) -> Result<(), ExecError> {
        match self.step_of(i) {
            Some(SetStep {
                kind: SetOpKind::Intersect,
                ..
            }) => {
                let n = self.counts.len();
                self.hits_mem.set(res, vec_bytes::<u64>(n))?;
                self.hits = vec![0; n];
            }
            Some(SetStep {
                kind: SetOpKind::Except,
                all: false,
            }) => self.counts.cap_at_one(),
            _ => {}
        }
        Ok(())
    }

    /// After input `i` was read.
    fn finish_input(&mut self, i: usize) {
        match self.step_of(i) {
            Some(SetStep {
                kind: SetOpKind::Union,
                all: false,
            }) => self.counts.cap_at_one(),
            Some(SetStep {
                kind: SetOpKind::Intersect,
                all,
            }) => {
                let hits = std::mem::take(&mut self.hits);
                for (c, h) in self.counts.counts.iter_mut().zip(&hits) {
                    *c = if all {
                        (*c).min(*h)
                    } else {
                        u64::from(*c > 0 && *h > 0)
                    };
                }
                self.hits_mem.shrink(self.hits_mem.bytes());
            }
            _ => {}
        }
    }

    /// Counts rows `off..off + n` of `b` (of the output types); false when
    /// the step went to growing the table instead (nothing consumed).
    fn consume(
        &mut self,
        b: &Batch,
        off: usize,
        n: usize,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        let rows = off..off + n;
        let step = self.step_of(self.current);
        let row = &mut self.row;
        match step {
            None
            | Some(SetStep {
                kind: SetOpKind::Union,
                ..
            }) => {
                if !self.counts.reserve(n, res)? {
                    return Ok(false);
                }
                for i in rows {
                    b.row_into(i, row);
                    self.counts.add(row, res)?;
                }
            }
            Some(SetStep {
                kind: SetOpKind::Except,
                all,
            }) => {
                for i in rows {
                    b.row_into(i, row);
                    if let Some(i) = self.counts.find(row) {
                        let c = &mut self.counts.counts[i];
                        *c = if all { c.saturating_sub(1) } else { 0 };
                    }
                }
            }
            Some(SetStep {
                kind: SetOpKind::Intersect,
                ..
            }) => {
                for i in rows {
                    b.row_into(i, row);
                    if let Some(i) = self.counts.find(row) {
                        self.hits[i] += 1;
                    }
                }
            }
        }
        Ok(true)
    }

    /// The next output batch of the counted rows, each as often as its
    /// count says.
    fn emit(&mut self) -> Option<Batch> {
        let mut rows: Vec<&[Value]> = Vec::new();
        while rows.len() < BATCH_ROWS && self.emit_row < self.counts.len() {
            let n = self.counts.count(self.emit_row);
            if self.emit_copy < n {
                let take = (n - self.emit_copy).min((BATCH_ROWS - rows.len()) as u64);
                for _ in 0..take {
                    rows.push(&self.counts.rows[self.emit_row]);
                }
                self.emit_copy += take;
            }
            if self.emit_copy >= n {
                self.emit_row += 1;
                self.emit_copy = 0;
            }
        }
        if rows.is_empty() {
            return None;
        }
        let cols = self
            .types
            .iter()
            .enumerate()
            .map(|(j, t)| {
                let vals: Vec<Value> = rows.iter().map(|r| r[j].clone()).collect();
                Arc::new(Column::from_values(*t, &vals))
            })
            .collect();
        Some(Batch::new(cols, rows.len()))
    }
}

impl Operator for SetOp {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if let Some((b, off)) = self.pending.take() {
            let n = (b.len - off).min(STEP_ROWS);
            if !self.consume(&b, off, n, cx.resources)? {
                // The step grew the table: the rows on the next one.
                self.pending = Some((b, off));
                return Ok(Step::Pending);
            }
            if off + n < b.len {
                self.pending = Some((b, off + n));
            }
            return Ok(Step::Pending);
        }
        if let Some(input) = self.inputs.get_mut(self.current) {
            return match input.next(cx)? {
                Step::Batch(b) => {
                    let cols = b
                        .columns
                        .iter()
                        .zip(&self.types)
                        .map(|(c, t)| conform(c.clone(), *t))
                        .collect();
                    self.pending = Some((Batch::new(cols, b.len), 0));
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.finish_input(self.current);
                    self.current += 1;
                    if self.current < self.inputs.len() {
                        self.start_input(self.current, cx.resources)?;
                    }
                    Ok(Step::Pending)
                }
                other => Ok(other),
            };
        }
        Ok(match self.emit() {
            Some(b) => Step::Batch(b),
            None => Step::Done,
        })
    }
    fn describe(&self) -> String {
        format!("SetOp {}", self.text)
    }
    fn name(&self) -> &'static str {
        "SetOp"
    }
    fn children(&self) -> Vec<&Instrumented> {
        self.inputs.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::memory::CHUNK;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn row_counts_reserve_their_rows_and_give_everything_back() {
        let total = Arc::new(AtomicU64::new(0));
        let res = Resources::new(1 << 30, total.clone());
        let mut rc = RowCounts::default();
        rc.reserve_now(10_000, &res).unwrap();
        for i in 0..10_000i64 {
            assert!(rc.add(&[Value::Int(i % 5_000)], &res).unwrap() == (i < 5_000));
        }
        assert_eq!(rc.len(), 5_000);
        assert!(rc.bytes() >= rc.structure_bytes());
        assert!(res.used() >= rc.bytes() && res.used() < rc.bytes() + 2 * CHUNK);
        drop(rc);
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn a_small_budget_refuses_the_rows() {
        let res = Resources::new(100_000, Arc::new(AtomicU64::new(0)));
        let mut rc = RowCounts::default();
        let mut err = None;
        for i in 0..100_000i64 {
            if let Err(e) = rc
                .reserve_now(1, &res)
                .and_then(|_| rc.add(&[Value::Int(i)], &res))
            {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(ExecError::MemoryBudget { .. })));
        drop(rc);
        assert_eq!(res.used(), 0);
    }
}
