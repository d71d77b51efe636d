//! `ORDER BY` (with a fused `LIMIT`: top-N).
//!
//! The input is gathered into one set of columns, a batch per step. With a
//! limit, the buffer is cut back to the best N rows whenever it grows past
//! a bound, so memory stays O(N). Without one, the rows are sorted by a
//! bottom-up merge sort whose state is kept between steps: each step sorts
//! or merges a bounded number of rows, so a kill is seen within one batch of
//! work even in a sort of many millions of rows. NULLs sort first ascending
//! and last descending, as in MySQL.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Reservation, Step, BATCH_ROWS};
use crate::data::{Batch, Column, ColumnData};
use crate::sql::error::ExecError;
use crate::sql::expr::Expr;

const RUN: usize = 4096;
const MERGE_BUDGET: usize = 32_768;

/// One sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    /// The expression.
    pub expr: Expr,
    /// Descending.
    pub desc: bool,
}

fn cmp_in_col(c: &Column, a: usize, b: usize) -> Ordering {
    match (c.is_null(a), c.is_null(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => match &c.data {
            ColumnData::Int(v) => v[a].cmp(&v[b]),
            ColumnData::Float(v) => v[a].total_cmp(&v[b]),
            ColumnData::Text(v) => v[a].cmp(&v[b]),
        },
    }
}

fn cmp_rows(keys: &[Column], desc: &[bool], a: u32, b: u32) -> Ordering {
    for (k, d) in keys.iter().zip(desc) {
        let o = cmp_in_col(k, a as usize, b as usize);
        let o = if *d { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

struct MergeSort {
    src: Vec<u32>,
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
    fn new(n: usize) -> Self {
        MergeSort {
            src: (0..n as u32).collect(),
            dst: vec![0; n],
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
    fn step(&mut self, keys: &[Column], desc: &[bool]) -> bool {
        let n = self.src.len();
        if self.runs_sorted < n {
            let mut done = 0;
            while self.runs_sorted < n && done < MERGE_BUDGET {
                let end = (self.runs_sorted + RUN).min(n);
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
                if take_left {
                    self.dst[self.k] = self.src[self.i];
                    self.i += 1;
                } else {
                    self.dst[self.k] = self.src[self.j];
                    self.j += 1;
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
    rows: usize,
    phase: Phase,
    reservation: Option<Reservation>,
    text: String,
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
            rows: 0,
            phase: Phase::Collect,
            reservation: None,
            text,
        }
    }

    fn account(&mut self, cx: &mut OpCx<'_>, bytes: u64) -> Result<(), ExecError> {
        match &mut self.reservation {
            Some(r) => r.grow(bytes),
            None => {
                self.reservation = Some(cx.resources.reserve(bytes)?);
                Ok(())
            }
        }
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
        self.rows = idx.len();
    }
}

impl Operator for Sort {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match &mut self.phase {
            Phase::Collect => match self.input.next(cx)? {
                Step::Batch(b) => {
                    let mut keys = Vec::with_capacity(self.keys.len());
                    for k in &self.keys {
                        keys.push(k.expr.eval(&b, cx.eval)?.into_column(b.len));
                    }
                    if self.data.is_empty() {
                        self.data = b.columns.iter().map(|c| (**c).clone()).collect();
                        self.key_cols = keys.iter().map(|c| (**c).clone()).collect();
                    } else {
                        for (d, c) in self.data.iter_mut().zip(&b.columns) {
                            d.append(c);
                        }
                        for (d, c) in self.key_cols.iter_mut().zip(&keys) {
                            d.append(c);
                        }
                    }
                    self.rows += b.len;
                    match self.limit {
                        Some(k) if self.rows > k.saturating_mul(2).max(16_384) => self.compact(k),
                        _ => {
                            let bytes = b.heap_bytes() as u64
                                + keys.iter().map(|c| c.heap_bytes() as u64).sum::<u64>()
                                + 8 * b.len as u64;
                            self.account(cx, bytes)?;
                        }
                    }
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.phase = match self.limit {
                        Some(k) => Phase::Emit(self.top(k), 0),
                        None => Phase::Sorting(MergeSort::new(self.rows)),
                    };
                    Ok(Step::Pending)
                }
                other => Ok(other),
            },
            Phase::Sorting(m) => {
                if m.step(&self.key_cols, &self.desc) {
                    let order = std::mem::take(&mut m.src);
                    self.phase = Phase::Emit(order, 0);
                }
                Ok(Step::Pending)
            }
            Phase::Emit(order, pos) => {
                if *pos >= order.len() {
                    return Ok(Step::Done);
                }
                let end = (*pos + BATCH_ROWS).min(order.len());
                let idx = &order[*pos..end];
                let cols = self.data.iter().map(|c| Arc::new(c.gather(idx))).collect();
                let n = end - *pos;
                *pos = end;
                Ok(Step::Batch(Batch::new(cols, n)))
            }
        }
    }
    fn describe(&self) -> String {
        match self.limit {
            Some(k) => format!("TopN {k} by {}", self.text),
            None => format!("Sort by {}", self.text),
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
