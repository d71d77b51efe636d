//! The node-wide process list and the per-session [`CancelManager`]: who is
//! connected, what each connection runs, and `KILL` with MySQL's rules.
//!
//! * `KILL QUERY <conn>` cancels the statement registered on that connection
//!   *now*, and only it. `KILL QUERY <conn> '<statement id>'` cancels it
//!   only if it is that statement; otherwise nothing is cancelled and the
//!   outcome says so ([`KillOutcome::NotRunning`]). A statement registers its Query context before it
//!   starts executing, so a kill that lands between registration and
//!   execution is not lost: the statement starts already cancelled. A kill
//!   that lands between statements finds nothing registered and does not
//!   touch the next statement, which gets a fresh context.
//! * `KILL [CONNECTION] <conn>` cancels the connection's Routine context, so
//!   everything under it; the engine then rolls back on a cleanup context.
//! * Permissions ([`Identity::may_act_on`]): a user may see and kill their own
//!   connections, `admin` every connection of its tenant, `admin` of `sys`
//!   every connection. Another tenant's connections are invisible: a `KILL`
//!   of one is error 1094, exactly as for an id no connection has; a
//!   connection of the caller's tenant that it may not act on is error 1095.
//!   Neither is listed in the caller's process list.
//!
//! Invariants: the session state lock is never held while a context is
//! cancelled (cancelling takes context locks and wakes tasks); the process
//! list lock is never held while a session lock is taken, so the two are
//! independent.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cause::{Cause, Reason};
use crate::context::Context;
use crate::error::KillError;
use crate::host::Instant;
use crate::level::Level;
use crate::phase::{Phase, PhaseCell};
use crate::sync::{lock, Mutex};
use crate::tenant::TenantState;
use crate::values::Identity;

/// What a `KILL` aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillScope {
    /// The statement running now; with `Some(id)`, only if it is that
    /// statement.
    Query {
        /// The statement id to match, if given.
        statement: Option<u64>,
    },
    /// The whole connection.
    Connection,
}

/// What a `KILL` did when it was allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// Something was cancelled now.
    Killed,
    /// Nothing to cancel: no statement running, or already cancelled.
    Nothing,
    /// `KILL QUERY conn 'statement'` named a statement that is not running
    /// on the connection (it ended, or never ran there): nothing was
    /// cancelled, in particular not the statement running now.
    NotRunning {
        /// The target connection.
        connection: u64,
        /// The statement id asked for.
        statement: u64,
    },
}

impl KillOutcome {
    fn from_cancel(cancelled: bool) -> Self {
        if cancelled {
            KillOutcome::Killed
        } else {
            KillOutcome::Nothing
        }
    }
}

/// One row of `SHOW PROCESSLIST`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// Connection id.
    pub id: u64,
    /// Tenant.
    pub tenant: String,
    /// User.
    pub user: String,
    /// Role.
    pub role: String,
    /// `Query`, `Sleep`, `Daemon` (a background session) or `Killed`.
    pub command: &'static str,
    /// Milliseconds in the current state.
    pub time_ms: u64,
    /// The phase ([`Phase::as_str`]): `parsing`, `planning`, `executing`,
    /// `committing`, `rolling back`, `cleaning up`; empty when idle.
    pub state: &'static str,
    /// The statement's text while one runs.
    pub info: Option<String>,
    /// The running statement's id.
    pub statement_id: Option<u64>,
    /// The open transaction's id.
    pub txn_id: Option<u64>,
    /// Rows processed so far by the running statement.
    pub rows_examined: u64,
    /// Bytes the connection's tenant's running statements hold now.
    pub tenant_memory: u64,
    /// The tenant's memory budget, if it has one.
    pub tenant_memory_budget: Option<u64>,
}

