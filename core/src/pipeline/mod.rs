//! The pipeline: vectorized operators over columnar batches, each checking
//! its context at every batch, driven by an async loop that yields to the
//! host every few milliseconds.
//!
//! Operators are cooperative state machines: [`Operator::next`] does at most
//! one batch of work and returns a [`Step`]. A blocking operator (aggregate,
//! sort, join build) returns [`Step::Pending`] while it consumes input, so
//! the driver regains control, checks for cancellation and yields to the
//! host between any two batches, also inside CPU-bound work. That is what
//! lets a kill through on a single-threaded browser, where the kill arrives
//! as a message on the same thread.
//!
//! Each operator is wrapped in an [`Instrumented`] node that checks its
//! pipeline context, times it on the host clock, counts rows and batches, and
//! records an `Operator` span under its pipeline's span.

pub mod aggregate;
pub mod basic;
pub mod buffer;
pub mod dml;
pub mod growth;
pub mod index_scan;
pub mod join;
pub mod memory;
pub mod parallel;
pub mod reclaim;
pub mod recursive;
pub mod scan;
pub mod setop;
pub mod sort;
pub mod subquery;
#[cfg(test)]
pub(crate) mod test_support;
pub mod window;

pub use memory::{MemoryUse, Reservation, Resources};

use std::cell::Cell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::context::Context;
use crate::data::Batch;
use crate::expr::EvalCx;
use crate::expr::ExecError;
use crate::host::Instant;
use crate::level::Level;
use crate::trace::{SpanId, SpanStatus};

/// Rows per batch produced by scans.
pub const BATCH_ROWS: usize = 4096;

/// What one call of [`Operator::next`] did.
pub enum Step {
    /// A batch of output.
    Batch(Batch),
    /// Did a unit of work without output yet; call again.
    Pending,
    /// Wants the driver to wait this long, then call again. (`SLEEP` in an
    /// expression does not use this: it leaves the time in
    /// [`EvalCx::sleep_owed`], which the driver waits after every step.)
    Sleep(Duration),
    /// Waits for other pipelines (an exchange): the driver awaits the
    /// future, or the query's cancellation, whichever comes first, then
    /// calls again.
    Wait(crate::host::HostFuture),
    /// No more output.
    Done,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Batch(b) => f.debug_tuple("Batch").field(b).finish(),
            Step::Pending => f.write_str("Pending"),
            Step::Sleep(d) => f.debug_tuple("Sleep").field(d).finish(),
            Step::Wait(_) => f.write_str("Wait"),
            Step::Done => f.write_str("Done"),
        }
    }
}

/// A physical operator.
pub trait Operator: Send {
    /// Does one unit of work.
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError>;
    /// A one-line description for EXPLAIN.
    fn describe(&self) -> String;
    /// The operator's name (span name).
    fn name(&self) -> &'static str;
    /// Its inputs.
    fn children(&self) -> Vec<&Instrumented>;
    /// The operator as `Any`, for the operators that another one reaches
    /// into (a parallel stage's partial aggregates).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
    /// The parallel pipelines this operator started, if any: the driver
    /// cancels and awaits them before the statement ends.
    fn pipelines(&self) -> Option<Arc<parallel::PipelineSet>> {
        None
    }
}

/// What operators get when they run.
pub struct OpCx<'a> {
    /// Expression settings and warnings.
    pub eval: &'a mut EvalCx,
    /// Memory budget.
    pub resources: &'a Arc<Resources>,
    /// Rows processed by scans (progress).
    pub progress: &'a AtomicU64,
    /// The statement's clock, for operators that bound a step by time as
    /// well as by rows (none: steps are bounded by rows only).
    pub clock: Option<Arc<dyn crate::host::Host>>,
}

/// Per-operator metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics {
    /// Rows output.
    pub rows: u64,
    /// Batches output.
    pub batches: u64,
    /// Calls of `next`.
    pub calls: u64,
    /// Time inside `next`, children included, in ns.
    pub time_ns: u64,
}

/// An operator with its pipeline context, metrics and span.
pub struct Instrumented {
    op: Box<dyn Operator>,
    ctx: Context,
    metrics: Metrics,
    span: Option<SpanId>,
    /// The operator's `tracing` span, a child of its pipeline's, when a
    /// subscriber records the pipeline's.
    tracing: Option<tracing::Span>,
    opened: bool,
    done: bool,
}

impl Instrumented {
    /// Wraps `op`, which runs in pipeline `ctx`.
    pub fn new(op: Box<dyn Operator>, ctx: Context) -> Self {
        Instrumented {
            op,
            ctx,
            metrics: Metrics::default(),
            span: None,
            tracing: None,
            opened: false,
            done: false,
        }
    }

    /// The pipeline context.
    pub fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// Metrics so far.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// The operator.
    pub fn op(&self) -> &dyn Operator {
        &*self.op
    }

    /// The operator, mutably.
    pub fn op_mut(&mut self) -> &mut dyn Operator {
        &mut *self.op
    }

    /// The sets of parallel pipelines started in this subtree.
    pub fn pipeline_sets(&self) -> Vec<Arc<parallel::PipelineSet>> {
        let mut out = Vec::new();
        self.collect_sets(&mut out);
        out
    }

