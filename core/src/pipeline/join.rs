//! Hash join (inner and left outer) on equality keys, with an optional
//! residual condition; a join without keys is a nested loop over the
//! buffered right side.
//!
//! The right (build) side is consumed a batch per step into a chained hash
//! table; then the left (probe) side streams through, producing at most
//! about [`OUT_ROWS`] rows per step, so a many-to-many join also yields.
//!
//! Memory: the build side reserves its batches (and key columns that are
//! not shared with them) as they come, the concatenated columns before they
//! are made (giving the batches' share back after), and the hash table and
//! chain, at their final size, before indexing.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use super::buffer::Buffered;
use super::memory::{
    buffered_batch_bytes, hash_capacity_after, hash_table_bytes, vec_bytes, MemoryUse,
};
use super::{Instrumented, OpCx, Operator, Step};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::expr::ExecError;
use crate::expr::Expr;

/// Output rows per step, roughly.
pub const OUT_ROWS: usize = 8192;
/// Probe rows per step (bounded work between two context checks).
const PROBE_ROWS: usize = 2048;
/// Build rows indexed per step (each may touch a new page of the table).
const INDEX_ROWS: usize = 2048;
const NONE: u32 = u32::MAX;

/// Join type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`
    Inner,
    /// `LEFT [OUTER] JOIN`
    Left,
}

enum Table {
    All,
    Int(FxHashMap<i64, u32>),
    Generic(FxHashMap<Vec<Value>, u32>),
}

/// Indexes rows `rows` of a build batch with key columns `keys`; the first
/// of them is build row `first`. Each row becomes the head of its key's
/// chain (so matches come newest first).
fn insert(
    table: &mut Table,
    chain: &mut Vec<u32>,
    keys: &[Arc<Column>],
    rows: std::ops::Range<usize>,
    first: u32,
) {
    let start = rows.start;
    for i in rows {
        let row = first + (i - start) as u32;
        let head = match table {
            Table::All => {
                chain.push(NONE);
                continue;
            }
            Table::Int(m) => {
                let k = &keys[0];
                if k.is_null(i) {
                    chain.push(NONE);
                    continue;
                }
                let key = match &k.data {
                    ColumnData::Int(v) => v[i],
                    _ => k.value(i).as_i64().unwrap_or(0),
                };
                m.insert(key, row)
            }
            Table::Generic(m) => {
                let key: Vec<Value> = keys.iter().map(|c| c.value(i)).collect();
                if key.iter().any(Value::is_null) {
                    chain.push(NONE);
                    continue;
                }
                m.insert(key, row)
            }
        };
        chain.push(head.unwrap_or(NONE));
    }
}

/// The join. Output: left columns, then right columns.
pub struct HashJoin {
    left: Box<Instrumented>,
    right: Box<Instrumented>,
    left_keys: Vec<Expr>,
    right_keys: Vec<Expr>,
    residual: Option<Expr>,
    kind: JoinKind,
    right_types: Vec<DataType>,
    build: Vec<Column>,
    /// The build side as it came, concatenated into `build` once complete.
    build_buf: Buffered,
    /// The build side's key columns, per batch (with its length), kept
    /// until they are indexed.
    build_keys: Vec<(usize, Vec<Arc<Column>>)>,
    /// Where indexing is: batch of `build_keys`, row in it.
    key_cursor: (usize, usize),
    build_rows: usize,
    table: Table,
    chain: Vec<u32>,
    build_done: bool,
    /// Build rows indexed so far: the hash table is filled after the build
    /// side is complete (sized once, never rehashed), a bounded number of
    /// rows per step.
    indexed: usize,
    current: Option<(Batch, Vec<Arc<Column>>)>,
    cursor: usize,
    /// The memory of the build side.
    mem: MemoryUse,
    /// Bytes of the buffered build batches (not their strings, which the
    /// concatenated columns share), given back once concatenated.
    buffered_bytes: u64,
    text: String,
    /// The left and right columns the output has (all when `None`).
    emit: Option<(Vec<usize>, Vec<usize>)>,
}