struct RunningQuery {
    ctx: Context,
    statement_id: u64,
    sql: Arc<str>,
    since: Instant,
    phase: Arc<PhaseCell>,
    progress: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct SessionState {
    txn: Option<Context>,
    request: Option<Context>,
    query: Option<RunningQuery>,
    /// The connection's phase while no statement is registered (parsing a
    /// request, cleaning up after a kill).
    phase: Option<Phase>,
    idle_since: Instant,
}

/// Registers the contexts of one session at every level and carries out the
/// cascade and kill rules on them.
pub struct CancelManager {
    connection_id: u64,
    identity: Arc<Identity>,
    routine: Context,
    state: Mutex<SessionState>,
}

impl std::fmt::Debug for CancelManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelManager")
            .field("connection_id", &self.connection_id)
            .field("identity", &self.identity)
            .finish()
    }
}

impl CancelManager {
    /// A manager for the session whose Routine context is `routine` (built
    /// with its identity and connection id, which the builder enforces).
    pub fn new(routine: Context) -> Arc<Self> {
        let identity = routine
            .values()
            .identity()
            .cloned()
            .unwrap_or_else(|| Arc::new(Identity::new("", "", "")));
        let connection_id = routine.values().connection_id().unwrap_or(0);
        let now = routine.host().now();
        Arc::new(CancelManager {
            connection_id,
            identity,
            routine,
            state: Mutex::new(SessionState {
                idle_since: now,
                ..SessionState::default()
            }),
        })
    }

    /// The connection id.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// The session's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// The Routine context.
    pub fn routine(&self) -> &Context {
        &self.routine
    }

    /// Registers the open transaction (`None` when it ends).
    pub fn set_txn(&self, txn: Option<Context>) {
        let old = std::mem::replace(&mut lock(&self.state).txn, txn);
        drop(old);
    }

    /// The open transaction's context.
    pub fn txn(&self) -> Option<Context> {
        lock(&self.state).txn.clone()
    }

    /// Sets the connection's phase shown while no statement is registered
    /// (`None`: idle).
    pub fn set_phase(&self, phase: Option<Phase>) {
        lock(&self.state).phase = phase;
    }

    /// The request being served, if any.
    pub fn request(&self) -> Option<Context> {
        lock(&self.state).request.clone()
    }

    /// Registers the request being served (`None` when it ends).
    pub fn set_request(&self, request: Option<Context>) {
        let old = std::mem::replace(&mut lock(&self.state).request, request);
        drop(old);
    }

    /// Registers a statement's Query context before it executes. From now
    /// on `KILL QUERY` reaches it. The registration ends when the returned
    /// guard is dropped.
    pub fn register_query(self: &Arc<Self>, ctx: &Context, sql: &str) -> QueryRegistration {
        let statement_id = ctx.values().statement_id().unwrap_or(0);
        let since = self.routine.host().now();
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let phase = Arc::new(PhaseCell::new(Phase::Planning));
        let old = lock(&self.state).query.replace(RunningQuery {
            ctx: ctx.clone(),
            statement_id,
            sql: sql.into(),
            since,
            phase: phase.clone(),
            progress: progress.clone(),
        });
        drop(old);
        QueryRegistration {
            manager: self.clone(),
            ctx: ctx.clone(),
            progress,
            phase,
        }
    }

    /// Applies a kill (permissions are the caller's business).
    pub fn kill(&self, scope: KillScope, reason: Reason) -> KillOutcome {
        match scope {
            KillScope::Connection => {
                KillOutcome::from_cancel(self.routine.cancel_with(Cause::canceled(
                    reason,
                    Level::Routine,
                    self.routine.id(),
                )))
            }
            KillScope::Query { statement } => {
                let target = {
                    let st = lock(&self.state);
                    match (&st.query, statement) {
                        (Some(q), Some(s)) if q.statement_id == s => Some(q.ctx.clone()),
                        (_, Some(s)) => {
                            return KillOutcome::NotRunning {
                                connection: self.connection_id,
                                statement: s,
                            }
                        }
                        (q, None) => q.as_ref().map(|q| q.ctx.clone()),
                    }
                };
                KillOutcome::from_cancel(match target {
                    Some(q) => q.cancel_with(Cause::canceled(reason, Level::Query, q.id())),
                    None => false,
                })
            }
        }
    }

    /// The id of the statement running now, if any.
    pub fn running_statement(&self) -> Option<u64> {
        lock(&self.state).query.as_ref().map(|q| q.statement_id)
    }

