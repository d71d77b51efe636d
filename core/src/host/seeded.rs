//! [`ManualHost`](super::ManualHost)'s seeded scheduler: the futures it is
//! asked to spawn run on the thread that drives
//! [`ManualHost::block_on`](super::ManualHost::block_on), one poll at a time,
//! the next one picked at random among the ready ones (the statement's own
//! future included) by a generator seeded at creation. One thread, no
//! timing: the same seed gives the same interleaving of pipelines, poll for
//! poll, and many seeds explore many interleavings.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::ThreadId;

use super::HostFuture;

/// The id of the future given to `block_on`; spawned tasks count from 1.
const MAIN: u64 = 0;

/// The scheduler shared by a seeded host and its wakers.
pub(super) struct Scheduler {
    state: Mutex<State>,
    woken: Condvar,
}

struct State {
    /// xorshift64 state (never 0).
    rng: u64,
    /// The thread inside `block_on`, which runs spawned tasks.
    driver: Option<ThreadId>,
    next_id: u64,
    /// Spawned tasks not finished (`None` while being polled).
    tasks: BTreeMap<u64, Option<HostFuture>>,
    /// Tasks (and `MAIN`) woken since their last poll.
    ready: BTreeSet<u64>,
    /// FNV-1a of the ids polled, in order: the schedule's fingerprint.
    digest: u64,
    polls: u64,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Scheduler")
            .field("tasks", &s.tasks.len())
            .field("ready", &s.ready)
            .field("polls", &s.polls)
            .finish()
    }
}

struct TaskWaker {
    id: u64,
    sched: Arc<Scheduler>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.sched.lock().ready.insert(self.id);
        self.sched.woken.notify_all();
    }
}

impl Scheduler {
    pub(super) fn new(seed: u64) -> Arc<Self> {
        Arc::new(Scheduler {
            state: Mutex::new(State {
                // Spread the seed (splitmix64) so nearby seeds differ at once.
                rng: splitmix(seed) | 1,
                driver: None,
                next_id: 1,
                tasks: BTreeMap::new(),
                ready: BTreeSet::new(),
                digest: 0xcbf2_9ce4_8422_2325,
                polls: 0,
            }),
            woken: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            // Nothing that can panic runs under this lock.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes `fut` when called on the thread inside `block_on` (it then
    /// runs there); gives it back otherwise.
    pub(super) fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        let mut s = self.lock();
        if s.driver != Some(std::thread::current().id()) {
            return Err(fut);
        }
        let id = s.next_id;
        s.next_id += 1;
        s.tasks.insert(id, Some(fut));
        s.ready.insert(id);
        Ok(())
    }

    /// Spawned tasks not finished.
    pub(super) fn pending(&self) -> usize {
        self.lock().tasks.len()
    }

    /// The fingerprint of every poll so far (which future, in which order)
    /// and their number.
    pub(super) fn fingerprint(&self) -> (u64, u64) {
        let s = self.lock();
        (s.digest, s.polls)
    }

    /// Runs `fut` to completion on this thread, with the spawned tasks,
    /// polling one ready future at a time in seeded random order.
    pub(super) fn block_on<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let previous = {
            let mut s = self.lock();
            s.ready.insert(MAIN);
            s.driver.replace(std::thread::current().id())
        };
        let main_waker = Waker::from(Arc::new(TaskWaker {
            id: MAIN,
            sched: self.clone(),
        }));
        let out = loop {
            let (id, task) = {
                let mut s = self.lock();
                let id = loop {
                    if let Some(id) = s.pick() {
                        break id;
                    }
                    // Nothing ready: only another thread (a KILL, a timer)
                    // can wake something now.
                    s = match self.woken.wait(s) {
                        Ok(g) => g,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                };
                s.polls += 1;
                s.digest = (s.digest ^ id).wrapping_mul(0x0100_0000_01b3);
                let task = if id == MAIN {
                    None
                } else {
                    s.tasks.get_mut(&id).and_then(Option::take)
                };
                (id, task)
            };
            if id == MAIN {
                if let Poll::Ready(v) = fut.as_mut().poll(&mut TaskContext::from_waker(&main_waker))
                {
                    break v;
                }
                continue;
            }
            let Some(mut task) = task else {
                // Woken after it finished: nothing to poll.
                continue;
            };
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                sched: self.clone(),
            }));
            let done = task
                .as_mut()
                .poll(&mut TaskContext::from_waker(&waker))
                .is_ready();
            let mut s = self.lock();
            if done {
                s.tasks.remove(&id);
                drop(s);
                // Dropped outside the lock: it may wake or drop anything.
                drop(task);
            } else if let Some(slot) = s.tasks.get_mut(&id) {
                *slot = Some(task);
            }
        };
        self.lock().driver = previous;
        out
    }
}

impl State {
    /// Removes and returns a ready id, chosen by the generator.
    fn pick(&mut self) -> Option<u64> {
        if self.ready.is_empty() {
            return None;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let n = self.rng % self.ready.len() as u64;
        let id = self.ready.iter().nth(n as usize).copied()?;
        self.ready.remove(&id);
        Some(id)
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
