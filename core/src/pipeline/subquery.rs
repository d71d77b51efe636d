//! Subqueries in expressions: the [`Apply`] operator.
//!
//! The planner turns every subquery of a clause (`(SELECT …)`, `EXISTS`,
//! `x [NOT] IN (SELECT …)`, `x op ANY / ALL (SELECT …)`) into a
//! [`Subquery`]: the subquery's own plan, how its result is reduced, the
//! expressions over the outer row that it reads (its *parameters*: the outer
//! columns a correlated subquery names, seen inside it as
//! [`Expr::Param`]), and the left operand of `IN` / `ANY` / `ALL`. The
//! operator appends one column per subquery to every input batch; the
//! clause's expression reads that column like any other.
//!
//! Each distinct set of parameter values is run once: an uncorrelated
//! subquery once per statement, a correlated one once per distinct outer
//! value (results are kept in a bounded cache, reserved from the budget).
//! A run builds the subquery's operators in a nested Pipeline context and
//! drives them one step per call of [`Operator::next`], returning
//! [`Step::Pending`] in between, so the driver checks the statement's
//! context and yields to the host between any two batches of any run: a
//! correlated loop over many outer rows is killable like every other
//! operator. Only a subquery's first run records its operators' spans
//! (see [`super::untraced`]); every run counts in EXPLAIN ANALYZE.
//!
//! Results follow MySQL:
//! - scalar: the single value; NULL for no row; error 1242 for more than
//!   one row (the planner asks for at most two);
//! - `EXISTS`: whether there is a row (the planner asks for at most one);
//! - `x op ANY (S)` (`IN` is `= ANY`, `NOT IN` is its negation and `op ALL`
//!   is `NOT (x negop ANY (S))`): false for an empty `S` even when `x` is
//!   NULL; else true if some comparison is true, NULL if none is but some
//!   is NULL (a NULL `x`, a NULL in `S`), false otherwise.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::cmp::Ordering;
use std::sync::Arc;

use super::memory::{vec_bytes, MemoryUse};
use super::{Instrumented, OpCx, Operator, Step};
use crate::context::Context;
use crate::data::{Batch, Column, DataType, Value};
use crate::error::ContextError;
use crate::expr::{BinOp, Datum, EvalCx, ExecError, Expr};
use crate::level::Level;

/// Correlated results kept at most (then the cache starts over).
const CACHE_ENTRIES: usize = 4096;

/// A cache entry's share of its hash table: the entry, twice over for the
/// table's spare capacity.
const ENTRY_BYTES: u64 = 2 * std::mem::size_of::<(ParamKey, Outcome)>() as u64 + 1;

/// A subquery's plan, built afresh for every run (the planner implements
/// it; the pipeline does not know plans).
pub trait SubqueryPlan: Send {
    /// Builds the subquery's operators in `pipeline`.
    fn build(&self, pipeline: &Context) -> Result<Instrumented, ContextError>;
    /// A copy (a plan holding subqueries is cloned with them).
    fn clone_box(&self) -> Box<dyn SubqueryPlan>;
}

/// How a subquery's rows become one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubqueryKind {
    /// `(SELECT …)`: its one value.
    Scalar,
    /// `EXISTS (SELECT …)`.
    Exists,
    /// `probe op ANY (SELECT …)`, negated when `negated` (`IN` is `= ANY`,
    /// `NOT IN` is negated `= ANY`, `op ALL` is negated `negop ANY`).
    Any {
        /// The comparison.
        op: BinOp,
        /// Whether the result is negated.
        negated: bool,
    },
}

/// One subquery of a clause.
pub struct Subquery {
    /// Its plan.
    pub plan: Box<dyn SubqueryPlan>,
    /// How its rows are reduced.
    pub kind: SubqueryKind,
    /// Its parameters, over the input row (empty: uncorrelated).
    pub params: Vec<Expr>,
    /// `IN` / `ANY` / `ALL`: the left operand, over the input row.
    pub probe: Option<Expr>,
    /// The type of the appended column.
    pub ty: DataType,
    /// Decorrelated (`EXISTS` / `IN` whose only correlation is
    /// `inner = outer` conjuncts): the plan runs once, uncorrelated, and
    /// its first `keys` columns are the inner sides; `params` are then the
    /// outer sides, looked up in the run's rows by equality (a semi-join).
    /// 0: not decorrelated.
    pub keys: usize,
    /// EXPLAIN text.
    pub text: String,
}

