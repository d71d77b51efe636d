//! Window functions: `ROW_NUMBER`, `RANK`, `DENSE_RANK`, `NTILE`, `LAG`,
//! `LEAD`, `FIRST_VALUE`, `LAST_VALUE` and `COUNT / SUM / AVG / MIN / MAX`
//! over a window (`PARTITION BY`, `ORDER BY`, a `ROWS` or `RANGE` frame).
//!
//! One [`Window`] operator computes the calls that share a window's
//! partitioning and ordering; the planner chains one per distinct window.
//! Each appends its calls' results as new columns after its input's.
//!
//! The work, every part of it in bounded steps (a kill is seen between any
//! two, see [`super`]):
//! 1. **Collect**: each input batch is kept with its partition keys, order
//!    keys and call arguments evaluated beside it (reserved from the budget
//!    as they come, as [`super::sort`] does).
//! 2. **Concat**: the batches become one set of columns ([`Buffered`]).
//! 3. **Sort** by partition keys, then order keys, with the sort operator's
//!    resumable merge sort (NULLs first ascending, last descending; stable).
//! 4. **Bounds**: one pass finds where partitions and peer groups (rows
//!    equal in partition and order keys) start.
//! 5. **Compute**: each call walks the sorted rows once. Frames only move
//!    forward as the current row does (both ends are monotone in every frame
//!    MySQL allows), so aggregates are kept as sliding state: rows enter at
//!    the frame's end and leave at its start (counts and sums subtract, MIN
//!    and MAX keep a monotonic deque), O(1) amortized per row. A growing
//!    frame (`UNBOUNDED PRECEDING`) is a running aggregate.
//! 6. **Emit** the rows in window order, a batch at a time.
//!
//! Semantics follow MySQL 8: without `ORDER BY` the default frame is the
//! whole partition; with it, `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT
//! ROW`, which includes the current row's peers. `ROW_NUMBER`, `RANK`,
//! `DENSE_RANK`, `NTILE`, `LAG` and `LEAD` ignore the frame. `NTILE(n)` puts
//! one more row in each of the first `rows % n` buckets. In a `RANGE` frame
//! with `n PRECEDING / FOLLOWING`, a row whose order key is NULL has its NULL
//! peers as that bound.
//!
//! Memory: the buffered batches, their concatenation, the sort's index
//! arrays, the boundary lists and the result columns are reserved before
//! they are made; the batches' share is given back once concatenated.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

use super::aggregate::AggFunc;
use super::buffer::Buffered;
use super::memory::{buffered_batch_bytes, vec_bytes, MemoryUse};
use super::sort::{cmp_in_col, cmp_rows, MergeSort, SortKey};
use super::{Instrumented, OpCx, Operator, Step};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::expr::{ExecError, Expr};

/// Sorted rows looked at per step by the bounds pass.
const STEP_ROWS: usize = 2048;
/// Units of work per step of the compute pass: a row's result, or a row
/// entering or leaving a frame, or a step of a RANGE bound's search.
const COMPUTE_BUDGET: usize = 2048;
/// Rows per output batch (each a random read in a large input, as in sort).
const EMIT_ROWS: usize = 1024;

/// A window function.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowFunc {
    /// `ROW_NUMBER()`: 1, 2, … within the partition.
    RowNumber,
    /// `RANK()`: 1 + the rows before the current row's peer group.
    Rank,
    /// `DENSE_RANK()`: 1 + the peer groups before the current row's.
    DenseRank,
    /// `PERCENT_RANK()`: `(rank - 1) / (rows - 1)`, 0 in a partition of
    /// one row.
    PercentRank,
    /// `CUME_DIST()`: the share of the partition's rows up to the current
    /// row's last peer.
    CumeDist,
    /// `NTILE(n)`, `n` ≥ 1: the bucket (1..=n) of the row.
    Ntile(u64),
    /// `LAG(x, offset [, default])`: `x` of the row `offset` rows before,
    /// else `default` (NULL without one). Argument 0 is `x`, 1 the default.
    Lag(u64),
    /// `LEAD(x, offset [, default])`: as [`WindowFunc::Lag`], after.
    Lead(u64),
    /// `FIRST_VALUE(x)`: `x` at the frame's first row (NULL when empty).
    FirstValue,
    /// `LAST_VALUE(x)`: `x` at the frame's last row (NULL when empty).
    LastValue,
    /// `NTH_VALUE(x, n)`, `n` ≥ 1: `x` at the frame's `n`th row (NULL when
    /// the frame is shorter).
    NthValue(u64),
    /// An aggregate over the frame (argument 0; none for `count(*)`).
    Agg(AggFunc),
}

impl WindowFunc {
    /// Whether the function reads the frame (the others ignore it).
    pub fn uses_frame(&self) -> bool {
        matches!(
            self,
            WindowFunc::FirstValue
                | WindowFunc::LastValue
                | WindowFunc::NthValue(_)
                | WindowFunc::Agg(_)
        )
    }
}

/// `ROWS` or `RANGE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameUnits {
    /// Bounds count rows.
    Rows,
    /// Bounds are order-key values; `CURRENT ROW` means the peer group.
    Range,
}

/// One end of a frame. Offsets are non-negative numbers: integers for
/// `ROWS`, an integer or a float for `RANGE`.
#[derive(Clone, Debug, PartialEq)]
pub enum FrameBound {
    /// `UNBOUNDED PRECEDING`: the partition's first row.
    UnboundedPreceding,
    /// `n PRECEDING`.
    Preceding(Value),
    /// `CURRENT ROW` (in `RANGE`: the current row's peers).
    CurrentRow,
    /// `n FOLLOWING`.
    Following(Value),
    /// `UNBOUNDED FOLLOWING`: the partition's last row.
    UnboundedFollowing,
}

/// A frame: the rows of the partition a frame-reading function sees.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// `ROWS` or `RANGE`.
    pub units: FrameUnits,
    /// Where it starts.
    pub start: FrameBound,
    /// Where it ends (inclusive).
    pub end: FrameBound,
}

impl Frame {
    /// MySQL's frame when none is written: with `ORDER BY`, `RANGE BETWEEN
    /// UNBOUNDED PRECEDING AND CURRENT ROW` (peers included); without, the
    /// whole partition.
    pub fn default_for(ordered: bool) -> Frame {
        Frame {
            units: FrameUnits::Range,
            start: FrameBound::UnboundedPreceding,
            end: if ordered {
                FrameBound::CurrentRow
            } else {
                FrameBound::UnboundedFollowing
            },
        }
    }
}

/// One window function call of a window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowCall {
    /// The function.
    pub func: WindowFunc,
    /// Its arguments (see [`WindowFunc`] for each function's).
    pub args: Vec<Expr>,
    /// The frame (read only by [`WindowFunc::uses_frame`] functions).
    pub frame: Frame,
    /// The result type.
    pub out_type: DataType,
    /// Text for EXPLAIN and for errors (`sum(x) OVER (…)`).
    pub text: String,
}

/// Partitions and peer groups of the sorted rows: their start positions,
/// each list ending with the row count.
#[derive(Default)]
struct Bounds {
    parts: Vec<u32>,
    peers: Vec<u32>,
    /// Sorted rows looked at so far.
    done: usize,
}

/// Where a sorted row lies: its partition `[ps, pe)`, its peer group
/// `[gs, ge)`, and the peer group's number within the partition.
#[derive(Clone, Copy, Debug)]
struct Place {
    ps: usize,
    pe: usize,
    gs: usize,
    ge: usize,
    dense: usize,
}

