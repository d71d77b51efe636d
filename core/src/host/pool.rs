//! [`StdHost`](super::StdHost)'s worker pool: OS threads taking tasks from
//! one shared FIFO queue.
//!
//! A task that wakes itself while it is being polled (a pipeline's
//! cooperative yield) goes to the **back** of the queue, behind every task
//! that was ready before it: with more long-running pipelines than workers,
//! every pipeline still gets its turn. (`futures`' `ThreadPool` polls such a
//! task again at once on the same thread, so a pipeline that only yields
//! keeps its worker until it ends, and pipelines queued behind it starve.)
//!
//! The task state machine (waking, rescheduling a task woken during its
//! poll once the poll returns, dropping a cancelled one) is `async-task`'s;
//! this module is only the queue and the threads. The threads start on the
//! first spawn, are named `cascade-pipeline-N`, and end when the pool's
//! [`Pool`] handle is dropped (with the last clone of its host): the drop
//! wakes them, drops the tasks still queued, and joins every worker but the
//! calling one (a worker may drop the last host itself, inside a task).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use async_task::Runnable;

use super::HostFuture;

/// What the workers share: the queue of tasks ready to run.
#[derive(Debug, Default)]
pub(super) struct Shared {
    state: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    tasks: VecDeque<Runnable>,
    shutdown: bool,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    match m.lock() {
        Ok(g) => g,
        // No code that can panic runs while the queue is locked.
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    /// Puts `r` at the back of the queue and, if `wake`, wakes one idle
    /// worker; once the pool is shut down, drops it instead (which cancels
    /// its task).
    fn push(&self, r: Runnable, wake: bool) {
        let refused = {
            let mut q = lock(&self.state);
            if q.shutdown {
                Some(r)
            } else {
                q.tasks.push_back(r);
                None
            }
        };
        match refused {
            // Dropped outside the lock: the task's future may drop anything.
            Some(r) => drop(r),
            None if wake => self.ready.notify_one(),
            None => {}
        }
    }

    /// The next task to run, waiting for one; `None` once shut down.
    fn pop(&self) -> Option<Runnable> {
        let mut q = lock(&self.state);
        loop {
            if q.shutdown {
                return None;
            }
            if let Some(r) = q.tasks.pop_front() {
                return Some(r);
            }
            q = match self.ready.wait(q) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    fn worker(&self) {
        while let Some(r) = self.pop() {
            // A panicking task is dropped (async-task cancels it); the
            // worker goes on with the next one.
            let _ = catch_unwind(AssertUnwindSafe(|| r.run()));
        }
    }
}

/// A pool of `workers` threads, started on the first [`Pool::spawn`].
/// Dropping it stops and joins them.
#[derive(Debug)]
pub(super) struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    threads: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl Pool {
    /// A pool of `workers` threads (at least 1), none started yet.
    pub(super) fn new(workers: usize) -> Self {
        Pool {
            shared: Arc::new(Shared::default()),
            workers: workers.max(1),
            threads: Mutex::new(None),
        }
    }

    /// Starts the threads if they are not running yet; false if none
    /// could be started.
    fn start(&self) -> bool {
        let mut threads = match self.threads.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(t) = threads.as_ref() {
            return !t.is_empty();
        }
        let mut started = Vec::with_capacity(self.workers);
        for i in 0..self.workers {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name(format!("cascade-pipeline-{i}"))
                .spawn(move || shared.worker())
            {
                Ok(h) => started.push(h),
                Err(_) => break,
            }
        }
        let any = !started.is_empty();
        *threads = Some(started);
        any
    }

    /// Runs `fut` on the pool's threads; gives it back when no thread
    /// could be started.
    pub(super) fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        if !self.start() {
            return Err(fut);
        }
        let shared = self.shared.clone();
        // A task woken while it runs (a pipeline's cooperative yield) is
        // queued by the worker running it once its poll returns, and that
        // worker pops the queue next: waking an idle worker for it only
        // moved the pipeline to another thread, often onto the CPU of the
        // statement's other busy thread, which then shared that CPU for a
        // scheduler slice while the other idled (a KILL waited 0.3–1 ms).
        let (runnable, task) = async_task::spawn(
            fut,
            async_task::WithInfo(move |r, info: async_task::ScheduleInfo| {
                shared.push(r, !info.woken_while_running);
            }),
        );
        task.detach();
        runnable.schedule();
        Ok(())
    }

    /// How many threads were started (`None` before the first spawn), for
    /// tests.
    #[cfg(test)]
    pub(super) fn started(&self) -> Option<usize> {
        match self.threads.lock() {
            Ok(g) => g.as_ref().map(Vec::len),
            Err(poisoned) => poisoned.into_inner().as_ref().map(Vec::len),
        }
    }

    /// The queue, for tests that check the workers and tasks are gone.
    #[cfg(test)]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let queued = {
            let mut q = lock(&self.shared.state);
            q.shutdown = true;
            std::mem::take(&mut q.tasks)
        };
        self.shared.ready.notify_all();
        // Dropping a queued task cancels it (its future is dropped here).
        drop(queued);
        let threads = match self.threads.get_mut() {
            Ok(t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let me = std::thread::current().id();
        for h in threads.into_iter().flatten() {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}
