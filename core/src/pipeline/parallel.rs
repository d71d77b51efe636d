//! Parallel stages: morsel-driven scans feeding N pipelines, and the
//! exchange that gathers what they produce.
//!
//! A parallel stage is N Pipeline contexts, descendants of the Query, each
//! running a copy of the stage's operators over [`MorselScan`]s that take
//! their next morsel (one batch of a table's chunks, or one range of
//! `generate_series`) from one shared [`Morsels`] counter. The pipelines run
//! where [`Host::spawn`](crate::host::Host::spawn) puts them (a pool of OS
//! threads natively, tokio tasks in the server), all but the first: the
//! consumer runs that one itself while it waits (N pipelines, N threads); a
//! host that cannot spawn (the browser, `ManualHost`) gives them back and
//! the consumer polls them itself, in a fixed round-robin order.
//!
//! The consumers: [`ParallelAggregate`] merges N partial aggregates;
//! [`ParallelSort`] merges N sorted runs (sort, top-N) with a heap, ties in
//! the serial order; [`ParallelGather`] emits the output of N pipelines of
//! a plain query (no aggregate, no sort) morsel by morsel, in the serial
//! order, with bounded look-ahead. Joins between a stage's root and its scan build once,
//! in the consumer, before the pipelines start, and every pipeline probes
//! the shared build side (see `pipeline::join`).
//!
//! # Cancellation of a parallel statement
//!
//! - **KILL, timeout, disconnect, memory budget**: every pipeline context
//!   is a descendant of the Query, so cancelling the Query cancels them all
//!   (one atomic flag each); each checks its context at every batch through
//!   [`Instrumented`], so every pipeline stops within one batch, on every
//!   thread. The consumer waits on the exchange with [`Step::Wait`]: the
//!   driver awaits that together with the Query's cancellation, so a
//!   consumer blocked on the exchange wakes at once.
//! - **No pipeline outlives its Query**: the driver ([`super::drive`])
//!   stops every [`PipelineSet`] of its tree when the run ends, and awaits
//!   [`PipelineSet::ended`] before it returns; the statement (which owns
//!   the Query context) returns after that.
//! - **A failing pipeline**: a pipeline that fails with a real error
//!   (not a cancellation) cancels its siblings with the cause "sibling
//!   pipeline failed" (first cause wins: a sibling already killed keeps its
//!   cause); the consumer waits for every pipeline to end and returns the
//!   original error, never a cancellation.
//! - **Memory**: every pipeline reserves from the statement's one
//!   [`Resources`] (one atomic counter), so the budget is shared; the error
//!   of the pipeline that crosses it is the statement's error (1041), and
//!   the driver records it as the Query's cause, which stops the rest.
//! - **Resources**: a pipeline's state is dropped or delivered on every
//!   path (a guard counts a pipeline future dropped unfinished as ended),
//!   and partial states are released once merged.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use super::aggregate::HashAggregate;
use super::{Instrumented, OpCx, Operator, Resources, Step, YieldPolicy, BATCH_ROWS};
use crate::cause::{Cause, Reason};
use crate::context::Context;
use crate::data::{Batch, Column};
use crate::expr::{EvalCx, ExecError};
use crate::host::{Host, HostFuture};
use crate::level::Level;
use crate::storage::TableData;
// The mutexes from crate::sync: loom's under --cfg loom, so the loom
// models of the exchange (core/tests/loom_exchange.rs) explore them.
use crate::sync::{lock, AtomicUsize, Mutex};

/// How often a consumer waiting on its pipelines publishes their progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

/// The host of a set's pipelines.
fn cx_host(set: &PipelineSet) -> Option<Arc<dyn crate::host::Host>> {
    lock(&set.contexts).first().map(|c| c.host().clone())
}

/// The cause given to the siblings of a pipeline that failed.
pub const SIBLING_FAILED: &str = "sibling pipeline failed";

/// What a parallel stage scans, split into morsels of one batch.
pub enum MorselSource {
    /// A table version: the batches its scan would produce, in order.
    Table {
        /// Table name (EXPLAIN).
        table: String,
        /// The snapshot.
        data: Arc<TableData>,
        /// (chunk, offset, rows) of each morsel.
        list: Vec<(usize, usize, usize)>,
        /// Whether the morsels are whole chunks.
        whole: bool,
    },
    /// `generate_series(start, …, step)` of `count` values.
    Series {
        /// First value.
        start: i64,
        /// Step (not 0).
        step: i64,
        /// Number of values.
        count: u64,
    },
}

/// Morsels handed out to a stage's pipelines, each exactly once, by one
/// atomic counter.
pub struct Morsels {
    next: AtomicU64,
    total: u64,
    src: MorselSource,
}

impl Morsels {
    /// The morsels of a table scan (the same batches a [`super::scan::TableScan`]
    /// produces).
    pub fn table(table: String, data: Arc<TableData>) -> Arc<Self> {
        let mut list = Vec::new();
        for (i, c) in data.chunks.iter().enumerate() {
            let mut off = 0;
            while off < c.len {
                let n = BATCH_ROWS.min(c.len - off);
                list.push((i, off, n));
                off += n;
            }
        }
        Arc::new(Morsels {
            next: AtomicU64::new(0),
            total: list.len() as u64,
            src: MorselSource::Table {
                table,
                data,
                list,
                whole: false,
            },
        })
    }