impl Clone for Subquery {
    fn clone(&self) -> Self {
        Subquery {
            plan: self.plan.clone_box(),
            kind: self.kind,
            params: self.params.clone(),
            probe: self.probe.clone(),
            ty: self.ty,
            keys: self.keys,
            text: self.text.clone(),
        }
    }
}

/// What a finished run leaves, cached by parameter values.
enum Outcome {
    Scalar(Value),
    Exists(bool),
    Set(ValueSet),
    /// A decorrelated run: per key (no NULL in it), the values with that
    /// key (for `EXISTS`, an empty set: the key is there).
    Keyed(HashMap<Vec<Value>, ValueSet>),
}

impl Outcome {
    fn heap_bytes(&self) -> u64 {
        match self {
            Outcome::Scalar(v) => v.heap_bytes() as u64,
            Outcome::Exists(_) => 0,
            Outcome::Set(s) => s.bytes,
            Outcome::Keyed(m) => m.values().map(|s| s.bytes).sum(),
        }
    }
}

/// The first column of a subquery's rows, for `IN` / `ANY` / `ALL`.
#[derive(Default)]
struct ValueSet {
    /// The non-NULL values.
    values: Vec<Value>,
    /// Whether a NULL was among them.
    has_null: bool,
    /// When there are 8 values or more, all numbers or all text: the
    /// values as a hash set (`=` then agrees with [`Value`]'s equality),
    /// and the least and greatest value (`x < ANY (S)` is `x < max(S)`, …).
    /// Boxed: a decorrelated subquery keeps a set per key.
    index: Option<Box<SetIndex>>,
    /// Memory accounted for it.
    bytes: u64,
}

/// See [`ValueSet::index`].
struct SetIndex {
    hashed: HashSet<Value>,
    lo: Value,
    hi: Value,
}

/// Numbers compare with numbers and text with text by [`Value`]'s own
/// equality; anything mixed compares by [`Value::sql_cmp`].
fn class(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Int(_) | Value::Float(_) => 1,
        Value::Text(_) => 2,
        // Decimals and dates compare by `sql_cmp` with anything else.
        Value::Decimal(_) => 3,
        Value::Date(_) | Value::DateTime(_) | Value::Time(_) => 4,
    }
}

fn holds(op: BinOp, o: Ordering) -> bool {
    match op {
        BinOp::Eq => o == Ordering::Equal,
        BinOp::NotEq => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::LtEq => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        BinOp::GtEq => o != Ordering::Less,
        // The planner only makes comparisons.
        _ => false,
    }
}

impl ValueSet {
    /// `probe op ANY (self)` in three-valued logic.
    fn any(&self, probe: &Value, op: BinOp) -> Option<bool> {
        if self.values.is_empty() && !self.has_null {
            return Some(false);
        }
        if probe.is_null() {
            return None;
        }
        if op == BinOp::Eq {
            if let (Some(x), Some(first)) = (&self.index, self.values.first()) {
                let h = &x.hashed;
                if class(first) == class(probe) {
                    return if h.contains(probe) {
                        Some(true)
                    } else if self.has_null {
                        None
                    } else {
                        Some(false)
                    };
                }
            }
        }
        // Numbers are in one order with any probe (text is read as a
        // number); text only with a text probe.
        if let (Some(x), Some(first)) = (&self.index, self.values.first()) {
            let (lo, hi) = (&x.lo, &x.hi);
            if class(first) == 1 || class(probe) == 2 {
                let some = match op {
                    BinOp::Lt | BinOp::LtEq => probe.sql_cmp(hi).is_some_and(|o| holds(op, o)),
                    BinOp::Gt | BinOp::GtEq => probe.sql_cmp(lo).is_some_and(|o| holds(op, o)),
                    BinOp::NotEq => {
                        lo.sql_cmp(hi) != Some(Ordering::Equal)
                            || probe.sql_cmp(lo) != Some(Ordering::Equal)
                    }
                    _ => self
                        .values
                        .iter()
                        .any(|v| probe.sql_cmp(v).is_some_and(|o| holds(op, o))),
                };
                return if some {
                    Some(true)
                } else if self.has_null {
                    None
                } else {
                    Some(false)
                };
            }
        }
        let mut unknown = self.has_null;
        for v in &self.values {
            match probe.sql_cmp(v) {
                Some(o) if holds(op, o) => return Some(true),
                Some(_) => {}
                None => unknown = true,
            }
        }
        if unknown {
            None
        } else {
            Some(false)
        }
    }

