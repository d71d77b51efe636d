//! The host: a monotonic clock, a wall clock, a timer future and a yield.
//!
//! Core never picks a runtime. The embedder supplies a [`Host`]:
//! natively [`StdHost`] (`std::time` + `futures-timer`), in the browser the
//! `cascade-web` host (`performance.now()`, `Date.now()`, `setTimeout`, a
//! `MessageChannel` yield), and in tests [`ManualHost`], whose clocks only
//! move when told, so timeouts and `NOW()` are deterministic.
//!
//! Parallel statements ask the host to run their pipelines elsewhere with
//! [`Host::spawn`]. A host that cannot (the browser, [`ManualHost`]) gives
//! the future back, and the statement polls it itself, in a fixed
//! round-robin order: the same plans run, deterministically, on one thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use serde::Serialize;

use crate::sync::lock_std as lock;

#[cfg(not(target_arch = "wasm32"))]
mod pool;
mod seeded;
#[cfg(not(target_arch = "wasm32"))]
mod timer;

/// A point on the host's monotonic clock, in nanoseconds since the host's
/// epoch (its creation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Instant(pub u64);

impl Instant {
    /// Nanoseconds since the host's epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Microseconds since the host's epoch.
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// A boxed future returned by a host.
pub type HostFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What core needs from its environment.
pub trait Host: Send + Sync + 'static {
    /// The monotonic clock.
    fn now(&self) -> Instant;
    /// The wall clock: microseconds since 1970-01-01 00:00:00 UTC (what
    /// SQL's `NOW()`, `CURDATE()` and `UNIX_TIMESTAMP()` read, once per
    /// statement). It may jump; never use it to time anything.
    fn unix_micros(&self) -> i64;
    /// A future that completes at or after `deadline`.
    fn sleep_until(&self, deadline: Instant) -> HostFuture;
    /// A future that gives other work (timers, messages, other tasks) a chance
    /// to run and then completes. In a browser it must reach the macrotask
    /// queue.
    fn yield_now(&self) -> HostFuture;
    /// Runs `fut` to completion elsewhere (another thread, another task),
    /// or gives it back (`Err`) when this host has nowhere else to run it:
    /// then the caller polls it itself. The default gives it back, so a
    /// host without threads (wasm) needs nothing for parallel plans.
    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        Err(fut)
    }
    /// How many pipelines a parallel stage should run by default: the
    /// workers this host has (1 when it cannot [`Host::spawn`]).
    fn parallelism(&self) -> usize {
        1
    }
    /// How long a thread that waits for the stopped pipelines of a stage
    /// to end (running on this host's other threads) should spin before
    /// it sleeps. They end within a step, and waking a sleeping thread
    /// costs tens of µs (on a VM's idle vCPU, up to ~100 µs): the tail of
    /// a KILL's latency. Zero by default: never spin (a host without
    /// threads, or one whose spawned tasks run only while the caller
    /// waits).
    fn spin_before_wait(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// A future that returns `Pending` once after waking itself: enough for any
/// executor to run its other ready tasks.
#[derive(Debug, Default)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// The native host: `std::time::Instant`, a timer thread, and a pool of
/// worker threads for parallel pipelines.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone)]
pub struct StdHost {
    epoch: std::time::Instant,
    /// The worker threads of [`Host::spawn`], started on first use, ended
    /// when the last clone of this host is dropped.
    pool: Arc<pool::Pool>,
    workers: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl StdHost {
    /// A host whose epoch is now.
    pub fn new() -> Self {
        Self::with_workers(available_cores())
    }
    /// A host whose [`Host::spawn`] runs futures on `workers` OS threads
    /// (at least 1), started on first use.
    pub fn with_workers(workers: usize) -> Self {
        StdHost {
            epoch: std::time::Instant::now(),
            pool: Arc::new(pool::Pool::new(workers)),
            workers: workers.max(1),
        }
    }
    /// Shared, ready to hand to a root context.
    pub fn shared() -> Arc<dyn Host> {
        Arc::new(Self::new())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Default for StdHost {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Host for StdHost {
    fn now(&self) -> Instant {
        Instant(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
    fn unix_micros(&self) -> i64 {
        system_unix_micros()
    }
    fn sleep_until(&self, deadline: Instant) -> HostFuture {
        let wait = deadline.saturating_since(self.now());
        match timer::Timer::get() {
            Some(t) => Box::pin(t.sleep(std::time::Instant::now() + wait)),
            // No timer thread could be started: `futures-timer`'s.
            None => Box::pin(futures_timer::Delay::new(wait)),
        }
    }
    fn yield_now(&self) -> HostFuture {
        Box::pin(YieldNow::default())
    }
    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        // A pool of OS threads running tasks from one FIFO queue: a
        // pipeline's cooperative yield (a self-wake) puts it at the back.
        // When no thread could be started, the caller runs it.
        self.pool.spawn(fut)
    }
    fn parallelism(&self) -> usize {
        self.workers
    }
    fn spin_before_wait(&self) -> std::time::Duration {
        if self.workers > 1 {
            std::time::Duration::from_micros(500)
        } else {
            std::time::Duration::ZERO
        }
    }
}

/// The cores this process may use (1 when unknown).
#[cfg(not(target_arch = "wasm32"))]
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `std::time::SystemTime` as microseconds since the Unix epoch (negative
/// before it), for native hosts.
#[cfg(not(target_arch = "wasm32"))]
pub fn system_unix_micros() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// A host whose clocks move only when [`ManualHost::advance`] is called.
/// Timers complete when the clock passes them. The wall clock starts at
/// 1970-01-01 00:00:00 UTC (or where [`ManualHost::set_unix_micros`] puts
/// it) and moves with the monotonic one.
///
/// ```
/// use cascade::host::{Host, Instant, ManualHost};
/// use std::time::Duration;
/// let host = ManualHost::new();
/// host.set_unix_micros(1_704_067_200_000_000); // 2024-01-01 00:00:00
/// host.advance(Duration::from_millis(5));
/// assert_eq!(host.now(), Instant(5_000_000));
/// assert_eq!(host.unix_micros(), 1_704_067_200_005_000);
/// ```
///
/// [`ManualHost::with_seed`] adds a deterministic scheduler: futures spawned
/// inside [`ManualHost::block_on`] (a parallel statement's pipelines) run
/// on that thread, interleaved with the statement in an order drawn from
/// the seed — reproducible by seed, and varied across seeds.
#[derive(Debug, Default)]
pub struct ManualHost {
    state: Arc<Mutex<ManualState>>,
    sched: Option<Arc<seeded::Scheduler>>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: u64,
    /// The wall clock when `now` was 0, in microseconds.
    unix_base: i64,
    timers: Vec<(u64, Waker)>,
}

impl ManualHost {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// A clock at zero, and a seeded scheduler: [`Host::spawn`] called on
    /// the thread inside [`ManualHost::block_on`] takes the future, and
    /// `block_on` polls it and the others, one poll at a time, each time
    /// picking among the ready futures (its own included) with a generator
    /// seeded by `seed`. Spawned elsewhere, the future is given back (the
    /// caller polls it, as without a seed).
    ///
    /// ```
    /// use cascade::host::{Host, ManualHost, YieldNow};
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// let host = ManualHost::with_seed(7);
    /// let done = Arc::new(AtomicUsize::new(0));
    /// host.block_on(async {
    ///     for _ in 0..3 {
    ///         let done = done.clone();
    ///         let task = Box::pin(async move {
    ///             done.fetch_add(1, SeqCst);
    ///         });
    ///         assert!(host.spawn(task).is_ok(), "runs inside block_on");
    ///     }
    ///     while done.load(SeqCst) < 3 {
    ///         YieldNow::default().await;
    ///     }
    /// });
    /// assert_eq!(host.spawned_pending(), 0);
    /// // Outside block_on, a spawn is given back.
    /// assert!(host.spawn(Box::pin(async {})).is_err());
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        ManualHost {
            state: Arc::default(),
            sched: Some(seeded::Scheduler::new(seed)),
        }
    }
    /// Runs `fut` to completion on this thread. With a seed
    /// ([`ManualHost::with_seed`]) the futures spawned meanwhile run here
    /// too, in the seeded order, and `block_on` returns as soon as `fut`
    /// is done (spawned futures still pending wait for the next call);
    /// without one, it is `futures::executor::block_on`.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.sched {
            Some(s) => s.block_on(fut),
            None => futures::executor::block_on(fut),
        }
    }
    /// Spawned futures not finished yet (0 without a seed).
    pub fn spawned_pending(&self) -> usize {
        self.sched.as_ref().map_or(0, |s| s.pending())
    }
    /// A fingerprint of the schedule so far (which future was polled, in
    /// which order) and the number of polls: equal for equal seeds and
    /// work. `(0, 0)` without a seed.
    pub fn schedule_fingerprint(&self) -> (u64, u64) {
        self.sched.as_ref().map_or((0, 0), |s| s.fingerprint())
    }
    /// Moves the clock forward and wakes every timer that is now due.
    pub fn advance(&self, d: Duration) {
        let due: Vec<Waker> = {
            let mut s = lock(&self.state);
            s.now = s
                .now
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            let now = s.now;
            let (due, keep): (Vec<_>, Vec<_>) = s.timers.drain(..).partition(|(at, _)| *at <= now);
            s.timers = keep;
            due.into_iter().map(|(_, w)| w).collect()
        };
        due.into_iter().for_each(Waker::wake);
    }
    /// Sets the wall clock ([`Host::unix_micros`]) to `at` microseconds
    /// since the Unix epoch; it then moves with [`ManualHost::advance`].
    pub fn set_unix_micros(&self, at: i64) {
        let mut s = lock(&self.state);
        s.unix_base = at.saturating_sub(i64::try_from(s.now / 1_000).unwrap_or(i64::MAX));
    }
    /// Number of timers waiting.
    pub fn pending_timers(&self) -> usize {
        lock(&self.state).timers.len()
    }
}

struct ManualSleep {
    state: Arc<Mutex<ManualState>>,
    deadline: u64,
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut s = lock(&self.state);
        if s.now >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        s.timers.push((deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Host for ManualHost {
    fn now(&self) -> Instant {
        Instant(lock(&self.state).now)
    }
    fn unix_micros(&self) -> i64 {
        let s = lock(&self.state);
        s.unix_base
            .saturating_add(i64::try_from(s.now / 1_000).unwrap_or(i64::MAX))
    }
    fn sleep_until(&self, deadline: Instant) -> HostFuture {
        Box::pin(ManualSleep {
            state: self.state.clone(),
            deadline: deadline.0,
        })
    }
    fn yield_now(&self) -> HostFuture {
        Box::pin(YieldNow::default())
    }
    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        match &self.sched {
            Some(s) => s.spawn(fut),
            None => Err(fut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn manual_timer_fires_only_when_advanced_past_it() {
        let host = ManualHost::new();
        let mut sleep = host.sleep_until(Instant(10));
        assert!(sleep.as_mut().now_or_never().is_none());
        host.advance(Duration::from_nanos(9));
        assert!(sleep.as_mut().now_or_never().is_none());
        host.advance(Duration::from_nanos(1));
        assert!(sleep.as_mut().now_or_never().is_some());
    }

    #[test]
    fn yield_now_is_pending_once() {
        let mut y = YieldNow::default();
        assert!((&mut y).now_or_never().is_none());
        assert!((&mut y).now_or_never().is_some());
    }

    #[test]
    fn manual_wall_clock_is_set_and_moves_with_advance() {
        let host = ManualHost::new();
        assert_eq!(host.unix_micros(), 0);
        host.advance(Duration::from_secs(1));
        host.set_unix_micros(1_000);
        assert_eq!(host.unix_micros(), 1_000);
        host.advance(Duration::from_micros(7));
        assert_eq!(host.unix_micros(), 1_007);
    }

    #[test]
    fn std_host_wall_clock_is_after_2024() {
        assert!(StdHost::new().unix_micros() > 1_704_067_200_000_000);
    }

    #[test]
    fn std_host_clock_is_monotonic_and_sleeps() {
        let host = StdHost::new();
        let a = host.now();
        futures::executor::block_on(host.sleep_until(a.saturating_add(Duration::from_millis(2))));
        assert!(host.now().saturating_since(a) >= Duration::from_millis(2));
    }

    /// Waits for `rx` with a generous bound that only turns a hang into a
    /// failure (no timing is asserted).
    #[cfg(not(target_arch = "wasm32"))]
    fn within_watchdog<T>(rx: &std::sync::mpsc::Receiver<T>, what: &str) -> T {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(v) => v,
            Err(e) => panic!("{what}: no answer after 120 s ({e}): the pool starves it"),
        }
    }

    #[test]
    fn a_self_waking_task_goes_to_the_back_of_the_queue() {
        // One worker; a task that yields (wakes itself) until a flag is set,
        // then the task that sets it. futures' ThreadPool re-polled the
        // first at once, forever: the second never ran.
        let host = StdHost::with_workers(1);
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let spinner_flag = flag.clone();
        let spun = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let spun2 = spun.clone();
        let spinner = async move {
            while !spinner_flag.load(std::sync::atomic::Ordering::Acquire) {
                spun2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                YieldNow::default().await;
            }
            let _ = tx.send(());
        };
        assert!(host.spawn(Box::pin(spinner)).is_ok());
        let setter = async move {
            flag.store(true, std::sync::atomic::Ordering::Release);
        };
        assert!(host.spawn(Box::pin(setter)).is_ok());
        within_watchdog(&rx, "the spinning task");
        assert!(spun.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    }

    #[test]
    fn workers_are_named_and_many_yielding_tasks_all_finish() {
        let host = StdHost::with_workers(2);
        let (tx, rx) = std::sync::mpsc::channel();
        // More yielding tasks than workers, each waiting for the next one
        // to have started (a ring): only a fair queue runs them all.
        let n = 6;
        let started: Arc<Vec<std::sync::atomic::AtomicBool>> =
            Arc::new((0..n).map(|_| Default::default()).collect());
        for i in 0..n {
            let tx = tx.clone();
            let started = started.clone();
            let fut = async move {
                let me = std::thread::current().name().unwrap_or("").to_string();
                if let Some(s) = started.get(i) {
                    s.store(true, std::sync::atomic::Ordering::Release);
                }
                let next = (i + 1) % n;
                while !started
                    .get(next)
                    .is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire))
                {
                    YieldNow::default().await;
                }
                let _ = tx.send(me);
            };
            assert!(host.spawn(Box::pin(fut)).is_ok());
        }
        for _ in 0..n {
            let name = within_watchdog(&rx, "a task of the ring");
            assert!(name.starts_with("cascade-pipeline-"), "{name}");
        }
    }

    #[test]
    fn dropping_the_host_ends_its_workers_and_drops_queued_tasks() {
        let host = StdHost::with_workers(3);
        // Not started before the first spawn.
        assert_eq!(host.pool.started(), None);
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(host
            .spawn(Box::pin(async move {
                let _ = tx.send(());
            }))
            .is_ok());
        within_watchdog(&rx, "a task");
        assert_eq!(host.pool.started(), Some(3));
        // A task that never completes (its waker is dropped): it holds a
        // value whose drop is observed.
        let held = Arc::new(());
        let h2 = held.clone();
        assert!(host
            .spawn(Box::pin(async move {
                let _keep = h2;
                futures::future::pending::<()>().await;
            }))
            .is_ok());
        let shared = Arc::downgrade(host.pool.shared());
        let clone = host.clone();
        drop(host);
        assert!(shared.upgrade().is_some(), "a clone keeps the pool");
        drop(clone);
        // Every worker joined (each held the queue), every task dropped.
        assert!(
            shared.upgrade().is_none(),
            "workers or tasks outlive the host"
        );
        assert_eq!(Arc::strong_count(&held), 1, "the pending task was dropped");
    }
}