    /// The morsels of a table scan by a hash join's probe: its stored
    /// chunks, whole (shared with the table, not copied; the join works
    /// through a big batch in bounded steps).
    pub fn table_chunks(table: String, data: Arc<TableData>) -> Arc<Self> {
        let list: Vec<(usize, usize, usize)> = data
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.len > 0)
            .map(|(i, c)| (i, 0, c.len))
            .collect();
        Arc::new(Morsels {
            next: AtomicU64::new(0),
            total: list.len() as u64,
            src: MorselSource::Table {
                table,
                data,
                list,
                whole: true,
            },
        })
    }

    /// The morsels of `generate_series(start, stop, step)`.
    pub fn series(start: i64, stop: i64, step: i64) -> Arc<Self> {
        let count = u64::try_from(super::scan::series_len(start, stop, step)).unwrap_or(u64::MAX);
        Arc::new(Morsels {
            next: AtomicU64::new(0),
            total: count.div_ceil(BATCH_ROWS as u64),
            src: MorselSource::Series { start, step, count },
        })
    }

    /// Number of morsels.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Takes the next morsel: its sequence number and batch.
    fn take(&self) -> Option<(u64, Batch)> {
        let m = self.next.fetch_add(1, Ordering::Relaxed);
        if m >= self.total {
            return None;
        }
        Some((m, self.batch(m)?))
    }

    /// Morsels taken so far (at most [`Morsels::len`]).
    fn claimed(&self) -> u64 {
        self.next.load(Ordering::Relaxed).min(self.total)
    }

    /// Morsel `m`'s batch.
    fn batch(&self, m: u64) -> Option<Batch> {
        if m >= self.total {
            return None;
        }
        let b = match &self.src {
            MorselSource::Table { data, list, .. } => {
                let (ci, off, n) = *list.get(m as usize)?;
                let c = data.chunks.get(ci)?;
                if off == 0 && n == c.len {
                    (**c).clone()
                } else {
                    c.slice(off, n)
                }
            }
            MorselSource::Series { start, step, count } => {
                let first = m * BATCH_ROWS as u64;
                let n = (*count - first).min(BATCH_ROWS as u64);
                // Every value lies between start and stop: the morsel's
                // first is exact in i64 (computed once, in i128), and the
                // rest are the serial scan's (an i128 product per row was a
                // quarter of Q1's time with 2 pipelines).
                let base = (*start as i128 + first as i128 * *step as i128) as i64;
                let v = super::scan::series_values(base, *step, n as usize);
                Batch::new(vec![Arc::new(Column::ints(v))], n as usize)
            }
        };
        Some(b)
    }

    fn describe(&self) -> String {
        match &self.src {
            MorselSource::Table {
                table, data, whole, ..
            } => {
                if *whole {
                    format!(
                        "TableScan {} ({} rows, morsels of whole chunks)",
                        table,
                        data.rows()
                    )
                } else {
                    format!(
                        "TableScan {} ({} rows, morsels of {BATCH_ROWS})",
                        table,
                        data.rows()
                    )
                }
            }
            MorselSource::Series { step, .. } => {
                format!("GenerateSeries (step {step}, morsels of {BATCH_ROWS})")
            }
        }
    }
}

/// One pipeline's scan: takes morsels from the shared [`Morsels`] until
/// none is left, writing each one's sequence number to `seq` (where the
/// pipeline's partial aggregate reads it).
pub struct MorselScan {
    morsels: Arc<Morsels>,
    seq: Arc<AtomicU64>,
    /// The gather this scan's pipeline feeds, and the pipeline's index:
    /// morsels are then taken through it (in bounded look-ahead).
    gather: Option<(Arc<GatherShared>, usize)>,
}

impl MorselScan {
    /// A scan of `morsels`, reporting sequence numbers in `seq`.
    pub fn new(morsels: Arc<Morsels>, seq: Arc<AtomicU64>) -> Self {
        MorselScan {
            morsels,
            seq,
            gather: None,
        }
    }

    /// The scan of pipeline `index` of a gather: it takes its morsels
    /// through `shared`, which records which morsel each pipeline is on and
    /// holds the pipeline back when it is too far ahead of the gather.
    pub fn gathered(mut self, shared: Arc<GatherShared>, index: usize) -> Self {
        self.gather = Some((shared, index));
        self
    }
}

impl Operator for MorselScan {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if let Some((g, i)) = &self.gather {
            return match g.claim(*i) {
                Claim::Done => Ok(Step::Done),
                Claim::Wait(w) => Ok(Step::Wait(w)),
                Claim::Morsel(m) => match self.morsels.batch(m) {
                    None => Ok(Step::Done),
                    Some(b) => {
                        self.seq.store(m, Ordering::Relaxed);
                        cx.progress.fetch_add(b.len as u64, Ordering::Relaxed);
                        Ok(Step::Batch(b))
                    }
                },
            };
        }
        match self.morsels.take() {
            None => Ok(Step::Done),
            Some((m, b)) => {
                self.seq.store(m, Ordering::Relaxed);
                cx.progress.fetch_add(b.len as u64, Ordering::Relaxed);
                Ok(Step::Batch(b))
            }
        }
    }
    fn describe(&self) -> String {
        self.morsels.describe()
    }
    fn name(&self) -> &'static str {
        "MorselScan"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// An input that has nothing (the final aggregate's, which gets its groups
/// from the exchange).
pub struct Empty;

impl Operator for Empty {
    fn next(&mut self, _cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        Ok(Step::Done)
    }
    fn describe(&self) -> String {
        "Empty".into()
    }
    fn name(&self) -> &'static str {
        "Empty"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// What a pipeline hands back when it ends.
pub struct Delivery {
    /// Its index in the stage.
    pub index: usize,
    /// Its operators (with their metrics and state); `None` when the
    /// whole statement was cancelled (the pipeline dropped them itself:
    /// nobody merges or shows them then).
    pub root: Option<Instrumented>,
    /// How it ended.
    pub result: Result<(), ExecError>,
    /// Warnings its expressions raised.
    pub warnings: u32,
}

/// The pipelines of one parallel stage: their contexts, how many are still
/// running, what the ended ones delivered, and the futures that the host
/// gave back (run here, by whoever waits).
pub struct PipelineSet {
    /// Until [`PipelineSet::close`]: then their spans close, before the
    /// statement returns (a pool thread may drop its last handle on the
    /// set a moment after the statement has returned).
    contexts: Mutex<Vec<Context>>,
    /// Pipelines still running: changed under `state`'s lock (with the
    /// wakers it takes), read without it (by a spinning consumer).
    live: AtomicUsize,
    state: Mutex<SetState>,
    /// Pipeline futures the host could not spawn: polled in index order by
    /// the consumer and by [`PipelineSet::ended`].
    local: Mutex<Vec<Option<HostFuture>>>,
}

struct SetState {
    version: u64,
    delivered: VecDeque<Delivery>,
    wakers: Vec<Waker>,
}

impl PipelineSet {
    /// A set of pipelines that will run in `contexts`. Each counts as live
    /// from when it is started until it delivers or its future is dropped.
    pub fn new(contexts: Vec<Context>) -> Arc<Self> {
        Arc::new(PipelineSet {
            contexts: Mutex::new(contexts),
            live: AtomicUsize::new(0),
            state: Mutex::new(SetState {
                version: 0,
                delivered: VecDeque::new(),
                wakers: Vec::new(),
            }),
            local: Mutex::new(Vec::new()),
        })
    }

    /// Pipelines still running.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Cancels every pipeline still running: when the run ended early or
    /// failed (`error`), or finished while some still ran. A pipeline
    /// already cancelled keeps its cause.
    pub fn stop(&self, error: Option<&ExecError>) {
        if self.live() == 0 {
            return;
        }
        let message = match error {
            Some(ExecError::Cancelled(_)) | None => "query finished",
            Some(_) => SIBLING_FAILED,
        };
        for c in lock(&self.contexts).iter() {
            c.cancel_with(Cause::canceled(
                Reason::Other {
                    message: message.into(),
                },
                Level::Pipeline,
                c.id(),
            ));
        }
    }

