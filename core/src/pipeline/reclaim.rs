//! Freeing large operator state off the query's path.
//!
//! Giving a big buffer back to the OS is not free: on the reference VM,
//! dropping 48 MB of vectors takes ~40 ms (the pages are unmapped one by
//! one). A killed sort that had buffered a few million rows would spend that
//! long between noticing the kill and returning the error. So the blocking
//! operators hand their big buffers to [`dispose`], which frees them on a
//! background thread natively (in place in wasm, which has no threads), while
//! their memory reservations are still released in place, at once, so the
//! budget accounting is exact the moment the statement returns.
//!
//! The thread waits [`GRACE`] before it frees a value: unmapping holds the
//! process's address-space lock, and page faults of the statement that is
//! still returning (or of the next one) would wait for it.
//!
//! On Linux the thread runs in the idle scheduling class (`SCHED_IDLE`): it
//! frees when a core has nothing else to do, and any statement thread that
//! wakes takes the core from it at once. At normal priority its frees (a
//! few ms for a sort's buffers) took a core from a statement whose threads
//! use them all, and under `chrt` it inherited the statements' real-time
//! priority and held a core until done. Garbage that waits is bounded: past
//! [`MAX_IN_FLIGHT_BYTES`] queued, a value is freed in place.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers smaller than this (in bytes, estimated) are freed in place:
/// glibc's malloc serves blocks of 128 KiB and more (its default mmap
/// threshold) with their own mappings, and freeing one unmaps it. (At
/// 1 MiB, the partial aggregates of a killed parallel GROUP BY, a few
/// hundred KiB each, took 50–100 µs to free on the statement's path.)
pub const IN_PLACE_BYTES: usize = 128 << 10;

/// Bytes (estimated) that may wait for the reclaim thread; past them
/// [`dispose`] frees in place (a machine kept busy by statements gives an
/// idle-class thread little time).
pub const MAX_IN_FLIGHT_BYTES: usize = 512 << 20;

/// How long after being disposed a value is freed.
pub const GRACE: std::time::Duration = std::time::Duration::from_millis(10);

