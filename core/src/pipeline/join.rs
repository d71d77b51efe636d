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
//! chain (and the key filter), at their final size, before indexing.
//!
//! **Key filters** (sideways information passing, as DuckDB's and
//! DataFusion's dynamic join filters): an inner join on one integer key
//! records which keys its build side holds in a [`KeyFilter`] (a bitmap
//! over `min..=max` when that range is small, else min/max and a hashed
//! bitset). The join drops probe rows the filter rejects before looking
//! them up, and publishes the filter in a [`FilterSlot`]; a join further
//! down the probe side (given the slot with [`HashJoin::filtering_probe`])
//! drops the rows of its own probe input that the join above would reject
//! anyway, before it gathers anything. In a star join every dimension's
//! filter is thus applied to the fact table's batches as they are read, and
//! only rows that survive all of them are joined.
//!
//! **Shared builds** (parallel stages, `pipeline::parallel`): the build
//! side, once complete and indexed, is a read-only [`Built`] behind an
//! `Arc`. A join made with [`HashJoin::building_shared`] only builds and
//! publishes it in a [`SharedBuild`] slot (its memory stays reserved by
//! that join); the joins of the stage's N pipelines, made with
//! [`HashJoin::probing_shared`], probe it, each over its own morsels.

use rustc_hash::FxHashMap;
use std::sync::{Arc, OnceLock};

use super::buffer::Buffered;
use super::memory::{
    buffered_batch_bytes, hash_capacity_after, hash_table_bytes, vec_bytes, MemoryUse,
};
use super::{Instrumented, OpCx, Operator, Step, StepClock};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::expr::ExecError;
use crate::expr::Expr;

/// Output rows per step, roughly.
pub const OUT_ROWS: usize = 8192;
/// Probe rows looked up per step (bounded work between two context checks).
/// 2048 lookups in a 300,000-row build take 115–145 µs on the reference VM;
/// 1024 made Q4 (three probes a row) 35 % slower: the per-step costs (the
/// output batch, and the operators above) are paid twice as often.
const PROBE_ROWS: usize = 2048;
/// An inner join's probe step also ends once it has run this long (checked before each
/// window of filtered rows and every [`PROBE_CLOCK_ROWS`] lookups): a step
/// of the kill benchmark's join (most probe rows failing the key filter,
/// the rest looked up in a 300,000-row build) took 115–145 µs.
const PROBE_STEP_TIME: std::time::Duration = std::time::Duration::from_micros(50);
/// Lookups between two readings of the clock in a probe step.
const PROBE_CLOCK_ROWS: usize = 256;

/// Probe rows tested against the key filters per step, at most (a probe
/// batch may be a whole stored chunk; most rows may fail the filters).
const FILTER_ROWS: usize = 16 * PROBE_ROWS;
/// Build rows indexed per step (each may touch a new page of the table:
/// 2048 rows into a 300,000-row table took 115–170 µs, and a kill lands in
/// the build of a big join about as often as in its probe).
const INDEX_ROWS: usize = 512;
const NONE: u32 = u32::MAX;

/// Join type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`
    Inner,
    /// `LEFT [OUTER] JOIN`
    Left,
}

/// Which integer keys a build side holds. Never rejects a key the build
/// side has; exact (a bitmap over `min..=max`) when that range is at most
/// [`EXACT_BITS_PER_ROW`] bits per build row (plus 64 Ki bits), else it may
/// pass keys within `min..=max` the build side lacks (a hashed bitset of
/// 16 bits per build row, about 6 % false positives).
#[derive(Debug)]
pub struct KeyFilter {
    min: i64,
    max: i64,
    bits: Vec<u64>,
    /// `None`: exact (bit `k - min`); `Some(s)`: hashed (bit `h(k) >> s`).
    shift: Option<u32>,
}

/// Bits per build row up to which a key filter is an exact bitmap.
const EXACT_BITS_PER_ROW: u128 = 64;
/// Multiplier of the hashed filter (Fibonacci hashing).
const FILTER_HASH: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where a join publishes its [`KeyFilter`] once its build side is indexed,
/// for a join lower in its probe side to apply. Made fresh for each
/// execution of a plan (see `sql/plan/lower.rs`).
pub type FilterSlot = Arc<OnceLock<Arc<KeyFilter>>>;