/// Walks the sorted rows in order, telling each one's [`Place`].
#[derive(Clone, Copy, Default)]
struct Cursor {
    part: usize,
    peer: usize,
    /// The index (in `peers`) of the current partition's first peer group.
    part_first_peer: usize,
}

impl Cursor {
    fn place(&mut self, b: &Bounds, p: usize) -> Place {
        while b.parts[self.part + 1] as usize <= p {
            self.part += 1;
        }
        let ps = b.parts[self.part] as usize;
        while b.peers[self.peer + 1] as usize <= p {
            self.peer += 1;
        }
        while (b.peers[self.part_first_peer] as usize) < ps {
            self.part_first_peer += 1;
        }
        Place {
            ps,
            pe: b.parts[self.part + 1] as usize,
            gs: b.peers[self.peer] as usize,
            ge: b.peers[self.peer + 1] as usize,
            dense: self.peer - self.part_first_peer,
        }
    }
}

/// The running state of an aggregate over the rows `[lo, hi)` of a frame.
enum Acc {
    Count(i64),
    SumInt(i128, i64),
    SumFloat(f64, i64),
    /// Row positions whose values are monotone (increasing for MIN,
    /// decreasing for MAX): the front is the frame's extreme.
    MinMax(VecDeque<u32>, bool),
    /// Frame functions that need no state (FIRST_VALUE, LAST_VALUE).
    None,
}

/// A call's progress through the sorted rows.
struct CallRun {
    cursor: Cursor,
    /// The partition the state belongs to.
    part_start: usize,
    lo: usize,
    hi: usize,
    acc: Acc,
    /// RANGE offset bounds: the frame's start and end so far (monotone
    /// within a partition).
    range_start: usize,
    range_end: usize,
    /// Sorted rows whose result is in `out`.
    done: usize,
    out: Column,
}

/// What the sorted rows are, for the compute pass.
struct Sorted<'a> {
    order: &'a [u32],
    /// The key columns (partition keys then order keys), in input order.
    keys: &'a [Column],
    /// How many of `keys` are partition keys.
    n_part: usize,
    desc: &'a [bool],
    /// The arguments, in input order.
    args: &'a [Column],
}

enum Phase {
    Collect,
    Concat,
    Sorting(MergeSort),
    Bounds(Vec<u32>, Bounds),
    Compute {
        order: Vec<u32>,
        bounds: Bounds,
        runs: Vec<CallRun>,
    },
    Emit {
        order: Vec<u32>,
        outs: Vec<Column>,
        pos: usize,
    },
    Done,
}

/// Computes window function calls sharing one window; outputs its input's
/// columns followed by one column per call, in window order.
pub struct Window {
    input: Box<Instrumented>,
    partition: Vec<Expr>,
    order_keys: Vec<SortKey>,
    calls: Vec<WindowCall>,
    /// Where each call's arguments start among the argument columns.
    arg_at: Vec<usize>,
    desc: Vec<bool>,
    data: Vec<Column>,
    keys: Vec<Column>,
    args: Vec<Column>,
    pending: Buffered,
    pending_aux: Buffered,
    rows: usize,
    phase: Phase,
    mem: MemoryUse,
    /// Bytes of the buffered batches without their strings, given back
    /// once concatenated.
    buffered_bytes: u64,
    text: String,
}

impl Window {
    /// Computes `calls` over the window `PARTITION BY partition ORDER BY
    /// order`.
    pub fn new(
        input: Instrumented,
        partition: Vec<Expr>,
        order: Vec<SortKey>,
        calls: Vec<WindowCall>,
        text: String,
    ) -> Self {
        let desc = std::iter::repeat_n(false, partition.len())
            .chain(order.iter().map(|k| k.desc))
            .collect();
        let mut arg_at = Vec::with_capacity(calls.len());
        let mut at = 0;
        for c in &calls {
            arg_at.push(at);
            at += c.args.len();
        }
        Window {
            input: Box::new(input),
            partition,
            order_keys: order,
            calls,
            arg_at,
            desc,
            data: Vec::new(),
            keys: Vec::new(),
            args: Vec::new(),
            pending: Buffered::default(),
            pending_aux: Buffered::default(),
            rows: 0,
            phase: Phase::Collect,
            mem: MemoryUse::default(),
            buffered_bytes: 0,
            text,
        }
    }

    /// The phase's name (for tests that stop it in each phase).
    #[cfg(test)]
    fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Collect => "collect",
            Phase::Concat => "concat",
            Phase::Sorting(_) => "sort",
            Phase::Bounds(..) => "bounds",
            Phase::Compute { .. } => "compute",
            Phase::Emit { .. } => "emit",
            Phase::Done => "done",
        }
    }

    fn n_keys(&self) -> usize {
        self.partition.len() + self.order_keys.len()
    }

    fn collect(&mut self, b: Batch, cx: &mut OpCx<'_>) -> Result<(), ExecError> {
        let mut aux = Vec::with_capacity(self.n_keys() + self.arg_at.len());
        for e in self
            .partition
            .iter()
            .chain(self.order_keys.iter().map(|k| &k.expr))
            .chain(self.calls.iter().flat_map(|c| c.args.iter()))
        {
            aux.push(e.eval(&b, cx.eval)?.into_column(b.len));
        }
        let (reserve, buffered) = buffered_batch_bytes(&b, &aux);
        self.mem.grow(cx.resources, reserve)?;
        self.buffered_bytes += buffered;
        self.rows += b.len;
        self.pending.push(b.columns, b.len);
        self.pending_aux.push(aux, b.len);
        Ok(())
    }

    /// One step of the bounds pass; true when done. The lists grow here,
    /// reserved first (old and new vectors while one is copied).
    fn bounds_step(
        &mut self,
        order: &[u32],
        b: &mut Bounds,
        cx: &mut OpCx<'_>,
    ) -> Result<bool, ExecError> {
        for list in [&mut b.parts, &mut b.peers] {
            let (len, cap) = (list.len(), list.capacity());
            if cap - len <= STEP_ROWS {
                let to = (len + STEP_ROWS + 1).max(cap * 2);
                self.mem.grow(cx.resources, vec_bytes::<u32>(to))?;
                list.reserve_exact(to - len);
                self.mem.shrink(vec_bytes::<u32>(cap));
            }
        }
        let n = order.len();
        let n_part = self.partition.len();
        let end = (b.done + STEP_ROWS).min(n);
        for p in b.done..end {
            if p == 0 {
                b.parts.push(0);
                b.peers.push(0);
                continue;
            }
            let (x, y) = (order[p - 1], order[p]);
            let new_part =
                cmp_rows(&self.keys[..n_part], &self.desc[..n_part], x, y) != Ordering::Equal;
            if new_part {
                b.parts.push(p as u32);
                b.peers.push(p as u32);
            } else if cmp_rows(&self.keys[n_part..], &self.desc[n_part..], x, y) != Ordering::Equal
            {
                b.peers.push(p as u32);
            }
        }
        b.done = end;
        if end == n {
            b.parts.push(n as u32);
            b.peers.push(n as u32);
            return Ok(true);
        }
        Ok(false)
    }

    fn start_compute(
        &mut self,
        order: Vec<u32>,
        bounds: Bounds,
        cx: &mut OpCx<'_>,
    ) -> Result<Phase, ExecError> {
        let n = order.len();
        let mut runs = Vec::with_capacity(self.calls.len());
        for c in &self.calls {
            // The result column at its final size (strings are shared with
            // the arguments').
            let per_row = match c.out_type {
                DataType::Text => std::mem::size_of::<Arc<str>>(),
                _ => 8,
            };
            self.mem.grow(cx.resources, (n * (per_row + 1)) as u64)?;
            let mut out = Column::empty(c.out_type);
            out.reserve_rows(n);
            runs.push(CallRun {
                cursor: Cursor::default(),
                part_start: usize::MAX,
                lo: 0,
                hi: 0,
                acc: Acc::None,
                range_start: 0,
                range_end: 0,
                done: 0,
                out,
            });
        }
        Ok(Phase::Compute {
            order,
            bounds,
            runs,
        })
    }
}