/// Values handed to the reclaim thread and not yet freed.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Their bytes (as estimated by the callers of [`dispose`]).
#[cfg(not(target_arch = "wasm32"))]
static IN_FLIGHT_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How many disposed values are still waiting to be freed (a benchmark
/// waits for 0 so that one query's cleanup does not slow the next).
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// Frees `garbage`, estimated at `bytes` bytes: in place when small, else on
/// the reclaim thread (natively).
pub fn dispose<T: Send + 'static>(garbage: T, bytes: usize) {
    #[cfg(target_arch = "wasm32")]
    let _ = bytes;
    #[cfg(not(target_arch = "wasm32"))]
    if bytes >= IN_PLACE_BYTES {
        if let Some(r) = reclaimer() {
            let queued = IN_FLIGHT_BYTES.fetch_add(bytes, Ordering::AcqRel);
            if queued.saturating_add(bytes) <= MAX_IN_FLIGHT_BYTES {
                IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
                r.push((std::time::Instant::now(), bytes, Box::new(garbage)));
                return;
            }
            IN_FLIGHT_BYTES.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
    drop(garbage);
}

#[cfg(not(target_arch = "wasm32"))]
type Garbage = (std::time::Instant, usize, Box<dyn Send>);

/// How long the reclaim thread keeps looking for garbage every [`GRACE`]
/// after the last it freed, before it sleeps until woken.
#[cfg(not(target_arch = "wasm32"))]
const STAY_AWAKE: std::time::Duration = std::time::Duration::from_secs(2);

/// The queue of the reclaim thread. The thread looks at it every [`GRACE`]
/// while garbage keeps coming, and sleeps until woken only after
/// [`STAY_AWAKE`] without any: so a statement that disposes of its state
/// (a killed one, on its way to return the error) rarely pays for a
/// wake-up, which costs 10–30 µs (a futex wake, and the woken thread
/// preempting the waker). A channel, not a locked queue: a statement never
/// waits for a lock that the (idle-class, so often preempted) thread holds.
#[cfg(not(target_arch = "wasm32"))]
struct Reclaimer {
    queue: std::sync::mpsc::Sender<Garbage>,
    /// Set while the thread sleeps until woken.
    parked: std::sync::atomic::AtomicBool,
    thread: std::thread::Thread,
}

#[cfg(not(target_arch = "wasm32"))]
impl Reclaimer {
    fn push(&self, g: Garbage) {
        // The receiver lives as long as the process (a leaked thread).
        let _ = self.queue.send(g);
        if self.parked.swap(false, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }

    /// The thread's loop: frees what has waited [`GRACE`].
    fn run(&self, rx: &std::sync::mpsc::Receiver<Garbage>) {
        use std::time::Instant;
        let mut held = std::collections::VecDeque::new();
        let mut last = Instant::now();
        loop {
            held.extend(rx.try_iter());
            let n = held
                .iter()
                .take_while(|(at, ..): &&Garbage| at.elapsed() >= GRACE)
                .count();
            if n > 0 {
                let due: Vec<Garbage> = held.drain(..n).collect();
                let bytes: usize = due.iter().map(|(_, b, _)| b).sum();
                drop(due);
                IN_FLIGHT.fetch_sub(n, Ordering::AcqRel);
                IN_FLIGHT_BYTES.fetch_sub(bytes, Ordering::AcqRel);
                last = Instant::now();
            }
            if held.is_empty() && last.elapsed() >= STAY_AWAKE {
                self.parked.store(true, Ordering::Release);
                // Garbage sent before `parked` was set is seen here;
                // after, its push unparks.
                held.extend(rx.try_iter());
                if held.is_empty() {
                    std::thread::park();
                }
                self.parked.store(false, Ordering::Release);
                last = Instant::now();
                continue;
            }
            std::thread::sleep(GRACE / 2);
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn reclaimer() -> Option<&'static Reclaimer> {
    use std::sync::OnceLock;
    static R: OnceLock<Option<&'static Reclaimer>> = OnceLock::new();
    *R.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<&'static Reclaimer>();
        let (queue, garbage) = std::sync::mpsc::channel::<Garbage>();
        let spawned = std::thread::Builder::new()
            .name("cascade-reclaim".into())
            .spawn(move || {
                idle_class();
                if let Ok(r) = rx.recv() {
                    r.run(&garbage);
                }
            })
            .ok()?;
        let r: &'static Reclaimer = Box::leak(Box::new(Reclaimer {
            queue,
            parked: Default::default(),
            thread: spawned.thread().clone(),
        }));
        tx.send(r).ok()?;
        Some(r)
    })
}

/// Puts the calling thread in the idle scheduling class (Linux; elsewhere
/// it keeps the default). Failure leaves it as it was.
#[cfg(not(target_arch = "wasm32"))]
fn idle_class() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn garbage_past_the_queue_bound_is_freed_in_place() {
        let huge = Arc::new(AtomicBool::new(false));
        dispose(Flag(huge.clone()), MAX_IN_FLIGHT_BYTES + 1);
        assert!(huge.load(Ordering::SeqCst), "not queued: freed at once");
    }

    #[test]
    fn small_garbage_is_freed_in_place_big_garbage_eventually() {
        let small = Arc::new(AtomicBool::new(false));
        dispose(Flag(small.clone()), 10);
        assert!(small.load(Ordering::SeqCst));
        let big = Arc::new(AtomicBool::new(false));
        dispose(Flag(big.clone()), IN_PLACE_BYTES);
        let t = std::time::Instant::now();
        while !big.load(Ordering::SeqCst) || in_flight() > 0 {
            // Generous: an idle-class thread waits while the test
            // threads keep the cores busy.
            assert!(t.elapsed().as_secs() < 60, "freed by the reclaim thread");
            std::thread::yield_now();
        }
    }
}