    /// Builds the hash set when the values allow it.
    fn finish(&mut self) {
        let Some(first) = self.values.first() else {
            return;
        };
        let c = class(first);
        if self.values.len() >= 8 && self.values.iter().all(|v| class(v) == c) {
            let hashed = self.values.iter().cloned().collect();
            let (mut lo, mut hi) = (first, first);
            for v in &self.values {
                if v.sql_cmp(lo) == Some(Ordering::Less) {
                    lo = v;
                }
                if v.sql_cmp(hi) == Some(Ordering::Greater) {
                    hi = v;
                }
            }
            self.index = Some(Box::new(SetIndex {
                hashed,
                lo: lo.clone(),
                hi: hi.clone(),
            }));
        }
    }
}

fn bool3(b: Option<bool>) -> Value {
    match b {
        Some(b) => Value::Int(b as i64),
        None => Value::Null,
    }
}

/// A run in progress.
struct Run {
    root: Instrumented,
    eval: EvalCx,
    key: ParamKey,
    rows: u64,
    first: Option<Value>,
    set: ValueSet,
    keyed: HashMap<Vec<Value>, ValueSet>,
    /// Whether its operators record spans (the subquery's first run only).
    traced: bool,
}

/// The batch being completed.
struct Current {
    batch: Batch,
    /// Per subquery, its parameters evaluated over the batch.
    params: Vec<Vec<Datum>>,
    /// Per subquery, its probe evaluated over the batch.
    probes: Vec<Option<Datum>>,
    /// Per subquery, the results so far.
    out: Vec<Vec<Value>>,
    /// Next row, next subquery.
    row: usize,
    sub: usize,
}

/// Per subquery: its spec, its cache and its statistics.
struct Slot {
    spec: Subquery,
    cache: HashMap<ParamKey, Outcome>,
    runs: u64,
    hits: u64,
    /// The last finished run's operators (for EXPLAIN ANALYZE).
    last: Option<Instrumented>,
}

/// Appends one column per subquery to every input batch (see the module
/// documentation).
pub struct Apply {
    input: Box<Instrumented>,
    slots: Vec<Slot>,
    pipeline: Context,
    inner: Option<Context>,
    cur: Option<Current>,
    run: Option<Run>,
    mem: MemoryUse,
    /// The outer row's key of a decorrelated subquery (reused).
    probe_key: Vec<Value>,
}

impl Apply {
    /// Appends the values of `subs` to `input`'s batches; runs are built in
    /// contexts nested in `pipeline`.
    pub fn new(input: Instrumented, subs: Vec<Subquery>, pipeline: Context) -> Self {
        Apply {
            input: Box::new(input),
            slots: subs
                .into_iter()
                .map(|spec| Slot {
                    spec,
                    cache: HashMap::default(),
                    runs: 0,
                    hits: 0,
                    last: None,
                })
                .collect(),
            pipeline,
            inner: None,
            cur: None,
            run: None,
            mem: MemoryUse::default(),
            probe_key: Vec::new(),
        }
    }

    fn inner_ctx(&mut self) -> Result<Context, ExecError> {
        if let Some(c) = &self.inner {
            return Ok(c.clone());
        }
        let c = self
            .pipeline
            .child(Level::Pipeline)
            .name("pipeline (subquery)")
            .build()?;
        self.inner = Some(c.clone());
        Ok(c)
    }

