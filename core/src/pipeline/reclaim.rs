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

use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers smaller than this (in bytes, estimated) are freed in place:
/// glibc's malloc serves blocks of 128 KiB and more (its default mmap
/// threshold) with their own mappings, and freeing one unmaps it. (At
/// 1 MiB, the partial aggregates of a killed parallel GROUP BY, a few
/// hundred KiB each, took 50–100 µs to free on the statement's path.)
pub const IN_PLACE_BYTES: usize = 128 << 10;

/// How long after being disposed a value is freed.
pub const GRACE: std::time::Duration = std::time::Duration::from_millis(10);

/// Values handed to the reclaim thread and not yet freed.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

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
            IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
            r.push((std::time::Instant::now(), Box::new(garbage)));
            return;
        }
    }
    drop(garbage);
}

#[cfg(not(target_arch = "wasm32"))]
type Garbage = (std::time::Instant, Box<dyn Send>);

/// How long the reclaim thread keeps looking for garbage every [`GRACE`]
/// after the last it freed, before it sleeps until woken.
#[cfg(not(target_arch = "wasm32"))]
const STAY_AWAKE: std::time::Duration = std::time::Duration::from_secs(2);

/// The queue of the reclaim thread. The thread looks at it every [`GRACE`]
/// while garbage keeps coming, and sleeps until woken only after
/// [`STAY_AWAKE`] without any: so a statement that disposes of its state
/// (a killed one, on its way to return the error) rarely pays for a
/// wake-up, which costs 10–30 µs (a futex wake, and the woken thread
/// preempting the waker).
#[cfg(not(target_arch = "wasm32"))]
struct Reclaimer {
    queue: std::sync::Mutex<std::collections::VecDeque<Garbage>>,
    /// Set while the thread sleeps until woken.
    parked: std::sync::atomic::AtomicBool,
    thread: std::thread::Thread,
}

#[cfg(not(target_arch = "wasm32"))]
impl Reclaimer {
    fn push(&self, g: Garbage) {
        crate::sync::lock(&self.queue).push_back(g);
        if self.parked.swap(false, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }

    /// The thread's loop: frees what has waited [`GRACE`].
    fn run(&self) {
        use std::time::Instant;
        let mut last = Instant::now();
        loop {
            let due: Vec<Garbage> = {
                let mut q = crate::sync::lock(&self.queue);
                let n = q.iter().take_while(|(at, _)| at.elapsed() >= GRACE).count();
                q.drain(..n).collect()
            };
            if !due.is_empty() {
                let n = due.len();
                drop(due);
                IN_FLIGHT.fetch_sub(n, Ordering::AcqRel);
                last = Instant::now();
            }
            if last.elapsed() >= STAY_AWAKE && crate::sync::lock(&self.queue).is_empty() {
                self.parked.store(true, Ordering::Release);
                // Garbage pushed before `parked` was set is seen here;
                // after, its push unparks.
                if crate::sync::lock(&self.queue).is_empty() {
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
        let spawned = std::thread::Builder::new()
            .name("cascade-reclaim".into())
            .spawn(move || {
                if let Ok(r) = rx.recv() {
                    r.run();
                }
            })
            .ok()?;
        let r: &'static Reclaimer = Box::leak(Box::new(Reclaimer {
            queue: Default::default(),
            parked: Default::default(),
            thread: spawned.thread().clone(),
        }));
        tx.send(r).ok()?;
        Some(r)
    })
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
    fn small_garbage_is_freed_in_place_big_garbage_eventually() {
        let small = Arc::new(AtomicBool::new(false));
        dispose(Flag(small.clone()), 10);
        assert!(small.load(Ordering::SeqCst));
        let big = Arc::new(AtomicBool::new(false));
        dispose(Flag(big.clone()), IN_PLACE_BYTES);
        let t = std::time::Instant::now();
        while !big.load(Ordering::SeqCst) || in_flight() > 0 {
            assert!(t.elapsed().as_secs() < 10, "freed by the reclaim thread");
            std::thread::yield_now();
        }
    }
}