    /// Cancels every pipeline but `failed` with the cause "sibling pipeline
    /// failed".
    fn sibling_failed(&self, failed: usize) {
        for (i, c) in lock(&self.contexts).iter().enumerate() {
            if i != failed {
                c.cancel_with(Cause::canceled(
                    Reason::Other {
                        message: SIBLING_FAILED.into(),
                    },
                    Level::Pipeline,
                    c.id(),
                ));
            }
        }
    }

    fn deliver(&self, d: Option<Delivery>) {
        let wakers = {
            let mut s = lock(&self.state);
            let live = self.live.load(Ordering::Acquire);
            self.live.store(live.saturating_sub(1), Ordering::Release);
            s.version += 1;
            if let Some(d) = d {
                s.delivered.push_back(d);
            }
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// What pipelines delivered since the last call.
    pub fn take_delivered(&self) -> Vec<Delivery> {
        lock(&self.state).delivered.drain(..).collect()
    }

    /// Drops what the pipelines delivered and nobody took (their state and
    /// its memory), here and now: the run ended without them.
    pub fn discard_delivered(&self) {
        let dropped = self.take_delivered();
        drop(dropped);
    }

    /// Lets go of the pipelines' contexts once every pipeline has ended
    /// (their spans close now, if nothing else holds them); stopping the
    /// set does nothing after.
    pub fn close(&self) {
        let contexts = std::mem::take(&mut *lock(&self.contexts));
        drop(contexts);
    }

    fn version(&self) -> u64 {
        lock(&self.state).version
    }

    /// Polls the pipeline futures run here once each, in index order;
    /// whether any remain.
    fn poll_local(&self, cx: &mut TaskContext<'_>) -> bool {
        let mut local = lock(&self.local);
        let mut any = false;
        for slot in local.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    any = true;
                }
            }
        }
        any
    }

    fn has_local(&self) -> bool {
        lock(&self.local).iter().any(Option::is_some)
    }

