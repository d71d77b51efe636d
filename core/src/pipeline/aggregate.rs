//! Hash aggregation: `GROUP BY` with count / count(DISTINCT) / sum / avg /
//! min / max, and `DISTINCT`.
//!
//! Each step consumes one input batch: the group ids of its rows are found
//! first (a fast path for one integer key), then every aggregate updates its
//! column of states with a typed loop. Output is emitted a batch at a time.
//!
//! Memory: the groups' tables and the per-group state vectors are grown by
//! this operator itself, before a batch, to hold the batch's possible new
//! groups, after reserving their bytes from the budget (so a table never
//! doubles behind the budget's back); `count(DISTINCT …)` sets reserve a
//! set's grown table before the insert that grows it, and count the strings
//! they keep. See [`super::memory`].

use rustc_hash::FxHashMap;

use super::growth::{ChunkVec, GrowVec, StepMap, COPY_PER_STEP, MOVE_PER_STEP};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::memory::{vec_bytes, MemoryUse};
use super::{Instrumented, OpCx, Operator, Resources, Step, StepClock, BATCH_ROWS};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::decimal::Dec;
use crate::expr::ExecError;
use crate::expr::{Datum, EvalCx, Expr};

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)`
    CountStar,
    /// `count(x)`
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
}

/// One aggregate of a query.
#[derive(Clone, Debug, PartialEq)]
pub struct AggSpec {
    /// Function.
    pub func: AggFunc,
    /// Argument (none for `count(*)`).
    pub arg: Option<Expr>,
    /// `DISTINCT`.
    pub distinct: bool,
    /// Argument type.
    pub arg_type: DataType,
    /// Text for EXPLAIN.
    pub text: String,
}

impl AggSpec {
    /// The result type.
    pub fn output_type(&self) -> DataType {
        match self.func {
            AggFunc::CountStar | AggFunc::Count => DataType::Int,
            // Exact for integers and decimals, as MySQL: AVG of integers
            // is a DECIMAL with 4 decimals, of a DECIMAL its scale + 4.
            AggFunc::Avg => match self.arg_type {
                DataType::Int | DataType::Decimal | DataType::Null => DataType::Decimal,
                _ => DataType::Float,
            },
            AggFunc::Sum => match self.arg_type {
                DataType::Int | DataType::Null => DataType::Int,
                DataType::Decimal => DataType::Decimal,
                _ => DataType::Float,
            },
            AggFunc::Min | AggFunc::Max => self.arg_type,
        }
    }
}

/// An aggregate's per-group states, a vector per field, indexed by group
/// id; they grow over steps ([`GrowVec`]).
enum State {
    Count(GrowVec<i64>),
    SumInt(GrowVec<i128>, GrowVec<bool>),
    SumFloat(GrowVec<f64>, GrowVec<bool>),
    /// Exact sums of decimals (and integers, for AVG), with each group's
    /// [`DecSum`] state.
    SumDec(GrowVec<Dec>, GrowVec<DecSum>),
    Avg(GrowVec<f64>, GrowVec<i64>),
    /// AVG of integers or decimals: the exact sum and the count.
    AvgDec(GrowVec<Dec>, GrowVec<i64>, GrowVec<DecSum>),
    MinMax(GrowVec<Value>, bool),
    Distinct(GrowVec<DistinctSet>),
}

/// Rows consumed per step by an aggregate with `DISTINCT` sets, or with
/// more than [`SLICE_GROUPS`] groups.
const SLICE_ROWS: usize = 512;
/// Rows grouped (or group-table entries moved) between readings of a
/// step's clock.
const GROUP_CLOCK_ROWS: usize = 64;
/// Past this many groups, a batch is grouped a slice of [`SLICE_ROWS`]
/// rows per step: a row is then a random access into a table beyond the
/// caches (a batch of 4,096 new groups took ~400 µs).
const SLICE_GROUPS: usize = 1 << 16;
/// Such a step also ends once it has run this long (checked every
/// [`DISTINCT_CLOCK_ROWS`] values, or [`GROUP_CLOCK_ROWS`] rows), and so
/// does a step of the final aggregate's merge: a value is a random access
/// into a set that may be far beyond the caches, and 512 of them took
/// 100–160 µs of CPU in the kill benchmark's `count(DISTINCT x)` (256 rows
/// per step instead cost 15 % of its speed: the time bound only cuts the
/// slow steps).
const STEP_TIME: std::time::Duration = std::time::Duration::from_micros(50);
/// Values between two readings of the clock in such a step.
const DISTINCT_CLOCK_ROWS: usize = 128;
/// Values in a set past this many are split into [`PARTS`] tables (a
/// split moves them all at once: a few tens of µs).
const SPLIT_AT: usize = 4096;
/// Tables of a split [`DistinctSet`].
const PARTS: usize = 256;

/// The distinct values of one group: one hash table, split by hash into
/// [`PARTS`] tables once it holds [`SPLIT_AT`] values. Each grows a bounded
/// amount of work per step ([`StepMap`]), so a kill waits for a slice of a
/// rehash at most, not for a set of millions of values; and a part's
/// rehash stays within the caches (one big table's rehash of millions of
/// values made `count(DISTINCT …)` ~15 % slower).
#[derive(Default)]
pub(crate) struct DistinctSet {
    parts: Vec<StepMap<Value, ()>>,
    len: usize,
    /// Heap bytes of the values it keeps (strings).
    heap: u64,
}

/// The part of a split set that `v` belongs to: the top bits of its hash
/// mixed once more (a multiply by the golden ratio), so that they depend on
/// every bit of the hash (the hash of an integer, taken of its `f64` bits,
/// has runs of constant bits) and are not the bits the tables use.
#[inline]
fn part_of(v: &Value) -> usize {
    use std::hash::BuildHasher;
    let h = rustc_hash::FxBuildHasher.hash_one(v);
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % PARTS
}

impl DistinctSet {
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The values (once [`DistinctSet::settle`]d).
    fn iter(&self) -> impl Iterator<Item = &Value> {
        self.parts.iter().flat_map(|p| p.map().keys())
    }
    /// Heap bytes of the tables (not of the strings).
    fn table_bytes(&self) -> u64 {
        vec_bytes::<StepMap<Value, ()>>(self.parts.capacity())
            + self.parts.iter().map(StepMap::table_bytes).sum::<u64>()
    }

    /// Heap bytes of the tables and of the strings kept: what its owner
    /// accounts for it.
    fn bytes(&self) -> u64 {
        self.table_bytes() + self.heap
    }

    /// Takes the set apart for [`SetDrain`], its parts' list freed (its
    /// bytes added to `freed`).
    fn into_drain(self, freed: &mut u64) -> SetDrain {
        *freed += vec_bytes::<StepMap<Value, ()>>(self.parts.capacity());
        SetDrain {
            tables: self
                .parts
                .into_iter()
                .flat_map(StepMap::into_tables)
                .collect(),
            held: None,
        }
    }

    /// Adds `v` (not NULL), moving at most `budget` values of a growing
    /// table: the heap bytes it keeps (0 when held already), or `None` when
    /// its table is growing still (nothing added: add it again on a later
    /// step). The memory of a growing table is reserved before it grows.
    ///
    /// The hot loop of `count(DISTINCT …)`: keep `v` going straight into
    /// the table. Passing it on by value through a helper made the compiler
    /// copy it with a wide load over the narrow stores that had just built
    /// it; that load waits for the previous insert's stores, whose cache
    /// misses then no longer overlap: 1.7× slower.
    #[inline]
    fn insert_within(
        &mut self,
        v: Value,
        budget: &mut usize,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<Option<u64>, ExecError> {
        let i = self.part_for(&v, mem, res)?;
        let part = &mut self.parts[i];
        if !part.has_room(1) && !part.room(1, budget, mem, res)? {
            return Ok(None);
        }
        let bytes = v.heap_bytes() as u64;
        Ok(Some(if part.map_mut().insert(v, ()).is_none() {
            self.len += 1;
            self.heap += bytes;
            bytes
        } else {
            0
        }))
    }

    /// Whether `v` can be added now ([`DistinctSet::insert_within`] of it
    /// gives `Some`), moving at most `budget` values of its growing table.
    fn has_room_for(
        &mut self,
        v: &Value,
        budget: &mut usize,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        let i = self.part_for(v, mem, res)?;
        let part = &mut self.parts[i];
        Ok(part.has_room(1) || part.room(1, budget, mem, res)?)
    }

    /// The table `v` belongs to (the set's first table made, or the set
    /// split, when due).
    #[inline]
    fn part_for(
        &mut self,
        v: &Value,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<usize, ExecError> {
        if self.parts.is_empty() {
            mem.grow(res, vec_bytes::<StepMap<Value, ()>>(1))?;
            self.parts = vec![StepMap::default()];
        }
        if self.parts.len() == 1 && self.len >= SPLIT_AT && !self.parts[0].has_room(1) {
            self.split(mem, res)?;
        }
        Ok(if self.parts.len() == 1 { 0 } else { part_of(v) })
    }

    /// Ends any growth under way (at the end of the input: there is none
    /// then, as every row that needed it was added after it).
    fn settle(&mut self, mem: &mut MemoryUse, res: &Arc<Resources>) -> Result<(), ExecError> {
        for p in &mut self.parts {
            p.room_now(0, mem, res)?;
        }
        Ok(())
    }

    /// Splits the one table into [`PARTS`], reserving them first.
    #[cold]
    fn split(&mut self, mem: &mut MemoryUse, res: &Arc<Resources>) -> Result<(), ExecError> {
        let per_part = 2 * self.len / PARTS;
        mem.grow(res, vec_bytes::<StepMap<Value, ()>>(PARTS))?;
        let mut parts: Vec<StepMap<Value, ()>> = Vec::with_capacity(PARTS);
        for _ in 0..PARTS {
            let mut p = StepMap::default();
            p.room_now(per_part, mem, res)?;
            parts.push(p);
        }
        let mut old = std::mem::replace(&mut self.parts, parts);
        let freed = vec_bytes::<StepMap<Value, ()>>(old.capacity())
            + old.iter().map(StepMap::table_bytes).sum::<u64>();
        for part in &mut old {
            let (map, moving) = part.take();
            for (v, ()) in map.into_iter().chain(moving.into_iter().flatten()) {
                // Room for twice the share of each part was made above; a
                // part given more grows at once (rare, and small).
                let p = &mut self.parts[part_of(&v)];
                if !p.has_room(1) {
                    p.room_now(1, mem, res)?;
                }
                p.map_mut().insert(v, ());
            }
        }
        mem.shrink(freed);
        Ok(())
    }
}

/// A set taken apart a value at a time: a partial aggregate's set merged
/// into the final one over several steps. Its tables go to the reclaim
/// thread as they empty.
pub(crate) struct SetDrain {
    tables: Vec<(std::collections::hash_map::IntoIter<Value, ()>, u64)>,
    /// A value taken out but not added yet (its table was growing).
    held: Option<Value>,
}

impl SetDrain {
    /// The next value; `freed` grows by the heap bytes of a value taken out
    /// and by the bytes of each table emptied (the set's owner no longer
    /// holds them).
    fn next(&mut self, freed: &mut u64) -> Option<Value> {
        if let Some(v) = self.held.take() {
            return Some(v);
        }
        loop {
            let (table, _) = self.tables.last_mut()?;
            if let Some((v, ())) = table.next() {
                *freed += v.heap_bytes() as u64;
                return Some(v);
            }
            if let Some((table, bytes)) = self.tables.pop() {
                *freed += bytes;
                super::reclaim::dispose(table, bytes as usize);
            }
        }
    }
}

/// Where the final aggregate of a parallel stage is in merging a slice of
/// a partial aggregate's groups ([`HashAggregate::merge_from`]): their
/// `DISTINCT` sets, a bounded number of values per step.
struct SetMerge {
    /// The slice's groups here, and its first group there.
    gids: Vec<u32>,
    from: usize,
    /// The aggregate and the group (an index into `gids`) being merged.
    state: usize,
    group: usize,
    /// The partial set of that group being added to this one's.
    drain: Option<SetDrain>,
}

/// Values of partial `DISTINCT` sets a merge step adds at most (it also
/// ends after [`STEP_TIME`] on the statement's clock).
const MERGE_VALUES: usize = 4096;

/// A group's exact sum: nothing added yet, a sum, or past the 28 digits a
/// DECIMAL holds here (error 1690 when the group is finished).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DecSum {
    #[default]
    Empty,
    Sum,
    Overflow,
}

/// Adds a partial exact sum (`x` in state `xs`) to a group's.
fn merge_dec(sum: &mut Dec, state: &mut DecSum, x: Dec, xs: DecSum) {
    match xs {
        DecSum::Empty => {}
        DecSum::Sum => add_dec(sum, state, Some(x)),
        DecSum::Overflow => *state = DecSum::Overflow,
    }
}

/// Adds `x` to a group's exact sum.
fn add_dec(sum: &mut Dec, state: &mut DecSum, x: Option<Dec>) {
    match (x, *state) {
        (_, DecSum::Overflow) => {}
        (None, _) => *state = DecSum::Overflow,
        (Some(x), DecSum::Empty) => {
            *sum = x;
            *state = DecSum::Sum;
        }
        (Some(x), DecSum::Sum) => match sum.checked_add(x) {
            Some(s) => *sum = s,
            None => *state = DecSum::Overflow,
        },
    }
}

impl State {
    fn new(spec: &AggSpec) -> State {
        if spec.distinct {
            return State::Distinct(GrowVec::default());
        }
        match spec.func {
            AggFunc::CountStar | AggFunc::Count => State::Count(GrowVec::default()),
            AggFunc::Sum if matches!(spec.arg_type, DataType::Int | DataType::Null) => {
                State::SumInt(GrowVec::default(), GrowVec::default())
            }
            AggFunc::Sum if spec.arg_type == DataType::Decimal => {
                State::SumDec(GrowVec::default(), GrowVec::default())
            }
            AggFunc::Sum => State::SumFloat(GrowVec::default(), GrowVec::default()),
            AggFunc::Avg if spec.output_type() == DataType::Decimal => {
                State::AvgDec(GrowVec::default(), GrowVec::default(), GrowVec::default())
            }
            AggFunc::Avg => State::Avg(GrowVec::default(), GrowVec::default()),
            AggFunc::Min => State::MinMax(GrowVec::default(), true),
            AggFunc::Max => State::MinMax(GrowVec::default(), false),
        }
    }

    /// Heap bytes of the per-group vectors (not of what they point to).
    fn vec_bytes(&self) -> u64 {
        match self {
            State::Count(c) => c.bytes(),
            State::SumInt(s, seen) => s.bytes() + seen.bytes(),
            State::SumFloat(s, seen) => s.bytes() + seen.bytes(),
            State::Avg(s, c) => s.bytes() + c.bytes(),
            State::SumDec(s, st) => s.bytes() + st.bytes(),
            State::AvgDec(s, c, st) => s.bytes() + c.bytes() + st.bytes(),
            State::MinMax(v, _) => v.bytes(),
            State::Distinct(v) => v.bytes(),
        }
    }

    /// The bytes [`State::room`] of `n` would allocate.
    fn growth_bytes(&self, n: usize) -> u64 {
        match self {
            State::Count(c) => c.growth_bytes(n),
            State::SumInt(s, seen) => s.growth_bytes(n) + seen.growth_bytes(n),
            State::SumFloat(s, seen) => s.growth_bytes(n) + seen.growth_bytes(n),
            State::Avg(s, c) => s.growth_bytes(n) + c.growth_bytes(n),
            State::SumDec(s, st) => s.growth_bytes(n) + st.growth_bytes(n),
            State::AvgDec(s, c, st) => s.growth_bytes(n) + c.growth_bytes(n) + st.growth_bytes(n),
            State::MinMax(v, _) => v.growth_bytes(n),
            State::Distinct(v) => v.growth_bytes(n),
        }
    }

    /// Makes room for `n` more groups, so that [`State::resize`] does not
    /// reallocate: false while a vector grows still (at most `budget`
    /// bytes moved; see [`GrowVec::room`]).
    fn room(&mut self, n: usize, budget: &mut usize) -> bool {
        match self {
            State::Count(c) => c.room(n, budget),
            State::SumInt(s, seen) => s.room(n, budget) && seen.room(n, budget),
            State::SumFloat(s, seen) => s.room(n, budget) && seen.room(n, budget),
            State::Avg(s, c) => s.room(n, budget) && c.room(n, budget),
            State::SumDec(s, st) => s.room(n, budget) && st.room(n, budget),
            State::AvgDec(s, c, st) => s.room(n, budget) && c.room(n, budget) && st.room(n, budget),
            State::MinMax(v, _) => v.room(n, budget),
            State::Distinct(v) => v.room(n, budget),
        }
    }

    fn resize(&mut self, n: usize) {
        match self {
            State::Count(c) => c.resize(n, 0),
            State::SumInt(s, seen) => {
                s.resize(n, 0);
                seen.resize(n, false)
            }
            State::SumFloat(s, seen) => {
                s.resize(n, 0.0);
                seen.resize(n, false)
            }
            State::Avg(s, c) => {
                s.resize(n, 0.0);
                c.resize(n, 0)
            }
            State::SumDec(s, st) => {
                s.resize(n, Dec::default());
                st.resize(n, DecSum::Empty)
            }
            State::AvgDec(s, c, st) => {
                s.resize(n, Dec::default());
                c.resize(n, 0);
                st.resize(n, DecSum::Empty)
            }
            State::MinMax(v, _) => v.resize(n, Value::Null),
            State::Distinct(v) => v.resize_with(n, DistinctSet::default),
        }
    }

    /// Updates with `arg` for rows whose groups are `gids` (`None`: all in
    /// group 0).
    fn update(&mut self, gids: Option<&[u32]>, arg: Option<&Datum>, len: usize) {
        let g = |i: usize| gids.map_or(0, |g| g[i] as usize);
        match (self, arg) {
            (State::Count(c), None) => match gids {
                None => c[0] += len as i64,
                Some(gs) => gs.iter().for_each(|&x| c[x as usize] += 1),
            },
            (State::Count(c), Some(Datum::Col(col))) => {
                for i in 0..len {
                    if !col.is_null(i) {
                        c[g(i)] += 1;
                    }
                }
            }
            (State::Count(c), Some(Datum::Scalar(v))) if !v.is_null() => {
                for i in 0..len {
                    c[g(i)] += 1;
                }
            }
            (State::Count(_), Some(Datum::Scalar(_))) => {}
            (State::SumInt(s, seen), Some(Datum::Col(col))) => {
                match (&col.data, &col.nulls, gids) {
                    (ColumnData::Int(v), None, None) => {
                        if !v.is_empty() {
                            s[0] += v.iter().map(|x| *x as i128).sum::<i128>();
                            seen[0] = true;
                        }
                    }
                    (ColumnData::Int(v), None, Some(gs)) => {
                        for (x, gi) in v.iter().zip(gs) {
                            s[*gi as usize] += *x as i128;
                            seen[*gi as usize] = true;
                        }
                    }
                    _ => {
                        for i in 0..len {
                            if let Some(x) = col.value(i).as_i64().filter(|_| !col.is_null(i)) {
                                s[g(i)] += x as i128;
                                seen[g(i)] = true;
                            }
                        }
                    }
                }
            }
            (State::SumFloat(s, seen), Some(Datum::Col(col))) => {
                for i in 0..len {
                    if !col.is_null(i) {
                        s[g(i)] += col.value(i).as_f64().unwrap_or(0.0);
                        seen[g(i)] = true;
                    }
                }
            }
            (State::Avg(s, c), Some(Datum::Col(col))) => match (&col.data, &col.nulls) {
                (ColumnData::Int(v), None) => {
                    for (i, x) in v.iter().enumerate() {
                        s[g(i)] += *x as f64;
                        c[g(i)] += 1;
                    }
                }
                _ => {
                    for i in 0..len {
                        if !col.is_null(i) {
                            s[g(i)] += col.value(i).as_f64().unwrap_or(0.0);
                            c[g(i)] += 1;
                        }
                    }
                }
            },
            (State::SumDec(s, st), Some(Datum::Col(col))) => {
                for i in 0..len {
                    if !col.is_null(i) {
                        add_dec(&mut s[g(i)], &mut st[g(i)], col.value(i).to_dec());
                    }
                }
            }
            (State::AvgDec(s, c, st), Some(Datum::Col(col))) => {
                for i in 0..len {
                    if !col.is_null(i) {
                        add_dec(&mut s[g(i)], &mut st[g(i)], col.value(i).to_dec());
                        c[g(i)] += 1;
                    }
                }
            }
            (State::MinMax(m, is_min), Some(Datum::Col(col))) => {
                let want = if *is_min {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                };
                for i in 0..len {
                    if col.is_null(i) {
                        continue;
                    }
                    let v = col.value(i);
                    let slot = &mut m[g(i)];
                    if slot.is_null() || v.sql_cmp(slot) == Some(want) {
                        *slot = v;
                    }
                }
            }
            // `count(DISTINCT …)` sets: `insert_distinct`, which reserves
            // their memory.
            (State::Distinct(_), _) => {}
            (state, Some(Datum::Scalar(v))) => {
                // A constant argument: same as a column of it.
                let col = Datum::Scalar(v.clone()).into_column(len);
                state.update(gids, Some(&Datum::Col(col)), len);
            }
            _ => {}
        }
    }

    /// Adds the states of `other`'s groups `from..from + gids.len()` into
    /// this one's groups `gids` (parallel aggregation: a partial state
    /// merged into the final one). `DISTINCT` sets are merged by the
    /// caller, which accounts for their memory.
    fn merge(&mut self, other: &State, gids: &[u32], from: usize) {
        let pairs = gids
            .iter()
            .enumerate()
            .map(|(i, &g)| (g as usize, from + i));
        match (self, other) {
            (State::Count(a), State::Count(b)) => pairs.for_each(|(g, j)| a[g] += b[j]),
            (State::SumInt(s, seen), State::SumInt(s2, seen2)) => {
                for (g, j) in pairs.filter(|&(_, j)| seen2[j]) {
                    s[g] += s2[j];
                    seen[g] = true;
                }
            }
            (State::SumFloat(s, seen), State::SumFloat(s2, seen2)) => {
                for (g, j) in pairs.filter(|&(_, j)| seen2[j]) {
                    s[g] += s2[j];
                    seen[g] = true;
                }
            }
            (State::SumDec(s, st), State::SumDec(s2, st2)) => {
                for (g, j) in pairs {
                    merge_dec(&mut s[g], &mut st[g], s2[j], st2[j]);
                }
            }
            (State::Avg(s, c), State::Avg(s2, c2)) => {
                for (g, j) in pairs {
                    s[g] += s2[j];
                    c[g] += c2[j];
                }
            }
            (State::AvgDec(s, c, st), State::AvgDec(s2, c2, st2)) => {
                for (g, j) in pairs {
                    merge_dec(&mut s[g], &mut st[g], s2[j], st2[j]);
                    c[g] += c2[j];
                }
            }
            (State::MinMax(m, is_min), State::MinMax(m2, _)) => {
                let want = if *is_min {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                };
                for (g, j) in pairs {
                    let v = &m2[j];
                    if !v.is_null() && (m[g].is_null() || v.sql_cmp(&m[g]) == Some(want)) {
                        m[g] = v.clone();
                    }
                }
            }
            // Same specs on both sides: other pairs do not occur.
            _ => {}
        }
    }

    /// The result of group `g`. An integer SUM is exact (summed in i128)
    /// and error 1690 when BIGINT cannot hold it, never a rounded double
    /// clamped into BIGINT; a DOUBLE sum past ±1.8e308 is 1690 too.
    fn finish(&self, spec: &AggSpec, g: usize) -> Result<Value, ExecError> {
        let int_sum = |s: i128| {
            i64::try_from(s)
                .map(Value::Int)
                .map_err(|_| ExecError::overflow(spec.text.clone()))
        };
        let finite = |f: f64| {
            if f.is_finite() {
                Ok(Value::Float(f))
            } else {
                Err(ExecError::double_overflow(spec.text.clone()))
            }
        };
        Ok(match self {
            State::Count(c) => Value::Int(c[g]),
            State::SumInt(s, seen) => {
                if !seen[g] {
                    Value::Null
                } else {
                    int_sum(s[g])?
                }
            }
            State::SumFloat(s, seen) => {
                if seen[g] {
                    finite(s[g])?
                } else {
                    Value::Null
                }
            }
            State::Avg(s, c) => {
                if c[g] == 0 {
                    Value::Null
                } else {
                    finite(s[g] / c[g] as f64)?
                }
            }
            State::SumDec(s, st) => match st[g] {
                DecSum::Empty => Value::Null,
                DecSum::Sum => Value::Decimal(s[g]),
                DecSum::Overflow => return Err(ExecError::decimal_overflow(spec.text.clone())),
            },
            State::AvgDec(s, c, st) => match st[g] {
                DecSum::Empty => Value::Null,
                DecSum::Sum => avg_dec(s[g], c[g], spec)?,
                DecSum::Overflow => return Err(ExecError::decimal_overflow(spec.text.clone())),
            },
            State::MinMax(m, _) => m[g].clone(),
            State::Distinct(sets) => {
                let set = &sets[g];
                match spec.func {
                    AggFunc::Count | AggFunc::CountStar => Value::Int(set.len() as i64),
                    _ if set.is_empty() => Value::Null,
                    AggFunc::Sum if spec.output_type() == DataType::Int => {
                        let s: i128 = set
                            .iter()
                            .filter_map(Value::as_i64)
                            .map(|x| x as i128)
                            .sum();
                        int_sum(s)?
                    }
                    AggFunc::Sum | AggFunc::Avg if spec.output_type() == DataType::Decimal => {
                        let (mut sum, mut st) = (Dec::default(), DecSum::Empty);
                        for v in set.iter() {
                            add_dec(&mut sum, &mut st, v.to_dec());
                        }
                        match st {
                            DecSum::Overflow => {
                                return Err(ExecError::decimal_overflow(spec.text.clone()))
                            }
                            _ if spec.func == AggFunc::Sum => Value::Decimal(sum),
                            _ => avg_dec(sum, set.len() as i64, spec)?,
                        }
                    }
                    AggFunc::Sum => finite(set.iter().filter_map(Value::as_f64).sum())?,
                    AggFunc::Avg => finite(
                        set.iter().filter_map(Value::as_f64).sum::<f64>() / set.len() as f64,
                    )?,
                    AggFunc::Min => set
                        .iter()
                        .min_by(|a, b| a.sort_cmp(b))
                        .cloned()
                        .unwrap_or(Value::Null),
                    AggFunc::Max => set
                        .iter()
                        .max_by(|a, b| a.sort_cmp(b))
                        .cloned()
                        .unwrap_or(Value::Null),
                }
            }
        })
    }
}

/// `sum / count` as MySQL's AVG of an exact type: the sum's scale + 4.
fn avg_dec(sum: Dec, count: i64, spec: &AggSpec) -> Result<Value, ExecError> {
    sum.checked_div(Dec::from_i64(count.max(1)))
        .map(Value::Decimal)
        .ok_or_else(|| ExecError::decimal_overflow(spec.text.clone()))
}

/// Adds the non-NULL values of rows `0..len` of `arg` to the `DISTINCT`
/// sets of their groups (`gids`; `None`: all in group 0), accounting for
/// the sets' tables and for the strings they keep, moving at most `budget`
/// values of growing tables: the number of rows added, fewer than `len`
/// when a table was still growing (the rest go on a later step; adding a
/// row twice to a set changes nothing).
#[allow(clippy::too_many_arguments)]
fn insert_distinct(
    sets: &mut [DistinctSet],
    gids: Option<&[u32]>,
    arg: &Datum,
    len: usize,
    budget: &mut usize,
    step: &StepClock<'_>,
    mem: &mut MemoryUse,
    res: &Arc<Resources>,
) -> Result<usize, ExecError> {
    let mut kept = 0u64;
    let mut done = len;
    for i in 0..len {
        // The rows before `i` are in: stop here if the step has run its time
        // (where a step ends changes no result: the rest are added on the
        // next, and a set adds a value once).
        if i > 0 && i % DISTINCT_CLOCK_ROWS == 0 && step.over() {
            done = i;
            break;
        }
        let v = arg.value(i);
        if v.is_null() {
            continue;
        }
        let g = gids.map_or(0, |g| g[i] as usize);
        match sets[g].insert_within(v, budget, mem, res)? {
            Some(bytes) => kept += bytes,
            None => {
                done = i;
                break;
            }
        }
    }
    // Strings are shared with the input batch until it is dropped: counted
    // once kept.
    mem.grow(res, kept)?;
    Ok(done)
}

/// Makes room for `n` more entries in a group table, [`GROUP_CLOCK_ROWS`]
/// moves at a time, until done (true), or `budget` is spent or the step
/// has run its time (false: call again on a later step). A move into a
/// table of millions (fresh pages, faulted in as first written) took ~1 µs.
fn grow_within<K: std::hash::Hash + Eq + Send + 'static, V: Send + 'static>(
    map: &mut StepMap<K, V>,
    n: usize,
    budget: &mut usize,
    step: &StepClock<'_>,
    mem: &mut MemoryUse,
    res: &Arc<Resources>,
) -> Result<bool, ExecError> {
    loop {
        let mut moves = (*budget).min(GROUP_CLOCK_ROWS);
        let before = moves;
        let grown = map.room(n, &mut moves, mem, res)?;
        *budget -= before - moves;
        if grown {
            return Ok(true);
        }
        if *budget == 0 || step.over() {
            return Ok(false);
        }
    }
}

/// Integer keys below this get their group id from an array.
const DENSE_KEYS: u64 = 1 << 16;
const NO_GROUP: u32 = u32::MAX;

/// The group id of integer key `x`, creating the group when new.
#[inline]
fn int_group(
    x: i64,
    map: &mut FxHashMap<i64, u32>,
    dense: &mut Vec<u32>,
    keys: &mut Vec<Value>,
) -> u32 {
    if (x as u64) < DENSE_KEYS {
        let slot = x as usize;
        if slot >= dense.len() {
            dense.resize((slot + 1).next_power_of_two(), NO_GROUP);
        }
        if dense[slot] == NO_GROUP {
            keys.push(Value::Int(x));
            dense[slot] = (keys.len() - 1) as u32;
        }
        dense[slot]
    } else {
        *map.entry(x).or_insert_with(|| {
            keys.push(Value::Int(x));
            (keys.len() - 1) as u32
        })
    }
}

/// The groups' keys and ids. The hash tables grow a bounded amount of work
/// per step ([`StepMap`]; they account for their own memory, outside
/// [`HashAggregate::structure_bytes`]): a GROUP BY of millions of groups
/// doubled its table in one step, and a kill waited for the rehash.
enum Groups {
    None,
    Int {
        map: StepMap<i64, u32>,
        /// Group ids of the keys `0..DENSE_KEYS`, indexed by the key
        /// (`NO_GROUP` when unseen): a lookup without hashing.
        dense: Vec<u32>,
        null: Option<u32>,
        keys: GrowVec<Value>,
    },
    Generic {
        map: StepMap<Vec<Value>, u32>,
        keys: GrowVec<Vec<Value>>,
    },
}

/// `GROUP BY` keys + aggregates. Output: the key columns, then one column
/// per aggregate.
pub struct HashAggregate {
    input: Box<Instrumented>,
    keys: Vec<Expr>,
    key_types: Vec<DataType>,
    aggs: Vec<AggSpec>,
    states: Vec<State>,
    groups: Groups,
    ngroups: usize,
    emitted: usize,
    input_done: bool,
    /// The memory this operator holds: [`HashAggregate::structure_bytes`]
    /// plus the heap of the keys and of the `DISTINCT` sets.
    mem: MemoryUse,
    /// The part of `mem` that is [`HashAggregate::structure_bytes`], as last
    /// accounted.
    structure: u64,
    /// Whether an aggregate has `DISTINCT` sets.
    has_distinct: bool,
    /// An input batch being consumed a slice at a time, and where.
    pending: Option<(Batch, usize)>,
    /// A slice taken but not consumed (its step grew a `DISTINCT` set),
    /// with its offset in its batch: consumed first on the next step.
    retry: Option<(Batch, usize)>,
    text: String,
    /// A partial aggregate of a parallel stage: consumes its input and
    /// emits nothing; its states are merged into the final one.
    partial: bool,
    /// Where each group was first seen (parallel aggregation), so that the
    /// final aggregate emits its groups in the order one pipeline would.
    order: Option<GroupOrder>,
    /// The offset in its batch of the slice being consumed.
    slice_off: usize,
    /// A merge of a partial aggregate's `DISTINCT` sets under way.
    set_merge: Option<SetMerge>,
    /// Whether a vector of groups or states is growing
    /// ([`HashAggregate::make_room`]).
    vecs_growing: bool,
}

/// The position (morsel sequence number << 32 | row) at which each group
/// was first seen, with the cell where the pipeline's morsel scan writes
/// the sequence number of the batch it produced last. The row counts the
/// rows that morsel produced here so far (a join may turn one morsel into
/// several batches).
struct GroupOrder {
    morsel: Arc<AtomicU64>,
    first: GrowVec<u64>,
    /// The final aggregate of a parallel stage: for each partial merged,
    /// its groups in its order — ascending first positions, as a pipeline
    /// reads its morsels in order — with their first position there and
    /// their id here. Merged (k-way) they give the emission order.
    runs: Vec<ChunkVec<(u64, u32)>>,
    /// Where the emission is in each run.
    heads: Vec<usize>,
    /// The morsel of the current input batch, and the rank of its first
    /// row among the rows of that morsel; the rank of the next batch's.
    last: u64,
    base: u64,
    next_base: u64,
}

impl GroupOrder {
    /// The next `n` groups (fewer at the end) in the order of their first
    /// positions: a k-way merge of the runs, each group taken from the run
    /// where it was seen first.
    fn next_ids(&mut self, n: usize) -> Vec<usize> {
        self.heads.resize(self.runs.len(), 0);
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            // The run whose next group was seen first (a few runs: one per
            // pipeline).
            let mut best: Option<(u64, usize)> = None;
            for (r, run) in self.runs.iter().enumerate() {
                let h = self.heads[r];
                if h < run.len() && best.is_none_or(|(at, _)| run[h].0 < at) {
                    best = Some((run[h].0, r));
                }
            }
            let Some((at, r)) = best else {
                break;
            };
            let g = self.runs[r][self.heads[r]].1;
            self.heads[r] += 1;
            // Seen earlier by another pipeline: emitted from that run.
            if self.first.get(g as usize) == Some(&at) {
                ids.push(g as usize);
            }
        }
        ids
    }

    fn new(morsel: Arc<AtomicU64>) -> Self {
        GroupOrder {
            morsel,
            first: GrowVec::default(),
            runs: Vec::new(),
            heads: Vec::new(),
            last: u64::MAX,
            base: 0,
            next_base: 0,
        }
    }

    /// A new input batch of `len` rows arrived.
    fn batch(&mut self, len: usize) {
        let m = self.morsel.load(Ordering::Relaxed);
        if m != self.last {
            self.last = m;
            self.next_base = 0;
        }
        self.base = self.next_base;
        self.next_base += len as u64;
    }
}

impl HashAggregate {
    /// Groups by `keys` (types `key_types`) and computes `aggs`.
    pub fn new(
        input: Instrumented,
        keys: Vec<Expr>,
        key_types: Vec<DataType>,
        aggs: Vec<AggSpec>,
        text: String,
    ) -> Self {
        let states = aggs.iter().map(State::new).collect();
        let has_distinct = aggs.iter().any(|a| a.distinct);
        let groups = match key_types.as_slice() {
            [] => Groups::None,
            [DataType::Int] => Groups::Int {
                map: StepMap::default(),
                dense: Vec::new(),
                null: None,
                keys: GrowVec::default(),
            },
            _ => Groups::Generic {
                map: StepMap::default(),
                keys: GrowVec::default(),
            },
        };
        let mut agg = HashAggregate {
            input: Box::new(input),
            keys,
            key_types,
            aggs,
            states,
            groups,
            ngroups: 0,
            emitted: 0,
            input_done: false,
            mem: MemoryUse::default(),
            structure: 0,
            has_distinct,
            pending: None,
            retry: None,
            text,
            partial: false,
            order: None,
            slice_off: 0,
            set_merge: None,
            vecs_growing: false,
        };
        if matches!(agg.groups, Groups::None) {
            agg.ngroups = 1;
            agg.states.iter_mut().for_each(|s| s.resize(1));
        }
        agg
    }

    /// Makes this a partial aggregate of a parallel stage: it consumes its
    /// input and emits nothing, keeping its groups for
    /// [`HashAggregate::merge_from`], with the position where each was first
    /// seen (`morsel` is the cell where its pipeline's morsel scan writes
    /// the sequence number of each batch).
    pub fn partial(mut self, morsel: Arc<AtomicU64>) -> Self {
        self.partial = true;
        self.order = Some(GroupOrder::new(morsel));
        self
    }

    /// Makes this the final aggregate of a parallel stage: its groups come
    /// from [`HashAggregate::merge_from`] (its own input is not read), and
    /// are emitted in the order in which one pipeline would have seen them.
    pub fn merging(mut self) -> Self {
        self.input_done = true;
        self.order = Some(GroupOrder::new(Arc::new(AtomicU64::new(0))));
        self
    }

    /// Whether batches are consumed a slice at a time.
    fn sliced(&self) -> bool {
        self.has_distinct || self.ngroups > SLICE_GROUPS
    }

    /// Groups held (1 without keys: the one group).
    pub fn group_count(&self) -> usize {
        self.ngroups
    }

    /// Merges groups `from..to` of partial aggregate `other` (same keys and
    /// aggregates) into this one, reserving the memory of the new groups
    /// first: true once done; false when the step has run its time
    /// ([`STEP_TIME`] on `clock`, the statement's; or [`MERGE_VALUES`]
    /// values) while growing the group table or merging `DISTINCT` sets:
    /// call again with the same slice. The sets are taken out of `other`, which is
    /// [`HashAggregate::release`]d afterwards: of two sets, the larger is
    /// kept and the smaller added to it.
    pub(crate) fn merge_from(
        &mut self,
        other: &mut HashAggregate,
        run: usize,
        from: usize,
        to: usize,
        clock: Option<&Arc<dyn crate::host::Host>>,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        let step = &StepClock::start(clock, STEP_TIME);
        if self.set_merge.is_none() {
            let to = to.min(other.ngroups);
            if from >= to {
                return Ok(true);
            }
            let mut budget = MOVE_PER_STEP;
            let Some(gids) = self.merge_groups(other, run, from, to, &mut budget, step, res)?
            else {
                // The group table is growing: on the next step.
                return Ok(false);
            };
            if !self.has_distinct {
                return Ok(true);
            }
            self.set_merge = Some(SetMerge {
                gids,
                from,
                state: 0,
                group: 0,
                drain: None,
            });
        }
        let done = self.merge_sets(other, step, res)?;
        if done {
            self.set_merge = None;
        }
        Ok(done)
    }

    /// Adds `DISTINCT` sets of the slice of [`HashAggregate::set_merge`]
    /// until done (true) or the step is over (false).
    fn merge_sets(
        &mut self,
        other: &mut HashAggregate,
        step: &StepClock<'_>,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        let Some(m) = self.set_merge.as_mut() else {
            return Ok(true);
        };
        let mut budget = MOVE_PER_STEP;
        let mut added = 0usize;
        // Bytes the partial no longer holds; bytes of new strings here.
        let mut freed = 0u64;
        let mut kept = 0u64;
        let mut done = true;
        'sets: while m.state < self.states.len() {
            let (State::Distinct(sets), Some(State::Distinct(theirs))) =
                (&mut self.states[m.state], other.states.get_mut(m.state))
            else {
                m.state += 1;
                continue;
            };
            while m.group < m.gids.len() {
                let target = &mut sets[m.gids[m.group] as usize];
                if m.drain.is_none() {
                    let mut set = theirs
                        .get_mut(m.from + m.group)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    if set.len() > target.len() {
                        // Keep the larger set, whole: its memory is now
                        // this operator's, and the smaller one's the
                        // partial's until it is drained.
                        let (theirs_bytes, mine) = (set.bytes(), target.bytes());
                        std::mem::swap(target, &mut set);
                        other.mem.shrink(theirs_bytes);
                        self.mem.shrink(mine);
                        self.mem.grow(res, theirs_bytes)?;
                        other.mem.grow(res, mine)?;
                    }
                    m.drain = Some(set.into_drain(&mut freed));
                }
                let Some(drain) = m.drain.as_mut() else {
                    break;
                };
                loop {
                    if added >= MERGE_VALUES
                        || (added > 0 && added % DISTINCT_CLOCK_ROWS == 0 && step.over())
                    {
                        done = false;
                        break 'sets;
                    }
                    let Some(v) = drain.next(&mut freed) else {
                        break;
                    };
                    if !target.has_room_for(&v, &mut budget, &mut self.mem, res)? {
                        // Its table is growing: on the next step.
                        drain.held = Some(v);
                        done = false;
                        break 'sets;
                    }
                    let mut no_moves = 0;
                    kept += target
                        .insert_within(v, &mut no_moves, &mut self.mem, res)?
                        .unwrap_or(0);
                    added += 1;
                }
                m.drain = None;
                m.group += 1;
            }
            m.group = 0;
            m.state += 1;
        }
        other.mem.shrink(freed);
        self.mem.grow(res, kept)?;
        Ok(done)
    }

    /// Merges the keys and the states other than `DISTINCT` sets of groups
    /// `from..to` of `other` (in one step: a slice of groups): the ids here
    /// of those groups, or `None` while the group table is growing (at most
    /// `budget` entries moved; nothing merged).
    #[allow(clippy::too_many_arguments)]
    fn merge_groups(
        &mut self,
        other: &HashAggregate,
        run: usize,
        from: usize,
        to: usize,
        budget: &mut usize,
        step: &StepClock<'_>,
        res: &Arc<Resources>,
    ) -> Result<Option<Vec<u32>>, ExecError> {
        if !self.make_room(to - from, budget, step, res)? {
            return Ok(None);
        }
        let before = self.ngroups;
        let mut key_heap = 0u64;
        let gids: Vec<u32> = match (&mut self.groups, &other.groups) {
            (Groups::None, _) => vec![0; to - from],
            (
                Groups::Int {
                    map,
                    dense,
                    null,
                    keys,
                },
                Groups::Int { keys: theirs, .. },
            ) => theirs[from..to]
                .iter()
                .map(|k| match k.as_i64().filter(|_| !k.is_null()) {
                    None => *null.get_or_insert_with(|| {
                        keys.push(Value::Null);
                        (keys.len() - 1) as u32
                    }),
                    Some(x) => int_group(x, map.map_mut(), dense, keys),
                })
                .collect(),
            (Groups::Generic { map, keys }, Groups::Generic { keys: theirs, .. }) => theirs
                [from..to]
                .iter()
                .map(|key| match map.map().get(key) {
                    Some(id) => *id,
                    None => {
                        let next = keys.len() as u32;
                        key_heap += 2 * vec_bytes::<Value>(key.capacity())
                            + key.iter().map(|v| v.heap_bytes() as u64).sum::<u64>();
                        keys.push(key.clone());
                        map.map_mut().insert(key.clone(), next);
                        next
                    }
                })
                .collect(),
            // Same keys on both sides: other pairs do not occur.
            _ => return Ok(Some(Vec::new())),
        };
        if !matches!(self.groups, Groups::None) {
            self.ngroups = match &self.groups {
                Groups::Int { keys, .. } => keys.len(),
                Groups::Generic { keys, .. } => keys.len(),
                Groups::None => 1,
            };
        }
        let n = self.ngroups;
        if n > before {
            self.states.iter_mut().for_each(|s| s.resize(n));
        }
        if let (Some(mine), Some(theirs)) = (&mut self.order, &other.order) {
            mine.first.resize(n, u64::MAX);
            if mine.runs.len() <= run {
                mine.runs.resize_with(run + 1, ChunkVec::default);
            }
            let r = &mut mine.runs[run];
            r.reserve(gids.len());
            for (i, &g) in gids.iter().enumerate() {
                let at = theirs.first.get(from + i).copied().unwrap_or(u64::MAX);
                let slot = &mut mine.first[g as usize];
                *slot = (*slot).min(at);
                r.push((at, g));
            }
        }
        for (state, theirs) in self.states.iter_mut().zip(&other.states) {
            // `DISTINCT` sets: `merge_sets`, over steps.
            state.merge(theirs, &gids, from);
        }
        self.mem.grow(res, key_heap)?;
        self.settle(res)?;
        Ok(Some(gids))
    }

    /// Frees the groups and their states (a partial aggregate, once merged),
    /// giving their memory back; the operator stays for EXPLAIN.
    pub fn release(&mut self) {
        let states: Vec<State> = self
            .states
            .iter_mut()
            .map(|s| std::mem::replace(s, State::Count(GrowVec::default())))
            .collect();
        // Freed off the query's path: the groups of a GROUP BY of millions.
        super::reclaim::dispose(
            (
                states,
                std::mem::replace(&mut self.groups, Groups::None),
                self.order.take(),
            ),
            self.mem.bytes() as usize,
        );
        self.ngroups = 0;
        self.structure = 0;
        self.mem = MemoryUse::default();
    }

    /// Heap bytes of the key lists and the per-group state vectors, from
    /// their capacities (the group tables account for theirs).
    fn structure_bytes(&self) -> u64 {
        let groups = match &self.groups {
            Groups::None => 0,
            Groups::Int { dense, keys, .. } => vec_bytes::<u32>(dense.capacity()) + keys.bytes(),
            Groups::Generic { keys, .. } => keys.bytes(),
        };
        let first = self.order.as_ref().map_or(0, |o| {
            o.first.bytes()
                + vec_bytes::<ChunkVec<(u64, u32)>>(o.runs.capacity())
                + o.runs.iter().map(ChunkVec::bytes).sum::<u64>()
        });
        groups + first + self.states.iter().map(State::vec_bytes).sum::<u64>()
    }

    /// Reserves the memory for up to `n` new groups and grows the tables
    /// and state vectors to hold them, so that no table or vector grows
    /// unaccounted while a batch is grouped: false while the group table is
    /// growing still (at most `budget` entries moved per call; group no
    /// rows meanwhile, call again on a later step).
    fn make_room(
        &mut self,
        n: usize,
        budget: &mut usize,
        step: &StepClock<'_>,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        let grown = match &mut self.groups {
            Groups::None => return Ok(true),
            Groups::Int { map, .. } => grow_within(map, n, budget, step, &mut self.mem, res)?,
            Groups::Generic { map, .. } => grow_within(map, n, budget, step, &mut self.mem, res)?,
        };
        if !grown {
            return Ok(false);
        }
        let groups = match &self.groups {
            Groups::None => 0,
            Groups::Int { keys, .. } => keys.growth_bytes(n),
            Groups::Generic { keys, .. } => keys.growth_bytes(n),
        };
        let first = self.order.as_ref().map_or(0, |o| o.first.growth_bytes(n));
        let growth = groups + first + self.states.iter().map(|s| s.growth_bytes(n)).sum::<u64>();
        if growth == 0 && !self.vecs_growing {
            return Ok(true);
        }
        // The new vectors are reserved before they are allocated; the old
        // and the new are both held while entries move
        // ([`HashAggregate::structure_bytes`] counts both).
        self.mem.grow(res, growth)?;
        let mut bytes = COPY_PER_STEP;
        let mut ready = match &mut self.groups {
            Groups::None => true,
            Groups::Int { keys, .. } => keys.room(n, &mut bytes),
            Groups::Generic { keys, .. } => keys.room(n, &mut bytes),
        };
        if let Some(o) = &mut self.order {
            ready &= o.first.room(n, &mut bytes);
        }
        for s in &mut self.states {
            ready &= s.room(n, &mut bytes);
        }
        self.vecs_growing = !ready;
        self.mem.shrink(growth);
        self.settle(res)?;
        Ok(ready)
    }

    /// Accounts for the structures' capacities as they are now.
    fn settle(&mut self, res: &Arc<Resources>) -> Result<(), ExecError> {
        let now = self.structure_bytes();
        if now >= self.structure {
            self.mem.grow(res, now - self.structure)?;
        } else {
            self.mem.shrink(self.structure - now);
        }
        self.structure = now;
        Ok(())
    }

    /// The group ids of the rows of `b` (`None`: no keys, one group),
    /// with room for `b.len` new groups made first
    /// ([`HashAggregate::make_room`]): of its first rows only when the
    /// step runs its time (looking up rows of new groups, every
    /// [`GROUP_CLOCK_ROWS`] rows).
    fn group_ids(
        &mut self,
        b: &Batch,
        step: &StepClock<'_>,
        eval: &mut EvalCx,
        res: &Arc<Resources>,
    ) -> Result<Option<Vec<u32>>, ExecError> {
        let over = |i: usize| i > 0 && i % GROUP_CLOCK_ROWS == 0 && step.over();
        let mut key_heap = 0u64;
        let mut key_cols = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            key_cols.push(k.eval(b, eval)?.into_column(b.len));
        }
        let before = self.ngroups;
        let gids = match &mut self.groups {
            Groups::None => return Ok(None),
            Groups::Int {
                map,
                dense,
                null,
                keys,
            } => {
                let col = &key_cols[0];
                let mut out = Vec::with_capacity(b.len);
                match (&col.data, &col.nulls) {
                    (ColumnData::Int(v), None) => {
                        // Fast path: every key of the batch already has a
                        // dense slot; then a group id is one load.
                        let (lo, hi) = v
                            .iter()
                            .fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                        if lo >= 0 && (hi as u64) < dense.len() as u64 {
                            out.extend(v.iter().map(|&x| dense[x as usize]));
                            if out.contains(&NO_GROUP) {
                                out.clear();
                            }
                        }
                        if out.len() != v.len() {
                            let map = map.map_mut();
                            for (i, &x) in v.iter().enumerate() {
                                if over(i) {
                                    break;
                                }
                                out.push(int_group(x, map, dense, keys));
                            }
                        }
                    }
                    (ColumnData::Int(v), _) => {
                        for (i, x) in v.iter().enumerate() {
                            if over(i) {
                                break;
                            }
                            let id = if col.is_null(i) {
                                *null.get_or_insert_with(|| {
                                    keys.push(Value::Null);
                                    (keys.len() - 1) as u32
                                })
                            } else {
                                int_group(*x, map.map_mut(), dense, keys)
                            };
                            out.push(id);
                        }
                    }
                    _ => {
                        for i in 0..b.len {
                            if over(i) {
                                break;
                            }
                            let v = col.value(i);
                            let id = match v.as_i64().filter(|_| !v.is_null()) {
                                None => *null.get_or_insert_with(|| {
                                    keys.push(Value::Null);
                                    (keys.len() - 1) as u32
                                }),
                                Some(x) => int_group(x, map.map_mut(), dense, keys),
                            };
                            out.push(id);
                        }
                    }
                }
                self.ngroups = keys.len();
                out
            }
            Groups::Generic { map, keys } => {
                let map = map.map_mut();
                let mut out = Vec::with_capacity(b.len);
                for i in 0..b.len {
                    if over(i) {
                        break;
                    }
                    let key: Vec<Value> = key_cols.iter().map(|c| c.value(i)).collect();
                    let next = keys.len() as u32;
                    let id = match map.get(&key) {
                        Some(id) => *id,
                        None => {
                            // The key twice (map and list), its strings
                            // once (shared).
                            key_heap += 2 * vec_bytes::<Value>(key.capacity())
                                + key.iter().map(|v| v.heap_bytes() as u64).sum::<u64>();
                            keys.push(key.clone());
                            map.insert(key, next);
                            next
                        }
                    };
                    out.push(id);
                }
                self.ngroups = keys.len();
                out
            }
        };
        if self.ngroups > before {
            let n = self.ngroups;
            // Within the capacity `make_room` gave them.
            self.states.iter_mut().for_each(|s| s.resize(n));
            if let Some(o) = &mut self.order {
                // Where each new group was first seen: its first row here.
                let base = (o.last << 32) | (o.base + self.slice_off as u64);
                o.first.resize(n, u64::MAX);
                for (i, &g) in gids.iter().enumerate() {
                    if g as usize >= before && o.first[g as usize] == u64::MAX {
                        o.first[g as usize] = base + i as u64;
                    }
                }
            }
            // The dense id array grows here (to 256 KiB at most), and the
            // keys' heap: accounted after the fact, both bounded by a batch.
            self.mem.grow(res, key_heap)?;
            self.settle(res)?;
        }
        Ok(Some(gids))
    }

    fn key_value(&self, g: usize, k: usize) -> Value {
        match &self.groups {
            Groups::None => Value::Null,
            Groups::Int { keys, .. } => keys[g].clone(),
            Groups::Generic { keys, .. } => keys[g][k].clone(),
        }
    }
}

impl Drop for HashAggregate {
    fn drop(&mut self) {
        let bytes = self.mem.bytes() as usize;
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.states),
                std::mem::replace(&mut self.groups, Groups::None),
                self.set_merge.take(),
            ),
            bytes,
        );
    }
}

impl Operator for HashAggregate {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if !self.input_done {
            // With a `DISTINCT` set or many groups, a batch is consumed a
            // slice at a time: each row is a random access into a set or a
            // table that may be far larger than the caches, and a step must
            // stay short for a kill to be seen soon.
            self.slice_off = 0;
            let next = match self.retry.take().or_else(|| {
                let (b, off) = self.pending.take()?;
                let n = (b.len - off).min(SLICE_ROWS);
                let part = b.slice(off, n);
                if off + n < b.len {
                    self.pending = Some((b, off + n));
                }
                Some((part, off))
            }) {
                Some((part, off)) => {
                    self.slice_off = off;
                    Step::Batch(part)
                }
                None => match self.input.next(cx)? {
                    Step::Batch(b) if self.order.is_some() && self.partial => {
                        if let Some(o) = &mut self.order {
                            o.batch(b.len);
                        }
                        if self.sliced() && b.len > SLICE_ROWS {
                            let part = b.slice(0, SLICE_ROWS);
                            self.pending = Some((b, SLICE_ROWS));
                            Step::Batch(part)
                        } else {
                            Step::Batch(b)
                        }
                    }
                    Step::Batch(b) if self.sliced() && b.len > SLICE_ROWS => {
                        let part = b.slice(0, SLICE_ROWS);
                        self.pending = Some((b, SLICE_ROWS));
                        Step::Batch(part)
                    }
                    other => other,
                },
            };
            return match next {
                Step::Batch(b) => {
                    let mut budget = MOVE_PER_STEP;
                    let step =
                        StepClock::start(cx.clock.as_ref().filter(|_| self.sliced()), STEP_TIME);
                    if !self.make_room(b.len, &mut budget, &step, cx.resources)? {
                        // The group table is growing: the slice on the
                        // next step.
                        self.retry = Some((b, self.slice_off));
                        return Ok(Step::Pending);
                    }
                    let gids = self.group_ids(&b, &step, cx.eval, cx.resources)?;
                    // The rows grouped (fewer when the step ran its time);
                    // then the `DISTINCT` sets: a growing table may stop
                    // them short too, and the other aggregates then take
                    // only the rows the sets took.
                    let mut done = gids.as_ref().map_or(b.len, Vec::len);
                    for (spec, state) in self.aggs.iter().zip(self.states.iter_mut()) {
                        if let (State::Distinct(sets), Some(e)) = (&mut *state, &spec.arg) {
                            let arg = e.eval(&b, cx.eval)?;
                            done = insert_distinct(
                                sets,
                                gids.as_deref(),
                                &arg,
                                done,
                                &mut budget,
                                &step,
                                &mut self.mem,
                                cx.resources,
                            )?;
                        }
                    }
                    if done < b.len {
                        // The rest on the next step (their groups exist
                        // now: taking their ids again adds none).
                        self.retry = Some((b.slice(done, b.len - done), self.slice_off + done));
                    }
                    let b = if done < b.len { b.slice(0, done) } else { b };
                    let gids = gids.as_deref().map(|g| &g[..done]);
                    for (spec, state) in self.aggs.iter().zip(self.states.iter_mut()) {
                        if matches!(state, State::Distinct(_)) {
                            continue;
                        }
                        let arg = match &spec.arg {
                            Some(e) => Some(e.eval(&b, cx.eval)?),
                            None => None,
                        };
                        state.update(gids, arg.as_ref(), b.len);
                    }
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.input_done = true;
                    for state in &mut self.states {
                        if let State::Distinct(sets) = state {
                            for set in sets.iter_mut() {
                                set.settle(&mut self.mem, cx.resources)?;
                            }
                        }
                    }
                    Ok(Step::Pending)
                }
                other => Ok(other),
            };
        }
        if self.partial || self.emitted >= self.ngroups {
            return Ok(Step::Done);
        }
        let end = (self.emitted + BATCH_ROWS).min(self.ngroups);
        let ids: Vec<usize> = match &mut self.order {
            // Parallel: the groups in the order of their first rows, a
            // batch a step.
            Some(o) if !o.runs.is_empty() => o.next_ids(end - self.emitted),
            _ => (self.emitted..end).collect(),
        };
        if ids.is_empty() {
            // Not reached: every group is in a run with its first position.
            self.emitted = self.ngroups;
            return Ok(Step::Done);
        }
        let mut cols = Vec::new();
        for (k, ty) in self.key_types.iter().enumerate() {
            let vals: Vec<Value> = ids.iter().map(|&g| self.key_value(g, k)).collect();
            cols.push(Arc::new(Column::from_values(*ty, &vals)));
        }
        for (spec, state) in self.aggs.iter().zip(&self.states) {
            let vals = ids
                .iter()
                .map(|&g| state.finish(spec, g))
                .collect::<Result<Vec<Value>, ExecError>>()?;
            cols.push(Arc::new(Column::from_values(spec.output_type(), &vals)));
        }
        let n = ids.len();
        self.emitted += n;
        Ok(Step::Batch(Batch::new(cols, n)))
    }
    fn describe(&self) -> String {
        if self.partial {
            format!("HashAggregate (partial) {}", self.text)
        } else {
            format!("HashAggregate {}", self.text)
        }
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
    fn name(&self) -> &'static str {
        "HashAggregate"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Harness;
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_large_distinct_set_splits_grows_in_bounded_steps_and_keeps_its_values() {
        let res = Resources::new(1 << 30, Arc::new(AtomicU64::new(0)));
        let mut mem = MemoryUse::default();
        let mut set = DistinctSet::default();
        let n = 200_000i64;
        let mut stopped = 0;
        for round in 0..2 {
            let mut x = 0;
            while x < n {
                // As the operator's steps do: a budget of moves per step; a
                // value whose table is growing waits for a later step.
                let mut budget = MOVE_PER_STEP;
                while x < n {
                    match set
                        .insert_within(Value::Int(x), &mut budget, &mut mem, &res)
                        .unwrap()
                    {
                        Some(_) => x += 1,
                        None => {
                            assert_eq!(budget, 0, "stopped with budget left");
                            stopped += 1;
                            break;
                        }
                    }
                }
            }
            assert_eq!(
                set.len(),
                n as usize,
                "round {round}: duplicates are not added"
            );
        }
        assert_eq!(set.parts.len(), PARTS, "split");
        assert!(stopped > 10, "growths were sliced: {stopped}");
        set.settle(&mut mem, &res).unwrap();
        let mut seen: Vec<i64> = set.iter().filter_map(Value::as_i64).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        // Every table is reserved, and the parts are balanced: none holds
        // more than a few times its share.
        assert_eq!(mem.bytes(), set.table_bytes());
        let largest = set.parts.iter().map(|p| p.len()).max().unwrap_or(0);
        assert!(largest < 4 * n as usize / PARTS, "largest part {largest}");
        // Without a bound on moves, a table grows at once.
        for x in n..2 * n {
            let mut budget = usize::MAX;
            let added = set.insert_within(Value::Int(x), &mut budget, &mut mem, &res);
            assert_eq!(added.unwrap(), Some(0));
        }
        assert_eq!(set.len(), 2 * n as usize);
        assert_eq!(mem.bytes(), set.table_bytes());
        drop(mem);
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn a_distinct_step_ends_once_it_has_run_its_time_and_the_rest_go_in_later() {
        use crate::host::{Host, ManualHost};
        let res = Resources::new(1 << 30, Arc::new(AtomicU64::new(0)));
        let mut mem = MemoryUse::default();
        let values = Datum::Col(Arc::new(crate::data::Column::ints((0..512).collect())));
        let manual = Arc::new(ManualHost::new());
        let host: Arc<dyn Host> = manual.clone();
        let mut sets = vec![DistinctSet::default()];
        // The slice of 512 values as one step timed by `step`: how many went in.
        let mut add = |sets: &mut Vec<DistinctSet>, step: &StepClock<'_>| {
            let mut budget = usize::MAX;
            insert_distinct(sets, None, &values, 512, &mut budget, step, &mut mem, &res).unwrap()
        };
        // A step whose time is up: it stops at its first clock reading.
        let step = StepClock::start(Some(&host), STEP_TIME);
        manual.advance(STEP_TIME);
        assert_eq!(add(&mut sets, &step), DISTINCT_CLOCK_ROWS);
        assert_eq!(sets[0].len(), DISTINCT_CLOCK_ROWS);
        // Time left, or no clock (unit tests, ManualHost runs): the whole
        // slice, the values already in added once.
        let step = StepClock::start(Some(&host), STEP_TIME);
        assert_eq!((add(&mut sets, &step), sets[0].len()), (512, 512));
        let step = StepClock::start(None, STEP_TIME);
        manual.advance(STEP_TIME * 10);
        assert_eq!((add(&mut sets, &step), sets[0].len()), (512, 512));
        drop(sets);
        drop(mem);
        assert_eq!(res.used(), 0);
    }
    #[test]
    fn partial_distinct_sets_merge_over_bounded_steps_keeping_the_larger_set_whole() {
        merge_distinct_sets(DataType::Int, Value::Int);
        // Strings: their bytes move with the set kept, and with each value.
        merge_distinct_sets(DataType::Text, |x| Value::Text(format!("value {x}").into()));
    }

    fn merge_distinct_sets(ty: DataType, value: fn(i64) -> Value) {
        let mut h = Harness::new();
        let spec = AggSpec {
            func: AggFunc::Count,
            arg: Some(Expr::Column(0)),
            distinct: true,
            arg_type: ty,
            text: "count(DISTINCT x)".into(),
        };
        let agg = |src: Instrumented| {
            HashAggregate::new(src, vec![], vec![], vec![spec.clone()], "t".into())
        };
        let ints = |r: std::ops::Range<i64>| {
            let v: Vec<Value> = r.map(value).collect();
            v.chunks(1000)
                .map(|c| Batch::new(vec![Arc::new(Column::from_values(ty, c))], c.len()))
                .collect::<Vec<_>>()
        };
        // Two pipelines' partial sets: 30,000 values and 6,000 (2,000 of
        // them new).
        let mut partials = [ints(0..30_000), ints(28_000..34_000)].map(|input| {
            let mut p = agg(h.source(input)).partial(Arc::new(AtomicU64::new(0)));
            while !matches!(p.next(&mut h.cx()).unwrap(), Step::Done) {}
            p
        });
        let mut merged = agg(h.source(vec![])).merging();
        // Values of the set being added not added yet.
        let left = |m: &HashAggregate| {
            let d = m.set_merge.as_ref().and_then(|m| m.drain.as_ref());
            d.map_or(0, |d| {
                d.tables.iter().map(|(t, _)| t.len()).sum::<usize>() + usize::from(d.held.is_some())
            })
        };
        let mut steps = Vec::new();
        for (run, p) in partials.iter_mut().enumerate() {
            let mut n = 1;
            let mut before = 6_000;
            while !merged
                .merge_from(p, run, 0, BATCH_ROWS, None, &h.res)
                .unwrap()
            {
                // Each step adds some values, and at most MERGE_VALUES.
                let now = left(&merged);
                assert!(
                    now < before && before - now <= MERGE_VALUES,
                    "{before} -> {now}"
                );
                before = now;
                n += 1;
            }
            p.release();
            steps.push(n);
        }
        // The first set is kept whole (one step, nothing re-added); the
        // second takes several (its growing tables also end steps).
        assert_eq!(steps[0], 1);
        assert!(steps[1] >= 6_000usize.div_ceil(MERGE_VALUES), "{steps:?}");
        let State::Distinct(sets) = &merged.states[0] else {
            panic!("a DISTINCT state")
        };
        assert_eq!(sets[0].len(), 34_000);
        // The merged aggregate accounts for exactly the set it holds (the
        // partials gave theirs back when released).
        assert_eq!(merged.mem.bytes() - merged.structure, sets[0].bytes());
        let Step::Batch(b) = merged.next(&mut h.cx()).unwrap() else {
            panic!("the one group")
        };
        assert_eq!(b.row(0), vec![Value::Int(34_000)]);
        drop((merged, partials));
        assert_eq!(h.res.used(), 0, "every reservation is given back");
    }
    #[test]
    fn a_group_by_of_many_groups_grows_its_table_and_vectors_over_steps() {
        let mut h = Harness::new();
        // 300,000 keys (past the dense range: all through the hash table),
        // each twice: count(*) 2 and sum(x) 2x per group.
        let n = 300_000i64;
        let keys: Vec<i64> = (0..n).chain(0..n).map(|x| x * 7 + 100_000).collect();
        let input: Vec<Batch> = keys
            .chunks(BATCH_ROWS)
            .map(|c| Batch::new(vec![Arc::new(Column::ints(c.to_vec()))], c.len()))
            .collect();
        let src = h.source(input);
        let aggs = [
            (AggFunc::CountStar, None),
            (AggFunc::Sum, Some(Expr::Column(0))),
        ]
        .map(|(func, arg)| AggSpec {
            func,
            arg,
            distinct: false,
            arg_type: DataType::Int,
            text: "agg".into(),
        })
        .to_vec();
        let mut agg = HashAggregate::new(
            src,
            vec![Expr::Column(0)],
            vec![DataType::Int],
            aggs,
            "t".into(),
        );
        let (mut table_growing, mut vecs_growing) = (0, 0);
        let mut rows = Vec::new();
        loop {
            match agg.next(&mut h.cx()).unwrap() {
                Step::Batch(b) => rows.extend((0..b.len).map(|i| b.row(i))),
                Step::Done => break,
                _ => {}
            }
            if let Groups::Int { map, .. } = &agg.groups {
                table_growing += usize::from(!map.has_room(0));
            }
            vecs_growing += usize::from(agg.vecs_growing);
        }
        // The table and the vectors grew over several steps each, the
        // operator grouping no rows meanwhile.
        assert!(table_growing > 10, "table: {table_growing} steps");
        assert!(vecs_growing > 10, "vectors: {vecs_growing} steps");
        assert_eq!(rows.len(), n as usize);
        for (i, r) in rows.iter().enumerate() {
            let x = i as i64 * 7 + 100_000;
            assert_eq!(r, &vec![Value::Int(x), Value::Int(2), Value::Int(2 * x)]);
        }
        drop(agg);
        assert_eq!(h.res.used(), 0, "every reservation is given back");
    }
}
