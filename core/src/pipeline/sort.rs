//! `ORDER BY` (with a fused `LIMIT`: top-N).
//!
//! The input is gathered into one set of columns, a batch per step. With a
//! limit, the buffer is cut back to the best N rows whenever it grows past
//! a bound, so memory stays O(N). Without one, the rows are sorted by a
//! bottom-up merge sort whose state is kept between steps: each step sorts
//! or merges a bounded number of rows, so a kill is seen within one batch of
//! work even in a sort of many millions of rows. NULLs sort first ascending
//! and last descending, as in MySQL.
//!
//! Memory: without a limit, the input batches (and key columns that are
//! not shared with them) are reserved as they come, the concatenated
//! columns and the merge sort's index arrays before they are made, and the
//! batches' share is given back once concatenated. With a limit, the
//! buffer's vectors are grown by the operator itself after reserving their
//! new size, and the reservation follows the buffer down when it is cut
//! back to the best rows.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use super::buffer::Buffered;
use super::memory::{buffered_batch_bytes, vec_bytes, MemoryUse};
use super::{Instrumented, OpCx, Operator, Step, BATCH_ROWS};
use crate::data::{Batch, Column, ColumnData};
use crate::expr::ExecError;
use crate::expr::Expr;

// Bounded work per step (a kill is seen between steps): sorting one run of
// RUN rows, or MERGE_BUDGET merge moves, each takes well under 100 µs.
const RUN: usize = 256;
const MERGE_BUDGET: usize = 2048;
const EMIT_ROWS: usize = 1024;

/// One sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    /// The expression.
    pub expr: Expr,
    /// Descending.
    pub desc: bool,
}

