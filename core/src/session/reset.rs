//! `COM_RESET_CONNECTION`: a connection starts over without logging in
//! again. Its open transaction is rolled back on a cleanup context (a
//! `rollback` span under the Txn span, reason `COM_RESET_CONNECTION`), and
//! its session variables go back to their defaults; its id, identity and
//! Routine context stay.

use std::sync::atomic::Ordering;

use super::{closed_error, kill_error, Connection, QueryError, Slot};
use crate::sync::lock_std as lock;

impl Connection {
    /// Resets the session as MySQL's `COM_RESET_CONNECTION` does: rolls
    /// back the open transaction on a cleanup context and resets the
    /// session variables (`autocommit`, `max_execution_time`,
    /// `cascade_memory_budget`) to their defaults.
    ///
    /// A statement still running on the connection is error 2014 (the
    /// protocol sends the reset between commands); a closed or killed
    /// connection is 2006 / 1927 as for a statement.
    ///
    /// ```
    /// use cascade::{Engine, EngineConfig, Identity, StdHost};
    /// use futures::executor::block_on;
    /// let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    /// let c = engine.connect(Identity::new("acme", "alice", "member")).unwrap();
    /// block_on(c.execute("SET max_execution_time = 50")).unwrap();
    /// c.reset().unwrap();
    /// let r = block_on(c.execute("SELECT @@max_execution_time")).unwrap();
    /// assert_eq!(r.rows[0][0].to_string(), "0");
    /// ```
    pub fn reset(&self) -> Result<(), QueryError> {
        let c = &*self.inner;
        if c.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        if c.manager.routine().is_cancelled() {
            return Err(kill_error(c.manager.routine().cause()));
        }
        let mut s = c.check_out()?;
        c.rollback_for(&mut s, "COM_RESET_CONNECTION");
        s.autocommit = true;
        s.max_execution_time_ms = c
            .tenant_state()
            .map_or(0, |t| t.limits().max_execution_time_ms);
        s.memory_budget = c.engine.config.memory_budget;
        s.threads = c.engine.config.threads.max(1);
        s.distribute = false;
        c.publish_vars(&s);
        *lock(&c.session) = Slot::Idle(s);
        Ok(())
    }
}
