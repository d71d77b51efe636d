//! Why a context stopped: the *kind* (`Canceled` / `DeadlineExceeded`, as in
//! Go's `ctx.Err()`) kept apart from the *cause* (who or what, and at which
//! level it started, as in Go's `context.Cause`).
//!
//! The first cause wins: once a context is cancelled, later cancels change
//! nothing. A deadline's cause always has kind `DeadlineExceeded`; no later
//! cancel can turn it into a plain cancel.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

use crate::level::Level;

/// The kind of a cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelKind {
    /// Cancelled explicitly (kill, disconnect, rollback, shutdown, …).
    Canceled,
    /// A deadline passed.
    DeadlineExceeded,
}

impl fmt::Display for CancelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelKind::Canceled => "canceled",
            CancelKind::DeadlineExceeded => "deadline exceeded",
        })
    }
}

/// What stopped a context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Reason {
    /// Cancelled by the embedder with no more specific reason.
    Requested,
    /// `KILL QUERY` sent by connection `by_connection` (user `by_user`).
    KillQuery {
        /// Connection that sent the KILL.
        by_connection: u64,
        /// User that sent the KILL.
        by_user: Arc<str>,
    },
    /// `KILL CONNECTION` sent by connection `by_connection`.
    KillConnection {
        /// Connection that sent the KILL.
        by_connection: u64,
        /// User that sent the KILL.
        by_user: Arc<str>,
    },
    /// The client went away.
    ClientDisconnected,
    /// The connection was closed by its owner.
    ConnectionClosed,
    /// `max_execution_time` (or a per-call timeout) passed.
    StatementTimeout {
        /// The limit in milliseconds.
        limit_ms: u64,
    },
    /// A cleanup context ran out of time.
    CleanupTimeout {
        /// The limit in milliseconds.
        limit_ms: u64,
    },
    /// A deadline set by the embedder passed.
    Deadline {
        /// The timeout in milliseconds.
        limit_ms: u64,
    },
    /// The transaction was rolled back, which stops its statements.
    TxnRolledBack {
        /// The transaction's id.
        txn_id: u64,
    },
    /// The query's memory budget was exceeded.
    MemoryBudgetExceeded {
        /// Budget in bytes.
        budget: u64,
        /// Bytes the query asked for in total.
        requested: u64,
    },
    /// The tenant's memory budget, shared by its running statements, was
    /// exceeded by this statement's reservation.
    TenantMemoryBudgetExceeded {
        /// The tenant.
        tenant: Arc<str>,
        /// The tenant's budget in bytes.
        budget: u64,
        /// Bytes the tenant's statements asked for in total.
        requested: u64,
    },
    /// The node is shutting down.
    Shutdown,
    /// `DROP DATABASE` of a database the transaction's statements use.
    DatabaseDropped {
        /// The database's name.
        database: Arc<str>,
        /// Connection that sent the `DROP DATABASE`.
        by_connection: u64,
    },
    /// Anything else, in words.
    Other {
        /// Description.
        message: Arc<str>,
    },
    /// The cancel started on another node and crossed to this one
    /// (`core/src/remote.rs`): `reason` is the origin's, never itself
    /// `Remote` (a cause that crosses several hops keeps its origin node).
    Remote {
        /// The node the cancellation started on.
        node_id: u64,
        /// Why, on that node.
        reason: Arc<Reason>,
    },
}

impl Reason {
    /// The connection that caused this, when a client did.
    pub fn who(&self) -> Option<u64> {
        match self {
            Reason::KillQuery { by_connection, .. }
            | Reason::KillConnection { by_connection, .. } => Some(*by_connection),
            Reason::Remote { reason, .. } => reason.who(),
            _ => None,
        }
    }

    /// Whether a memory budget (the statement's or its tenant's) stopped it.
    pub fn is_memory_budget(&self) -> bool {
        matches!(
            self,
            Reason::MemoryBudgetExceeded { .. } | Reason::TenantMemoryBudgetExceeded { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Requested => write!(f, "canceled by the caller"),
            Reason::KillQuery {
                by_connection,
                by_user,
            } => write!(
                f,
                "killed by KILL QUERY from connection {by_connection} (user {by_user})"
            ),
            Reason::KillConnection {
                by_connection,
                by_user,
            } => write!(
                f,
                "killed by KILL CONNECTION from connection {by_connection} (user {by_user})"
            ),
            Reason::ClientDisconnected => write!(f, "the client disconnected"),
            Reason::ConnectionClosed => write!(f, "the connection was closed"),
            Reason::StatementTimeout { limit_ms } => {
                write!(
                    f,
                    "statement timeout of {limit_ms} ms (max_execution_time) exceeded"
                )
            }
            Reason::CleanupTimeout { limit_ms } => {
                write!(f, "cleanup timeout of {limit_ms} ms exceeded")
            }
            Reason::Deadline { limit_ms } => write!(f, "deadline of {limit_ms} ms exceeded"),
            Reason::TxnRolledBack { txn_id } => {
                write!(f, "transaction {txn_id} was rolled back")
            }
            Reason::MemoryBudgetExceeded { budget, requested } => write!(
                f,
                "memory budget of {budget} bytes exceeded ({requested} bytes requested)"
            ),
            Reason::TenantMemoryBudgetExceeded {
                tenant,
                budget,
                requested,
            } => write!(
                f,
                "memory budget of tenant '{tenant}' ({budget} bytes) exceeded ({requested} bytes requested by its statements)"
            ),
            Reason::Shutdown => write!(f, "the server is shutting down"),
            Reason::DatabaseDropped {
                database,
                by_connection,
            } => write!(
                f,
                "database dropped: `{database}` was dropped by connection {by_connection}"
            ),
            Reason::Other { message } => f.write_str(message),
            Reason::Remote { node_id, reason } => {
                write!(f, "cancelled by node {node_id}: {reason}")
            }
        }
    }
}

/// A complete cause: kind, reason, and where it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// `Canceled` or `DeadlineExceeded`.
    pub kind: CancelKind,
    /// Why.
    pub reason: Reason,
    /// The level of the context the cancellation started at.
    pub level: Level,
    /// The id of the context the cancellation started at.
    pub context_id: u64,
}

impl Cause {
    /// A cause of kind `Canceled`.
    pub fn canceled(reason: Reason, level: Level, context_id: u64) -> Self {
        Cause {
            kind: CancelKind::Canceled,
            reason,
            level,
            context_id,
        }
    }

    /// A cause of kind `DeadlineExceeded`.
    pub fn deadline(reason: Reason, level: Level, context_id: u64) -> Self {
        Cause {
            kind: CancelKind::DeadlineExceeded,
            reason,
            level,
            context_id,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} level", self.reason, self.level)
    }
}

/// The error returned by a check of a cancelled context.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .0.kind, .0)]
pub struct Cancelled(pub Arc<Cause>);

impl Cancelled {
    /// The kind.
    pub fn kind(&self) -> CancelKind {
        self.0.kind
    }
    /// The full cause.
    pub fn cause(&self) -> &Arc<Cause> {
        &self.0
    }
}