    /// The session as a process-list row.
    pub fn info(&self) -> ProcessInfo {
        let now = self.routine.host().now();
        let st = lock(&self.state);
        let rows_examined = st
            .query
            .as_ref()
            .map_or(0, |q| q.progress.load(std::sync::atomic::Ordering::Relaxed));
        let (command, state, since, info, statement_id) = match &st.query {
            Some(q) => (
                if q.ctx.is_cancelled() {
                    "Killed"
                } else {
                    "Query"
                },
                q.phase.get().as_str(),
                q.since,
                Some(q.sql.to_string()),
                Some(q.statement_id),
            ),
            None => (
                if self.routine.is_cancelled() {
                    "Killed"
                } else if &*self.identity.role == Identity::BACKGROUND_ROLE {
                    // The engine's own session between rounds, as MySQL
                    // shows its event scheduler.
                    "Daemon"
                } else {
                    "Sleep"
                },
                st.phase.map_or("", Phase::as_str),
                st.idle_since,
                None,
                None,
            ),
        };
        let tenant = self.routine.values().get::<Arc<TenantState>>();
        ProcessInfo {
            id: self.connection_id,
            tenant: self.identity.tenant.to_string(),
            user: self.identity.user.to_string(),
            role: self.identity.role.to_string(),
            command,
            time_ms: u64::try_from(now.saturating_since(since).as_millis()).unwrap_or(u64::MAX),
            state,
            info,
            statement_id,
            txn_id: st.txn.as_ref().and_then(|t| t.values().txn_id()),
            rows_examined,
            tenant_memory: tenant.map_or(0, |t| t.memory().used()),
            tenant_memory_budget: tenant.and_then(|t| t.limits().memory_budget),
        }
    }
}

/// Keeps a statement registered with its [`CancelManager`]; dropping it
/// deregisters the statement (only that statement).
#[must_use = "the statement is deregistered when this is dropped"]
pub struct QueryRegistration {
    manager: Arc<CancelManager>,
    ctx: Context,
    progress: Arc<std::sync::atomic::AtomicU64>,
    phase: Arc<PhaseCell>,
}

impl QueryRegistration {
    /// The statement's phase, shown in the process list; the statement
    /// moves it as it goes.
    pub fn phase(&self) -> &Arc<PhaseCell> {
        &self.phase
    }

    /// The counter of rows processed, shown in the process list.
    pub fn progress(&self) -> &std::sync::atomic::AtomicU64 {
        &self.progress
    }

    /// Marks the statement as executing (for the process list).
    pub fn start(&self) {
        self.phase.set(Phase::Executing);
    }
}

impl Drop for QueryRegistration {
    fn drop(&mut self) {
        let now = self.manager.routine.host().now();
        let old = {
            let mut st = lock(&self.manager.state);
            if st.query.as_ref().is_some_and(|q| q.ctx.same(&self.ctx)) {
                st.idle_since = now;
                st.query.take()
            } else {
                None
            }
        };
        drop(old);
    }
}

/// The node-wide map from connection ids to sessions.
#[derive(Default)]
pub struct ProcessList {
    sessions: Mutex<BTreeMap<u64, Arc<CancelManager>>>,
}

impl std::fmt::Debug for ProcessList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessList")
            .field("len", &self.len())
            .finish()
    }
}