    fn collect_sets(&self, out: &mut Vec<Arc<parallel::PipelineSet>>) {
        out.extend(self.op.pipelines());
        for c in self.op.children() {
            c.collect_sets(out);
        }
    }

    /// Checks the context, runs one step of the operator, and accounts for
    /// it.
    pub fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.done {
            return Ok(Step::Done);
        }
        let start = self.ctx.host().now();
        // The per-batch check: one atomic load, and the deadline compared
        // with the clock reading that the timing takes anyway;
        // `Context::check` (which reads the clock itself) only runs when
        // something is due.
        #[cfg(not(feature = "bench-no-checks"))]
        if due(&self.ctx, start) {
            self.ctx.check()?;
        }
        if !self.opened {
            self.opened = true;
            self.open_spans(start);
        }
        let res = self.op.next(cx);
        let end = self.ctx.host().now();
        self.metrics.calls += 1;
        self.metrics.time_ns += end.0.saturating_sub(start.0);
        match &res {
            Ok(Step::Batch(b)) => {
                self.metrics.rows += b.len as u64;
                self.metrics.batches += 1;
            }
            Ok(Step::Done) => {
                self.done = true;
                self.close_span(end, SpanStatus::Ok);
            }
            Ok(_) => {}
            Err(e) => {
                let status = match e {
                    ExecError::Cancelled(c) => SpanStatus::from_cause(c.cause()),
                    other => SpanStatus::Error {
                        message: other.to_string(),
                    },
                };
                self.close_span(end, status);
            }
        }
        res
    }

    /// Opens the operator's span (and `tracing` span), unless operators are
    /// being opened [`untraced`].
    fn open_spans(&mut self, start: Instant) {
        if UNTRACED.with(Cell::get) {
            return;
        }
        if let Some(r) = self.ctx.recorder() {
            self.span = Some(r.open_at(
                self.ctx.span_id(),
                self.op.name(),
                Level::Operator,
                start,
                [("detail".to_owned(), self.op.describe().into())],
            ));
        }
        self.tracing = self
            .ctx
            .tracing_child(self.op.name(), Level::Operator, self.span);
    }

    fn close_span(&mut self, end: Instant, status: SpanStatus) {
        if let Some(t) = self.tracing.take() {
            crate::trace::record_status(&t, &status);
        }
        if let (Some(r), Some(s)) = (self.ctx.recorder(), self.span.take()) {
            r.close_with(
                s,
                [
                    ("rows", self.metrics.rows.into()),
                    ("batches", self.metrics.batches.into()),
                    ("time_us", (self.metrics.time_ns as f64 / 1e3).into()),
                    ("self_time_us", (self.self_time_ns() as f64 / 1e3).into()),
                ],
                end,
                status,
            );
        }
    }

    /// Time spent in this operator alone, in ns.
    pub fn self_time_ns(&self) -> u64 {
        let kids: u64 = self.op.children().iter().map(|c| c.metrics.time_ns).sum();
        self.metrics.time_ns.saturating_sub(kids)
    }

    /// EXPLAIN text of this subtree (with metrics when `analyze`).
    pub fn explain(&self, analyze: bool) -> String {
        let mut out = String::new();
        self.explain_into(&mut out, 0, analyze);
        out
    }

    fn explain_into(&self, out: &mut String, depth: usize, analyze: bool) {
        use ::std::fmt::Write as _;
        let _ = write!(
            out,
            "{:indent$}-> {}",
            "",
            self.op.describe(),
            indent = depth * 2
        );
        if analyze {
            let m = self.metrics;
            let _ = write!(
                out,
                "  (rows={} batches={} time={} self={})",
                crate::format::count(m.rows),
                m.batches,
                crate::format::duration_us(m.time_ns as f64 / 1e3),
                crate::format::duration_us(self.self_time_ns() as f64 / 1e3),
            );
        }
        out.push('\n');
        for c in self.op.children() {
            c.explain_into(out, depth + 1, analyze);
        }
    }
}

impl Drop for Instrumented {
    fn drop(&mut self) {
        if self.span.is_some() || self.tracing.is_some() {
            let end = self.ctx.host().now();
            let status = match self.ctx.cause() {
                Some(c) => SpanStatus::from_cause(&c),
                None => SpanStatus::Ok,
            };
            self.close_span(end, status);
        }
    }
}

thread_local! {
    /// Set while [`untraced`] runs.
    static UNTRACED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (steps of a subtree) with span recording off for the operators
/// that open (run their first step) during it: they keep their metrics
/// (EXPLAIN ANALYZE) but record no span in the recorder nor in `tracing`.
///
/// For operators built anew many times per statement — a correlated
/// subquery's runs (one per outer row), a recursive CTE's iterations —
/// which record their first run only: a span per operator per run would put
/// millions of spans through the engine's recorder, whose churn (its hash
/// table growing and rehashing, its spans' frees) costs more than the runs
/// and stalls the statement (and a KILL of it) for tens of milliseconds.
pub fn untraced<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            UNTRACED.with(|u| u.set(self.0));
        }
    }
    let _restore = Restore(UNTRACED.with(|u| u.replace(true)));
    f()
}