    /// One step of the run in progress; `true` when it finished (its
    /// outcome is then in the cache).
    fn step_run(&mut self, cx: &mut OpCx<'_>) -> Result<Option<Step>, ExecError> {
        let Some(run) = &mut self.run else {
            return Ok(None);
        };
        let Some(cur) = &self.cur else {
            return Ok(None);
        };
        let slot = &self.slots[cur.sub];
        let kind = slot.spec.kind;
        let step = {
            let mut icx = OpCx {
                eval: &mut run.eval,
                resources: cx.resources,
                progress: cx.progress,
                clock: cx.clock.clone(),
            };
            // Only a subquery's first run records spans (see `untraced`).
            let s = if run.traced {
                run.root.next(&mut icx)
            } else {
                super::untraced(|| run.root.next(&mut icx))
            };
            // What the run's expressions owe is the statement's.
            cx.eval.warnings += std::mem::take(&mut run.eval.warnings);
            cx.eval.sleep_owed += std::mem::take(&mut run.eval.sleep_owed);
            s?
        };
        let mut finished = false;
        match step {
            Step::Batch(b) if slot.spec.keys > 0 => {
                run.rows += b.len as u64;
                let n = slot.spec.keys;
                for i in 0..b.len {
                    let key: Vec<Value> = b.columns[..n.min(b.columns.len())]
                        .iter()
                        .map(|c| c.value(i))
                        .collect();
                    if key.iter().any(Value::is_null) {
                        continue;
                    }
                    let value = match kind {
                        SubqueryKind::Any { .. } => b.columns.get(n).map(|c| c.value(i)),
                        _ => None,
                    };
                    let entry = match run.keyed.entry(key) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            let key = e.key();
                            let bytes = ENTRY_BYTES
                                + vec_bytes::<Value>(key.len())
                                + key.iter().map(|v| v.heap_bytes() as u64).sum::<u64>();
                            self.mem.grow(cx.resources, bytes)?;
                            e.insert(ValueSet::default())
                        }
                    };
                    match value {
                        Some(Value::Null) => entry.has_null = true,
                        Some(v) => {
                            let bytes = v.heap_bytes() as u64 + vec_bytes::<Value>(1);
                            self.mem.grow(cx.resources, bytes)?;
                            entry.bytes += bytes;
                            entry.values.push(v);
                        }
                        None => {}
                    }
                }
            }
            Step::Batch(b) => {
                run.rows += b.len as u64;
                match kind {
                    SubqueryKind::Scalar => {
                        if run.rows > 1 {
                            return Err(ExecError::SubqueryRows);
                        }
                        if b.len > 0 {
                            run.first = Some(b.columns.first().map_or(Value::Null, |c| c.value(0)));
                        }
                    }
                    SubqueryKind::Exists => finished = run.rows > 0,
                    SubqueryKind::Any { .. } => {
                        if let Some(c) = b.columns.first() {
                            let before = run.set.values.capacity();
                            let mut text = 0u64;
                            let mut vals = Vec::with_capacity(b.len);
                            for i in 0..b.len {
                                let v = c.value(i);
                                if v.is_null() {
                                    run.set.has_null = true;
                                } else {
                                    text += v.heap_bytes() as u64;
                                    vals.push(v);
                                }
                            }
                            run.set.values.reserve(vals.len());
                            let grown = vec_bytes::<Value>(run.set.values.capacity())
                                .saturating_sub(vec_bytes::<Value>(before));
                            self.mem.grow(cx.resources, grown + text)?;
                            run.set.bytes += grown + text;
                            run.set.values.extend(vals);
                        }
                    }
                }
            }
            Step::Pending => {}
            Step::Sleep(d) => return Ok(Some(Step::Sleep(d))),
            Step::Wait(w) => return Ok(Some(Step::Wait(w))),
            Step::Done => finished = true,
        }
        if !finished {
            return Ok(Some(Step::Pending));
        }
        let Some(mut run) = self.run.take() else {
            return Ok(None);
        };
        let outcome = match kind {
            _ if self.slots[cur.sub].spec.keys > 0 => {
                let mut keyed = std::mem::take(&mut run.keyed);
                for set in keyed.values_mut() {
                    if set.values.len() >= 8 {
                        let extra =
                            crate::pipeline::memory::hash_table_bytes::<Value>(set.values.len());
                        self.mem.grow(cx.resources, extra)?;
                        set.bytes += extra;
                    }
                    set.finish();
                }
                Outcome::Keyed(keyed)
            }
            SubqueryKind::Scalar => Outcome::Scalar(run.first.take().unwrap_or(Value::Null)),
            SubqueryKind::Exists => Outcome::Exists(run.rows > 0),
            SubqueryKind::Any { .. } => {
                let mut set = std::mem::take(&mut run.set);
                if set.values.len() >= 8 {
                    let extra =
                        crate::pipeline::memory::hash_table_bytes::<Value>(set.values.len());
                    self.mem.grow(cx.resources, extra)?;
                    set.bytes += extra;
                }
                set.finish();
                Outcome::Set(set)
            }
        };
        let slot = &mut self.slots[cur.sub];
        slot.last = Some(run.root);
        if slot.cache.len() >= CACHE_ENTRIES {
            let freed: u64 = slot.cache.values().map(Outcome::heap_bytes).sum::<u64>()
                + slot.cache.keys().map(key_bytes).sum::<u64>()
                + ENTRY_BYTES * slot.cache.len() as u64;
            slot.cache.clear();
            self.mem.shrink(freed);
        }
        let kb = key_bytes(&run.key) + ENTRY_BYTES;
        self.mem.grow(cx.resources, kb + outcome_extra(&outcome))?;
        slot.cache.insert(run.key, outcome);
        Ok(None)
    }

    /// Fills in results from the cache until a run must start (started
    /// here) or the batch is complete (then returned).
    fn advance(&mut self, cx: &mut OpCx<'_>) -> Result<Option<Batch>, ExecError> {
        loop {
            let Some(cur) = &mut self.cur else {
                return Ok(None);
            };
            if cur.row >= cur.batch.len {
                let Some(cur) = self.cur.take() else {
                    return Ok(None);
                };
                let mut cols = cur.batch.columns;
                for (slot, vals) in self.slots.iter().zip(cur.out) {
                    cols.push(Arc::new(Column::from_values(slot.spec.ty, &vals)));
                }
                return Ok(Some(Batch::new(cols, cur.batch.len)));
            }
            let (row, k) = (cur.row, cur.sub);
            let slot = &mut self.slots[k];
            // A decorrelated subquery runs once; its parameters are looked
            // up in that run's rows.
            let key = if slot.spec.keys > 0 {
                ParamKey::default()
            } else {
                ParamKey::new(cur.params[k].iter().map(|d| d.value(row)))
            };
            match slot.cache.get(&key) {
                Some(outcome) => {
                    slot.hits += 1;
                    let v = match (outcome, slot.spec.kind) {
                        (Outcome::Scalar(v), _) => v.clone(),
                        (Outcome::Exists(b), _) => Value::Int(*b as i64),
                        (Outcome::Set(s), SubqueryKind::Any { op, negated }) => {
                            let probe =
                                cur.probes[k].as_ref().map_or(Value::Null, |d| d.value(row));
                            let r = s.any(&probe, op);
                            bool3(if negated { r.map(|b| !b) } else { r })
                        }
                        (Outcome::Set(_), _) => Value::Null,
                        (Outcome::Keyed(m), kind) => {
                            let at = &mut self.probe_key;
                            at.clear();
                            at.extend(cur.params[k].iter().map(|d| d.value(row)));
                            let hit = if at.iter().any(Value::is_null) {
                                None
                            } else {
                                m.get(at.as_slice())
                            };
                            match kind {
                                SubqueryKind::Any { op, negated } => {
                                    let probe = cur.probes[k]
                                        .as_ref()
                                        .map_or(Value::Null, |d| d.value(row));
                                    let r = hit.map_or(Some(false), |s| s.any(&probe, op));
                                    bool3(if negated { r.map(|b| !b) } else { r })
                                }
                                _ => Value::Int(hit.is_some() as i64),
                            }
                        }
                    };
                    cur.out[k].push(v);
                    cur.sub += 1;
                    if cur.sub == self.slots.len() {
                        cur.sub = 0;
                        cur.row += 1;
                    }
                }
                None => {
                    slot.runs += 1;
                    let eval = EvalCx {
                        strict: cx.eval.strict,
                        params: key.values().cloned().collect(),
                        ..EvalCx::default()
                    };
                    let ctx = self.inner_ctx()?;
                    let root = self.slots[k].spec.plan.build(&ctx)?;
                    self.run = Some(Run {
                        root,
                        eval,
                        key,
                        rows: 0,
                        first: None,
                        set: ValueSet::default(),
                        keyed: HashMap::default(),
                        traced: self.slots[k].runs == 1,
                    });
                    return Ok(None);
                }
            }
        }
    }
}

