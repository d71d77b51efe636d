//! The control path across nodes (issue 12.3): `KILL <id>` whose id names
//! another node, and the process lists of the other nodes for
//! `SHOW PROCESSLIST` (docs/across-nodes.md, "Global connection ids and
//! KILL routing").
//!
//! Core has no transport: an embedder with peers (`cascade-server` with a
//! `[cluster]` section) implements [`PeerAdmin`] over its own transport and
//! installs it with [`Engine::set_peer_admin`](super::Engine::set_peer_admin).
//! The owner node applies the *same* kill rules as a local `KILL`, for the
//! identity the caller's context carries (checked on arrival against the
//! peer's grant, so a peer cannot raise tenant or role), with
//! [`Engine::kill_for_peer`](super::Engine::kill_for_peer) and
//! [`Engine::process_rows`](super::Engine::process_rows).

use futures::future::BoxFuture;

use crate::context::Context;
use crate::registry::{KillOutcome, KillScope, ProcessInfo};
use crate::session::QueryError;

/// One row of `SHOW PROCESSLIST`, owned, with the node it lives on: what
/// a node sends another for the cluster-wide list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRow {
    /// The node the connection lives on.
    pub node: u64,
    /// Connection id (global when the engine uses global ids).
    pub id: u64,
    /// Tenant.
    pub tenant: String,
    /// User.
    pub user: String,
    /// Role.
    pub role: String,
    /// The current database.
    pub db: Option<String>,
    /// `Query`, `Sleep`, `Daemon` or `Killed`.
    pub command: String,
    /// Milliseconds in the current state.
    pub time_ms: u64,
    /// The phase (empty when idle).
    pub state: String,
    /// The statement's text while one runs.
    pub info: Option<String>,
    /// The running statement's id.
    pub statement_id: Option<u64>,
    /// Rows processed so far by the running statement.
    pub rows_examined: u64,
    /// Bytes the tenant's running statements hold now.
    pub tenant_memory: u64,
    /// The tenant's memory budget, if any.
    pub tenant_memory_budget: Option<u64>,
}

impl ProcessRow {
    /// The row of `p` on node `node`, whose current database is `db`.
    pub fn new(node: u64, p: ProcessInfo, db: Option<String>) -> Self {
        ProcessRow {
            node,
            id: p.id,
            tenant: p.tenant,
            user: p.user,
            role: p.role,
            db,
            command: p.command.to_owned(),
            time_ms: p.time_ms,
            state: p.state.to_owned(),
            info: p.info,
            statement_id: p.statement_id,
            rows_examined: p.rows_examined,
            tenant_memory: p.tenant_memory,
            tenant_memory_budget: p.tenant_memory_budget,
        }
    }
}

/// What one peer answered for the cluster-wide process list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerProcesses {
    /// The peer.
    pub node: u64,
    /// Its rows the caller may see, or why it could not be asked (an
    /// unreachable node, a refused identity): `SHOW PROCESSLIST` reports
    /// that as a warning, not a failure.
    pub rows: Result<Vec<ProcessRow>, String>,
}

/// The control path to the other nodes, implemented by an embedder over
/// its transport (`cascade-server`: gRPC through `cascade-grpc`'s layers).
///
/// `ctx` is the caller's Query context (the `KILL` or `SHOW PROCESSLIST`
/// statement): the implementation carries its values (identity, global
/// connection id, statement id), its deadline and its cancellation to the
/// peer, and the peer applies its own rules to them.
pub trait PeerAdmin: Send + Sync + 'static {
    /// `KILL` on node `node` (not this one) of connection `target` as the
    /// caller of `ctx`. The owner's answer word for word: its outcome, or
    /// its error (1094 unknown thread, 1095 not owner); a node that is not
    /// a peer answers 1094 as for an id no connection has; an unreachable
    /// node is an error that names it.
    fn kill(
        &self,
        ctx: &Context,
        node: u64,
        target: u64,
        scope: KillScope,
    ) -> BoxFuture<'static, Result<KillOutcome, QueryError>>;

    /// The process lists of every peer (not this node) as the caller of
    /// `ctx` may see them, one entry per peer.
    fn process_lists(&self, ctx: &Context) -> BoxFuture<'static, Vec<PeerProcesses>>;
}