/// Row `p` (a sorted position) of argument column `c` as a value.
fn arg_value(s: &Sorted<'_>, c: usize, p: usize) -> Value {
    s.args[c].value(s.order[p] as usize)
}

/// The value `cur` moved by `off` towards the partition's start (`back`) or
/// its end, in the window's order (`desc` reverses it); `None` when the
/// order key is not a number.
fn shifted(cur: &Value, off: &Value, back: bool, desc: bool) -> Option<Value> {
    let minus = back != desc;
    Some(match (cur, off) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a as i128, *b as i128);
            let r = if minus { a - b } else { a + b };
            match i64::try_from(r) {
                Ok(v) => Value::Int(v),
                Err(_) => Value::Float(r as f64),
            }
        }
        (a, b) => {
            let (a, b) = (a.as_f64()?, b.as_f64()?);
            Value::Float(if minus { a - b } else { a + b })
        }
    })
}

/// Compares the order key of sorted row `q` with the value `t`, in the
/// window's order (NULL first ascending, last descending).
fn key_vs(s: &Sorted<'_>, q: usize, t: &Value) -> Ordering {
    let col = &s.keys[s.n_part];
    let v = col.value(s.order[q] as usize);
    let o = v.sort_cmp(t);
    if s.desc[s.n_part] {
        o.reverse()
    } else {
        o
    }
}

impl CallRun {
    /// The frame `[start, end)` of sorted row `p` (empty when `end <=
    /// start`); `None` when `budget` ran out first (the search is kept, a
    /// later call goes on from there).
    fn frame(
        &mut self,
        s: &Sorted<'_>,
        f: &Frame,
        p: usize,
        pl: &Place,
        budget: &mut usize,
    ) -> Option<(usize, usize)> {
        let rows = |b: &FrameBound, is_end: bool| -> usize {
            let k = |v: &Value| v.as_i64().unwrap_or(0).max(0) as usize;
            let e = is_end as usize;
            match b {
                FrameBound::UnboundedPreceding => pl.ps,
                FrameBound::UnboundedFollowing => pl.pe,
                FrameBound::CurrentRow => p + e,
                FrameBound::Preceding(v) => (p + e).saturating_sub(k(v)).max(pl.ps),
                FrameBound::Following(v) => (p + e).saturating_add(k(v)).min(pl.pe),
            }
        };
        if f.units == FrameUnits::Rows {
            return Some((rows(&f.start, false), rows(&f.end, true)));
        }
        let cur = s
            .keys
            .get(s.n_part)
            .map_or(Value::Null, |c| c.value(s.order[p] as usize));
        let start = match &f.start {
            FrameBound::UnboundedPreceding => pl.ps,
            FrameBound::UnboundedFollowing => pl.pe,
            FrameBound::CurrentRow => pl.gs,
            FrameBound::Preceding(_) | FrameBound::Following(_) if cur.is_null() => pl.gs,
            FrameBound::Preceding(v) | FrameBound::Following(v) => {
                let back = matches!(f.start, FrameBound::Preceding(_));
                match shifted(&cur, v, back, s.desc[s.n_part]) {
                    // The first row at or after the target value.
                    Some(t) => {
                        let mut q = self.range_start.max(pl.ps);
                        while q < pl.pe && key_vs(s, q, &t) == Ordering::Less {
                            if *budget == 0 {
                                self.range_start = q;
                                return None;
                            }
                            *budget -= 1;
                            q += 1;
                        }
                        self.range_start = q;
                        q
                    }
                    None => pl.gs,
                }
            }
        };
        let end = match &f.end {
            FrameBound::UnboundedPreceding => pl.ps,
            FrameBound::UnboundedFollowing => pl.pe,
            FrameBound::CurrentRow => pl.ge,
            FrameBound::Preceding(_) | FrameBound::Following(_) if cur.is_null() => pl.ge,
            FrameBound::Preceding(v) | FrameBound::Following(v) => {
                let back = matches!(f.end, FrameBound::Preceding(_));
                match shifted(&cur, v, back, s.desc[s.n_part]) {
                    // Past the last row at or before the target value.
                    Some(t) => {
                        let mut q = self.range_end.max(pl.ps);
                        while q < pl.pe && key_vs(s, q, &t) != Ordering::Greater {
                            if *budget == 0 {
                                self.range_end = q;
                                return None;
                            }
                            *budget -= 1;
                            q += 1;
                        }
                        self.range_end = q;
                        q
                    }
                    None => pl.ge,
                }
            }
        };
        Some((start, end))
    }

