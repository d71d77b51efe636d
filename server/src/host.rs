//! The engine's host on tokio: `std::time::Instant` for the clock, tokio's
//! timer wheel for `SLEEP()` and statement deadlines, and
//! `tokio::task::yield_now` for the pipeline's cooperative yields, so a
//! CPU-bound query goes to the back of its worker's run queue and the task
//! that reads a `KILL` from another connection gets to run. The pipelines
//! of a parallel statement are tokio tasks (`tokio::spawn`).

use cascade::{Host, HostFuture, Instant};
use std::sync::Arc;

/// A [`Host`] for engines embedded in a tokio runtime. Its futures must be
/// polled inside that runtime.
#[derive(Debug, Clone)]
pub struct TokioHost {
    epoch: std::time::Instant,
}

impl TokioHost {
    /// A host whose epoch is now.
    pub fn new() -> Self {
        TokioHost {
            epoch: std::time::Instant::now(),
        }
    }

    /// Shared, ready for `EngineConfig`.
    pub fn shared() -> Arc<dyn Host> {
        Arc::new(Self::new())
    }
}

impl Default for TokioHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Host for TokioHost {
    fn now(&self) -> Instant {
        Instant(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn unix_micros(&self) -> i64 {
        cascade::host::system_unix_micros()
    }

    fn sleep_until(&self, deadline: Instant) -> HostFuture {
        let wait = deadline.saturating_since(self.now());
        Box::pin(tokio::time::sleep(wait))
    }

    fn yield_now(&self) -> HostFuture {
        Box::pin(tokio::task::yield_now())
    }

    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                // Detached: the statement awaits its pipelines itself.
                drop(h.spawn(fut));
                Ok(())
            }
            // Outside a runtime: the caller runs it.
            Err(_) => Err(fut),
        }
    }

    fn parallelism(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn clock_timer_and_yield() {
        let h = TokioHost::new();
        let t0 = h.now();
        h.sleep_until(t0.saturating_add(Duration::from_millis(5)))
            .await;
        assert!(h.now().saturating_since(t0) >= Duration::from_millis(5));
        h.yield_now().await;
        // A deadline in the past completes at once.
        h.sleep_until(Instant(0)).await;
    }

    #[tokio::test]
    async fn spawn_runs_a_task_in_the_runtime_and_gives_it_back_outside() {
        let h = TokioHost::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = h.spawn(Box::pin(async move {
            let _ = tx.send(7);
        }));
        assert!(spawned.is_ok());
        assert_eq!(rx.await.ok(), Some(7));
        let outside = std::thread::spawn(move || h.spawn(Box::pin(async {})).is_err());
        assert!(outside.join().unwrap_or(false), "no runtime: given back");
    }
}