/// How often the driver yields to the host.
#[derive(Clone, Copy, Debug)]
pub struct YieldPolicy {
    /// Yield after this many steps at most.
    pub every_steps: u32,
    /// Yield when this much host time passed since the last yield.
    pub every: Duration,
}

impl Default for YieldPolicy {
    fn default() -> Self {
        YieldPolicy {
            every_steps: 64,
            every: Duration::from_millis(4),
        }
    }
}

/// Runs `root` to completion, calling `sink` with each output batch.
///
/// Returns the primary error: a real error (memory budget, division by
/// zero) is returned as itself even if it also cancelled the query, and a
/// cancellation is returned as a cancellation, never as success.
///
/// Parallel pipelines started by operators of the tree are cancelled (when
/// the run ends early) and awaited before this returns: none outlives the
/// run.
pub async fn drive(
    root: &mut Instrumented,
    query: &Context,
    cx: &mut OpCx<'_>,
    policy: YieldPolicy,
    sink: impl FnMut(Batch) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    let res = drive_loop(root, query, cx, policy, sink).await;
    let sets = root.pipeline_sets();
    if !sets.is_empty() {
        for s in &sets {
            s.stop(res.as_ref().err());
        }
        for s in &sets {
            s.spin_until_ended(query.host());
            s.ended().await;
            s.discard_delivered();
            s.close();
        }
    }
    res
}

pub(crate) async fn drive_loop(
    root: &mut Instrumented,
    query: &Context,
    cx: &mut OpCx<'_>,
    policy: YieldPolicy,
    mut sink: impl FnMut(Batch) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    let host = query.host().clone();
    let mut now = host.now();
    let mut last_yield = now;
    let mut steps = 0u32;
    loop {
        #[cfg(not(feature = "bench-no-checks"))]
        if due(query, now) {
            query.check()?;
        }
        let step = match root.next(cx) {
            Ok(s) => s,
            Err(e) => {
                cx.eval.sleep_owed = 0.0;
                // Stop every part of the query, with the real cause.
                memory::record_budget_error(query, &e);
                return Err(e);
            }
        };
        // `SLEEP` evaluated during the step: wait it before the step's
        // output moves on.
        if let Some(d) = cx.eval.take_sleep() {
            sleep(query, d).await?;
            now = host.now();
            last_yield = now;
            steps = 0;
        }
        match step {
            Step::Batch(b) => sink(b)?,
            Step::Pending => {}
            Step::Wait(w) => {
                futures::future::select(w, query.cancelled()).await;
                now = host.now();
                last_yield = now;
                steps = 0;
                continue;
            }
            Step::Sleep(d) => {
                sleep(query, d).await?;
                now = host.now();
                last_yield = now;
                steps = 0;
                continue;
            }
            Step::Done => return Ok(()),
        }
        steps += 1;
        now = host.now();
        if steps >= policy.every_steps || now.saturating_since(last_yield) >= policy.every {
            host.yield_now().await;
            now = host.now();
            last_yield = now;
            steps = 0;
        }
    }
}

/// Waits `d` on the host timer, or until `query` is cancelled (a KILL, a
/// deadline): then the cancellation's error, at once.
pub async fn sleep(query: &Context, d: Duration) -> Result<(), ExecError> {
    let host = query.host().clone();
    let wake = host.now().saturating_add(d);
    let timer = host.sleep_until(wake);
    let cancelled = query.cancelled();
    futures::future::select(timer, cancelled).await;
    query.check()?;
    Ok(())
}

/// A step's time bound, for operators whose rows cost too unevenly for a
/// row count alone to keep a step short (a lookup may miss every cache):
/// the step ends once it has run `limit` on the statement's clock
/// ([`OpCx::clock`]). Without a clock (unit tests, ManualHost runs) it is
/// never over, so those runs stay deterministic. Callers read it every
/// few hundred rows: a clock reading costs ~25 ns.
pub(crate) struct StepClock<'a> {
    at: Option<(&'a Arc<dyn crate::host::Host>, Instant)>,
    limit: Duration,
}

impl<'a> StepClock<'a> {
    /// Starts timing a step of at most `limit` (`clock`: `cx.clock`, or
    /// `None` for a step whose boundaries must not depend on timing).
    pub(crate) fn start(clock: Option<&'a Arc<dyn crate::host::Host>>, limit: Duration) -> Self {
        StepClock {
            at: clock.map(|c| (c, c.now())),
            limit,
        }
    }

    /// Whether the step has run its time.
    #[inline]
    pub(crate) fn over(&self) -> bool {
        self.at
            .is_some_and(|(c, t0)| c.now().saturating_since(t0) >= self.limit)
    }
}

/// Whether `ctx` is cancelled, or its deadline has passed at `now` (a clock
/// reading the caller already has): then [`Context::check`] gives the error.
#[inline]
pub fn due(ctx: &Context, now: Instant) -> bool {
    ctx.is_cancelled() || ctx.deadline().is_some_and(|d| now >= d.at)
}
