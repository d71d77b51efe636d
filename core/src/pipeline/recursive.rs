//! `WITH RECURSIVE`: the iteration of a recursive common table expression.
//!
//! [`RecursiveUnion`] first runs the non-recursive part (the *anchor*); its
//! rows are the first *working table*. Each iteration then runs the
//! recursive part (the *term*) over the working table of the iteration
//! before, whose rows [`WorkTableScan`] reads; the rows the term produces
//! (with `UNION DISTINCT`, those not produced before) are output and become
//! the next working table. The recursion ends when an iteration produces no
//! row. As in MySQL, starting more iterations than `cte_max_recursion_depth`
//! is error 3636, whatever the rows (so a runaway recursion ends there, or at
//! `max_execution_time`, or at a KILL).
//!
//! Operators are single-use, so the term's operators are built anew for each
//! iteration by a [`TermBuilder`] that the planner hands over (the pipeline
//! never sees the planner's types). They run in the recursive union's
//! pipeline context, so a KILL or a deadline reaches them, and are dropped
//! (with their memory reservations) when their iteration ends. Only the
//! first iteration's operators record spans (see [`super::untraced`]).
//!
//! Context citizen: every call does one step of the anchor or of the term,
//! or starts an iteration, and returns (the wrapping [`Instrumented`] checks
//! the context before each call, the driver yields between them). The
//! working tables, the rows kept for `UNION DISTINCT` and the buffered
//! result are reserved from the statement's budget.
//!
//! MySQL materializes a recursive CTE before the query reads it, so a `LIMIT`
//! outside the CTE does not stop a runaway recursion (3636 still comes); with
//! `materialize`, the result is buffered until the recursion ends, which
//! keeps that. A `LIMIT` of the CTE's own query stops the recursion (MySQL
//! 8.0.19): the planner then streams (no `materialize`) under a limit.

use std::collections::VecDeque;
use std::sync::Arc;

use super::basic::conform;
use super::memory::{buffered_batch_bytes, MemoryUse};
use super::setop::RowCounts;
use super::{Instrumented, OpCx, Operator, Resources, Step, BATCH_ROWS};
use crate::context::Context;
use crate::data::{Batch, DataType};
use crate::expr::ExecError;
use crate::sync::{lock, Mutex};

/// What a kept batch costs beyond its columns' heap: the batch, its column
/// list and each column's shared allocation (a recursion of one row per
/// iteration keeps many small batches).
fn batch_bytes(b: &Batch) -> u64 {
    let (data, _) = buffered_batch_bytes(b, &[]);
    data + 64 + 96 * b.columns.len() as u64
}

/// Builds one instance of the recursive part's operators, in the given
/// pipeline context, reading the working table through a [`WorkTableScan`].
pub type TermBuilder = Box<dyn FnMut(&Context) -> Result<Instrumented, ExecError> + Send>;

/// The working table of a recursion: the rows of the last iteration,
/// shared between the [`RecursiveUnion`] that sets them and the
/// [`WorkTableScan`]s of the term that read them.
#[derive(Debug, Default)]
pub struct WorkTable {
    rows: Mutex<Arc<Vec<Batch>>>,
}

impl WorkTable {
    /// An empty working table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    fn set(&self, rows: Vec<Batch>) {
        *lock(&self.rows) = Arc::new(rows);
    }
    fn get(&self) -> Arc<Vec<Batch>> {
        lock(&self.rows).clone()
    }
}

/// Reads the working table as it is when the scan first runs.
pub struct WorkTableScan {
    name: String,
    table: Arc<WorkTable>,
    rows: Option<Arc<Vec<Batch>>>,
    pos: usize,
}

impl WorkTableScan {
    /// A scan of `table`, the working table of CTE `name`.
    pub fn new(name: String, table: Arc<WorkTable>) -> Self {
        WorkTableScan {
            name,
            table,
            rows: None,
            pos: 0,
        }
    }
}