impl KeyFilter {
    /// The shape of a filter for `rows` keys within `min..=max`: the number
    /// of 64-bit words and the hash shift (`None`: exact).
    fn shape(min: i64, max: i64, rows: usize) -> (usize, Option<u32>) {
        if rows == 0 || min > max {
            return (0, None);
        }
        let range = (max as i128 - min as i128 + 1) as u128;
        if range <= rows as u128 * EXACT_BITS_PER_ROW + 65_536 {
            return (range.div_ceil(64) as usize, None);
        }
        let bits = (rows.saturating_mul(16)).next_power_of_two().max(64);
        (bits / 64, Some(64 - bits.trailing_zeros()))
    }

    /// Heap bytes of the filter [`KeyFilter::empty_for`] makes.
    fn bytes(min: i64, max: i64, rows: usize) -> u64 {
        vec_bytes::<u64>(Self::shape(min, max, rows).0)
    }

    /// A filter with no key yet, for `rows` keys within `min..=max`.
    fn empty_for(min: i64, max: i64, rows: usize) -> Self {
        let (words, shift) = Self::shape(min, max, rows);
        if words == 0 {
            // Rejects everything (no `k` has `1 <= k <= 0`).
            return KeyFilter {
                min: 1,
                max: 0,
                bits: Vec::new(),
                shift: None,
            };
        }
        KeyFilter {
            min,
            max,
            bits: vec![0; words],
            shift,
        }
    }

    #[inline]
    fn bit(&self, k: i64) -> usize {
        match self.shift {
            None => k.wrapping_sub(self.min) as u64 as usize,
            Some(s) => ((k as u64).wrapping_mul(FILTER_HASH) >> s) as usize,
        }
    }

    fn insert(&mut self, k: i64) {
        let b = self.bit(k);
        if let Some(w) = self.bits.get_mut(b / 64) {
            *w |= 1 << (b % 64);
        }
    }