impl HashJoin {
    /// Outputs only left columns `left` and right columns `right` (in
    /// that order), so that columns nothing above reads are not gathered.
    /// The residual condition is over this output.
    pub fn emitting(mut self, left: Vec<usize>, right: Vec<usize>) -> Self {
        self.emit = Some((left, right));
        self
    }

    /// Joins `left` to `right` on `left_keys[i] = right_keys[i]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        left: Instrumented,
        right: Instrumented,
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        int_keys: bool,
        residual: Option<Expr>,
        kind: JoinKind,
        right_types: Vec<DataType>,
        text: String,
    ) -> Self {
        let table = if left_keys.is_empty() {
            Table::All
        } else if int_keys {
            Table::Int(FxHashMap::default())
        } else {
            Table::Generic(FxHashMap::default())
        };
        HashJoin {
            left: Box::new(left),
            right: Box::new(right),
            left_keys,
            right_keys,
            residual,
            kind,
            right_types,
            build: Vec::new(),
            build_buf: Buffered::default(),
            build_keys: Vec::new(),
            key_cursor: (0, 0),
            build_rows: 0,
            table,
            chain: Vec::new(),
            build_done: false,
            indexed: 0,
            current: None,
            cursor: 0,
            mem: MemoryUse::default(),
            buffered_bytes: 0,
            text,
            emit: None,
        }
    }

    fn eval_keys(
        keys: &[Expr],
        b: &Batch,
        cx: &mut OpCx<'_>,
    ) -> Result<Vec<Arc<Column>>, ExecError> {
        keys.iter()
            .map(|k| Ok(k.eval(b, cx.eval)?.into_column(b.len)))
            .collect()
    }

    /// Buffers a build batch and its keys.
    fn collect(&mut self, b: &Batch, keys: Vec<Arc<Column>>) {
        self.build_buf.push(b.columns.clone(), b.len);
        self.build_keys.push((b.len, keys));
        self.build_rows += b.len;
    }

    /// The bytes of the hash table and chain for the whole build side.
    fn index_bytes(&self) -> u64 {
        let n = self.build_rows;
        let table = match &self.table {
            Table::All => 0,
            Table::Int(_) => hash_table_bytes::<(i64, u32)>(hash_capacity_after(0, 0, n)),
            Table::Generic(_) => {
                hash_table_bytes::<(Vec<Value>, u32)>(hash_capacity_after(0, 0, n))
                    + n as u64 * vec_bytes::<Value>(self.right_keys.len())
            }
        };
        table + vec_bytes::<u32>(n)
    }

    /// Indexes up to [`INDEX_ROWS`] more build rows; true when all are.
    fn index_some(&mut self) -> bool {
        if self.indexed == 0 {
            self.chain.reserve_exact(self.build_rows);
            match &mut self.table {
                Table::All => {}
                Table::Int(m) => m.reserve(self.build_rows),
                Table::Generic(m) => m.reserve(self.build_rows),
            }
        }
        let mut budget = INDEX_ROWS;
        while budget > 0 {
            let (batch, off) = self.key_cursor;
            let Some((len, keys)) = self.build_keys.get(batch) else {
                break;
            };
            let take = (len - off).min(budget);
            insert(
                &mut self.table,
                &mut self.chain,
                keys,
                off..off + take,
                self.indexed as u32,
            );
            self.indexed += take;
            budget -= take;
            self.key_cursor = if off + take == *len {
                (batch + 1, 0)
            } else {
                (batch, off + take)
            };
        }
        if self.indexed >= self.build_rows {
            self.build_keys = Vec::new();
            return true;
        }
        false
    }

    fn first_match(&self, keys: &[Arc<Column>], i: usize) -> u32 {
        match &self.table {
            Table::All => {
                if self.build_rows == 0 {
                    NONE
                } else {
                    (self.build_rows - 1) as u32
                }
            }
            Table::Int(m) => {
                let k = &keys[0];
                if k.is_null(i) {
                    return NONE;
                }
                let key = match &k.data {
                    ColumnData::Int(v) => v[i],
                    ColumnData::Float(v) if v[i].fract() != 0.0 => return NONE,
                    _ => k.value(i).as_i64().unwrap_or(0),
                };
                m.get(&key).copied().unwrap_or(NONE)
            }
            Table::Generic(m) => {
                let key: Vec<Value> = keys.iter().map(|c| c.value(i)).collect();
                if key.iter().any(Value::is_null) {
                    return NONE;
                }
                m.get(&key).copied().unwrap_or(NONE)
            }
        }
    }

    fn next_match(&self, row: u32) -> u32 {
        match self.table {
            Table::All => row.checked_sub(1).unwrap_or(NONE),
            _ => self.chain[row as usize],
        }
    }

    fn joined(&self, left: &Batch, li: &[u32], ri: &[u32]) -> Batch {
        let (lsel, rsel): (Vec<usize>, Vec<usize>) = match &self.emit {
            Some((l, r)) => (l.clone(), r.clone()),
            None => (
                (0..left.columns.len()).collect(),
                (0..self.right_types.len()).collect(),
            ),
        };
        let mut cols: Vec<Arc<Column>> = lsel
            .iter()
            .filter_map(|&k| left.columns.get(k))
            .map(|c| Arc::new(c.gather(li)))
            .collect();
        let any_none = ri.contains(&NONE);
        for k in rsel {
            let Some(ty) = self.right_types.get(k) else {
                continue;
            };
            let col = match self.build.get(k) {
                Some(c) if !any_none => c.gather(ri),
                Some(c) => {
                    let vals: Vec<Value> = ri
                        .iter()
                        .map(|&r| {
                            if r == NONE {
                                Value::Null
                            } else {
                                c.value(r as usize)
                            }
                        })
                        .collect();
                    Column::from_values(c.data_type(), &vals)
                }
                None => Column::from_values(*ty, &vec![Value::Null; ri.len()]),
            };
            cols.push(Arc::new(col));
        }
        Batch::new(cols, li.len())
    }
}