impl Operator for WorkTableScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let rows = self.rows.get_or_insert_with(|| self.table.get());
        match rows.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                // Rows examined, as a table scan counts them.
                cx.progress
                    .fetch_add(b.len as u64, std::sync::atomic::Ordering::Relaxed);
                Ok(Step::Batch(b.clone()))
            }
            None => Ok(Step::Done),
        }
    }
    fn describe(&self) -> String {
        format!("WorkTableScan {}", self.name)
    }
    fn name(&self) -> &'static str {
        "WorkTableScan"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Anchor,
    Term,
    /// Between iterations: the next one starts, or the recursion ends.
    Between,
    /// Emitting the buffered result.
    Emit,
    Done,
}

/// How a [`RecursiveUnion`] runs.
#[derive(Clone, Debug)]
pub struct RecursionSpec {
    /// The CTE's name (for EXPLAIN).
    pub name: String,
    /// Output column types (the anchor's: the term's rows are converted).
    pub types: Vec<DataType>,
    /// `UNION DISTINCT`: a row already produced is dropped.
    pub distinct: bool,
    /// Iterations allowed (`cte_max_recursion_depth`).
    pub max_iterations: u64,
    /// Buffer the result until the recursion ends (see the module doc).
    pub materialize: bool,
}

/// The iteration of a recursive CTE (see the module doc).
pub struct RecursiveUnion {
    spec: RecursionSpec,
    anchor: Instrumented,
    /// The term of the running iteration (built at construction for
    /// EXPLAIN, then used by the first iteration).
    term: Option<Instrumented>,
    build: TermBuilder,
    ctx: Context,
    work: Arc<WorkTable>,
    phase: Phase,
    iterations: u64,
    /// Rows seen so far (`UNION DISTINCT`).
    seen: Option<RowCounts>,
    /// The rows of the running iteration: the next working table.
    next_rows: Vec<Batch>,
    next_mem: MemoryUse,
    /// The working table's memory (while the term reads it).
    work_mem: MemoryUse,
    /// The buffered result (`materialize`), which also holds the working
    /// tables' rows (shared), so they are not counted twice.
    out: VecDeque<Batch>,
    out_mem: MemoryUse,
}

impl RecursiveUnion {
    /// Runs `anchor`, then `term` over `work`, then terms built by `build`
    /// (in pipeline `ctx`) until one yields no row. `term` is the first
    /// iteration's (shown by EXPLAIN before anything runs).
    pub fn new(
        spec: RecursionSpec,
        anchor: Instrumented,
        term: Instrumented,
        build: TermBuilder,
        work: Arc<WorkTable>,
        ctx: Context,
    ) -> Self {
        RecursiveUnion {
            seen: spec.distinct.then(RowCounts::default),
            spec,
            anchor,
            term: Some(term),
            build,
            ctx,
            work,
            phase: Phase::Anchor,
            iterations: 0,
            next_rows: Vec::new(),
            next_mem: MemoryUse::default(),
            work_mem: MemoryUse::default(),
            out: VecDeque::new(),
            out_mem: MemoryUse::default(),
        }
    }

    /// Iterations started so far.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Takes in rows of the anchor or of the term: converted to the output
    /// types, without the rows seen before (`DISTINCT`), kept as the next
    /// working table. The batch to output now, if any.
    fn accept(&mut self, b: Batch, cx: &mut OpCx<'_>) -> Result<Option<Batch>, ExecError> {
        let cols = b
            .columns
            .into_iter()
            .zip(&self.spec.types)
            .map(|(c, t)| conform(c, *t))
            .collect();
        let mut b = Batch::new(cols, b.len);
        if let Some(seen) = &mut self.seen {
            seen.reserve_now(b.len, cx.resources)?;
            let mut keep = Vec::new();
            for i in 0..b.len {
                if seen.add(&b.row(i), cx.resources)? {
                    keep.push(i as u32);
                }
            }
            if keep.len() < b.len {
                b = b.gather(&keep);
            }
        }
        if b.len == 0 {
            return Ok(None);
        }
        self.next_mem.grow(cx.resources, batch_bytes(&b))?;
        self.next_rows.push(b.clone());
        if self.spec.materialize {
            self.buffer(b, cx.resources)?;
            Ok(None)
        } else {
            Ok(Some(b))
        }
    }