impl ProcessList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session; it leaves the list when the guard is dropped.
    pub fn register(self: &Arc<Self>, manager: Arc<CancelManager>) -> Registration {
        let id = manager.connection_id;
        lock(&self.sessions).insert(id, manager);
        Registration {
            list: self.clone(),
            id,
        }
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A session by connection id.
    pub fn get(&self, id: u64) -> Option<Arc<CancelManager>> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// Every session (for shutdown and views; no permission check).
    pub fn all(&self) -> Vec<Arc<CancelManager>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// `KILL` as `caller` (on connection `caller_conn`) aimed at connection
    /// `target`: 1094 for an unknown id or another tenant's connection,
    /// 1095 for one of the caller's tenant it may not act on.
    pub fn kill(
        &self,
        caller: &Identity,
        caller_conn: u64,
        target: u64,
        scope: KillScope,
    ) -> Result<KillOutcome, KillError> {
        self.kill_from(caller, caller_conn, None, target, scope)
    }

    /// [`ProcessList::kill`] sent from node `origin_node` (a `KILL`
    /// forwarded by another node, `caller_conn` one of that node's
    /// connections): the same rules; the victim's cause names the node
    /// ("cancelled by node N: killed by KILL QUERY from connection …").
    pub fn kill_from(
        &self,
        caller: &Identity,
        caller_conn: u64,
        origin_node: Option<u64>,
        target: u64,
        scope: KillScope,
    ) -> Result<KillOutcome, KillError> {
        let session = self.get(target).ok_or(KillError::UnknownThread(target))?;
        if !caller.may_act_on(&session.identity) {
            return Err(if caller.tenant == session.identity.tenant {
                KillError::NotOwner(target)
            } else {
                KillError::UnknownThread(target)
            });
        }
        let by_user: Arc<str> = caller.user.clone();
        let reason = match scope {
            KillScope::Query { .. } => Reason::KillQuery {
                by_connection: caller_conn,
                by_user,
            },
            KillScope::Connection => Reason::KillConnection {
                by_connection: caller_conn,
                by_user,
            },
        };
        let reason = match origin_node {
            Some(node) => crate::remote::remote_reason(node, reason),
            None => reason,
        };
        Ok(session.kill(scope, reason))
    }

    /// The rows of `SHOW PROCESSLIST` that `caller` may see, by id.
    pub fn snapshot(&self, caller: &Identity) -> Vec<ProcessInfo> {
        self.all()
            .into_iter()
            .filter(|s| caller.may_act_on(&s.identity))
            .map(|s| s.info())
            .collect()
    }
}

/// Keeps a session in the [`ProcessList`]; dropping it removes the session.
#[must_use = "the session leaves the process list when this is dropped"]
pub struct Registration {
    list: Arc<ProcessList>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let old = lock(&self.list.sessions).remove(&self.id);
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ManualHost;
    use crate::CancelKind;

    fn setup() -> (Context, Arc<ProcessList>) {
        let root = Context::root(Arc::new(ManualHost::new()))
            .node_id(1)
            .build()
            .unwrap();
        (root, Arc::new(ProcessList::new()))
    }

    fn session(
        root: &Context,
        list: &Arc<ProcessList>,
        id: u64,
        who: &Identity,
    ) -> (Arc<CancelManager>, Registration) {
        let routine = root
            .child(Level::Routine)
            .identity(who.clone())
            .connection_id(id)
            .session_id(id)
            .build()
            .unwrap();
        let m = CancelManager::new(routine);
        let reg = list.register(m.clone());
        (m, reg)
    }

    fn query(m: &CancelManager, stmt: u64) -> (Context, Context) {
        let req = m.routine().child(Level::Request).build().unwrap();
        let q = req.child(Level::Query).statement_id(stmt).build().unwrap();
        (req, q)
    }

