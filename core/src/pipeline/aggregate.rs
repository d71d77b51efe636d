//! Hash aggregation: `GROUP BY` with count / count(DISTINCT) / sum / avg /
//! min / max, and `DISTINCT`.
//!
//! Each step consumes one input batch: the group ids of its rows are found
//! first (a fast path for one integer key), then every aggregate updates its
//! column of states with a typed loop. Output is emitted a batch at a time.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Reservation, Step, BATCH_ROWS};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::sql::error::ExecError;
use crate::sql::expr::{Datum, Expr};

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
            AggFunc::Avg => DataType::Float,
            AggFunc::Sum => match self.arg_type {
                DataType::Int | DataType::Null => DataType::Int,
                _ => DataType::Float,
            },
            AggFunc::Min | AggFunc::Max => self.arg_type,
        }
    }
}

enum State {
    Count(Vec<i64>),
    SumInt(Vec<i128>, Vec<bool>),
    SumFloat(Vec<f64>, Vec<bool>),
    Avg(Vec<f64>, Vec<i64>),
    MinMax(Vec<Value>, bool),
    Distinct(Vec<FxHashSet<Value>>),
}

impl State {
    fn new(spec: &AggSpec) -> State {
        if spec.distinct {
            return State::Distinct(Vec::new());
        }
        match spec.func {
            AggFunc::CountStar | AggFunc::Count => State::Count(Vec::new()),
            AggFunc::Sum if matches!(spec.arg_type, DataType::Int | DataType::Null) => {
                State::SumInt(Vec::new(), Vec::new())
            }
            AggFunc::Sum => State::SumFloat(Vec::new(), Vec::new()),
            AggFunc::Avg => State::Avg(Vec::new(), Vec::new()),
            AggFunc::Min => State::MinMax(Vec::new(), true),
            AggFunc::Max => State::MinMax(Vec::new(), false),
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
            State::MinMax(v, _) => v.resize(n, Value::Null),
            State::Distinct(v) => v.resize_with(n, FxHashSet::default),
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
            (State::Distinct(sets), Some(d)) => {
                for i in 0..len {
                    let v = d.value(i);
                    if !v.is_null() {
                        sets[g(i)].insert(v);
                    }
                }
            }
            (state, Some(Datum::Scalar(v))) => {
                // A constant argument: same as a column of it.
                let col = Datum::Scalar(v.clone()).into_column(len);
                state.update(gids, Some(&Datum::Col(col)), len);
            }
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

enum Groups {
    None,
    Int {
        map: FxHashMap<i64, u32>,
        /// Group ids of the keys `0..DENSE_KEYS`, indexed by the key
        /// (`NO_GROUP` when unseen): a lookup without hashing.
        dense: Vec<u32>,
        null: Option<u32>,
        keys: Vec<Value>,
    },
    Generic {
        map: FxHashMap<Vec<Value>, u32>,
        keys: Vec<Vec<Value>>,
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
    reservation: Option<Reservation>,
    text: String,
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
        let groups = match key_types.as_slice() {
            [] => Groups::None,
            [DataType::Int] => Groups::Int {
                map: FxHashMap::default(),
                dense: Vec::new(),
                null: None,
                keys: Vec::new(),
            },
            _ => Groups::Generic {
                map: FxHashMap::default(),
                keys: Vec::new(),
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
            reservation: None,
            text,
        };
        if matches!(agg.groups, Groups::None) {
            agg.ngroups = 1;
            agg.states.iter_mut().for_each(|s| s.resize(1));
        }
        agg
    }

    fn group_ids(&mut self, b: &Batch, cx: &mut OpCx<'_>) -> Result<Option<Vec<u32>>, ExecError> {
        let mut key_cols = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            key_cols.push(k.eval(b, cx.eval)?.into_column(b.len));
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
                            out.extend(v.iter().map(|&x| int_group(x, map, dense, keys)));
                        }
                    }
                    (ColumnData::Int(v), _) => {
                        for (i, x) in v.iter().enumerate() {
                            let id = if col.is_null(i) {
                                *null.get_or_insert_with(|| {
                                    keys.push(Value::Null);
                                    (keys.len() - 1) as u32
                                })
                            } else {
                                int_group(*x, map, dense, keys)
                            };
                            out.push(id);
                        }
                    }
                    _ => {
                        for i in 0..b.len {
                            let v = col.value(i);
                            let id = match v.as_i64().filter(|_| !v.is_null()) {
                                None => *null.get_or_insert_with(|| {
                                    keys.push(Value::Null);
                                    (keys.len() - 1) as u32
                                }),
                                Some(x) => int_group(x, map, dense, keys),
                            };
                            out.push(id);
                        }
                    }
                }
                self.ngroups = keys.len();
                out
            }
            Groups::Generic { map, keys } => {
                let mut out = Vec::with_capacity(b.len);
                for i in 0..b.len {
                    let key: Vec<Value> = key_cols.iter().map(|c| c.value(i)).collect();
                    let next = keys.len() as u32;
                    let id = match map.get(&key) {
                        Some(id) => *id,
                        None => {
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
            self.states.iter_mut().for_each(|s| s.resize(n));
            let bytes =
                ((self.ngroups - before) * (48 + 24 * (self.keys.len() + self.aggs.len()))) as u64;
            match &mut self.reservation {
                Some(r) => r.grow(bytes)?,
                None => self.reservation = Some(cx.resources.reserve(bytes)?),
            }
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
        let bytes = self.ngroups * (48 + 24 * (self.keys.len() + self.aggs.len()));
        super::reclaim::dispose(
            (
                std::mem::take(&mut self.states),
                std::mem::replace(&mut self.groups, Groups::None),
            ),
            bytes,
        );
    }
}

impl Operator for HashAggregate {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if !self.input_done {
            return match self.input.next(cx)? {
                Step::Batch(b) => {
                    let gids = self.group_ids(&b, cx)?;
                    for (spec, state) in self.aggs.iter().zip(self.states.iter_mut()) {
                        let arg = match &spec.arg {
                            Some(e) => Some(e.eval(&b, cx.eval)?),
                            None => None,
                        };
                        state.update(gids.as_deref(), arg.as_ref(), b.len);
                    }
                    Ok(Step::Pending)
                }
                Step::Done => {
                    self.input_done = true;
                    Ok(Step::Pending)
                }
                other => Ok(other),
            };
        }
        if self.emitted >= self.ngroups {
            return Ok(Step::Done);
        }
        let end = (self.emitted + BATCH_ROWS).min(self.ngroups);
        let mut cols = Vec::new();
        for (k, ty) in self.key_types.iter().enumerate() {
            let vals: Vec<Value> = (self.emitted..end).map(|g| self.key_value(g, k)).collect();
            cols.push(Arc::new(Column::from_values(*ty, &vals)));
        }
        for (spec, state) in self.aggs.iter().zip(&self.states) {
            let vals = (self.emitted..end)
                .map(|g| state.finish(spec, g))
                .collect::<Result<Vec<Value>, ExecError>>()?;
            cols.push(Arc::new(Column::from_values(spec.output_type(), &vals)));
        }
        let n = end - self.emitted;
        self.emitted = end;
        Ok(Step::Batch(Batch::new(cols, n)))
    }
    fn describe(&self) -> String {
        format!("HashAggregate {}", self.text)
    }
    fn name(&self) -> &'static str {
        "HashAggregate"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}