    /// A future that completes once the set changed after `seen` (a
    /// pipeline ended), polling the pipelines run here meanwhile.
    fn changed(self: &Arc<Self>, seen: u64) -> HostFuture {
        let set = self.clone();
        Box::pin(futures::future::poll_fn(move |cx| {
            let local = set.poll_local(cx);
            let mut s = lock(&set.state);
            if s.version != seen || set.live() == 0 {
                return Poll::Ready(());
            }
            if local {
                // Work left here: come back after other tasks ran.
                cx.waker().wake_by_ref();
            } else {
                s.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        }))
    }

    /// Spins (natively) up to `host`'s [`Host::spin_before_wait`] for the
    /// pipelines to end, running the ones kept here meanwhile: called once
    /// they were stopped, before [`PipelineSet::ended`] parks the thread,
    /// whose wake-up would cost more than their last step.
    pub fn spin_until_ended(&self, host: &Arc<dyn Host>) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let spin = host.spin_before_wait();
            if spin.is_zero() {
                return;
            }
            let from = std::time::Instant::now();
            let waker = futures::task::noop_waker();
            let mut cx = TaskContext::from_waker(&waker);
            let mut local = true;
            while self.live() > 0 && from.elapsed() < spin {
                if local {
                    local = self.poll_local(&mut cx);
                }
                // Not a bare spin: the pipeline we wait for may be queued
                // on this CPU (woken by the stop, kept off the idle one as
                // cache-hot), and a spinning thread kept it there for the
                // whole spin (~0.5 ms, every few EXCEPT kills).
                std::thread::yield_now();
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = host;
    }

    /// A future that completes when every pipeline has ended (running the
    /// ones the host gave back meanwhile).
    pub fn ended(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let set = self.clone();
        futures::future::poll_fn(move |cx| {
            let local = set.poll_local(cx);
            let mut s = lock(&set.state);
            if set.live() == 0 {
                return Poll::Ready(());
            }
            if local {
                cx.waker().wake_by_ref();
            } else {
                s.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// Counts a pipeline future as ended when it is dropped without delivering.
struct EndGuard {
    set: Arc<PipelineSet>,
    armed: bool,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if self.armed {
            self.set.deliver(None);
        }
    }
}

/// One pipeline of a stage, before it starts.
pub struct PipelineSpec {
    /// Its operators.
    pub root: Instrumented,
    /// Its context (a Pipeline context under the Query).
    pub ctx: Context,
}

/// Starts the pipelines of `set`: the first (when there are several) is
/// kept in the set and run by the consumer's own thread whenever it waits
/// on the exchange; the others on the host if it can, else kept too.
///
/// The consumer runs one pipeline itself rather than sleep while N pool
/// threads run all of them: a stage of N pipelines uses N threads, not
/// N + 1, so with N = cores no core has two threads of the statement to
/// share; and at a KILL the consumer is running, not parked, so the error
/// needs no wake-up of a sleeping thread (on a busy machine the wake-up of
/// the parked consumer, behind busy pipeline threads, was most of a
/// parallel statement's kill latency).
fn start(
    set: &Arc<PipelineSet>,
    specs: Vec<PipelineSpec>,
    cx: &OpCx<'_>,
    policy: YieldPolicy,
    progress: &[Arc<AtomicU64>],
) {
    let n = specs.len();
    for (index, spec) in specs.into_iter().enumerate() {
        let set2 = set.clone();
        let resources: Arc<Resources> = cx.resources.clone();
        let progress = progress.get(index).cloned().unwrap_or_default();
        let mut eval = EvalCx {
            strict: cx.eval.strict,
            params: cx.eval.params.clone(),
            ..EvalCx::default()
        };
        let host = spec.ctx.host().clone();
        let PipelineSpec { mut root, ctx } = spec;
        {
            let _s = lock(&set.state);
            set.live.fetch_add(1, Ordering::AcqRel);
        }
        let fut: HostFuture = Box::pin(async move {
            let mut guard = EndGuard {
                set: set2.clone(),
                armed: true,
            };
            let result = {
                let mut ocx = OpCx {
                    eval: &mut eval,
                    resources: &resources,
                    progress: &progress,
                    clock: Some(ctx.host().clone()),
                };
                super::drive_loop(&mut root, &ctx, &mut ocx, policy, |_| Ok(())).await
            };
            if let Err(e) = &result {
                if !matches!(e, ExecError::Cancelled(_)) {
                    set2.sibling_failed(index);
                }
            }
            let m = root.metrics();
            ctx.set_attr("rows_in", progress.load(Ordering::Relaxed));
            ctx.set_attr("time_us", m.time_ns as f64 / 1e3);
            drop(ctx);
            // Cancelled from above the pipelines (a KILL, a timeout, a
            // disconnect, the memory budget): the statement fails, and
            // nothing will merge or show these operators. They are dropped
            // here, on the thread that built and ran them (their memory in
            // its caches and its malloc arena), rather than by the
            // statement's thread once every pipeline has ended (closing
            // their spans and freeing their state took it 13–45 µs).
            let root = match &result {
                Err(ExecError::Cancelled(c)) if c.cause().level < Level::Pipeline => {
                    drop(root);
                    None
                }
                _ => Some(root),
            };
            guard.armed = false;
            set2.deliver(Some(Delivery {
                index,
                root,
                result,
                warnings: eval.warnings,
            }));
        });
        let kept = if index == 0 && n > 1 {
            Some(fut)
        } else {
            host.spawn(fut).err()
        };
        if let Some(fut) = kept {
            lock(&set.local).push(Some(fut));
        }
    }
}

/// The consumer's side of a parallel stage: runs the stage's shared join
/// builds (their build sides, once, here), then starts the pipelines, and
/// gathers what they deliver. The first real error is reported once every
/// pipeline has ended.
struct Exchange {
    set: Arc<PipelineSet>,
    /// Joins that only build (`HashJoin::building_shared`), run in order
    /// before the pipelines start: their build sides are what the
    /// pipelines' probes share.
    builds: Vec<Instrumented>,
    built: usize,
    specs: Option<Vec<PipelineSpec>>,
    policy: YieldPolicy,
    progress: Vec<Arc<AtomicU64>>,
    reported: u64,
    done: Vec<Option<Instrumented>>,
    error: Option<ExecError>,
    n: usize,
}

/// A consumer dropped before its pipelines ended (the statement's future
/// was dropped: a client gone, an abandoned remote fragment) stops them:
/// no pipeline outlives the operator that would have gathered it.
impl Drop for Exchange {
    fn drop(&mut self) {
        self.set.stop(None);
        // The pipelines kept here are polled by nobody now: drop them (each
        // counts as ended), else each would hold the set (and its state's
        // reservations) in a cycle through `local`.
        let kept = std::mem::take(&mut *lock(&self.set.local));
        drop(kept);
    }
}

impl Exchange {
    fn new(specs: Vec<PipelineSpec>, builds: Vec<Instrumented>, policy: YieldPolicy) -> Self {
        let n = specs.len();
        let set = PipelineSet::new(specs.iter().map(|s| s.ctx.clone()).collect());
        Exchange {
            set,
            builds,
            built: 0,
            specs: Some(specs),
            policy,
            progress: (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect(),
            reported: 0,
            done: (0..n).map(|_| None).collect(),
            error: None,
            n,
        }
    }

    fn sync_progress(&mut self, cx: &OpCx<'_>) {
        let total: u64 = self
            .progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum();
        if total > self.reported {
            cx.progress
                .fetch_add(total - self.reported, Ordering::Relaxed);
            self.reported = total;
        }
    }

    /// Takes what the pipelines delivered: their operators (for EXPLAIN
    /// ANALYZE and the merge), warnings, and the error to report (a real
    /// error wins over the cancellations it caused).
    fn absorb(&mut self, cx: &mut OpCx<'_>) {
        for d in self.set.take_delivered() {
            cx.eval.warnings = cx.eval.warnings.saturating_add(d.warnings);
            if let Err(e) = d.result {
                let real = !matches!(e, ExecError::Cancelled(_));
                if self.error.is_none()
                    || (real && matches!(self.error, Some(ExecError::Cancelled(_))))
                {
                    self.error = Some(e);
                }
            }
            // A pipeline without its operators delivered a cancellation
            // (an error, so `done` is not read for it).
            if let (Some(slot), Some(root)) = (self.done.get_mut(d.index), d.root) {
                *slot = Some(root);
            }
        }
    }

    /// One step towards pipeline `i`'s delivery: `None` once it has
    /// delivered (its operators are in `done[i]`), else the step to return
    /// meanwhile (a shared build's step, or a wait on the exchange).
    fn wait_for(&mut self, i: usize, cx: &mut OpCx<'_>) -> Result<Option<Step>, ExecError> {
        while let Some(b) = self.builds.get_mut(self.built) {
            match b.next(cx)? {
                Step::Done => self.built += 1,
                Step::Batch(_) | Step::Pending => return Ok(Some(Step::Pending)),
                other => return Ok(Some(other)),
            }
        }
        if let Some(specs) = self.specs.take() {
            start(&self.set, specs, cx, self.policy, &self.progress);
        }
        let seen = self.set.version();
        self.absorb(cx);
        self.sync_progress(cx);
        if self.error.is_some() {
            // Every pipeline ends before the error is reported.
            if self.set.live() > 0 {
                if let Some(e) = &self.error {
                    self.set.stop(Some(e));
                }
                return Ok(Some(Step::Wait(self.set.changed(seen))));
            }
            // The last pipelines may have delivered (a real error among
            // them) between the take above and `live() == 0`: take again,
            // so the real error is reported, never the cancellation it
            // caused (found by the loom model of a failing sibling).
            self.absorb(cx);
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        if self.done.get(i).is_none_or(Option::is_some) {
            return Ok(None);
        }
        // Not ended yet: wait for the exchange.
        if self.set.has_local() {
            let waker = futures::task::noop_waker();
            self.set.poll_local(&mut TaskContext::from_waker(&waker));
            return Ok(Some(Step::Pending));
        }
        // Back every few ms meanwhile, to publish the pipelines' progress
        // (rows examined, in the process list).
        let changed = self.set.changed(seen);
        let Some(host) = cx_host(&self.set) else {
            return Ok(Some(Step::Wait(changed)));
        };
        let tick = host.sleep_until(host.now().saturating_add(PROGRESS_EVERY));
        Ok(Some(Step::Wait(Box::pin(async move {
            futures::future::select(changed, tick).await;
        }))))
    }

    /// One step towards every pipeline's delivery: `None` once all have.
    fn wait_all(&mut self, cx: &mut OpCx<'_>) -> Result<Option<Step>, ExecError> {
        let missing = self.done.iter().position(Option::is_none).unwrap_or(self.n);
        if missing == self.n
            && self.error.is_none()
            && self.built == self.builds.len()
            && self.specs.is_none()
        {
            return Ok(None);
        }
        match self.wait_for(missing.min(self.n.saturating_sub(1)), cx)? {
            Some(step) => Ok(Some(step)),
            None if self.done.iter().all(Option::is_some) => Ok(None),
            None => Ok(Some(Step::Pending)),
        }
    }

    /// The operators to show: the shared builds, then each pipeline (as
    /// planned until it started, as it ended once it delivered).
    fn children(&self) -> Vec<&Instrumented> {
        let mut out: Vec<&Instrumented> = self.builds.iter().collect();
        match &self.specs {
            Some(specs) => out.extend(specs.iter().map(|s| &s.root)),
            None => out.extend(self.done.iter().flatten()),
        }
        out
    }

    fn shared_builds(&self) -> String {
        match self.builds.len() {
            0 => String::new(),
            1 => ", over 1 shared join build".into(),
            k => format!(", over {k} shared join builds"),
        }
    }
}

/// Groups of a partial aggregate merged per step: each a lookup in the
/// final table, which may be far beyond the caches.
const MERGE_GROUPS: usize = 512;

/// The consumer of a parallel aggregation: N pipelines each run a partial
/// [`HashAggregate`] over their morsels; this merges their groups (a slice
/// of groups per step, in pipeline order) into the final aggregate, and
/// emits its groups in the order one pipeline would have seen them.
pub struct ParallelAggregate {
    ex: Exchange,
    merged: HashAggregate,
    merge_next: usize,
    merge_at: usize,
}

impl ParallelAggregate {
    /// Merges the partial aggregates at the roots of `specs` into `merged`
    /// (a [`HashAggregate::merging`] of the same keys and aggregates),
    /// after running `builds` (the joins whose build sides the pipelines
    /// share).
    pub fn new(
        specs: Vec<PipelineSpec>,
        builds: Vec<Instrumented>,
        merged: HashAggregate,
        policy: YieldPolicy,
    ) -> Self {
        ParallelAggregate {
            ex: Exchange::new(specs, builds, policy),
            merged,
            merge_next: 0,
            merge_at: 0,
        }
    }
}

impl Operator for ParallelAggregate {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        while self.merge_next < self.ex.n {
            if let Some(step) = self.ex.wait_for(self.merge_next, cx)? {
                return Ok(step);
            }
            let Some(agg) = self
                .ex
                .done
                .get_mut(self.merge_next)
                .and_then(Option::as_mut)
                .and_then(|root| root.op_mut().as_any_mut())
                .and_then(|a| a.downcast_mut::<HashAggregate>())
            else {
                // Not reached: the planner roots every pipeline of the stage
                // at a partial HashAggregate.
                self.merge_next += 1;
                continue;
            };
            let to = self.merge_at + MERGE_GROUPS;
            if !self.merged.merge_from(
                agg,
                self.merge_next,
                self.merge_at,
                to,
                cx.clock.as_ref(),
                cx.resources,
            )? {
                // The group table growing, or `DISTINCT` sets of this
                // slice still to add.
                return Ok(Step::Pending);
            }
            if to >= agg.group_count() {
                agg.release();
                self.merge_next += 1;
                self.merge_at = 0;
            } else {
                self.merge_at = to;
            }
            return Ok(Step::Pending);
        }
        self.merged.next(cx)
    }
    fn describe(&self) -> String {
        format!(
            "Exchange: merge of {} partial aggregates{} -> {}",
            self.ex.n,
            self.ex.shared_builds(),
            self.merged.describe()
        )
    }
    fn name(&self) -> &'static str {
        "ParallelAggregate"
    }
    fn children(&self) -> Vec<&Instrumented> {
        self.ex.children()
    }
    fn pipelines(&self) -> Option<Arc<PipelineSet>> {
        Some(self.ex.set.clone())
    }
}

/// Rows a k-way merge emits per step.
const MERGE_ROWS: usize = 1024;

/// The consumer of a parallel sort or top-N: N pipelines each sort what
/// they read (their best `limit` rows, with a limit) by the keys and then
/// by the rows' positions in the serial input; this merges the N sorted
/// runs with a heap, a batch of [`MERGE_ROWS`] rows per step, so the
/// result is the serial sort's, row for row.
pub struct ParallelSort {
    ex: Exchange,
    limit: Option<usize>,
    text: String,
    /// Run ids ordered as a binary min-heap by their next rows.
    heap: Vec<usize>,
    /// Each run's next row (an index into its order).
    pos: Vec<usize>,
    started: bool,
    emitted: usize,
}

/// A pipeline's sorted run: columns, key columns, order.
type Run<'a> = (&'a [Column], &'a [Column], &'a [u32]);

impl ParallelSort {
    /// Merges the sorted runs of the partial [`Sort`](super::sort::Sort)s at
    /// the roots of `specs` (keeping the first `limit` rows), after running
    /// `builds` (the joins whose build sides the pipelines share).
    pub fn new(
        specs: Vec<PipelineSpec>,
        builds: Vec<Instrumented>,
        limit: Option<usize>,
        text: String,
        policy: YieldPolicy,
    ) -> Self {
        let n = specs.len();
        ParallelSort {
            ex: Exchange::new(specs, builds, policy),
            limit,
            text,
            heap: Vec::new(),
            pos: vec![0; n],
            started: false,
            emitted: 0,
        }
    }
}

/// Whether run `a`'s next row sorts before run `b`'s (ties, which the
/// position key rules out, by run).
fn before(runs: &[Option<Run<'_>>], pos: &[usize], desc: &[bool], a: usize, b: usize) -> bool {
    let (Some((_, ka, oa)), Some((_, kb, ob))) = (runs[a], runs[b]) else {
        return a < b;
    };
    let (ra, rb) = (oa[pos[a]] as usize, ob[pos[b]] as usize);
    match super::sort::cmp_rows_across(ka, ra, kb, rb, desc) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => a < b,
    }
}

/// Restores the heap property below `at`.
fn sift_down(heap: &mut [usize], mut at: usize, less: impl Fn(usize, usize) -> bool) {
    loop {
        let (l, r) = (2 * at + 1, 2 * at + 2);
        let mut m = at;
        if l < heap.len() && less(heap[l], heap[m]) {
            m = l;
        }
        if r < heap.len() && less(heap[r], heap[m]) {
            m = r;
        }
        if m == at {
            return;
        }
        heap.swap(at, m);
        at = m;
    }
}

impl Operator for ParallelSort {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if let Some(step) = self.ex.wait_all(cx)? {
            return Ok(step);
        }
        let mut desc: Vec<bool> = Vec::new();
        let runs: Vec<Option<Run<'_>>> = self
            .ex
            .done
            .iter_mut()
            .map(|root| {
                let sort = root
                    .as_mut()?
                    .op_mut()
                    .as_any_mut()?
                    .downcast_mut::<super::sort::Sort>()?;
                let sort: &super::sort::Sort = sort;
                if desc.is_empty() {
                    desc = sort.directions().to_vec();
                }
                sort.sorted_run()
            })
            .collect();
        let (heap, pos) = (&mut self.heap, &mut self.pos);
        if !self.started {
            self.started = true;
            // Not reached otherwise: the planner roots every pipeline of the
            // stage at a partial Sort, which ends with its run.
            heap.extend(
                (0..runs.len()).filter(|&r| runs[r].is_some_and(|(_, _, o)| !o.is_empty())),
            );
            for at in (0..heap.len() / 2).rev() {
                sift_down(heap, at, |a, b| before(&runs, pos, &desc, a, b));
            }
        }
        let want = match self.limit {
            Some(k) => MERGE_ROWS.min(k.saturating_sub(self.emitted)),
            None => MERGE_ROWS,
        };
        let mut picks: Vec<(usize, u32)> = Vec::with_capacity(want);
        while picks.len() < want {
            let Some(&r) = heap.first() else { break };
            let Some((_, _, order)) = runs[r] else { break };
            picks.push((r, order[pos[r]]));
            pos[r] += 1;
            if pos[r] >= order.len() {
                let last = heap.len() - 1;
                heap.swap(0, last);
                heap.pop();
            }
            sift_down(heap, 0, |a, b| before(&runs, pos, &desc, a, b));
        }
        if picks.is_empty() {
            return Ok(Step::Done);
        }
        self.emitted += picks.len();
        // Gather each run's rows (in output order), put the pieces one
        // after the other, then into output order.
        let mut per_run: Vec<Vec<u32>> = vec![Vec::new(); runs.len()];
        let mut rank = Vec::with_capacity(picks.len());
        for &(r, row) in &picks {
            rank.push(per_run[r].len());
            per_run[r].push(row);
        }
        let mut offset = vec![0usize; runs.len()];
        let mut total = 0;
        for (r, rows) in per_run.iter().enumerate() {
            offset[r] = total;
            total += rows.len();
        }
        let one_run = per_run.iter().filter(|v| !v.is_empty()).count() == 1;
        let perm: Vec<u32> = picks
            .iter()
            .zip(&rank)
            .map(|(&(r, _), &k)| (offset[r] + k) as u32)
            .collect();
        // A pipeline that read nothing has no columns at all.
        let width = runs
            .iter()
            .flatten()
            .map(|(d, _, _)| d.len())
            .max()
            .unwrap_or(0);
        let mut cols = Vec::with_capacity(width);
        for c in 0..width {
            let mut col: Option<Column> = None;
            for (r, rows) in per_run.iter().enumerate() {
                let Some((data, _, _)) = runs[r] else {
                    continue;
                };
                let (false, Some(src)) = (rows.is_empty(), data.get(c)) else {
                    continue;
                };
                let piece = src.gather(rows);
                match &mut col {
                    None => col = Some(piece),
                    Some(acc) => acc.append(&piece),
                }
            }
            let col = col.unwrap_or_else(|| Column::ints(Vec::new()));
            cols.push(Arc::new(if one_run { col } else { col.gather(&perm) }));
        }
        Ok(Step::Batch(Batch::new(cols, picks.len())))
    }
    fn describe(&self) -> String {
        let what = match self.limit {
            Some(k) => format!("TopN {k} by {}", self.text),
            None => format!("Sort by {}", self.text),
        };
        format!(
            "Exchange: k-way merge of {} sorted runs{} -> {what}",
            self.ex.n,
            self.ex.shared_builds()
        )
    }
    fn name(&self) -> &'static str {
        if self.limit.is_some() {
            "ParallelTopN"
        } else {
            "ParallelSort"
        }
    }
    fn children(&self) -> Vec<&Instrumented> {
        self.ex.children()
    }
    fn pipelines(&self) -> Option<Arc<PipelineSet>> {
        Some(self.ex.set.clone())
    }
}

/// Morsels a gather's pipelines may take ahead of the next one it emits,
/// per pipeline (the bound of what a gather buffers).
pub const GATHER_AHEAD_PER_PIPELINE: u64 = 2;

/// Bytes of buffered output past which a gather's pipelines take no
/// morsel but the next one to emit (each still completes the morsel it
/// is on).
pub const GATHER_BUFFER_BYTES: u64 = 8 << 20;

/// What a gathered pipeline's scan gets when it asks for a morsel.
enum Claim {
    /// Morsel `m` is this pipeline's now.
    Morsel(u64),
    /// Too far ahead of the gather: wait for it (then ask again).
    Wait(HostFuture),
    /// No morsel left.
    Done,
}

/// What a gather exchange shares with its pipelines: which morsel each
/// pipeline is on, the output of the morsels not emitted yet (by morsel),
/// and the first failure (by morsel).
///
/// The invariant that orders a gather: the operators between a pipeline's
/// scan and its [`GatherSink`] stream (filters, projections, hash-join
/// probes): each output batch comes from the morsel the scan took last, and
/// the scan is asked for a new morsel only once the previous one's output
/// has all reached the sink. So a morsel is complete — all its output
/// buffered here — once it was taken and its pipeline asked for another
/// (or ended): takes and completions happen under one lock.
pub struct GatherShared {
    morsels: Arc<Morsels>,
    ahead: u64,
    state: Mutex<GatherState>,
}

struct GatherState {
    /// The morsel each pipeline is on (None between morsels).
    cur: Vec<Option<u64>>,
    /// The next morsel whose output the consumer emits.
    emit_next: u64,
    /// Output of morsels not emitted yet, by morsel, in order.
    buffered: std::collections::BTreeMap<u64, VecDeque<Batch>>,
    /// The reservation of the buffered batches.
    mem: super::memory::MemoryUse,
    /// The first failure by morsel: reported when the consumer gets there.
    failed: Option<(u64, ExecError)>,
    /// Bumped (and `wakers` woken) by what the waiting can act on: a
    /// change at `emit_next` (output, completion, failure) for the
    /// consumer, and `emit_next` moving on for the pipelines held back.
    version: u64,
    wakers: Vec<Waker>,
}

impl GatherState {
    fn changed(&mut self) -> Vec<Waker> {
        self.version += 1;
        std::mem::take(&mut self.wakers)
    }
}

/// What a buffered batch reserves.
fn gathered_bytes(b: &Batch) -> u64 {
    super::memory::buffered_batch_bytes(b, &[]).0
}

impl GatherShared {
    /// The shared state of a gather of `pipelines` pipelines over
    /// `morsels`, which lets them take up to
    /// [`GATHER_AHEAD_PER_PIPELINE`] morsels each ahead of the next one it
    /// emits.
    pub fn new(morsels: Arc<Morsels>, pipelines: usize) -> Arc<Self> {
        Arc::new(GatherShared {
            morsels,
            ahead: GATHER_AHEAD_PER_PIPELINE * pipelines.max(1) as u64,
            state: Mutex::new(GatherState {
                cur: vec![None; pipelines],
                emit_next: 0,
                buffered: std::collections::BTreeMap::new(),
                mem: super::memory::MemoryUse::default(),
                failed: None,
                version: 0,
                wakers: Vec::new(),
            }),
        })
    }

    /// Pipeline `i` asks for a morsel: its previous one is complete.
    fn claim(self: &Arc<Self>, i: usize) -> Claim {
        let (claim, wakers) = {
            let mut s = lock(&self.state);
            // Only a change at the next morsel to emit wakes the consumer.
            let completed = s.cur.get_mut(i).and_then(Option::take);
            let wakers = if completed == Some(s.emit_next) {
                s.changed()
            } else {
                Vec::new()
            };
            let next = self.morsels.claimed();
            let claim = if next >= self.morsels.total {
                Claim::Done
            } else if next >= s.emit_next.saturating_add(self.ahead)
                || (next > s.emit_next && s.mem.bytes() >= GATHER_BUFFER_BYTES)
            {
                Claim::Wait(self.changed(s.version))
            } else {
                let m = self.morsels.next.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = s.cur.get_mut(i) {
                    *c = Some(m);
                }
                Claim::Morsel(m)
            };
            (claim, wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        claim
    }

    /// Buffers `b`, output of morsel `m`, reserving it first.
    fn push(&self, m: u64, b: Batch, resources: &Arc<Resources>) -> Result<(), ExecError> {
        let wakers = {
            let mut s = lock(&self.state);
            s.mem.grow(resources, gathered_bytes(&b))?;
            s.buffered.entry(m).or_default().push_back(b);
            // Output of a later morsel waits for the consumer to get there
            // (it looks without waiting once it does).
            if m == s.emit_next {
                s.changed()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Pipeline `i` failed with `e` on morsel `m`: the error is the
    /// statement's once the consumer gets to `m` (as the serial plan
    /// would: after the rows before it, and not at all when a LIMIT is
    /// reached first).
    fn fail(&self, i: usize, m: u64, e: ExecError) {
        let wakers = {
            let mut s = lock(&self.state);
            if let Some(c) = s.cur.get_mut(i) {
                *c = None;
            }
            if s.failed.as_ref().is_none_or(|(at, _)| m < *at) {
                s.failed = Some((m, e));
            }
            if m == s.emit_next {
                s.changed()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Drops everything buffered and its reservation.
    fn release(&self) {
        let (dropped, mem) = {
            let mut s = lock(&self.state);
            (std::mem::take(&mut s.buffered), std::mem::take(&mut s.mem))
        };
        drop(dropped);
        drop(mem);
    }

    /// A future that completes once the state changed after `seen`.
    fn changed(self: &Arc<Self>, seen: u64) -> HostFuture {
        let shared = self.clone();
        Box::pin(futures::future::poll_fn(move |cx| {
            let mut s = lock(&shared.state);
            if s.version != seen {
                return Poll::Ready(());
            }
            if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                s.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        }))
    }
}

/// The root of each pipeline of a gather: hands its input's batches to the
/// [`GatherShared`], tagged with their morsel's number. A real error (not a
/// cancellation, not the memory budget) is handed over too, with its
/// morsel, and ends the pipeline: the consumer reports it in morsel order.
pub struct GatherSink {
    input: Box<Instrumented>,
    shared: Arc<GatherShared>,
    index: usize,
    seq: Arc<AtomicU64>,
}

impl GatherSink {
    /// Pipeline `index`'s sink: `input`'s batches go to `shared`, tagged
    /// with the morsel number its scan writes in `seq`.
    pub fn new(
        input: Instrumented,
        shared: Arc<GatherShared>,
        index: usize,
        seq: Arc<AtomicU64>,
    ) -> Self {
        GatherSink {
            input: Box::new(input),
            shared,
            index,
            seq,
        }
    }
}

impl Operator for GatherSink {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        match self.input.next(cx) {
            Ok(Step::Batch(b)) => {
                let m = self.seq.load(Ordering::Relaxed);
                self.shared.push(m, b, cx.resources)?;
                Ok(Step::Pending)
            }
            Ok(other) => Ok(other),
            Err(
                e @ (ExecError::Cancelled(_)
                | ExecError::MemoryBudget { .. }
                | ExecError::TenantMemoryBudget { .. }),
            ) => Err(e),
            Err(e) => {
                let m = self.seq.load(Ordering::Relaxed);
                self.shared.fail(self.index, m, e);
                Ok(Step::Done)
            }
        }
    }
    fn describe(&self) -> String {
        "GatherSink (in morsel order)".into()
    }
    fn name(&self) -> &'static str {
        "GatherSink"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![&self.input]
    }
}

/// The consumer of a gather exchange: N pipelines each run the stage's
/// streaming operators (filters, projections, hash-join probes of shared
/// builds) over the morsels they take and hand their output to a
/// [`GatherShared`]; this emits it morsel by morsel, in morsel order, so
/// the rows come out in the serial plan's order. Pipelines take at most
/// [`GATHER_AHEAD_PER_PIPELINE`] × N morsels ahead of the next one to emit
/// (the buffered rows are reserved from the statement's budget). With a
/// `LIMIT`, the pipelines are stopped as soon as enough rows are out.
pub struct ParallelGather {
    ex: Exchange,
    shared: Arc<GatherShared>,
    skip: u64,
    left: Option<u64>,
    text: String,
    /// Every row is out (or the limit reached): waiting for the pipelines
    /// to end (their cancellations are not the statement's).
    finishing: bool,
}

impl ParallelGather {
    /// Gathers what the [`GatherSink`]s at the roots of `specs` hand to
    /// `shared`, after running `builds` (the joins whose build sides the
    /// pipelines share); skips `offset` rows, then passes at most `limit`.
    pub fn new(
        specs: Vec<PipelineSpec>,
        builds: Vec<Instrumented>,
        shared: Arc<GatherShared>,
        offset: u64,
        limit: Option<u64>,
        policy: YieldPolicy,
    ) -> Self {
        let text = match (limit, offset) {
            (None, 0) => String::new(),
            (Some(l), o) => format!(", limit {l} offset {o}"),
            (None, o) => format!(", offset {o}"),
        };
        ParallelGather {
            ex: Exchange::new(specs, builds, policy),
            shared,
            skip: offset,
            left: limit,
            text,
            finishing: false,
        }
    }

    /// No more rows to emit: drop what is buffered; with `stop`, cancel
    /// the pipelines still running.
    fn finish(&mut self, stop: bool) {
        self.finishing = true;
        if stop {
            self.ex.set.stop(None);
        }
        self.shared.release();
    }

    /// Applies OFFSET and LIMIT to `b`.
    fn emit(&mut self, mut b: Batch) -> Step {
        if self.skip > 0 {
            let s = self.skip.min(b.len as u64) as usize;
            self.skip -= s as u64;
            b = b.slice(s, b.len - s);
        }
        if let Some(left) = self.left {
            if b.len as u64 > left {
                b = b.slice(0, left as usize);
            }
            let rest = left - b.len as u64;
            self.left = Some(rest);
            if rest == 0 {
                // Enough rows: no pipeline keeps running.
                self.finish(true);
            }
        }
        if b.len == 0 {
            Step::Pending
        } else {
            Step::Batch(b)
        }
    }

    /// A step that waits for a pipeline to end (`seen`: the set's version)
    /// or the shared state to change (`gseen`: its version), running the
    /// pipelines kept here (the first, and all of them on a host that
    /// cannot spawn) meanwhile, with the driver's waker: a kept pipeline
    /// that yields or waits at the look-ahead bound wakes this wait, not a
    /// spinning consumer.
    fn wait(&self, seen: u64, gseen: Option<u64>) -> Step {
        let set = self.ex.set.clone();
        let shared = self.shared.clone();
        let ready = move |set: &PipelineSet, shared: &GatherShared, waker: Option<&Waker>| {
            {
                let mut s = lock(&set.state);
                if s.version != seen || set.live() == 0 {
                    return true;
                }
                if let Some(w) = waker {
                    if !s.wakers.iter().any(|x| x.will_wake(w)) {
                        s.wakers.push(w.clone());
                    }
                }
            }
            let Some(v) = gseen else { return false };
            let mut g = lock(&shared.state);
            if g.version != v {
                return true;
            }
            if let Some(w) = waker {
                if !g.wakers.iter().any(|x| x.will_wake(w)) {
                    g.wakers.push(w.clone());
                }
            }
            false
        };
        let host = cx_host(&self.ex.set);
        let waiting = futures::future::poll_fn(move |cx| {
            if ready(&set, &shared, None) {
                return Poll::Ready(());
            }
            set.poll_local(cx);
            if ready(&set, &shared, Some(cx.waker())) {
                return Poll::Ready(());
            }
            Poll::Pending
        });
        // Back every few ms meanwhile, to publish the pipelines' progress.
        let tick: HostFuture = match host {
            Some(host) => host.sleep_until(host.now().saturating_add(PROGRESS_EVERY)),
            None => Box::pin(futures::future::pending()),
        };
        Step::Wait(Box::pin(async move {
            futures::future::select(Box::pin(waiting), tick).await;
        }))
    }
}

impl Operator for ParallelGather {
    fn next(&mut self, cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if !self.finishing && self.left == Some(0) {
            // LIMIT 0: nothing to run.
            self.finishing = true;
            self.ex.specs = None;
        }
        if !self.finishing {
            while let Some(b) = self.ex.builds.get_mut(self.ex.built) {
                match b.next(cx)? {
                    Step::Done => self.ex.built += 1,
                    Step::Batch(_) | Step::Pending => return Ok(Step::Pending),
                    other => return Ok(other),
                }
            }
            if let Some(specs) = self.ex.specs.take() {
                start(&self.ex.set, specs, cx, self.ex.policy, &self.ex.progress);
            }
        }
        let seen = self.ex.set.version();
        self.ex.absorb(cx);
        self.ex.sync_progress(cx);
        if self.finishing {
            // The pipelines' cancellations (LIMIT reached) are not errors.
            self.ex.error = None;
            if self.ex.set.live() == 0 {
                self.ex.absorb(cx);
                self.ex.error = None;
                return Ok(Step::Done);
            }
            return Ok(self.wait(seen, None));
        }
        if self.ex.error.is_some() {
            self.shared.release();
            // Every pipeline ends before the error is reported.
            if self.ex.set.live() > 0 {
                if let Some(e) = &self.ex.error {
                    self.ex.set.stop(Some(e));
                }
                return Ok(self.wait(seen, None));
            }
            self.ex.absorb(cx);
            if let Some(e) = self.ex.error.take() {
                return Err(e);
            }
        }
        let gseen = {
            let mut s = lock(&self.shared.state);
            loop {
                let at = s.emit_next;
                if let Some(q) = s.buffered.get_mut(&at) {
                    if let Some(b) = q.pop_front() {
                        s.mem.shrink(gathered_bytes(&b));
                        drop(s);
                        return Ok(self.emit(b));
                    }
                    s.buffered.remove(&at);
                }
                if s.failed.as_ref().is_some_and(|(m, _)| *m == at) {
                    if let Some((_, e)) = s.failed.take() {
                        drop(s);
                        // The siblings stop ("sibling pipeline failed");
                        // the error is reported once they all ended.
                        self.ex.set.stop(Some(&e));
                        self.ex.error = Some(e);
                        return Ok(Step::Pending);
                    }
                }
                if at >= self.shared.morsels.total {
                    drop(s);
                    self.finish(false);
                    return Ok(Step::Pending);
                }
                if at < self.shared.morsels.claimed() && !s.cur.contains(&Some(at)) {
                    // Morsel `at` is complete and emitted: the pipelines
                    // held back may take one more.
                    s.emit_next += 1;
                    let wakers = s.changed();
                    wakers.into_iter().for_each(Waker::wake);
                    continue;
                }
                break s.version;
            }
        };
        Ok(self.wait(seen, Some(gseen)))
    }
    fn describe(&self) -> String {
        format!(
            "Exchange: gather of {} pipelines{}{} (in morsel order)",
            self.ex.n,
            self.ex.shared_builds(),
            self.text
        )
    }
    fn name(&self) -> &'static str {
        "ParallelGather"
    }
    fn children(&self) -> Vec<&Instrumented> {
        self.ex.children()
    }
    fn pipelines(&self) -> Option<Arc<PipelineSet>> {
        Some(self.ex.set.clone())
    }
}