/// A run's parameter values, each with its type (`1` and `1.0` are
/// different runs): the key of a subquery's cache. One or two parameters
/// (most correlations) are held inline, so that looking a row up allocates
/// nothing and clearing a full cache frees nothing but text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
enum ParamKey {
    #[default]
    None,
    One([(DataType, Value); 1]),
    Two([(DataType, Value); 2]),
    Many(Vec<(DataType, Value)>),
}

impl ParamKey {
    fn new(values: impl Iterator<Item = Value>) -> Self {
        let mut it = values.map(|v| (v.data_type(), v));
        let Some(a) = it.next() else {
            return ParamKey::None;
        };
        let Some(b) = it.next() else {
            return ParamKey::One([a]);
        };
        match it.next() {
            None => ParamKey::Two([a, b]),
            Some(c) => {
                let mut all = vec![a, b, c];
                all.extend(it);
                ParamKey::Many(all)
            }
        }
    }

    fn pairs(&self) -> &[(DataType, Value)] {
        match self {
            ParamKey::None => &[],
            ParamKey::One(p) => p,
            ParamKey::Two(p) => p,
            ParamKey::Many(p) => p,
        }
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.pairs().iter().map(|(_, v)| v)
    }
}

/// What a key holds on the heap.
fn key_bytes(k: &ParamKey) -> u64 {
    let list = match k {
        ParamKey::Many(p) => vec_bytes::<(DataType, Value)>(p.len()),
        _ => 0,
    };
    list + k.values().map(|v| v.heap_bytes() as u64).sum::<u64>()
}

