//! `IndexScan`: the rows of one table version whose indexed value lies in
//! a list of ranges (`a = 5`, `a IN (1, 2)`, `a BETWEEN 3 AND 9`), read
//! through an ordered index ([`crate::index`]) instead of a full scan.
//!
//! A context citizen like every scan: at most [`BATCH_ROWS`] rows per
//! step, so its node checks the pipeline context and the driver yields
//! between any two batches, however many rows the ranges hold.
//!
//! The rows come out in index order. The planner keeps the predicate that
//! chose the ranges as a filter above the scan, so the scan only narrows
//! what is read, never decides what matches.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Step, BATCH_ROWS};
use crate::data::{Batch, Column, DataType, Value};
use crate::index::{Cursor, KeyRange, RowId};
use crate::sql::error::ExecError;
use crate::storage::TableData;

/// Reads the rows of `ranges` of one index of a table version.
pub struct IndexScan {
    table: String,
    data: Arc<TableData>,
    index: usize,
    column: String,
    types: Vec<DataType>,
    ranges: Vec<KeyRange>,
    range: usize,
    cursor: Option<Cursor>,
}

impl IndexScan {
    /// Scans index `index` of `data` (a snapshot of `table`, whose columns
    /// have `types`) over `ranges`, which must not overlap (each row comes
    /// out once per range that holds it); `column` names the first key
    /// part for EXPLAIN.
    pub fn new(
        table: String,
        data: Arc<TableData>,
        index: usize,
        column: String,
        types: Vec<DataType>,
        ranges: Vec<KeyRange>,
    ) -> Self {
        IndexScan {
            table,
            data,
            index,
            column,
            types,
            ranges,
            range: 0,
            cursor: None,
        }
    }

    /// The next row ids, at most [`BATCH_ROWS`].
    fn next_ids(&mut self) -> Vec<RowId> {
        let mut ids = Vec::new();
        let Some(ix) = self.data.indexes.get(self.index) else {
            return ids;
        };
        let chunks = &self.data.chunks;
        while ids.len() < BATCH_ROWS && self.range < self.ranges.len() {
            let r = &self.ranges[self.range];
            let cur = match self.cursor {
                Some(c) => c,
                None => {
                    let from = r.seek_from();
                    ix.seek(chunks, bound_ref(&from))
                }
            };
            let until = r.until();
            match ix.get(cur) {
                Some(id) if !ix.past(chunks, id, bound_ref(&until)) => {
                    ids.push(id);
                    self.cursor = Some(ix.next(cur));
                }
                _ => {
                    self.range += 1;
                    self.cursor = None;
                }
            }
        }
        ids
    }

    /// The rows `ids` as a batch of the table's columns.
    fn gather(&self, ids: &[RowId]) -> Batch {
        let chunks = &self.data.chunks;
        if let Some(first) = ids.first() {
            if ids.iter().all(|r| r.chunk == first.chunk) {
                let rows: Vec<u32> = ids.iter().map(|r| r.row).collect();
                return chunks[first.chunk as usize].gather(&rows);
            }
        }
        let columns = self
            .types
            .iter()
            .enumerate()
            .map(|(c, ty)| {
                let vals: Vec<Value> = ids
                    .iter()
                    .map(|r| chunks[r.chunk as usize].columns[c].value(r.row as usize))
                    .collect();
                Arc::new(Column::from_values(*ty, &vals))
            })
            .collect();
        Batch::new(columns, ids.len())
    }
}

fn bound_ref(b: &Bound<Vec<Value>>) -> Bound<&[Value]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Operator for IndexScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let ids = self.next_ids();
        if ids.is_empty() {
            return Ok(Step::Done);
        }
        cx.progress.fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(Step::Batch(self.gather(&ids)))
    }
    fn describe(&self) -> String {
        let name = self
            .data
            .indexes
            .get(self.index)
            .map_or("?", |ix| ix.def.name.as_str());
        let ranges = self
            .ranges
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        format!(
            "IndexScan {} using {name} ({} {ranges}) ({} rows)",
            self.table,
            self.column,
            self.data.rows()
        )
    }
    fn name(&self) -> &'static str {
        "IndexScan"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}
