//! Input buffered by a blocking operator (sort, hash join build), a bounded
//! amount of work per step.
//!
//! Appending every batch to one growing column makes some steps copy the
//! whole buffer (when a vector doubles) and fault in its new pages: tens of
//! milliseconds for a few million rows, during which a kill waits. Instead
//! the batches are kept as they come (no copy) and concatenated afterwards
//! into columns allocated once at their final size, [`CONCAT_ROWS`] rows per
//! step.

use std::sync::Arc;

use crate::data::{Column, ColumnData};

/// Rows concatenated per step. Each step writes fresh pages of the output
/// (a page fault per 512 values of each column): at 2048 rows a step of a
/// 5-column sort used 60–400 µs of CPU on the reference VM.
pub const CONCAT_ROWS: usize = 1024;

/// Batches of columns, then their concatenation.
#[derive(Default)]
pub struct Buffered {
    batches: Vec<(Vec<Arc<Column>>, usize)>,
    rows: usize,
    out: Vec<Column>,
    next: usize,
    /// Rows of batch `next` already concatenated.
    off: usize,
}

impl Buffered {
    /// Keeps a batch (`cols`, all of `len` rows). Empty batches are dropped,
    /// except the first (it gives the column types).
    pub fn push(&mut self, cols: Vec<Arc<Column>>, len: usize) {
        if len > 0 || self.batches.is_empty() {
            self.batches.push((cols, len));
            self.rows += len;
        }
    }

    /// Whether concatenation has not started yet.
    pub fn is_fresh(&self) -> bool {
        self.next == 0 && self.out.is_empty()
    }

    /// Rows kept.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Heap bytes the concatenated columns will take (their vectors; the
    /// strings stay shared with the batches'): to be reserved before the
    /// first [`Buffered::concat_some`].
    pub fn concat_bytes(&self) -> usize {
        let n = self.rows;
        self.batches.first().map_or(0, |(cols, _)| {
            cols.iter()
                .map(|c| {
                    let per_row = match &c.data {
                        ColumnData::Text(_) => std::mem::size_of::<Arc<str>>(),
                        _ => 8,
                    };
                    // And a null mask, if any batch has NULLs.
                    n * (per_row + 1)
                })
                .sum()
        })
    }

    /// Approximate heap bytes held (8 per value).
    pub fn approx_bytes(&self) -> usize {
        let cols = self.batches.first().map_or(self.out.len(), |b| b.0.len());
        self.rows * 8 * cols.max(self.out.len())
    }

    /// Concatenates [`CONCAT_ROWS`] more rows; true once all are. The
    /// columns take the type of the first batch's, later batches convert to
    /// it (as [`Column::append`] does).
    pub fn concat_some(&mut self) -> bool {
        if self.next == 0 && self.out.is_empty() {
            if let Some((first, _)) = self.batches.first() {
                let n = self.rows;
                self.out = first
                    .iter()
                    .map(|c| Column {
                        data: c.data.empty_like(n),
                        nulls: None,
                    })
                    .collect();
            }
        }
        let mut done = 0;
        while done < CONCAT_ROWS {
            let Some((cols, len)) = self.batches.get(self.next) else {
                return true;
            };
            // Part of a batch when it would pass the step's rows: a batch
            // of 4096 rows and 4 columns faulted in its pages of the output
            // in one step (135–540 µs measured on this VM).
            let take = (*len - self.off).min(CONCAT_ROWS - done);
            for (o, c) in self.out.iter_mut().zip(cols.iter()) {
                o.append_range(c, self.off, take);
            }
            done += take;
            self.off += take;
            if self.off >= *len {
                self.next += 1;
                self.off = 0;
            }
        }
        self.next >= self.batches.len()
    }

    /// The concatenated columns (call after [`Buffered::concat_some`]
    /// returned true).
    pub fn take_columns(&mut self) -> Vec<Column> {
        // The batches are freed off the query's path, all at once: freeing
        // them one by one here made every ~60th step pay for the
        // allocator's consolidation of the freed space (up to 0.5 ms).
        let bytes = self.approx_bytes();
        super::reclaim::dispose(std::mem::take(&mut self.batches), bytes);
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataType, Value};

    #[test]
    fn concatenates_in_bounded_steps_like_append() {
        let mut b = Buffered::default();
        let mut expect: Option<Column> = None;
        for i in 0..40i64 {
            let vals: Vec<Value> = (0..1000 + i * 100)
                .map(|j| {
                    if (i + j) % 17 == 0 {
                        Value::Null
                    } else {
                        Value::Int(i * 1000 + j)
                    }
                })
                .collect();
            let c = Column::from_values(DataType::Int, &vals);
            match &mut expect {
                None => expect = Some(c.clone()),
                Some(e) => e.append(&c),
            }
            b.push(vec![Arc::new(c)], 1000 + i as usize * 100);
        }
        let mut steps = 1;
        while !b.concat_some() {
            steps += 1;
        }
        // 118,000 rows, CONCAT_ROWS a step, batches cut across steps.
        assert_eq!(steps, 118_000usize.div_ceil(CONCAT_ROWS), "bounded steps");
        let cols = b.take_columns();
        assert_eq!(Some(&cols[0]), expect.as_ref());
    }
}