    /// Adds `b` to the buffered result: to the last batch while it has
    /// room (a recursion of one row per iteration would otherwise keep a
    /// batch, and its allocations, per row).
    fn buffer(&mut self, b: Batch, res: &Arc<Resources>) -> Result<(), ExecError> {
        if let Some(last) = self.out.back_mut() {
            if last.len + b.len <= BATCH_ROWS {
                let before = last.heap_bytes() as u64;
                for (c, o) in last.columns.iter_mut().zip(&b.columns) {
                    Arc::make_mut(c).append(o);
                }
                last.len += b.len;
                // Grown by less than a batch: accounted after the fact.
                let after = last.heap_bytes() as u64;
                return self.out_mem.grow(res, after.saturating_sub(before));
            }
        }
        self.out_mem.grow(res, batch_bytes(&b))?;
        self.out.push_back(b);
        Ok(())
    }

    /// Starts the next iteration over the rows of the last one, or ends.
    fn start_iteration(&mut self) -> Result<(), ExecError> {
        if self.next_rows.is_empty() {
            self.work.set(Vec::new());
            self.work_mem = MemoryUse::default();
            self.phase = if self.spec.materialize {
                Phase::Emit
            } else {
                Phase::Done
            };
            return Ok(());
        }
        self.iterations += 1;
        if self.iterations > self.spec.max_iterations {
            return Err(ExecError::RecursionDepth(self.iterations));
        }
        self.work.set(std::mem::take(&mut self.next_rows));
        // The old working table is gone; the rows just made take its place.
        self.work_mem = std::mem::take(&mut self.next_mem);
        // The first iteration uses the term built for EXPLAIN; later ones
        // drop the last iteration's operators (kept until now for EXPLAIN
        // ANALYZE) before building their own.
        let first = self.iterations == 1;
        let term = match self.term.take() {
            Some(t) if first => t,
            old => {
                drop(old);
                (self.build)(&self.ctx)?
            }
        };
        self.term = Some(term);
        self.phase = Phase::Term;
        Ok(())
    }
}

impl Operator for RecursiveUnion {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        let step = match self.phase {
            Phase::Anchor => self.anchor.next(cx)?,
            // Only the first iteration records spans (see `untraced`).
            Phase::Term => match &mut self.term {
                Some(t) if self.iterations <= 1 => t.next(cx)?,
                Some(t) => super::untraced(|| t.next(cx))?,
                None => Step::Done,
            },
            Phase::Between => {
                self.start_iteration()?;
                return Ok(Step::Pending);
            }
            Phase::Emit => {
                return Ok(match self.out.pop_front() {
                    Some(b) => {
                        self.out_mem.shrink(batch_bytes(&b));
                        Step::Batch(b)
                    }
                    None => {
                        self.phase = Phase::Done;
                        Step::Done
                    }
                })
            }
            Phase::Done => return Ok(Step::Done),
        };
        match step {
            Step::Batch(b) => Ok(match self.accept(b, cx)? {
                Some(b) => Step::Batch(b),
                None => Step::Pending,
            }),
            Step::Done => {
                self.phase = Phase::Between;
                Ok(Step::Pending)
            }
            other => Ok(other),
        }
    }
    fn describe(&self) -> String {
        let mut s = format!(
            "RecursiveUnion {} (UNION {})",
            self.spec.name,
            if self.spec.distinct {
                "DISTINCT"
            } else {
                "ALL"
            }
        );
        if self.iterations > 0 {
            s.push_str(&format!(" iterations={}", self.iterations));
        }
        s
    }
    fn name(&self) -> &'static str {
        "RecursiveUnion"
    }
    fn children(&self) -> Vec<&Instrumented> {
        let mut v = vec![&self.anchor];
        if let Some(t) = &self.term {
            v.push(t);
        }
        v
    }
}