/// Compares rows `a` and `b` of `c`: NULL first, then by value (the sort's
/// order of one ascending key).
pub(super) fn cmp_in_col(c: &Column, a: usize, b: usize) -> Ordering {
    match (c.is_null(a), c.is_null(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => c.data.cmp_entries(a, b),
    }
}

/// Compares rows `a` and `b` by `keys` (descending where `desc` says).
pub(super) fn cmp_rows(keys: &[Column], desc: &[bool], a: u32, b: u32) -> Ordering {
    for (k, d) in keys.iter().zip(desc) {
        let o = cmp_in_col(k, a as usize, b as usize);
        let o = if *d { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A bottom-up merge sort of row indexes, a bounded amount of work per
/// [`MergeSort::step`] (stable: equal rows keep their input order).
pub(super) struct MergeSort {
    n: usize,
    /// The sorted indexes, once `step` returned true.
    pub(super) src: Vec<u32>,
    dst: Vec<u32>,
    runs_sorted: usize,
    width: usize,
    lo: usize,
    i: usize,
    j: usize,
    k: usize,
    active: bool,
}

impl MergeSort {
    /// A sort of rows `0..n`.
    pub(super) fn new(n: usize) -> Self {
        MergeSort {
            n,
            // Filled a run at a time (bounded steps), and `dst` by the first
            // merge pass: `vec![0; n]` is zeroed by the allocator only when
            // it maps fresh pages; once glibc has raised its mmap threshold
            // (after big blocks were freed) it is a memset of the whole
            // array in one step (2–3.5 ms for 1.5M rows, measured in a
            // killed parallel sort).
            src: Vec::with_capacity(n),
            dst: Vec::with_capacity(n),
            runs_sorted: 0,
            width: RUN,
            lo: 0,
            i: 0,
            j: 0,
            k: 0,
            active: false,
        }
    }

    /// Does a bounded amount of work; true when `src` is sorted.
    pub(super) fn step(&mut self, keys: &[Column], desc: &[bool]) -> bool {
        let n = self.n;
        if self.runs_sorted < n {
            let mut done = 0;
            while self.runs_sorted < n && done < RUN {
                let end = (self.runs_sorted + RUN).min(n);
                self.src.extend(self.runs_sorted as u32..end as u32);
                self.src[self.runs_sorted..end].sort_by(|a, b| cmp_rows(keys, desc, *a, *b));
                done += end - self.runs_sorted;
                self.runs_sorted = end;
            }
            return false;
        }
        let mut work = 0;
        while self.width < n {
            if !self.active {
                if self.lo >= n {
                    std::mem::swap(&mut self.src, &mut self.dst);
                    self.width *= 2;
                    self.lo = 0;
                    continue;
                }
                let mid = (self.lo + self.width).min(n);
                self.i = self.lo;
                self.j = mid;
                self.k = self.lo;
                self.active = true;
            }
            let mid = (self.lo + self.width).min(n);
            let hi = (self.lo + 2 * self.width).min(n);
            while self.k < hi {
                if work >= MERGE_BUDGET {
                    return false;
                }
                let take_left = self.j >= hi
                    || (self.i < mid
                        && cmp_rows(keys, desc, self.src[self.i], self.src[self.j])
                            != Ordering::Greater);
                let v = if take_left {
                    self.i += 1;
                    self.src[self.i - 1]
                } else {
                    self.j += 1;
                    self.src[self.j - 1]
                };
                // The first pass writes `dst` in order: it grows then.
                if self.k < self.dst.len() {
                    self.dst[self.k] = v;
                } else {
                    self.dst.push(v);
                }
                self.k += 1;
                work += 1;
            }
            self.active = false;
            self.lo = hi;
        }
        true
    }
}

enum Phase {
    Collect,
    /// Without a limit: concatenating the buffered input.
    Concat,
    Sorting(MergeSort),
    Emit(Vec<u32>, usize),
}

/// Sorts its input by `keys`; with `limit`, keeps only the first `limit`
/// rows.
pub struct Sort {
    input: Box<Instrumented>,
    keys: Vec<SortKey>,
    desc: Vec<bool>,
    limit: Option<usize>,
    data: Vec<Column>,
    key_cols: Vec<Column>,
    /// Without a limit: the input and its keys as they came.
    pending: Buffered,
    pending_keys: Buffered,
    rows: usize,
    /// With a limit, once the buffer holds exactly the best `limit` rows
    /// (right after a compaction): the worst of them. A new row can only
    /// enter the result if it sorts strictly before it.
    threshold: Option<usize>,
    phase: Phase,
    /// The memory of the buffered rows and of the sort's index arrays.
    mem: MemoryUse,
    /// Without a limit: bytes of the buffered batches (not their strings,
    /// which the concatenated columns share), given back once
    /// concatenated. With a limit: bytes of the strings in the buffer.
    buffered_bytes: u64,
    text: String,
    /// One pipeline's sort of a parallel stage: ends with its sorted run
    /// instead of emitting it, with every row's position as a last key.
    run: Option<RunPosition>,
    /// With a limit `k`: the buffer is cut back to the best `k` rows once
    /// it holds more than `max(2k, compact_rows)`.
    compact_rows: usize,
}

/// With a limit `k`, a top-N's buffer is cut back to its best `k` rows once
/// it holds more than `max(2k, TOP_N_COMPACT_ROWS)` rows (one pipeline of N
/// of a parallel top-N: a 1/N share of it, so the N buffers together hold
/// what the serial one holds).
pub const TOP_N_COMPACT_ROWS: usize = 16_384;

/// Where each row of a parallel stage's pipeline came from: its morsel's
/// sequence number `<< 32 |` its rank among the rows that morsel produced
/// here (the row's place in the serial plan's input). As the sort's last
/// key it makes equal rows of different runs merge in the serial order.
struct RunPosition {
    /// Where the pipeline's morsel scan writes each morsel's number.
    morsel: Arc<AtomicU64>,
    last: u64,
    rows: u64,
}

impl RunPosition {
    /// The positions of the next input batch, of `len` rows.
    fn column(&mut self, len: usize) -> Column {
        let m = self.morsel.load(AtomicOrdering::Relaxed);
        if m != self.last {
            self.last = m;
            self.rows = 0;
        }
        let base = (m << 32) | self.rows;
        self.rows += len as u64;
        Column::ints((0..len as u64).map(|i| (base + i) as i64).collect())
    }
}

impl Sort {
    /// Sorts by `keys`, keeping at most `limit` rows.
    pub fn new(
        input: Instrumented,
        keys: Vec<SortKey>,
        limit: Option<usize>,
        text: String,
    ) -> Self {
        let desc = keys.iter().map(|k| k.desc).collect();
        Sort {
            input: Box::new(input),
            keys,
            desc,
            limit,
            data: Vec::new(),
            key_cols: Vec::new(),
            pending: Buffered::default(),
            pending_keys: Buffered::default(),
            rows: 0,
            threshold: None,
            phase: Phase::Collect,
            mem: MemoryUse::default(),
            buffered_bytes: 0,
            text,
            run: None,
            compact_rows: TOP_N_COMPACT_ROWS,
        }
    }

    /// Makes this one pipeline's sort of a parallel stage: it sorts what
    /// its pipeline reads (by the keys, then by position in the serial
    /// input: `morsel` is the cell where the pipeline's morsel scan writes
    /// each morsel's sequence number) and ends with the sorted run (the
    /// best `limit` rows with a limit) for [`Sort::sorted_run`], emitting
    /// nothing.
    /// `pipelines` is the stage's width: a top-N's buffer gets a share of
    /// [`TOP_N_COMPACT_ROWS`] (at least one batch), so the stage stays
    /// within the memory of the serial top-N (a budget that fits one fits
    /// the other).
    pub fn partial(mut self, morsel: Arc<AtomicU64>, pipelines: usize) -> Self {
        self.compact_rows = (TOP_N_COMPACT_ROWS / pipelines.max(1)).max(BATCH_ROWS);
        self.desc.push(false);
        self.run = Some(RunPosition {
            morsel,
            last: u64::MAX,
            rows: 0,
        });
        self
    }

    /// A partial sort's result once it ended: its columns, its key columns
    /// (the last one the rows' positions) and the order of its rows.
    pub fn sorted_run(&self) -> Option<(&[Column], &[Column], &[u32])> {
        match &self.phase {
            Phase::Emit(order, _) if self.run.is_some() => {
                Some((&self.data, &self.key_cols, order.as_slice()))
            }
            _ => None,
        }
    }

    /// The key directions (a partial sort's last, the position, ascending).
    pub fn directions(&self) -> &[bool] {
        &self.desc
    }

    /// With a limit: accounts for the buffer as it is now (its vectors'
    /// capacities and its strings).
    fn settle_buffer(&mut self, cx: &mut OpCx<'_>) -> Result<(), ExecError> {
        let vecs: usize = self
            .data
            .iter()
            .chain(&self.key_cols)
            .map(Column::vec_bytes)
            .sum();
        self.mem
            .set(cx.resources, vecs as u64 + self.buffered_bytes)
    }

    fn top(&self, k: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..self.rows as u32).collect();
        let cmp = |a: &u32, b: &u32| cmp_rows(&self.key_cols, &self.desc, *a, *b).then(a.cmp(b));
        if k < idx.len() {
            idx.select_nth_unstable_by(k, cmp);
            idx.truncate(k);
        }
        idx.sort_by(cmp);
        idx
    }

    fn compact(&mut self, k: usize) {
        let idx = self.top(k);
        self.data = self.data.iter().map(|c| c.gather(&idx)).collect();
        self.key_cols = self.key_cols.iter().map(|c| c.gather(&idx)).collect();
        self.buffered_bytes = self
            .data
            .iter()
            .chain(&self.key_cols)
            .map(|c| c.text_bytes() as u64)
            .sum();
        self.rows = idx.len();
        // `top` returns the rows in order, so the worst kept row is last.
        self.threshold = (k > 0 && self.rows == k).then(|| k - 1);
    }

    /// The rows of a new batch (with key columns `keys`) that sort strictly
    /// before buffered row `t`; `None` when the key types differ from the
    /// buffer's (then every row is kept and the buffer converts them).
    fn better_than(&self, keys: &[Arc<Column>], len: usize, t: usize) -> Option<Vec<u32>> {
        let same_types = keys
            .iter()
            .zip(&self.key_cols)
            .all(|(a, b)| a.data_type() == b.data_type());
        if !same_types || keys.len() != self.key_cols.len() {
            return None;
        }
        let rest = |i: usize| {
            for (j, (k, d)) in keys.iter().zip(&self.desc).enumerate().skip(1) {
                let o = cmp_across(k, i, &self.key_cols[j], t);
                let o = if *d { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o == Ordering::Less;
                }
            }
            false
        };
        let mut sel = Vec::new();
        match (&keys[0].data, &keys[0].nulls, &self.key_cols[0].data) {
            // The common case, a first key of integers without NULLs: one
            // comparison per row; the other keys only on a tie.
            (ColumnData::Int(v), None, ColumnData::Int(tv)) if !self.key_cols[0].is_null(t) => {
                let t0 = tv[t];
                if self.desc[0] {
                    for (i, &x) in v.iter().enumerate() {
                        if x > t0 || (x == t0 && rest(i)) {
                            sel.push(i as u32);
                        }
                    }
                } else {
                    for (i, &x) in v.iter().enumerate() {
                        if x < t0 || (x == t0 && rest(i)) {
                            sel.push(i as u32);
                        }
                    }
                }
            }
            _ => {
                for i in 0..len {
                    let o = cmp_across(&keys[0], i, &self.key_cols[0], t);
                    let o = if self.desc[0] { o.reverse() } else { o };
                    if o == Ordering::Less || (o == Ordering::Equal && rest(i)) {
                        sel.push(i as u32);
                    }
                }
            }
        }
        Some(sel)
    }
}

/// Compares row `a` of column `x` with row `b` of column `y`, in the order
/// of [`cmp_in_col`] (columns of different types: as values).
pub(super) fn cmp_across(x: &Column, a: usize, y: &Column, b: usize) -> Ordering {
    match (x.is_null(a), y.is_null(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => match (&x.data, &y.data) {
            (ColumnData::Int(v), ColumnData::Int(w))
            | (ColumnData::DateTime(v), ColumnData::DateTime(w))
            | (ColumnData::Time(v), ColumnData::Time(w)) => v[a].cmp(&w[b]),
            (ColumnData::Float(v), ColumnData::Float(w)) => v[a].total_cmp(&w[b]),
            (ColumnData::Text(v), ColumnData::Text(w)) => v[a].cmp(&w[b]),
            (ColumnData::Date(v), ColumnData::Date(w)) => v[a].cmp(&w[b]),
            (ColumnData::Decimal(v), ColumnData::Decimal(w)) => v[a].cmp_value(&w[b]),
            _ => x.value(a).sort_cmp(&y.value(b)),
        },
    }
}

/// Compares row `a` of key columns `x` with row `b` of key columns `y`
/// (two runs of a parallel sort), keys descending where `desc` says.
pub(super) fn cmp_rows_across(
    x: &[Column],
    a: usize,
    y: &[Column],
    b: usize,
    desc: &[bool],
) -> Ordering {
    for ((cx, cy), d) in x.iter().zip(y).zip(desc) {
        let o = cmp_across(cx, a, cy, b);
        let o = if *d { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

impl Drop for Sort {
    fn drop(&mut self) {
        let bytes = self.mem.bytes() as usize;
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.data),
                std::mem::take(&mut self.key_cols),
                std::mem::replace(&mut self.phase, Phase::Collect),
                std::mem::take(&mut self.pending),
                std::mem::take(&mut self.pending_keys),
            ),
            bytes,
        );
    }
}

impl Operator for Sort {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match &mut self.phase {
            Phase::Collect => match self.input.next(cx)? {
                Step::Batch(mut b) => {
                    let mut keys = Vec::with_capacity(self.keys.len());
                    for k in &self.keys {
                        keys.push(k.expr.eval(&b, cx.eval)?.into_column(b.len));
                    }
                    if let Some(r) = &mut self.run {
                        keys.push(Arc::new(r.column(b.len)));
                    }
                    if let Some(t) = self.threshold {
                        if let Some(sel) = self.better_than(&keys, b.len, t) {
                            if sel.is_empty() {
                                return Ok(Step::Pending);
                            }
                            if sel.len() < b.len {
                                b = b.gather(&sel);
                                keys = keys.iter().map(|c| Arc::new(c.gather(&sel))).collect();
                            }
                        }
                    }
                    if self.limit.is_none() {
                        let (reserve, buffered) = buffered_batch_bytes(&b, &keys);
                        self.mem.grow(cx.resources, reserve)?;
                        self.buffered_bytes += buffered;
                        self.rows += b.len;
                        self.pending.push(b.columns, b.len);
                        self.pending_keys.push(keys, b.len);
                        return Ok(Step::Pending);
                    }
                    // Top-N: the buffer's vectors grow here, reserved first
                    // (the old and the new vectors while they are copied).
                    let strings: u64 = b
                        .columns
                        .iter()
                        .chain(&keys)
                        .map(|c| c.text_bytes() as u64)
                        .sum();
                    if self.data.is_empty() {
                        let bytes: usize =
                            b.columns.iter().chain(&keys).map(|c| c.vec_bytes()).sum();
                        self.mem.grow(cx.resources, bytes as u64 + strings)?;
                        self.data = b.columns.iter().map(|c| (**c).clone()).collect();
                        self.key_cols = keys.iter().map(|c| (**c).clone()).collect();
                    } else {
                        let grown: usize = self
                            .data
                            .iter()
                            .chain(&self.key_cols)
                            .map(|c| c.grown_bytes(b.len))
                            .sum();
                        self.mem.grow(cx.resources, grown as u64 + strings)?;
                        for (d, c) in self.data.iter_mut().zip(&b.columns) {
                            d.reserve_rows(b.len);
                            d.append(c);
                        }
                        for (d, c) in self.key_cols.iter_mut().zip(&keys) {
                            d.reserve_rows(b.len);
                            d.append(c);
                        }
                    }
                    self.buffered_bytes += strings;
                    self.rows += b.len;
                    if let Some(k) = self.limit {
                        if self.rows > k.saturating_mul(2).max(self.compact_rows) {
                            // The cut-back buffer is new: reserved at its
                            // size (at most the current one) first.
                            let now: usize = self
                                .data
                                .iter()
                                .chain(&self.key_cols)
                                .map(Column::heap_bytes)
                                .sum();
                            self.mem
                                .grow(cx.resources, now.min(self.mem.bytes() as usize) as u64)?;
                            self.compact(k);
                        }
                    }
                    self.settle_buffer(cx)?;
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.phase = match self.limit {
                        Some(k) => Phase::Emit(self.top(k), 0),
                        None => Phase::Concat,
                    };
                    if self.run.is_some() && self.limit.is_some() {
                        // A pipeline's top rows: the run is ready.
                        return Ok(Step::Done);
                    }
                    Ok(Step::Pending)
                }
                other => Ok(other),
            },
            Phase::Concat => {
                if self.pending.is_fresh() {
                    // The concatenated columns, and the merge sort's two
                    // index arrays.
                    let bytes = self.pending.concat_bytes()
                        + self.pending_keys.concat_bytes()
                        + 2 * vec_bytes::<u32>(self.rows) as usize;
                    self.mem.grow(cx.resources, bytes as u64)?;
                }
                let data = self.pending.concat_some();
                let keys = self.pending_keys.concat_some();
                if data && keys {
                    self.data = self.pending.take_columns();
                    self.key_cols = self.pending_keys.take_columns();
                    // The batches are freed; their strings live on.
                    self.mem.shrink(std::mem::take(&mut self.buffered_bytes));
                    self.phase = Phase::Sorting(MergeSort::new(self.rows));
                }
                Ok(Step::Pending)
            }
            Phase::Sorting(m) => {
                if m.step(&self.key_cols, &self.desc) {
                    let order = std::mem::take(&mut m.src);
                    self.phase = Phase::Emit(order, 0);
                    if self.run.is_some() {
                        // A pipeline's sorted run is ready.
                        return Ok(Step::Done);
                    }
                }
                Ok(Step::Pending)
            }
            Phase::Emit(order, pos) => {
                if *pos >= order.len() {
                    return Ok(Step::Done);
                }
                // Smaller batches than a scan's: each row is a random read
                // (a cache miss) in a large sort.
                let end = (*pos + EMIT_ROWS).min(order.len());
                let idx = &order[*pos..end];
                let cols = self.data.iter().map(|c| Arc::new(c.gather(idx))).collect();
                let n = end - *pos;
                *pos = end;
                Ok(Step::Batch(Batch::new(cols, n)))
            }
        }
    }
    fn describe(&self) -> String {
        let part = if self.run.is_some() { " (partial)" } else { "" };
        match self.limit {
            Some(k) => format!("TopN {k}{part} by {}", self.text),
            None => format!("Sort{part} by {}", self.text),
        }
    }
    fn name(&self) -> &'static str {
        if self.limit.is_some() {
            "TopN"
        } else {
            "Sort"
        }
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumable_merge_sort_sorts() {
        let n = 100_000usize;
        let vals: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 10007 - 5000).collect();
        let keys = vec![Column::ints(vals.clone())];
        let mut m = MergeSort::new(n);
        let mut steps = 0;
        while !m.step(&keys, &[false]) {
            steps += 1;
        }
        assert!(steps > 2, "the work is split into steps");
        let sorted: Vec<i64> = m.src.iter().map(|&i| vals[i as usize]).collect();
        let mut expect = vals;
        expect.sort();
        assert_eq!(sorted, expect);
    }

    #[test]
    fn nulls_first_ascending_last_descending() {
        let c = Column {
            data: ColumnData::Int(vec![2, 0, 1]),
            nulls: Some(vec![false, true, false]),
        };
        let keys = vec![c];
        assert_eq!(cmp_rows(&keys, &[false], 1, 0), Ordering::Less);
        assert_eq!(cmp_rows(&keys, &[true], 1, 0), Ordering::Greater);
    }
}