    /// Whether `k` may be a key of the build side (false: it is not).
    #[inline]
    pub fn may_contain(&self, k: i64) -> bool {
        if k < self.min || k > self.max {
            return false;
        }
        let b = self.bit(k);
        self.bits
            .get(b / 64)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// Narrows `sel` (rows `rows` when `None`) to the rows whose key may
    /// be in the build side and is not NULL.
    fn select(
        &self,
        v: &[i64],
        nulls: Option<&[bool]>,
        rows: std::ops::Range<usize>,
        sel: &mut Option<Vec<u32>>,
    ) {
        if self.min > self.max {
            *sel = Some(Vec::new());
            return;
        }
        // One unsigned compare for `min <= k <= max`, then the bit; the
        // two kinds of filter get loops of their own.
        let (min, span, bits) = (self.min, self.max.wrapping_sub(self.min) as u64, &self.bits);
        let bit = |b: u64| {
            bits.get((b >> 6) as usize)
                .is_some_and(|w| (w >> (b & 63)) & 1 != 0)
        };
        match self.shift {
            None => select_with(v, nulls, rows, sel, |k| {
                let off = k.wrapping_sub(min) as u64;
                off <= span && bit(off)
            }),
            Some(s) => select_with(v, nulls, rows, sel, |k| {
                k.wrapping_sub(min) as u64 <= span && bit((k as u64).wrapping_mul(FILTER_HASH) >> s)
            }),
        }
    }
}

/// [`KeyFilter::select`] with the test `pass`.
fn select_with(
    v: &[i64],
    nulls: Option<&[bool]>,
    rows: std::ops::Range<usize>,
    sel: &mut Option<Vec<u32>>,
    pass: impl Fn(i64) -> bool,
) {
    let null = |i: usize| nulls.is_some_and(|n| n.get(i).copied().unwrap_or(true));
    match sel {
        None => {
            let Some(keys) = v.get(rows.clone()) else {
                *sel = Some(Vec::new());
                return;
            };
            // Branch-free compaction: every row is written, the length
            // advances only for kept ones.
            let mut out = vec![0u32; keys.len()];
            let mut n = 0;
            if nulls.is_none() {
                for (i, &k) in rows.zip(keys) {
                    out[n] = i as u32;
                    n += pass(k) as usize;
                }
            } else {
                for (i, &k) in rows.zip(keys) {
                    out[n] = i as u32;
                    n += (pass(k) && !null(i)) as usize;
                }
            }
            out.truncate(n);
            *sel = Some(out);
        }
        Some(s) => {
            let mut n = 0;
            for x in 0..s.len() {
                let i = s[x] as usize;
                s[n] = i as u32;
                n += (v.get(i).is_some_and(|&k| pass(k)) && !null(i)) as usize;
            }
            s.truncate(n);
        }
    }
}

enum Table {
    All,
    Int(FxHashMap<i64, u32>),
    Generic(FxHashMap<Vec<Value>, u32>),
}

impl Table {
    /// An empty table of the same kind (no allocation).
    fn empty_like(&self) -> Table {
        match self {
            Table::All => Table::All,
            Table::Int(_) => Table::Int(FxHashMap::default()),
            Table::Generic(_) => Table::Generic(FxHashMap::default()),
        }
    }
}

/// A complete, indexed build side: its columns, hash table and chain, and
/// its key filter. Read-only once made, so that the probe pipelines of a
/// parallel stage share one (see [`SharedBuild`]).
pub struct Built {
    columns: Vec<Column>,
    table: Table,
    chain: Vec<u32>,
    rows: usize,
    filter: Option<Arc<KeyFilter>>,
}

/// Where a join that only builds ([`HashJoin::building_shared`]) puts its
/// build side once complete, for the probe-only joins
/// ([`HashJoin::probing_shared`]) of a parallel stage's pipelines.
pub type SharedBuild = Arc<OnceLock<Arc<Built>>>;

/// What part of the join this operator runs.
enum Mode {
    /// Build, then probe (the serial join).
    Full,
    /// Build and publish the build side in the slot, then end (the
    /// consumer of a parallel stage runs it before the pipelines start).
    BuildOnly(SharedBuild),
    /// Probe the build side published in the slot (one pipeline of a
    /// parallel stage, started after the slot is filled).
    ProbeOnly(SharedBuild),
}

/// Indexes rows `rows` of a build batch with key columns `keys`; the first
/// of them is build row `first`. Each row becomes the head of its key's
/// chain (so matches come newest first).
fn insert(
    table: &mut Table,
    chain: &mut Vec<u32>,
    mut filter: Option<&mut KeyFilter>,
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
                let key = int_key(k, i);
                if let Some(f) = filter.as_deref_mut() {
                    f.insert(key);
                }
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

/// Build key `i` of an integer key column (not NULL).
fn int_key(k: &Column, i: usize) -> i64 {
    match &k.data {
        ColumnData::Int(v) => v[i],
        _ => k.value(i).as_i64().unwrap_or(0),
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
    mode: Mode,
    /// The build side's columns, once concatenated (until indexed).
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
    /// The smallest and largest integer build key (not NULL) so far, for
    /// the key filter.
    key_range: Option<(i64, i64)>,
    /// The key filter being filled while indexing (inner joins on one
    /// integer key), then `own_filter`.
    filter: Option<KeyFilter>,
    /// The complete build side (own, or shared by a parallel stage's
    /// pipelines): the probe reads it.
    built: Option<Arc<Built>>,
    /// Where to publish `own_filter` for a join below in the probe side.
    publish: Option<FilterSlot>,
    /// Filters of joins above: probe input column, slot. Rows whose
    /// column the published filter rejects are dropped before the probe.
    probe_filters: Vec<(usize, FilterSlot)>,
    /// Build rows indexed so far: the hash table is filled after the build
    /// side is complete (sized once, never rehashed), a bounded number of
    /// rows per step.
    indexed: usize,
    /// The probe batch and its key columns.
    current: Option<(Batch, Vec<Arc<Column>>)>,
    /// The first row of `current` not yet in a window.
    cursor: usize,
    /// The rows of the current window (up to [`PROBE_ROWS`] rows of
    /// `current`) that the key filters pass, and how many are probed.
    window: Vec<u32>,
    window_pos: usize,
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

    /// Publishes this join's key filter in `slot` once its build side is
    /// indexed (inner joins on one integer key; otherwise nothing is
    /// published and the consumers pass every row).
    pub fn publishing_filter(mut self, slot: FilterSlot) -> Self {
        self.publish = Some(slot);
        self
    }

    /// Drops probe rows whose column `col` (of the probe input) a join above
    /// rejects: the filter published in each slot, once it is there. Only
    /// for filters of inner joins whose key is that column passed through
    /// unchanged (the planner's `sql/plan/lower.rs` checks).
    pub fn filtering_probe(mut self, filters: Vec<(usize, FilterSlot)>) -> Self {
        self.probe_filters = filters;
        self
    }

    /// Makes this the build half of a parallel stage's join: it builds
    /// (its probe input is not read), publishes the build side in `slot`
    /// and ends.
    pub fn building_shared(mut self, slot: SharedBuild) -> Self {
        self.mode = Mode::BuildOnly(slot);
        self
    }

    /// Makes this a probe half of a parallel stage's join: it probes the
    /// build side published in `slot` (its own build input is not read;
    /// the stage fills the slot before its pipelines start).
    pub fn probing_shared(mut self, slot: SharedBuild) -> Self {
        self.mode = Mode::ProbeOnly(slot);
        self
    }

    /// Whether this join builds a key filter.
    fn wants_filter(&self) -> bool {
        self.kind == JoinKind::Inner && matches!(self.table, Table::Int(_))
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
            mode: Mode::Full,
            build: Vec::new(),
            build_buf: Buffered::default(),
            build_keys: Vec::new(),
            key_cursor: (0, 0),
            build_rows: 0,
            table,
            chain: Vec::new(),
            build_done: false,
            key_range: None,
            filter: None,
            built: None,
            publish: None,
            probe_filters: Vec::new(),
            indexed: 0,
            current: None,
            cursor: 0,
            window: Vec::new(),
            window_pos: 0,
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
        if self.wants_filter() {
            if let Some(k) = keys.first() {
                let mut range = self.key_range;
                for i in 0..b.len {
                    if !k.is_null(i) {
                        let x = int_key(k, i);
                        range = Some(range.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
                    }
                }
                self.key_range = range;
            }
        }
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
        let filter = match (self.wants_filter(), self.key_range) {
            (true, Some((lo, hi))) => KeyFilter::bytes(lo, hi, n),
            _ => 0,
        };
        table + vec_bytes::<u32>(n) + filter
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
            if self.wants_filter() {
                if let Some((lo, hi)) = self.key_range {
                    self.filter = Some(KeyFilter::empty_for(lo, hi, self.build_rows));
                }
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
                self.filter.as_mut(),
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

    fn first_match(b: &Built, keys: &[Arc<Column>], i: usize) -> u32 {
        match &b.table {
            Table::All => {
                if b.rows == 0 {
                    NONE
                } else {
                    (b.rows - 1) as u32
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

    /// The rows `rows` of probe batch `b` (with key columns `keys`) that
    /// the key filters pass: this join's own (inner joins), then those
    /// published by joins above.
    fn probe_selection(
        &self,
        built: &Built,
        b: &Batch,
        keys: &[Arc<Column>],
        rows: std::ops::Range<usize>,
    ) -> Vec<u32> {
        let mut sel = None;
        if let (Some(f), Some(k)) = (&built.filter, keys.first()) {
            if let ColumnData::Int(v) = &k.data {
                f.select(v, k.nulls.as_deref(), rows.clone(), &mut sel);
            }
        }
        for (col, slot) in &self.probe_filters {
            if sel.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
            let (Some(f), Some(c)) = (slot.get(), b.columns.get(*col)) else {
                continue;
            };
            if let ColumnData::Int(v) = &c.data {
                f.select(v, c.nulls.as_deref(), rows.clone(), &mut sel);
            }
        }
        sel.unwrap_or_else(|| rows.map(|i| i as u32).collect())
    }

    fn next_match(b: &Built, row: u32) -> u32 {
        match b.table {
            Table::All => row.checked_sub(1).unwrap_or(NONE),
            _ => b.chain[row as usize],
        }
    }

    fn joined(&self, built: &Built, left: &Batch, li: &[u32], ri: &[u32]) -> Batch {
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
            let col = match built.columns.get(k) {
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
        // A parallel stage's build side is shared (the slot, and `built`)
        // and reserved by the join that built it: whichever join lets go
        // of it last frees it, and that may be a probing pipeline whose own
        // state is small. Shared builds go to the reclaim thread, so the
        // last one's unmapping (a table of millions of rows) is never on
        // a statement's path (64 µs for 300,000 rows, measured).
        let shared = self.built.is_some() || !matches!(self.mode, Mode::Full);
        let bytes = (self.mem.bytes() as usize).max(if shared {
            super::reclaim::IN_PLACE_BYTES
        } else {
            0
        });
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.build),
                std::mem::take(&mut self.build_buf),
                std::mem::take(&mut self.build_keys),
                std::mem::replace(&mut self.table, Table::All),
                std::mem::take(&mut self.chain),
                self.filter.take(),
                self.built.take(),
                std::mem::replace(&mut self.mode, Mode::Full),
            ),
            bytes,
        );
    }
}

impl Operator for HashJoin {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.built.is_none() {
            if let Mode::ProbeOnly(slot) = &self.mode {
                // The stage filled the slot before this pipeline started;
                // an empty slot (not reached) would read as an empty build
                // side.
                let b = slot
                    .get()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(self.empty_built()));
                self.built = Some(b);
            } else if let Some(step) = self.build_step(cx)? {
                return Ok(step);
            }
        }
        let Some(built) = self.built.clone() else {
            return Ok(Step::Pending);
        };
        if matches!(self.mode, Mode::BuildOnly(_)) {
            return Ok(Step::Done);
        }
        self.probe_step(&built, cx)
    }
    fn describe(&self) -> String {
        let kind = match self.kind {
            JoinKind::Inner => "Inner",
            JoinKind::Left => "Left",
        };
        let mut d = if matches!(self.table, Table::All) {
            format!("NestedLoopJoin {kind} {}", self.text)
        } else {
            format!("HashJoin {kind} on {}", self.text)
        };
        match &self.mode {
            Mode::Full => {}
            Mode::BuildOnly(_) => d.push_str(" (build, shared by the pipelines)"),
            Mode::ProbeOnly(_) => d.push_str(" (probe of the shared build)"),
        }
        if !self.probe_filters.is_empty() {
            let n = self.probe_filters.len();
            let s = if n == 1 { "" } else { "s" };
            d.push_str(&format!(
                ", probe filtered by the keys of {n} join{s} above"
            ));
        }
        d
    }
    fn name(&self) -> &'static str {
        if matches!(self.table, Table::All) {
            "NestedLoopJoin"
        } else {
            "HashJoin"
        }
    }
    fn children(&self) -> Vec<&Instrumented> {
        match self.mode {
            Mode::Full => vec![&self.left, &self.right],
            Mode::BuildOnly(_) => vec![&self.right],
            Mode::ProbeOnly(_) => vec![&self.left],
        }
    }
}

impl HashJoin {
    /// An empty build side of this join's kind.
    fn empty_built(&self) -> Built {
        Built {
            columns: Vec::new(),
            table: self.table.empty_like(),
            chain: Vec::new(),
            rows: 0,
            filter: self
                .wants_filter()
                .then(|| Arc::new(KeyFilter::empty_for(1, 0, 0))),
        }
    }

    /// One step of the build: `Some(step)` to return while it is not
    /// complete; once it is, `self.built` is set (and published).
    fn build_step(&mut self, cx: &mut OpCx<'_>) -> Result<Option<Step>, ExecError> {
        if !self.build_done {
            return match self.right.next(cx)? {
                Step::Batch(b) => {
                    let keys = Self::eval_keys(&self.right_keys, &b, cx)?;
                    let (reserve, buffered) = buffered_batch_bytes(&b, &keys);
                    self.mem.grow(cx.resources, reserve)?;
                    self.buffered_bytes += buffered;
                    self.collect(&b, keys);
                    Ok(Some(Step::Pending))
                }
                Step::Done => {
                    self.build_done = true;
                    Ok(Some(Step::Pending))
                }
                other => Ok(Some(other)),
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
                    return Ok(Some(Step::Pending));
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
                    return Ok(Some(Step::Pending));
                }
            }
        }
        // The build side is indexed (or empty): its filter is complete.
        let filter = self.wants_filter().then(|| {
            Arc::new(
                self.filter
                    .take()
                    .unwrap_or_else(|| KeyFilter::empty_for(1, 0, 0)),
            )
        });
        if let (Some(slot), Some(f)) = (&self.publish, &filter) {
            // A slot is filled once; a second value cannot differ.
            let _ = slot.set(f.clone());
        }
        let built = Arc::new(Built {
            columns: std::mem::take(&mut self.build),
            table: std::mem::replace(&mut self.table, Table::All),
            chain: std::mem::take(&mut self.chain),
            rows: self.build_rows,
            filter,
        });
        self.table = built.table.empty_like();
        if let Mode::BuildOnly(slot) = &self.mode {
            let _ = slot.set(built.clone());
        }
        self.built = Some(built);
        Ok(None)
    }

    /// One step of the probe over the complete build side `built`.
    fn probe_step(&mut self, built: &Built, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.current.is_none() {
            match self.left.next(cx)? {
                Step::Batch(b) => {
                    let keys = Self::eval_keys(&self.left_keys, &b, cx)?;
                    self.current = Some((b, keys));
                    self.cursor = 0;
                    self.window.clear();
                    self.window_pos = 0;
                }
                other => return Ok(other),
            }
        }
        let Some((left, keys)) = self.current.as_ref() else {
            return Ok(Step::Pending);
        };
        // An inner join on one integer key without NULLs in this batch (the
        // common case: a foreign key) probes without the per-row dispatch
        // of `first_match`, and without `starts`, which only a left join
        // reads.
        let fast = match (&built.table, keys.first()) {
            (Table::Int(m), Some(k)) if self.kind == JoinKind::Inner && k.nulls.is_none() => {
                match &k.data {
                    ColumnData::Int(v) => Some((m, v)),
                    _ => None,
                }
            }
            _ => None,
        };
        let mut li = Vec::with_capacity(PROBE_ROWS);
        let mut ri = Vec::with_capacity(PROBE_ROWS);
        let mut starts = Vec::new();
        let (mut tested, mut probed) = (0, 0);
        // Inner joins only: a left join's step emits its matches, then its
        // rows without one (NULL-extended), so where a step ends changes
        // the order of its output, and that order must not depend on
        // timing (a parallel plan gives the serial rows, row for row).
        let step = StepClock::start(
            cx.clock.as_ref().filter(|_| self.kind == JoinKind::Inner),
            PROBE_STEP_TIME,
        );
        loop {
            if self.window_pos >= self.window.len() {
                if self.cursor >= left.len || tested >= FILTER_ROWS {
                    break;
                }
                // Most rows may fail the key filters: a step of 16 windows
                // (32,768 rows tested) took 115–145 µs.
                if tested > 0 && step.over() {
                    break;
                }
                let end = (self.cursor + PROBE_ROWS).min(left.len);
                self.window = self.probe_selection(built, left, keys, self.cursor..end);
                self.window_pos = 0;
                tested += end - self.cursor;
                self.cursor = end;
                continue;
            }
            if probed >= PROBE_ROWS || li.len() >= OUT_ROWS {
                break;
            }
            if probed > 0 && probed % PROBE_CLOCK_ROWS == 0 && step.over() {
                break;
            }
            let i = self.window[self.window_pos] as usize;
            self.window_pos += 1;
            probed += 1;
            if let Some((m, v)) = fast {
                let mut r = v.get(i).and_then(|k| m.get(k)).copied().unwrap_or(NONE);
                while r != NONE {
                    li.push(i as u32);
                    ri.push(r);
                    r = built.chain[r as usize];
                }
            } else {
                starts.push((i, li.len()));
                let mut r = Self::first_match(built, keys, i);
                while r != NONE {
                    li.push(i as u32);
                    ri.push(r);
                    r = Self::next_match(built, r);
                }
            }
        }
        let done = self.window_pos >= self.window.len() && self.cursor >= left.len;
        let left = left.clone();
        if done {
            self.current = None;
        }
        if li.is_empty() && starts.is_empty() {
            return Ok(Step::Pending);
        }
        let mut out = self.joined(built, &left, &li, &ri);
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
                let ext = self.joined(built, &left, &extra, &nulls);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(keys: &[i64]) -> KeyFilter {
        let (lo, hi) = (keys.iter().min().copied(), keys.iter().max().copied());
        let mut f = KeyFilter::empty_for(lo.unwrap_or(1), hi.unwrap_or(0), keys.len());
        for &k in keys {
            f.insert(k);
        }
        f
    }

    #[test]
    fn an_exact_filter_passes_its_keys_and_nothing_else() {
        let keys: Vec<i64> = (0..500).map(|x| x * 3 - 700).collect();
        let f = filter(&keys);
        assert_eq!(f.shift, None, "a small range is a bitmap");
        for k in -1000..1000 {
            assert_eq!(f.may_contain(k), keys.contains(&k), "key {k}");
        }
        assert!(!f.may_contain(i64::MIN) && !f.may_contain(i64::MAX));
    }

    #[test]
    fn a_hashed_filter_never_rejects_a_key_and_rejects_most_others() {
        // Keys spread over the whole range: no bitmap.
        let keys: Vec<i64> = (0..1000)
            .map(|x: i64| x.wrapping_mul(0x5851_F42D_4C95_7F2D))
            .chain([i64::MIN, i64::MAX, 0, -1])
            .collect();
        let f = filter(&keys);
        assert!(f.shift.is_some(), "a sparse range is hashed");
        assert!(keys.iter().all(|&k| f.may_contain(k)));
        let passed = (0..100_000i64)
            .map(|x| x.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
            .filter(|&k| !keys.contains(&k) && f.may_contain(k))
            .count();
        assert!(passed < 15_000, "{passed} of 100000 other keys passed");
    }

    #[test]
    fn an_empty_build_side_rejects_everything() {
        let f = filter(&[]);
        assert!(![i64::MIN, -1, 0, 1, i64::MAX]
            .iter()
            .any(|&k| f.may_contain(k)));
    }

    #[test]
    fn select_agrees_with_may_contain_for_both_kinds_of_filter() {
        let dense: Vec<i64> = (0..300).map(|x| x * 7 % 1000 - 50).collect();
        let sparse: Vec<i64> = (0..300)
            .map(|x: i64| x.wrapping_mul(0x5851_F42D_4C95_7F2D))
            .collect();
        for keys in [dense, sparse] {
            let f = filter(&keys);
            let v: Vec<i64> = keys
                .iter()
                .flat_map(|&k| [k, k.wrapping_add(1), k.wrapping_sub(3)])
                .collect();
            let mut sel = None;
            f.select(&v, None, 0..v.len(), &mut sel);
            let want: Vec<u32> = (0..v.len() as u32)
                .filter(|&i| f.may_contain(v[i as usize]))
                .collect();
            assert_eq!(sel, Some(want));
        }
    }

    #[test]
    fn select_keeps_passing_rows_without_nulls_in_order() {
        let f = filter(&[2, 4, 6]);
        let v = [1, 2, 3, 4, 5, 6, 7, 4];
        let nulls = [false, false, false, true, false, false, false, false];
        let mut sel = None;
        f.select(&v, Some(&nulls), 1..8, &mut sel);
        assert_eq!(sel.as_deref(), Some(&[1, 5, 7][..]));
        // Narrowing an existing selection with a second filter.
        let g = filter(&[4, 5, 6]);
        g.select(&v, None, 0..8, &mut sel);
        assert_eq!(sel.as_deref(), Some(&[5, 7][..]));
        let mut all = None;
        f.select(&v, None, 0..8, &mut all);
        assert_eq!(all.as_deref(), Some(&[1, 3, 5, 7][..]));
    }
}