    /// Adds sorted row `p` (argument column `a`) to the aggregate.
    fn add(&mut self, s: &Sorted<'_>, a: Option<usize>, p: usize) {
        let Some(a) = a else {
            if let Acc::Count(c) = &mut self.acc {
                *c += 1;
            }
            return;
        };
        let col = &s.args[a];
        let r = s.order[p] as usize;
        if col.is_null(r) {
            return;
        }
        match &mut self.acc {
            Acc::Count(c) => *c += 1,
            Acc::SumInt(sum, n) => {
                *sum += int_at(col, r) as i128;
                *n += 1;
            }
            Acc::SumFloat(sum, n) => {
                *sum += float_at(col, r);
                *n += 1;
            }
            Acc::MinMax(dq, is_min) => {
                let worse = if *is_min {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
                while let Some(&b) = dq.back() {
                    let o = cmp_in_col(col, s.order[b as usize] as usize, r);
                    if o == worse || o == Ordering::Equal {
                        dq.pop_back();
                    } else {
                        break;
                    }
                }
                dq.push_back(p as u32);
            }
            Acc::None => {}
        }
    }

    /// Takes sorted row `p` out of the aggregate.
    fn remove(&mut self, s: &Sorted<'_>, a: Option<usize>, p: usize) {
        let Some(a) = a else {
            if let Acc::Count(c) = &mut self.acc {
                *c -= 1;
            }
            return;
        };
        let col = &s.args[a];
        let r = s.order[p] as usize;
        if col.is_null(r) {
            return;
        }
        match &mut self.acc {
            Acc::Count(c) => *c -= 1,
            Acc::SumInt(sum, n) => {
                *sum -= int_at(col, r) as i128;
                *n -= 1;
            }
            Acc::SumFloat(sum, n) => {
                *sum -= float_at(col, r);
                *n -= 1;
            }
            Acc::MinMax(dq, _) => {
                if dq.front() == Some(&(p as u32)) {
                    dq.pop_front();
                }
            }
            Acc::None => {}
        }
    }
}

fn int_at(c: &Column, r: usize) -> i64 {
    match &c.data {
        ColumnData::Int(v) => v[r],
        _ => c.value(r).as_i64().unwrap_or(0),
    }
}

fn float_at(c: &Column, r: usize) -> f64 {
    match &c.data {
        ColumnData::Float(v) => v[r],
        ColumnData::Int(v) => v[r] as f64,
        _ => c.value(r).as_f64().unwrap_or(0.0),
    }
}

/// The NTILE bucket (1-based) of the row `r` (0-based) of a partition of
/// `m` rows in `n` buckets: the first `m % n` buckets hold one row more.
fn ntile(r: usize, m: usize, n: u64) -> i64 {
    let n = (n as usize).max(1);
    let q = m / n;
    let big = m % n;
    let bucket = if r < big * (q + 1) {
        r / (q + 1)
    } else {
        big + (r - big * (q + 1)) / q.max(1)
    };
    bucket as i64 + 1
}

/// Computes the results of `call` for the next sorted rows, until they are
/// all done or `budget` (rows, and rows entering or leaving a frame) is
/// spent. A row whose frame is not reached when the budget runs out is
/// done again by the next call, from where its frame's state got to.
fn compute(
    call: &WindowCall,
    arg0: usize,
    run: &mut CallRun,
    s: &Sorted<'_>,
    bounds: &Bounds,
    budget: &mut usize,
) -> Result<(), ExecError> {
    let n = s.order.len();
    let mut vals: Vec<Value> = Vec::new();
    let arg = (!call.args.is_empty()).then_some(arg0);
    while run.done < n && *budget > 0 {
        let p = run.done;
        let pl = run.cursor.place(bounds, p);
        if run.part_start != pl.ps {
            // A new partition: the frame state starts over.
            run.part_start = pl.ps;
            run.lo = pl.ps;
            run.hi = pl.ps;
            run.range_start = pl.ps;
            run.range_end = pl.ps;
            run.acc = new_acc(call);
        }
        let v = match &call.func {
            WindowFunc::RowNumber => Value::Int((p - pl.ps + 1) as i64),
            WindowFunc::Rank => Value::Int((pl.gs - pl.ps + 1) as i64),
            WindowFunc::DenseRank => Value::Int(pl.dense as i64 + 1),
            WindowFunc::PercentRank => Value::Float(if pl.pe - pl.ps > 1 {
                (pl.gs - pl.ps) as f64 / (pl.pe - pl.ps - 1) as f64
            } else {
                0.0
            }),
            WindowFunc::CumeDist => Value::Float((pl.ge - pl.ps) as f64 / (pl.pe - pl.ps) as f64),
            WindowFunc::Ntile(n) => Value::Int(ntile(p - pl.ps, pl.pe - pl.ps, *n)),
            WindowFunc::Lag(k) | WindowFunc::Lead(k) => {
                let k = usize::try_from(*k).unwrap_or(usize::MAX);
                let at = match call.func {
                    WindowFunc::Lag(_) => p.checked_sub(k).filter(|&q| q >= pl.ps),
                    _ => p.checked_add(k).filter(|&q| q < pl.pe),
                };
                match at {
                    Some(q) => arg_value(s, arg0, q),
                    None if call.args.len() > 1 => arg_value(s, arg0 + 1, p),
                    None => Value::Null,
                }
            }
            WindowFunc::FirstValue
            | WindowFunc::LastValue
            | WindowFunc::NthValue(_)
            | WindowFunc::Agg(_) => {
                let Some((start, end)) = run.frame(s, &call.frame, p, &pl, budget) else {
                    break;
                };
                let end = end.max(start);
                match frame_value(call, arg, run, s, start, end, budget)? {
                    Some(v) => v,
                    None => break,
                }
            }
        };
        vals.push(v);
        run.done += 1;
        *budget = budget.saturating_sub(1);
    }
    run.out.append(&Column::from_values(call.out_type, &vals));
    Ok(())
}

fn new_acc(call: &WindowCall) -> Acc {
    match call.func {
        WindowFunc::Agg(AggFunc::Count | AggFunc::CountStar) => Acc::Count(0),
        WindowFunc::Agg(AggFunc::Sum) if call.out_type == DataType::Int => Acc::SumInt(0, 0),
        WindowFunc::Agg(AggFunc::Sum | AggFunc::Avg) => Acc::SumFloat(0.0, 0),
        WindowFunc::Agg(AggFunc::Min) => Acc::MinMax(VecDeque::new(), true),
        WindowFunc::Agg(AggFunc::Max) => Acc::MinMax(VecDeque::new(), false),
        _ => Acc::None,
    }
}

/// Moves `run`'s state to the frame `[start, end)` (`end >= start`; both
/// never behind the last frame's in the partition) and gives the call's
/// value over it; `None` when `budget` ran out first (the state keeps what
/// was moved).
fn frame_value(
    call: &WindowCall,
    arg: Option<usize>,
    run: &mut CallRun,
    s: &Sorted<'_>,
    start: usize,
    end: usize,
    budget: &mut usize,
) -> Result<Option<Value>, ExecError> {
    match call.func {
        WindowFunc::FirstValue => {
            return Ok(Some(match arg {
                Some(a) if end > start => arg_value(s, a, start),
                _ => Value::Null,
            }))
        }
        WindowFunc::LastValue => {
            return Ok(Some(match arg {
                Some(a) if end > start => arg_value(s, a, end - 1),
                _ => Value::Null,
            }))
        }
        WindowFunc::NthValue(n) => {
            let at = usize::try_from(n - 1)
                .ok()
                .and_then(|k| start.checked_add(k))
                .filter(|&q| q < end);
            return Ok(Some(match (arg, at) {
                (Some(a), Some(q)) => arg_value(s, a, q),
                _ => Value::Null,
            }));
        }
        _ => {}
    }
    if start >= run.hi {
        run.acc = new_acc(call);
        run.lo = start;
        run.hi = start;
    }
    while run.hi < end {
        if *budget == 0 {
            return Ok(None);
        }
        *budget -= 1;
        let h = run.hi;
        run.add(s, arg, h);
        run.hi += 1;
    }
    while run.lo < start {
        if *budget == 0 {
            return Ok(None);
        }
        *budget -= 1;
        let l = run.lo;
        run.remove(s, arg, l);
        run.lo += 1;
    }
    let finite = |f: f64| {
        if f.is_finite() {
            Ok(Value::Float(f))
        } else {
            Err(ExecError::double_overflow(call.text.clone()))
        }
    };
    Ok(Some(match (&run.acc, call.func.clone()) {
        (Acc::Count(c), _) => Value::Int(*c),
        (Acc::SumInt(_, 0) | Acc::SumFloat(_, 0), _) => Value::Null,
        (Acc::SumInt(sum, _), _) => i64::try_from(*sum)
            .map(Value::Int)
            .map_err(|_| ExecError::overflow(call.text.clone()))?,
        (Acc::SumFloat(sum, n), WindowFunc::Agg(AggFunc::Avg)) => finite(sum / *n as f64)?,
        (Acc::SumFloat(sum, _), _) => finite(*sum)?,
        (Acc::MinMax(dq, _), _) => match (dq.front(), arg) {
            (Some(&p), Some(a)) => arg_value(s, a, p as usize),
            _ => Value::Null,
        },
        (Acc::None, _) => Value::Null,
    }))
}

impl Drop for Window {
    fn drop(&mut self) {
        let bytes = self.mem.bytes() as usize;
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.data),
                std::mem::take(&mut self.keys),
                std::mem::take(&mut self.args),
                std::mem::replace(&mut self.phase, Phase::Done),
                std::mem::take(&mut self.pending),
                std::mem::take(&mut self.pending_aux),
            ),
            bytes,
        );
    }
}