    #[test]
    fn kill_query_hits_only_the_running_statement() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        let (m, _r) = session(&root, &list, 1, &alice);
        let (_req, q1) = query(&m, 1);
        let reg = m.register_query(&q1, "select 1");
        assert_eq!(
            list.kill(&alice, 2, 1, KillScope::Query { statement: None }),
            Ok(KillOutcome::Killed)
        );
        assert!(q1.is_cancelled());
        let cause = q1.cause().unwrap();
        assert_eq!(cause.kind, CancelKind::Canceled);
        assert_eq!(cause.reason.who(), Some(2));
        assert!(!m.routine().is_cancelled());
        drop(reg);
        // Between statements: nothing to kill, and the next one is unaffected.
        assert_eq!(
            list.kill(&alice, 2, 1, KillScope::Query { statement: None }),
            Ok(KillOutcome::Nothing)
        );
        let (_req2, q2) = query(&m, 2);
        let _reg2 = m.register_query(&q2, "select 2");
        assert!(!q2.is_cancelled());
    }

    #[test]
    fn kill_before_execution_is_not_lost() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        let (m, _r) = session(&root, &list, 1, &alice);
        let (_req, q) = query(&m, 7);
        let reg = m.register_query(&q, "select sleep(10)");
        list.kill(&alice, 1, 1, KillScope::Query { statement: Some(7) })
            .unwrap();
        reg.start();
        assert!(
            q.check().is_err(),
            "a statement killed before it started starts cancelled"
        );
    }

    #[test]
    fn statement_id_must_match() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        let (m, _r) = session(&root, &list, 1, &alice);
        let (_req, q) = query(&m, 7);
        let _reg = m.register_query(&q, "x");
        assert_eq!(
            list.kill(&alice, 1, 1, KillScope::Query { statement: Some(8) }),
            Ok(KillOutcome::NotRunning {
                connection: 1,
                statement: 8
            })
        );
        assert!(!q.is_cancelled());
        assert_eq!(m.running_statement(), Some(7));
        assert_eq!(
            list.kill(&alice, 1, 1, KillScope::Query { statement: Some(7) }),
            Ok(KillOutcome::Killed)
        );
        assert!(q.is_cancelled());
    }

    #[test]
    fn permissions_and_unknown_ids() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        let bob = Identity::new("acme", "bob", "member");
        let admin = Identity::new("acme", "root", "admin");
        let carol = Identity::new("globex", "carol", "admin");
        let (_ma, _ra) = session(&root, &list, 1, &alice);
        let (_mb, _rb) = session(&root, &list, 2, &bob);
        let (_mc, _rc) = session(&root, &list, 3, &carol);
        assert_eq!(
            list.kill(&bob, 2, 1, KillScope::Connection)
                .unwrap_err()
                .mysql_code(),
            1095
        );
        // Another tenant's connection is invisible: as unknown as id 99,
        // word for word.
        assert_eq!(
            list.kill(&carol, 3, 1, KillScope::Connection),
            Err(KillError::UnknownThread(1))
        );
        assert_eq!(
            list.kill(
                &Identity::new("sys", "ops", "member"),
                4,
                1,
                KillScope::Connection
            ),
            Err(KillError::UnknownThread(1))
        );
        assert_eq!(
            list.kill(&alice, 1, 3, KillScope::Query { statement: None }),
            Err(KillError::UnknownThread(3))
        );
        assert_eq!(
            list.kill(&alice, 1, 99, KillScope::Connection)
                .unwrap_err()
                .mysql_code(),
            1094
        );
        assert_eq!(
            list.snapshot(&alice)
                .iter()
                .map(|p| p.id)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            list.snapshot(&admin)
                .iter()
                .map(|p| p.id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            list.snapshot(&Identity::new("sys", "root", "admin")).len(),
            3
        );
        assert_eq!(
            list.kill(&admin, 9, 2, KillScope::Connection),
            Ok(KillOutcome::Killed)
        );
        assert_eq!(
            list.kill(&admin, 9, 2, KillScope::Connection),
            Ok(KillOutcome::Nothing)
        );
    }

    #[test]
    fn kill_connection_cascades_to_txn_and_query_but_not_other_sessions() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        let (m1, _r1) = session(&root, &list, 1, &alice);
        let (m2, _r2) = session(&root, &list, 2, &alice);
        let txn = m1.routine().child(Level::Txn).txn_id(5).build().unwrap();
        m1.set_txn(Some(txn.clone()));
        let (_req, q) = query(&m1, 1);
        let (_req2, q2) = query(&m2, 1);
        list.kill(&alice, 2, 1, KillScope::Connection).unwrap();
        assert!(txn.is_cancelled() && q.is_cancelled());
        assert!(!q2.is_cancelled() && !root.is_cancelled());
        assert_eq!(m1.info().command, "Killed");
        assert_eq!(m1.info().txn_id, Some(5));
    }

    #[test]
    fn registration_guard_leaves_list_empty() {
        let (root, list) = setup();
        let alice = Identity::new("acme", "alice", "member");
        {
            let (_m, _r) = session(&root, &list, 1, &alice);
            assert_eq!(list.len(), 1);
        }
        assert!(list.is_empty());
        assert_eq!(root.subtree_len(), 1);
    }
}