/// What an outcome holds beyond what its run already accounted for.
fn outcome_extra(o: &Outcome) -> u64 {
    match o {
        Outcome::Set(_) => 0,
        other => other.heap_bytes(),
    }
}

impl Drop for Apply {
    fn drop(&mut self) {
        // The caches (their tables keep their capacity when cleared; a
        // correlated `IN`'s sets of values per outer value) and the last
        // run: freed off the statement's path when big (unmapping a
        // megabyte of table took 200-400 us of a KILL's teardown).
        let tables: usize = self
            .slots
            .iter()
            .map(|s| s.cache.capacity() * std::mem::size_of::<(ParamKey, Outcome)>())
            .sum();
        let caches: Vec<_> = self
            .slots
            .iter_mut()
            .map(|s| (std::mem::take(&mut s.cache), s.last.take()))
            .collect();
        super::reclaim::dispose(
            (caches, self.run.take(), self.cur.take()),
            tables + self.mem.bytes() as usize,
        );
    }
}

impl Operator for Apply {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if let Some(step) = self.step_run(cx)? {
            return Ok(step);
        }
        if self.cur.is_none() {
            match self.input.next(cx)? {
                Step::Batch(b) => {
                    let mut params = Vec::with_capacity(self.slots.len());
                    let mut probes = Vec::with_capacity(self.slots.len());
                    for s in &self.slots {
                        let mut ps = Vec::with_capacity(s.spec.params.len());
                        for p in &s.spec.params {
                            ps.push(p.eval(&b, cx.eval)?);
                        }
                        params.push(ps);
                        probes.push(match &s.spec.probe {
                            Some(p) => Some(p.eval(&b, cx.eval)?),
                            None => None,
                        });
                    }
                    self.cur = Some(Current {
                        out: self
                            .slots
                            .iter()
                            .map(|_| Vec::with_capacity(b.len))
                            .collect(),
                        batch: b,
                        params,
                        probes,
                        row: 0,
                        sub: 0,
                    });
                }
                other => return Ok(other),
            }
        }
        Ok(match self.advance(cx)? {
            Some(b) => Step::Batch(b),
            None => Step::Pending,
        })
    }

    fn describe(&self) -> String {
        let subs = self
            .slots
            .iter()
            .map(|s| {
                format!(
                    "{} (runs={} cached={})",
                    s.spec.text,
                    s.runs,
                    s.hits.saturating_sub(s.runs)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!("Subqueries {subs}")
    }

    fn name(&self) -> &'static str {
        "Subqueries"
    }

    fn children(&self) -> Vec<&Instrumented> {
        let mut out = vec![&*self.input];
        out.extend(self.slots.iter().filter_map(|s| s.last.as_ref()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: &[Value]) -> ParamKey {
        ParamKey::new(values.iter().cloned())
    }

    #[test]
    fn param_keys_hold_one_or_two_values_inline_and_keep_types_apart() {
        assert_eq!(key(&[]), ParamKey::None);
        let one = key(&[Value::Int(1)]);
        assert!(matches!(one, ParamKey::One(_)));
        assert_eq!(key_bytes(&one), 0, "no heap");
        let two = [Value::Int(1), Value::Int(2)];
        assert!(matches!(key(&two), ParamKey::Two(_)));
        assert_eq!(key_bytes(&key(&two)), 0, "no heap");
        assert_eq!(key(&two).values().cloned().collect::<Vec<_>>(), two);
        let three = [Value::Int(1), Value::Null, Value::Int(3)];
        assert!(matches!(key(&three), ParamKey::Many(_)));
        assert!(key_bytes(&key(&three)) > 0, "the list is on the heap");
        assert_eq!(key(&three).values().cloned().collect::<Vec<_>>(), three);
        // The same number as another type is another key.
        assert_ne!(one, key(&[Value::Float(1.0)]));
        assert_eq!(one, key(&[Value::Int(1)]));
    }
}