impl Drop for HashJoin {
    fn drop(&mut self) {
        let bytes = self.mem.bytes() as usize;
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.build),
                std::mem::take(&mut self.build_buf),
                std::mem::take(&mut self.build_keys),
                std::mem::replace(&mut self.table, Table::All),
                std::mem::take(&mut self.chain),
            ),
            bytes,
        );
    }
}

impl Operator for HashJoin {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if !self.build_done {
            return match self.right.next(cx)? {
                Step::Batch(b) => {
                    let keys = Self::eval_keys(&self.right_keys, &b, cx)?;
                    let (reserve, buffered) = buffered_batch_bytes(&b, &keys);
                    self.mem.grow(cx.resources, reserve)?;
                    self.buffered_bytes += buffered;
                    self.collect(&b, keys);
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.build_done = true;
                    Ok(Step::Pending)
                }
                other => Ok(other),
            };
        }
        if self.build_buf.rows() > 0 || !self.build_keys.is_empty() {
            // Complete the build side a bounded amount per step: first its
            // columns, then the hash table.
            if self.build.is_empty() {
                if self.build_buf.is_fresh() {
                    self.mem
                        .grow(cx.resources, self.build_buf.concat_bytes() as u64)?;
                }
                if !self.build_buf.concat_some() {
                    return Ok(Step::Pending);
                }
                self.build = self.build_buf.take_columns();
                self.build_buf = Buffered::default();
                // The batches are freed; their strings live on in `build`.
                self.mem.shrink(std::mem::take(&mut self.buffered_bytes));
            }
            if self.indexed < self.build_rows {
                if self.indexed == 0 {
                    self.mem.grow(cx.resources, self.index_bytes())?;
                }
                if !self.index_some() {
                    return Ok(Step::Pending);
                }
            }
        }
        if self.current.is_none() {
            match self.left.next(cx)? {
                Step::Batch(b) => {
                    let keys = Self::eval_keys(&self.left_keys, &b, cx)?;
                    self.current = Some((b, keys));
                    self.cursor = 0;
                }
                other => return Ok(other),
            }
        }
        let Some((left, keys)) = self.current.as_ref() else {
            return Ok(Step::Pending);
        };
        let mut i = self.cursor;
        let stop = (self.cursor + PROBE_ROWS).min(left.len);
        let mut li = Vec::with_capacity(stop - i);
        let mut ri = Vec::with_capacity(stop - i);
        let mut starts = Vec::new();
        match (&self.table, keys.first().map(|k| (&k.data, &k.nulls))) {
            // An inner join on one integer key without NULLs in this batch
            // (the common case: a foreign key): the loop without the
            // per-row dispatch of `first_match`, and without `starts`,
            // which only a left join reads.
            (Table::Int(m), Some((ColumnData::Int(v), None))) if self.kind == JoinKind::Inner => {
                while i < stop && li.len() < OUT_ROWS {
                    let mut r = m.get(&v[i]).copied().unwrap_or(NONE);
                    while r != NONE {
                        li.push(i as u32);
                        ri.push(r);
                        r = self.chain[r as usize];
                    }
                    i += 1;
                }
            }
            _ => {
                while i < stop && li.len() < OUT_ROWS {
                    starts.push((i, li.len()));
                    let mut r = self.first_match(keys, i);
                    while r != NONE {
                        li.push(i as u32);
                        ri.push(r);
                        r = self.next_match(r);
                    }
                    i += 1;
                }
            }
        }
        self.cursor = i;
        let left = left.clone();
        if self.cursor >= left.len {
            self.current = None;
        }
        let mut out = self.joined(&left, &li, &ri);
        let mut keep: Option<Vec<bool>> = None;
        if let Some(pred) = &self.residual {
            let d = pred.eval(&out, cx.eval)?.into_column(out.len);
            let k: Vec<bool> = (0..out.len)
                .map(|x| d.value(x).truthy() == Some(true))
                .collect();
            keep = Some(k);
        }
        if self.kind == JoinKind::Left {
            // Left rows with no surviving match get one NULL-extended row.
            let mut has = vec![false; starts.len()];
            for (s, (_, from)) in starts.iter().enumerate() {
                let to = starts.get(s + 1).map_or(li.len(), |x| x.1);
                has[s] = (*from..to).any(|x| keep.as_ref().is_none_or(|k| k[x]));
            }
            let extra: Vec<u32> = starts
                .iter()
                .zip(&has)
                .filter(|(_, h)| !**h)
                .map(|((row, _), _)| *row as u32)
                .collect();
            if !extra.is_empty() {
                let nulls = vec![NONE; extra.len()];
                let ext = self.joined(&left, &extra, &nulls);
                let mut sel: Vec<u32> = match &keep {
                    Some(k) => (0..out.len as u32).filter(|x| k[*x as usize]).collect(),
                    None => (0..out.len as u32).collect(),
                };
                let base = out.len as u32;
                let mut cols: Vec<Column> = out.columns.iter().map(|c| (**c).clone()).collect();
                for (c, e) in cols.iter_mut().zip(&ext.columns) {
                    c.append(e);
                }
                sel.extend(base..base + ext.len as u32);
                let n = out.len + ext.len;
                out = Batch::new(cols.into_iter().map(Arc::new).collect(), n).gather(&sel);
                keep = None;
            }
        }
        if let Some(k) = keep {
            let sel: Vec<u32> = (0..out.len as u32).filter(|x| k[*x as usize]).collect();
            out = out.gather(&sel);
        }
        Ok(if out.len == 0 {
            Step::Pending
        } else {
            Step::Batch(out)
        })
    }
    fn describe(&self) -> String {
        let kind = match self.kind {
            JoinKind::Inner => "Inner",
            JoinKind::Left => "Left",
        };
        if matches!(self.table, Table::All) {
            format!("NestedLoopJoin {kind} {}", self.text)
        } else {
            format!("HashJoin {kind} on {}", self.text)
        }
    }
    fn name(&self) -> &'static str {
        if matches!(self.table, Table::All) {
            "NestedLoopJoin"
        } else {
            "HashJoin"
        }
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.left, &self.right]
    }
}
