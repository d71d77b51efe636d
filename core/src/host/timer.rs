//! [`StdHost`](super::StdHost)'s timer: one thread (`cascade-timer`, started
//! on first use) that wakes the sleeps whose deadlines have passed.
//!
//! What it is for: a sleep that is cancelled (a `SLEEP(100)` killed after
//! a millisecond, an exchange's progress tick that its pipelines beat) is
//! dropped long before its deadline, on the path of the statement that
//! returns the error. Dropping one here takes the lock and removes its
//! entry: no other thread is woken. (`futures-timer`, used before, woke its
//! timer thread on every new and every dropped `Delay`: 15–25 µs of a
//! killed `SLEEP`'s path on a loaded machine, and a context switch per
//! exchange tick.) A new sleep wakes the thread only when it is due before
//! every sleep already waiting.
//!
//! The entries live in a map by id; the deadlines in a min-heap of
//! `(deadline, id)`, where the ids of dropped sleeps stay until their
//! deadline comes up (then they are skipped) or until they outnumber the
//! live ones, when the heap is rebuilt from the map.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use crate::sync::lock_std as lock;

/// What the timer thread and the sleeps share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    due: Condvar,
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Live sleeps: the deadline, and the waker of the last poll (`None`
    /// once fired).
    waiting: HashMap<u64, (Instant, Option<Waker>)>,
    next: u64,
}

impl State {
    fn earliest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the wakers of every sleep due at `now` (marking them fired).
    fn fire(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some((_, slot)) = self.waiting.get_mut(&id) {
                out.extend(slot.take());
            }
        }
    }

    /// Drops the heap entries of dropped sleeps once they outnumber the
    /// live ones (and a few more).
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.waiting.len() + 1024 {
            self.heap = self
                .waiting
                .iter()
                .map(|(id, (at, _))| Reverse((*at, *id)))
                .collect();
        }
    }
}

/// The process's timer.
pub(super) struct Timer {
    shared: Arc<Shared>,
}

impl Timer {
    /// The timer, its thread started on first use; `None` if no thread
    /// could be started.
    pub(super) fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<Timer>> = OnceLock::new();
        TIMER
            .get_or_init(|| {
                let shared = Arc::new(Shared::default());
                let s = shared.clone();
                std::thread::Builder::new()
                    .name("cascade-timer".into())
                    .spawn(move || run(&s))
                    .ok()
                    .map(|_| Timer { shared })
            })
            .as_ref()
    }

    /// A future that completes at `at`.
    pub(super) fn sleep(&'static self, at: Instant) -> Sleep {
        Sleep {
            timer: self,
            at,
            id: None,
        }
    }
}

/// The timer thread: fires what is due, then waits for the earliest
/// deadline (or for a new, earlier one).
fn run(shared: &Shared) {
    let mut wakers = Vec::new();
    let mut state = lock(&shared.state);
    loop {
        state.fire(Instant::now(), &mut wakers);
        if !wakers.is_empty() {
            drop(state);
            wakers.drain(..).for_each(Waker::wake);
            state = lock(&shared.state);
            continue;
        }
        state = match state.earliest() {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                match shared.due.wait_timeout(state, wait) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                }
            }
            None => match shared.due.wait(state) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            },
        };
    }
}

/// [`Timer::sleep`]'s future.
pub(super) struct Sleep {
    timer: &'static Timer,
    at: Instant,
    /// Its entry, once registered (on the first poll before `at`).
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let shared = &self.timer.shared;
        match self.id {
            Some(id) => {
                let mut state = lock(&shared.state);
                match state.waiting.get_mut(&id) {
                    Some((_, Some(w))) => {
                        if !w.will_wake(cx.waker()) {
                            *w = cx.waker().clone();
                        }
                        Poll::Pending
                    }
                    // Fired (or never found): done.
                    _ => Poll::Ready(()),
                }
            }
            None => {
                if Instant::now() >= self.at {
                    return Poll::Ready(());
                }
                let at = self.at;
                let id = {
                    let mut state = lock(&shared.state);
                    let id = state.next;
                    state.next += 1;
                    let first = state.earliest().is_none_or(|e| at < e);
                    state.waiting.insert(id, (at, Some(cx.waker().clone())));
                    state.heap.push(Reverse((at, id)));
                    state.compact();
                    if first {
                        shared.due.notify_one();
                    }
                    id
                };
                self.id = Some(id);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // No wake-up of the timer thread: its heap entry is skipped
            // when it comes up.
            lock(&self.timer.shared.state).waiting.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use std::time::Duration;

    #[test]
    fn sleeps_complete_in_deadline_order_and_dropped_ones_leave_nothing() {
        let t = Timer::get().expect("a timer thread");
        let start = Instant::now();
        // A far sleep registered first, then a near one: the near one must
        // still wake on time (the thread is told about the earlier deadline).
        let mut far = Box::pin(t.sleep(start + Duration::from_secs(3600)));
        let waker = futures::task::noop_waker();
        assert!(far
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        block_on(t.sleep(start + Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // The far one, dropped, is gone from the live entries.
        let id = far.id.expect("registered");
        drop(far);
        assert!(!lock(&t.shared.state).waiting.contains_key(&id));
        // A deadline already past is ready at once, unregistered.
        let mut past = Box::pin(t.sleep(start));
        assert!(past
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_ready());
        assert!(past.id.is_none());
    }

    #[test]
    fn dropped_sleeps_do_not_pile_up_in_the_heap() {
        let t = Timer::get().expect("a timer thread");
        let waker = futures::task::noop_waker();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..10_000 {
            let mut s = Box::pin(t.sleep(far));
            let _ = s.as_mut().poll(&mut TaskContext::from_waker(&waker));
        }
        let state = lock(&t.shared.state);
        // Other tests' sleeps may be live too; the bound is on the dead.
        assert!(
            state.heap.len() <= 2 * state.waiting.len() + 1025,
            "heap {} for {} live sleeps",
            state.heap.len(),
            state.waiting.len()
        );
    }
}
