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

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Step, BATCH_ROWS};
use crate::data::{Batch, Column, DataType, Value};
use crate::expr::ExecError;
use crate::index::{as_ref, Cursor, KeyRange, RowId};
use crate::storage::TableData;

/// Reads the rows of `ranges` of one index of a table version.
pub struct IndexScan {
    table: String,
    data: Arc<TableData>,
    index: usize,
    types: Vec<DataType>,
    ranges: Vec<KeyRange>,
    range: usize,
    cursor: Option<Cursor>,
}

impl IndexScan {
    /// Scans index `index` of `data` (a snapshot of `table`, whose columns
    /// have `types`) over `ranges`, which must not overlap (each row comes
    /// out once per range that holds it).
    pub fn new(
        table: String,
        data: Arc<TableData>,
        index: usize,
        types: Vec<DataType>,
        ranges: Vec<KeyRange>,
    ) -> Self {
        IndexScan {
            table,
            data,
            index,
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
                    ix.seek(chunks, as_ref(&from))
                }
            };
            let until = r.until();
            match ix.get(cur) {
                Some(id) if !ix.past(chunks, id, as_ref(&until)) => {
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
        let ranges = if ranges.is_empty() {
            "no range".to_owned()
        } else {
            ranges
        };
        format!(
            "IndexScan {} using {name} ({ranges}) ({} rows)",
            self.table,
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