impl Operator for Window {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let (next, step) = match phase {
            Phase::Collect => match self.input.next(cx)? {
                Step::Batch(b) => {
                    self.collect(b, cx)?;
                    (Phase::Collect, Step::Pending)
                }
                Step::Done if self.rows == 0 => (Phase::Done, Step::Done),
                Step::Done => (Phase::Concat, Step::Pending),
                other => (Phase::Collect, other),
            },
            Phase::Concat => {
                if self.pending.is_fresh() {
                    // The concatenated columns, and the merge sort's two
                    // index arrays.
                    let bytes = self.pending.concat_bytes()
                        + self.pending_aux.concat_bytes()
                        + 2 * vec_bytes::<u32>(self.rows) as usize;
                    self.mem.grow(cx.resources, bytes as u64)?;
                }
                let data = self.pending.concat_some();
                let aux = self.pending_aux.concat_some();
                if data && aux {
                    self.data = self.pending.take_columns();
                    let mut aux = self.pending_aux.take_columns();
                    self.args = aux.split_off(self.n_keys().min(aux.len()));
                    self.keys = aux;
                    self.mem.shrink(std::mem::take(&mut self.buffered_bytes));
                    (Phase::Sorting(MergeSort::new(self.rows)), Step::Pending)
                } else {
                    (Phase::Concat, Step::Pending)
                }
            }
            Phase::Sorting(mut m) => {
                if m.step(&self.keys, &self.desc) {
                    let order = std::mem::take(&mut m.src);
                    // The merge sort's other index array is freed.
                    drop(m);
                    self.mem.shrink(vec_bytes::<u32>(self.rows));
                    (Phase::Bounds(order, Bounds::default()), Step::Pending)
                } else {
                    (Phase::Sorting(m), Step::Pending)
                }
            }
            Phase::Bounds(order, mut b) => {
                if self.bounds_step(&order, &mut b, cx)? {
                    (self.start_compute(order, b, cx)?, Step::Pending)
                } else {
                    (Phase::Bounds(order, b), Step::Pending)
                }
            }
            Phase::Compute {
                order,
                bounds,
                mut runs,
            } => {
                let s = Sorted {
                    order: &order,
                    keys: &self.keys,
                    n_part: self.partition.len(),
                    desc: &self.desc,
                    args: &self.args,
                };
                let mut budget = COMPUTE_BUDGET;
                for ((call, run), at) in self.calls.iter().zip(&mut runs).zip(&self.arg_at) {
                    compute(call, *at, run, &s, &bounds, &mut budget)?;
                    if budget == 0 {
                        break;
                    }
                }
                if runs.iter().all(|r| r.done == order.len()) {
                    // The keys and arguments are no longer needed.
                    let outs = runs.into_iter().map(|r| r.out).collect();
                    let freed: usize = self
                        .keys
                        .iter()
                        .chain(&self.args)
                        .map(Column::vec_bytes)
                        .sum();
                    super::reclaim::dispose(
                        (
                            std::mem::take(&mut self.keys),
                            std::mem::take(&mut self.args),
                        ),
                        freed,
                    );
                    self.mem.shrink(freed as u64);
                    (
                        Phase::Emit {
                            order,
                            outs,
                            pos: 0,
                        },
                        Step::Pending,
                    )
                } else {
                    (
                        Phase::Compute {
                            order,
                            bounds,
                            runs,
                        },
                        Step::Pending,
                    )
                }
            }
            Phase::Emit { order, outs, pos } => {
                if pos >= order.len() {
                    (Phase::Done, Step::Done)
                } else {
                    let end = (pos + EMIT_ROWS).min(order.len());
                    let idx = &order[pos..end];
                    let mut cols: Vec<Arc<Column>> =
                        self.data.iter().map(|c| Arc::new(c.gather(idx))).collect();
                    cols.extend(outs.iter().map(|c| Arc::new(c.slice(pos, end - pos))));
                    let b = Batch::new(cols, end - pos);
                    (
                        Phase::Emit {
                            order,
                            outs,
                            pos: end,
                        },
                        Step::Batch(b),
                    )
                }
            }
            Phase::Done => (Phase::Done, Step::Done),
        };
        self.phase = next;
        Ok(step)
    }
    fn describe(&self) -> String {
        format!("Window {}", self.text)
    }
    fn name(&self) -> &'static str {
        "Window"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::expr::EvalCx;
    use crate::host::ManualHost;
    use crate::pipeline::Resources;
    use std::sync::atomic::AtomicU64;

    use crate::pipeline::test_support::Source;

    fn ctx() -> Context {
        Context::root(Arc::new(ManualHost::new()))
            .node_id(1)
            .build()
            .expect("a root context builds")
    }

    /// Batches of `rows` (each a row of values of `types`), `per` rows each.
    fn batches(types: &[DataType], rows: &[Vec<Value>], per: usize) -> Vec<Batch> {
        rows.chunks(per.max(1))
            .map(|chunk| {
                let cols = (0..types.len())
                    .map(|c| {
                        let vals: Vec<Value> = chunk.iter().map(|r| r[c].clone()).collect();
                        Arc::new(Column::from_values(types[c], &vals))
                    })
                    .collect();
                Batch::new(cols, chunk.len())
            })
            .collect()
    }

    struct Out {
        rows: Vec<Vec<Value>>,
        steps: usize,
    }

    fn run_with(
        input: Vec<Batch>,
        partition: Vec<Expr>,
        order: Vec<SortKey>,
        calls: Vec<WindowCall>,
        budget: u64,
    ) -> (Result<Out, ExecError>, Arc<Resources>) {
        let c = ctx();
        let src = Instrumented::new(Box::new(Source(input.into_iter())), c.clone());
        let w = Window::new(src, partition, order, calls, "test".into());
        let mut op = Instrumented::new(Box::new(w), c);
        let res = Resources::new(budget, Arc::new(AtomicU64::new(0)));
        let progress = AtomicU64::new(0);
        let mut eval = EvalCx::default();
        let mut cx = OpCx {
            eval: &mut eval,
            resources: &res,
            progress: &progress,
            clock: None,
        };
        let mut rows = Vec::new();
        let mut steps = 0;
        let out = loop {
            steps += 1;
            match op.next(&mut cx) {
                Ok(Step::Batch(b)) => rows.extend((0..b.len).map(|i| b.row(i))),
                Ok(Step::Done) => break Ok(Out { rows, steps }),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        drop(op);
        (out, res)
    }

    fn run(
        input: Vec<Batch>,
        partition: Vec<Expr>,
        order: Vec<SortKey>,
        calls: Vec<WindowCall>,
    ) -> Vec<Vec<Value>> {
        let (out, res) = run_with(input, partition, order, calls, 1 << 30);
        assert_eq!(res.used(), 0, "every reservation is given back");
        match out {
            Ok(o) => o.rows,
            Err(e) => panic!("window failed: {e}"),
        }
    }

    fn call(func: WindowFunc, args: Vec<Expr>, frame: Frame, out_type: DataType) -> WindowCall {
        WindowCall {
            func,
            args,
            frame,
            out_type,
            text: "f() OVER w".into(),
        }
    }

    fn asc(c: usize) -> SortKey {
        SortKey {
            expr: Expr::Column(c),
            desc: false,
        }
    }

    fn int(v: Option<i64>) -> Value {
        v.map_or(Value::Null, Value::Int)
    }

    fn ints(rows: &[Vec<Option<i64>>]) -> Vec<Vec<Value>> {
        rows.iter()
            .map(|r| r.iter().map(|v| int(*v)).collect())
            .collect()
    }

    fn col(rows: &[Vec<Value>], c: usize) -> Vec<Value> {
        rows.iter().map(|r| r[c].clone()).collect()
    }

    #[test]
    fn ranks_within_partitions_with_ties() {
        // (g, x)
        let data = ints(&[
            vec![Some(1), Some(10)],
            vec![Some(2), Some(5)],
            vec![Some(1), Some(20)],
            vec![Some(1), Some(10)],
            vec![Some(2), Some(5)],
            vec![Some(2), Some(7)],
            vec![Some(1), Some(30)],
        ]);
        let ord = Frame::default_for(true);
        let calls = vec![
            call(WindowFunc::RowNumber, vec![], ord.clone(), DataType::Int),
            call(WindowFunc::Rank, vec![], ord.clone(), DataType::Int),
            call(WindowFunc::DenseRank, vec![], ord, DataType::Int),
        ];
        let out = run(
            batches(&[DataType::Int, DataType::Int], &data, 3),
            vec![Expr::Column(0)],
            vec![asc(1)],
            calls,
        );
        let got: Vec<Vec<Value>> = out.iter().map(|r| r[..].to_vec()).collect();
        let expect = ints(&[
            vec![Some(1), Some(10), Some(1), Some(1), Some(1)],
            vec![Some(1), Some(10), Some(2), Some(1), Some(1)],
            vec![Some(1), Some(20), Some(3), Some(3), Some(2)],
            vec![Some(1), Some(30), Some(4), Some(4), Some(3)],
            vec![Some(2), Some(5), Some(1), Some(1), Some(1)],
            vec![Some(2), Some(5), Some(2), Some(1), Some(1)],
            vec![Some(2), Some(7), Some(3), Some(3), Some(2)],
        ]);
        assert_eq!(got, expect);
    }

    #[test]
    fn ntile_puts_the_extra_rows_in_the_first_buckets() {
        let data: Vec<Vec<Value>> = (1..=7).map(|i| vec![Value::Int(i)]).collect();
        let calls = vec![
            call(
                WindowFunc::Ntile(3),
                vec![],
                Frame::default_for(true),
                DataType::Int,
            ),
            call(
                WindowFunc::Ntile(10),
                vec![],
                Frame::default_for(true),
                DataType::Int,
            ),
        ];
        let out = run(
            batches(&[DataType::Int], &data, 4),
            vec![],
            vec![asc(0)],
            calls,
        );
        let n3: Vec<i64> = col(&out, 1).iter().filter_map(Value::as_i64).collect();
        let n10: Vec<i64> = col(&out, 2).iter().filter_map(Value::as_i64).collect();
        assert_eq!(n3, vec![1, 1, 1, 2, 2, 3, 3]);
        assert_eq!(n10, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(ntile(0, 10, 4), 1);
        assert_eq!(ntile(2, 10, 4), 1);
        assert_eq!(ntile(3, 10, 4), 2);
        assert_eq!(ntile(6, 10, 4), 3);
        assert_eq!(ntile(9, 10, 4), 4);
    }

    #[test]
    fn lag_and_lead_with_offsets_and_defaults() {
        let data: Vec<Vec<Value>> = (1..=5).map(|i| vec![Value::Int(i * 10)]).collect();
        let f = Frame::default_for(true);
        let calls = vec![
            call(
                WindowFunc::Lag(1),
                vec![Expr::Column(0)],
                f.clone(),
                DataType::Int,
            ),
            call(
                WindowFunc::Lead(2),
                vec![Expr::Column(0), Expr::Literal(Value::Int(-1))],
                f.clone(),
                DataType::Int,
            ),
            call(WindowFunc::Lag(0), vec![Expr::Column(0)], f, DataType::Int),
        ];
        let out = run(
            batches(&[DataType::Int], &data, 2),
            vec![],
            vec![asc(0)],
            calls,
        );
        assert_eq!(
            col(&out, 1),
            vec![
                int(None),
                int(Some(10)),
                int(Some(20)),
                int(Some(30)),
                int(Some(40))
            ]
        );
        assert_eq!(
            col(&out, 2),
            vec![
                int(Some(30)),
                int(Some(40)),
                int(Some(50)),
                int(Some(-1)),
                int(Some(-1))
            ]
        );
        assert_eq!(col(&out, 3), col(&out, 0), "LAG(x, 0) is x");
    }

    #[test]
    fn the_default_frame_includes_peers_and_rows_frames_do_not() {
        // x: 1, 2, 2, 3 — the two 2s are peers.
        let data: Vec<Vec<Value>> = [1, 2, 2, 3].iter().map(|&i| vec![Value::Int(i)]).collect();
        let rows_running = Frame {
            units: FrameUnits::Rows,
            start: FrameBound::UnboundedPreceding,
            end: FrameBound::CurrentRow,
        };
        let calls = vec![
            call(
                WindowFunc::Agg(AggFunc::Sum),
                vec![Expr::Column(0)],
                Frame::default_for(true),
                DataType::Int,
            ),
            call(
                WindowFunc::Agg(AggFunc::Sum),
                vec![Expr::Column(0)],
                rows_running,
                DataType::Int,
            ),
            call(
                WindowFunc::LastValue,
                vec![Expr::Column(0)],
                Frame::default_for(true),
                DataType::Int,
            ),
        ];
        let out = run(
            batches(&[DataType::Int], &data, 4),
            vec![],
            vec![asc(0)],
            calls.clone(),
        );
        assert_eq!(
            col(&out, 1),
            ints(&[vec![Some(1), Some(5), Some(5), Some(8)]])[0]
        );
        assert_eq!(
            col(&out, 2),
            ints(&[vec![Some(1), Some(3), Some(5), Some(8)]])[0]
        );
        assert_eq!(
            col(&out, 3),
            ints(&[vec![Some(1), Some(2), Some(2), Some(3)]])[0]
        );
        // Without ORDER BY the default frame is the whole partition.
        let whole = vec![
            call(
                WindowFunc::Agg(AggFunc::Sum),
                vec![Expr::Column(0)],
                Frame::default_for(false),
                DataType::Int,
            ),
            call(
                WindowFunc::LastValue,
                vec![Expr::Column(0)],
                Frame::default_for(false),
                DataType::Int,
            ),
        ];
        let out = run(batches(&[DataType::Int], &data, 4), vec![], vec![], whole);
        assert_eq!(col(&out, 1), vec![Value::Int(8); 4]);
        assert_eq!(col(&out, 2), vec![Value::Int(3); 4], "input order kept");
    }

    #[test]
    fn nulls_sort_first_ascending_and_last_descending() {
        let data = ints(&[vec![Some(2)], vec![None], vec![Some(1)]]);
        let f = Frame::default_for(true);
        let rn = || {
            vec![call(
                WindowFunc::RowNumber,
                vec![],
                f.clone(),
                DataType::Int,
            )]
        };
        let out = run(
            batches(&[DataType::Int], &data, 3),
            vec![],
            vec![asc(0)],
            rn(),
        );
        assert_eq!(col(&out, 0), ints(&[vec![None, Some(1), Some(2)]])[0]);
        let desc = SortKey {
            expr: Expr::Column(0),
            desc: true,
        };
        let out = run(
            batches(&[DataType::Int], &data, 3),
            vec![],
            vec![desc],
            rn(),
        );
        assert_eq!(col(&out, 0), ints(&[vec![Some(2), Some(1), None]])[0]);
    }

    /// A small deterministic generator (no dependency, no flakiness).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, m: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % m
        }
    }

    /// The frame of sorted row `p`, by the definition (O(n) per row).
    fn brute_frame(keys: &[(i64, Option<i64>)], p: usize, f: &Frame, desc: bool) -> Vec<usize> {
        let part: Vec<usize> = (0..keys.len())
            .filter(|&q| keys[q].0 == keys[p].0)
            .collect();
        let pos = part.iter().position(|&q| q == p).unwrap_or(0) as i64;
        let off = |v: &Value| v.as_i64().unwrap_or(0);
        match f.units {
            FrameUnits::Rows => {
                let lo = match &f.start {
                    FrameBound::UnboundedPreceding => i64::MIN,
                    FrameBound::Preceding(v) => pos - off(v),
                    FrameBound::CurrentRow => pos,
                    FrameBound::Following(v) => pos + off(v),
                    FrameBound::UnboundedFollowing => i64::MAX,
                };
                let hi = match &f.end {
                    FrameBound::UnboundedPreceding => i64::MIN,
                    FrameBound::Preceding(v) => pos - off(v),
                    FrameBound::CurrentRow => pos,
                    FrameBound::Following(v) => pos + off(v),
                    FrameBound::UnboundedFollowing => i64::MAX,
                };
                (0..part.len() as i64)
                    .filter(|&i| i >= lo && i <= hi)
                    .map(|i| part[i as usize])
                    .collect()
            }
            FrameUnits::Range => {
                let cur = keys[p].1;
                // Value distance in the window's direction.
                let d = |q: usize| -> Option<i64> {
                    match (keys[q].1, cur) {
                        (Some(a), Some(c)) => Some(if desc { c - a } else { a - c }),
                        _ => None,
                    }
                };
                let ok = |q: usize, b: &FrameBound, is_start: bool| -> bool {
                    let both_null = keys[q].1.is_none() && cur.is_none();
                    // NULLs come first (asc) / last (desc) in window order.
                    let q_before = match (keys[q].1, cur) {
                        (None, Some(_)) => !desc,
                        (Some(_), None) => desc,
                        _ => false,
                    };
                    let q_after = match (keys[q].1, cur) {
                        (None, Some(_)) => desc,
                        (Some(_), None) => !desc,
                        _ => false,
                    };
                    let bound = match b {
                        FrameBound::UnboundedPreceding => return is_start || q_before,
                        FrameBound::UnboundedFollowing => return !is_start || q_after,
                        FrameBound::CurrentRow => 0,
                        FrameBound::Preceding(v) => -off(v),
                        FrameBound::Following(v) => off(v),
                    };
                    if both_null {
                        return true;
                    }
                    if q_before {
                        return !is_start;
                    }
                    if q_after {
                        return is_start;
                    }
                    match d(q) {
                        Some(x) if is_start => x >= bound,
                        Some(x) => x <= bound,
                        None => false,
                    }
                };
                part.into_iter()
                    .filter(|&q| ok(q, &f.start, true) && ok(q, &f.end, false))
                    .collect()
            }
        }
    }

    #[test]
    fn sliding_frames_match_their_definition() {
        let mut g = Lcg(7);
        let n = 3000;
        // (partition, key, value): few partitions, many ties, some NULLs.
        let data: Vec<Vec<Value>> = (0..n)
            .map(|_| {
                let k = g.next(40) as i64;
                let v = g.next(1000) as i64 - 500;
                vec![
                    Value::Int(g.next(4) as i64),
                    if g.next(10) == 0 {
                        Value::Null
                    } else {
                        Value::Int(k)
                    },
                    if g.next(8) == 0 {
                        Value::Null
                    } else {
                        Value::Int(v)
                    },
                ]
            })
            .collect();
        let b = |u, s, e| Frame {
            units: u,
            start: s,
            end: e,
        };
        use FrameBound::*;
        use FrameUnits::*;
        let i = |x| Value::Int(x);
        let frames = vec![
            b(Rows, UnboundedPreceding, CurrentRow),
            b(Rows, Preceding(i(3)), Following(i(2))),
            b(Rows, Following(i(1)), Following(i(4))),
            b(Rows, Preceding(i(5)), Preceding(i(2))),
            b(Rows, CurrentRow, UnboundedFollowing),
            b(Range, UnboundedPreceding, CurrentRow),
            b(Range, Preceding(i(3)), Following(i(2))),
            b(Range, Preceding(i(4)), Preceding(i(1))),
            b(Range, CurrentRow, UnboundedFollowing),
            b(Range, Following(i(1)), Following(i(3))),
        ];
        let funcs = [
            (WindowFunc::Agg(AggFunc::Sum), DataType::Int),
            (WindowFunc::Agg(AggFunc::Count), DataType::Int),
            (WindowFunc::Agg(AggFunc::Avg), DataType::Float),
            (WindowFunc::Agg(AggFunc::Min), DataType::Int),
            (WindowFunc::Agg(AggFunc::Max), DataType::Int),
            (WindowFunc::FirstValue, DataType::Int),
            (WindowFunc::LastValue, DataType::Int),
            (WindowFunc::NthValue(3), DataType::Int),
        ];
        for desc in [false, true] {
            let mut calls = Vec::new();
            for f in &frames {
                for (func, ty) in &funcs {
                    calls.push(call(func.clone(), vec![Expr::Column(2)], f.clone(), *ty));
                }
            }
            let order = vec![SortKey {
                expr: Expr::Column(1),
                desc,
            }];
            let types = [DataType::Int, DataType::Int, DataType::Int];
            let out = run(
                batches(&types, &data, 500),
                vec![Expr::Column(0)],
                order,
                calls,
            );
            assert_eq!(out.len(), n);
            let keys: Vec<(i64, Option<i64>)> = out
                .iter()
                .map(|r| (r[0].as_i64().unwrap_or(-1), r[1].as_i64()))
                .collect();
            for p in 0..n {
                let mut c = 3;
                for f in &frames {
                    let fr = brute_frame(&keys, p, f, desc);
                    let vals: Vec<i64> = fr.iter().filter_map(|&q| out[q][2].as_i64()).collect();
                    let expect = [
                        (!vals.is_empty()).then(|| Value::Int(vals.iter().sum())),
                        Some(Value::Int(vals.len() as i64)),
                        (!vals.is_empty()).then(|| {
                            Value::Float(vals.iter().sum::<i64>() as f64 / vals.len() as f64)
                        }),
                        vals.iter().min().map(|&x| Value::Int(x)),
                        vals.iter().max().map(|&x| Value::Int(x)),
                        fr.first().map(|&q| out[q][2].clone()),
                        fr.last().map(|&q| out[q][2].clone()),
                        fr.get(2).map(|&q| out[q][2].clone()),
                    ];
                    for e in expect {
                        let e = e.unwrap_or(Value::Null);
                        let got = &out[p][c];
                        let same = match (got, &e) {
                            (Value::Float(a), Value::Float(b)) => (a - b).abs() < 1e-9,
                            _ => *got == e && got.is_null() == e.is_null(),
                        };
                        assert!(
                            same,
                            "desc={desc} row {p} {:?} frame {f:?} call {}: got {got}, expected {e}",
                            keys[p],
                            c - 3
                        );
                        c += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn the_work_is_split_into_steps() {
        let n = 50_000i64;
        let data: Vec<Vec<Value>> = (0..n)
            .map(|i| vec![Value::Int((i * 7919) % 1000)])
            .collect();
        let calls = vec![call(
            WindowFunc::Agg(AggFunc::Sum),
            vec![Expr::Column(0)],
            Frame::default_for(true),
            DataType::Int,
        )];
        let (out, res) = run_with(
            batches(&[DataType::Int], &data, 4096),
            vec![],
            vec![asc(0)],
            calls,
            1 << 30,
        );
        let out = out.expect("runs");
        assert_eq!(out.rows.len(), n as usize);
        // Collect (13 batches), concat, sort, bounds and compute each take
        // several steps of bounded work; the emit ~50.
        assert!(
            out.steps > 13 + 50 + 2 * (n as usize / STEP_ROWS),
            "{}",
            out.steps
        );
        assert_eq!(res.used(), 0);
        // The last row's running sum is the total.
        let total: i64 = (0..n).map(|i| (i * 7919) % 1000).sum();
        assert_eq!(out.rows[n as usize - 1][1], Value::Int(total));
    }

    #[test]
    fn the_memory_budget_stops_it_with_1041_and_frees_everything() {
        let data: Vec<Vec<Value>> = (0..100_000).map(|i| vec![Value::Int(i)]).collect();
        let calls = vec![call(
            WindowFunc::RowNumber,
            vec![],
            Frame::default_for(true),
            DataType::Int,
        )];
        let (out, res) = run_with(
            batches(&[DataType::Int], &data, 4096),
            vec![],
            vec![asc(0)],
            calls,
            1 << 20,
        );
        assert!(
            matches!(out, Err(ExecError::MemoryBudget { .. })),
            "budget error"
        );
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn an_integer_sum_past_bigint_is_1690() {
        let data: Vec<Vec<Value>> = (0..2).map(|_| vec![Value::Int(i64::MAX)]).collect();
        let calls = vec![call(
            WindowFunc::Agg(AggFunc::Sum),
            vec![Expr::Column(0)],
            Frame::default_for(false),
            DataType::Int,
        )];
        let (out, res) = run_with(
            batches(&[DataType::Int], &data, 2),
            vec![],
            vec![],
            calls,
            1 << 30,
        );
        assert!(matches!(out, Err(ExecError::OutOfRange { .. })));
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn a_whole_partition_frame_is_built_in_bounded_steps() {
        let n = 10_000usize;
        let order: Vec<u32> = (0..n as u32).collect();
        let args = vec![Column::ints((0..n as i64).collect())];
        let s = Sorted {
            order: &order,
            keys: &[],
            n_part: 0,
            desc: &[],
            args: &args,
        };
        let bounds = Bounds {
            parts: vec![0, n as u32],
            peers: vec![0, n as u32],
            done: n,
        };
        let c = call(
            WindowFunc::Agg(AggFunc::Sum),
            vec![Expr::Column(0)],
            Frame::default_for(false),
            DataType::Int,
        );
        let mut run = CallRun {
            cursor: Cursor::default(),
            part_start: usize::MAX,
            lo: 0,
            hi: 0,
            acc: Acc::None,
            range_start: 0,
            range_end: 0,
            done: 0,
            out: Column::empty(DataType::Int),
        };
        let mut budget = 100;
        compute(&c, 0, &mut run, &s, &bounds, &mut budget).expect("computes");
        assert_eq!(
            (run.done, run.hi, budget),
            (0, 100, 0),
            "stopped inside the first row"
        );
        let mut calls = 1;
        while run.done < n {
            let mut budget = 100;
            compute(&c, 0, &mut run, &s, &bounds, &mut budget).expect("computes");
            calls += 1;
        }
        assert!(calls >= 2 * n / 100, "{calls} calls");
        let total = (n * (n - 1) / 2) as i64;
        assert_eq!(run.out, Column::ints(vec![total; n]));
    }

    #[test]
    fn a_kill_is_seen_in_every_phase_and_frees_everything() {
        use crate::cause::{Cause, Reason};
        use crate::level::Level;
        let n = 40_000i64;
        let data: Vec<Vec<Value>> = (0..n)
            .map(|i| vec![Value::Int(i % 7), Value::Int((i * 7919) % 1000)])
            .collect();
        let input = || batches(&[DataType::Int, DataType::Int], &data, 4096);
        let calls = || {
            vec![call(
                WindowFunc::Agg(AggFunc::Max),
                vec![Expr::Column(1)],
                Frame {
                    units: FrameUnits::Range,
                    start: FrameBound::Preceding(Value::Int(10)),
                    end: FrameBound::Following(Value::Int(10)),
                },
                DataType::Int,
            )]
        };
        // A dry run: the first step of each phase.
        let c = ctx();
        let src = Instrumented::new(Box::new(Source(input().into_iter())), c.clone());
        let mut w = Window::new(
            src,
            vec![Expr::Column(0)],
            vec![asc(1)],
            calls(),
            "t".into(),
        );
        let res = Resources::new(1 << 30, Arc::new(AtomicU64::new(0)));
        let progress = AtomicU64::new(0);
        let mut eval = EvalCx::default();
        let mut cx = OpCx {
            eval: &mut eval,
            resources: &res,
            progress: &progress,
            clock: None,
        };
        let mut first: Vec<(&'static str, usize)> = Vec::new();
        let mut steps = 0;
        loop {
            let name = w.phase_name();
            if first.last().is_none_or(|(p, _)| *p != name) {
                first.push((name, steps));
            }
            steps += 1;
            if matches!(w.next(&mut cx), Ok(Step::Done)) {
                break;
            }
        }
        let names: Vec<&str> = first.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            names,
            ["collect", "concat", "sort", "bounds", "compute", "emit"]
        );
        drop(w);
        // Killed one step into each phase: the next step is the kill's
        // error, and everything reserved is given back.
        for (phase, at) in &first {
            let c = ctx();
            let src = Instrumented::new(Box::new(Source(input().into_iter())), c.clone());
            let w = Window::new(
                src,
                vec![Expr::Column(0)],
                vec![asc(1)],
                calls(),
                "t".into(),
            );
            let mut op = Instrumented::new(Box::new(w), c.clone());
            let res = Resources::new(1 << 30, Arc::new(AtomicU64::new(0)));
            let mut eval = EvalCx::default();
            let mut cx = OpCx {
                eval: &mut eval,
                resources: &res,
                progress: &progress,
                clock: None,
            };
            for _ in 0..=*at {
                assert!(op.next(&mut cx).is_ok(), "{phase}");
            }
            c.cancel_with(Cause::canceled(
                Reason::KillQuery {
                    by_connection: 2,
                    by_user: "root".into(),
                },
                Level::Query,
                c.id(),
            ));
            let err = op.next(&mut cx).expect_err("killed");
            assert!(err.is_cancelled(), "{phase}: {err}");
            drop(op);
            assert_eq!(res.used(), 0, "{phase}: memory given back");
        }
    }
}
