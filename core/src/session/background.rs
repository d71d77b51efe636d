//! Background sessions: engine-internal work as a Routine of tenant `sys` ([`Background`]).

use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Engine, QueryError, CLEANUP_TIMEOUT};
use crate::context::Context;
use crate::host::Instant;
use crate::level::Level;
use crate::registry::{CancelManager, Registration};
use crate::sync::lock_std as lock;
use crate::trace::SpanStatus;
use crate::values::Identity;

/// What one round of background work did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceReport {
    /// Closed spans older than the retention, removed from the recorder.
    pub spans_trimmed: usize,
    /// Statement ids whose traces were gone, forgotten.
    pub queries_forgotten: usize,
}

/// Background sessions: engine-internal work run as a Routine of tenant
/// `sys`, with its own contexts, as a client connection's statements are.
///
/// [`Engine::background`] opens the session (it is in the process list, so
/// `sys`'s admin sees it and may `KILL` it). Its job, one round per
/// [`Background::tick`], runs in a Request and a Query context of its own:
/// it trims the trace recorder of closed spans older than the retention
/// and forgets the statement ids whose spans are gone, so that a long-lived
/// node's trace buffer holds the recent past, not the oldest spans the
/// capacity left.
///
/// No runtime in core: [`Background::run`] is a future the embedder drives
/// (the server spawns it on tokio; the browser with
/// `wasm_bindgen_futures::spawn_local`), ticking on the host's timer until
/// the engine shuts down or the session is killed, then closing on a
/// cleanup context. An embedder with a loop of its own calls
/// [`Background::tick`] instead.
///
pub struct Background {
    engine: Engine,
    manager: Arc<CancelManager>,
    registration: Option<Registration>,
    every: Duration,
    retention: Duration,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("id", &self.manager.connection_id())
            .field("every", &self.every)
            .field("retention", &self.retention)
            .finish()
    }
}

impl Engine {
    /// The user of background sessions (tenant `sys`, role `background`).
    pub const BACKGROUND_USER: &'static str = "cascade";

    /// Opens a background session that trims, every `every`, the trace
    /// spans closed more than `retention` ago.
    ///
    /// ```
    /// use cascade::{Engine, EngineConfig, ManualHost};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let host = Arc::new(ManualHost::new());
    /// let engine = Engine::new(EngineConfig::new(1, host.clone()));
    /// let bg = engine.background(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
    /// assert_eq!(bg.context().values().tenant(), Some("sys"));
    /// assert_eq!(bg.tick().unwrap().spans_trimmed, 0);
    /// ```
    pub fn background(
        &self,
        every: Duration,
        retention: Duration,
    ) -> Result<Background, QueryError> {
        let id = self.reserve_connection_id();
        let identity = Identity::new(Identity::SYS_TENANT, Self::BACKGROUND_USER, "background");
        let routine = self
            .inner
            .root
            .child(Level::Routine)
            .identity(identity)
            .connection_id(id)
            .session_id(id)
            .name("background (sys)")
            .attr("background", true)
            .build()?;
        let manager = CancelManager::new(routine);
        let registration = self.inner.processes.register(manager.clone());
        Ok(Background {
            engine: self.clone(),
            manager,
            registration: Some(registration),
            every,
            retention,
        })
    }
}

impl Background {
    /// The session's Routine context.
    pub fn context(&self) -> &Context {
        self.manager.routine()
    }

    /// Its id in the process list.
    pub fn id(&self) -> u64 {
        self.manager.connection_id()
    }

    /// One round of the job now, in a Request and a Query context of its
    /// own. A killed or shut-down session returns the cancellation.
    pub fn tick(&self) -> Result<MaintenanceReport, QueryError> {
        let e = &self.engine.inner;
        let routine = self.manager.routine();
        routine.check()?;
        let request = routine.child(Level::Request).name("maintenance").build()?;
        let stmt_id = e.next_stmt.fetch_add(1, Ordering::Relaxed);
        let query = request
            .child(Level::Query)
            .statement_id(stmt_id)
            .name("trim trace buffer")
            .build()?;
        let registration = self.manager.register_query(&query, "trim trace buffer");
        registration.start();
        let now = e.config.host.now();
        let retention = u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = Instant(now.0.saturating_sub(retention));
        let spans_trimmed = e.recorder.trim_closed_before(cutoff);
        let queries_forgotten = {
            let mut q = lock(&e.queries);
            let (by_id, order) = &mut *q;
            let before = by_id.len();
            by_id.retain(|_, span| e.recorder.contains(*span));
            order.retain(|id| by_id.contains_key(id));
            before - by_id.len()
        };
        query.set_attr("spans_trimmed", spans_trimmed);
        query.set_attr("queries_forgotten", queries_forgotten);
        let status = match query.check() {
            Ok(()) => SpanStatus::Ok,
            Err(c) => SpanStatus::from_cause(c.cause()),
        };
        query.finish(status.clone());
        request.finish(status);
        drop(registration);
        Ok(MaintenanceReport {
            spans_trimmed,
            queries_forgotten,
        })
    }

    /// Runs the session: a [`tick`](Self::tick) every `every` on the host's
    /// timer until the engine shuts down or the session is killed, then
    /// closes it on a cleanup context (a `close` span under the Routine's)
    /// and leaves the process list.
    pub async fn run(mut self) {
        let host = self.engine.host().clone();
        loop {
            let next = host.now().saturating_add(self.every);
            let stop = self.manager.routine().cancelled();
            match futures::future::select(host.sleep_until(next), stop).await {
                futures::future::Either::Left(_) => {
                    // A failed round is in its spans; the next one retries.
                    let _ = self.tick();
                }
                futures::future::Either::Right(_) => break,
            }
        }
        self.close();
    }

    /// Closes the session on a cleanup context, whatever ended it.
    pub fn close(&mut self) {
        let Some(registration) = self.registration.take() else {
            return;
        };
        let routine = self.manager.routine();
        let cx = routine.cleanup_named("close", CLEANUP_TIMEOUT, None);
        if let Some(c) = routine.cause() {
            cx.set_attr("after", c.to_string());
        }
        drop(registration);
        cx.finish(match cx.check() {
            Ok(()) => SpanStatus::Ok,
            Err(c) => SpanStatus::from_cause(c.cause()),
        });
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.close();
    }
}
