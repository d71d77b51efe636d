//! Contexts across nodes: the wire form of a context, and the remote child
//! a receiving node builds from it (docs/across-nodes.md).
//!
//! No transport here: `cascade-grpc` carries a [`WireContext`] in gRPC
//! metadata, and the simulation in `core/tests/remote_sim.rs` passes it
//! between in-process nodes. What crosses:
//!
//! * the values (identity, global connection id, session, txn and statement
//!   ids) and the level of the sending context;
//! * the deadline as the **remaining budget** on the sender's host clock,
//!   never an absolute time, with the cause it fires with;
//! * trace ids (`traceparent` / `tracestate`) as opaque strings;
//! * on cancel, a [`WireCause`]: kind, reason, level and the node it
//!   started on. The receiving side's context gets
//!   [`Reason::Remote`]: "cancelled by node N: <cause>".
//!
//! The receiving node checks the values against a [`PeerGrant`] that comes
//! from its own configuration or from the transport's authentication, never
//! from the call: a remote cannot raise its tenant or role.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cause::{CancelKind, Cause, Reason};
use crate::context::Context;
use crate::error::ContextError;
use crate::level::Level;
use crate::values::{Identity, ValueKey};

/// Why a remote context could not be exported or built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The peer may not act for this tenant or with this role (MySQL 1227).
    #[error("access denied: node {peer} may not {what}")]
    Refused {
        /// The authenticated peer.
        peer: u64,
        /// What it tried, in words ("act for tenant sys").
        what: String,
    },
    /// The call claims to come from another node than the authenticated
    /// peer (MySQL 1227).
    #[error("access denied: the call claims node {claimed}, the peer is node {peer}")]
    WrongNode {
        /// The node the call names.
        claimed: u64,
        /// The authenticated peer.
        peer: u64,
    },
    /// A context of this level cannot be sent to another node (only
    /// Request, Query and Pipeline can).
    #[error("a {0} context cannot have a remote child")]
    BadLevel(Level),
    /// The wire form lacks a value the remote child needs.
    #[error("the remote context lacks the value `{0}`")]
    MissingValue(ValueKey),
    /// The wire form is malformed (an unknown level, kind or reason).
    #[error("malformed remote context: {0}")]
    Malformed(String),
    /// The local side: the root is not a Root with a node id, or the
    /// derivation failed.
    #[error(transparent)]
    Context(#[from] ContextError),
}

impl RemoteError {
    /// The MySQL error code: 1227 for a refused identity or node, 1105
    /// otherwise.
    pub fn mysql_code(&self) -> u16 {
        match self {
            RemoteError::Refused { .. } | RemoteError::WrongNode { .. } => 1227,
            _ => 1105,
        }
    }
    /// The SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            RemoteError::Refused { .. } | RemoteError::WrongNode { .. } => "42000",
            _ => "HY000",
        }
    }
}

/// A level as a small number on the wire (its position, outermost first).
pub fn level_to_wire(level: Level) -> u32 {
    Level::ALL.iter().position(|l| *l == level).unwrap_or(0) as u32
}

/// The level of a wire number.
pub fn level_from_wire(n: u32) -> Result<Level, RemoteError> {
    Level::ALL
        .get(n as usize)
        .copied()
        .ok_or_else(|| RemoteError::Malformed(format!("level {n}")))
}

/// A [`Reason`] as flat fields, for any wire format: a tag, two numbers and
/// two strings. [`ReasonParts::into_reason`] is its inverse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonParts {
    /// Which reason (`"kill_query"`, `"statement_timeout"`, …).
    pub tag: String,
    /// First number (a connection id, a limit, a budget).
    pub a: u64,
    /// Second number.
    pub b: u64,
    /// Text (a user name, a message).
    pub text: String,
}

impl ReasonParts {
    /// The parts of `reason`. A [`Reason::Remote`] gives its inner reason
    /// (the origin node travels beside it, in [`WireCause`]).
    pub fn of(reason: &Reason) -> Self {
        let p = |tag: &str, a: u64, b: u64, text: &str| ReasonParts {
            tag: tag.to_owned(),
            a,
            b,
            text: text.to_owned(),
        };
        match reason {
            Reason::Requested => p("requested", 0, 0, ""),
            Reason::KillQuery {
                by_connection,
                by_user,
            } => p("kill_query", *by_connection, 0, by_user),
            Reason::KillConnection {
                by_connection,
                by_user,
            } => p("kill_connection", *by_connection, 0, by_user),
            Reason::ClientDisconnected => p("client_disconnected", 0, 0, ""),
            Reason::ConnectionClosed => p("connection_closed", 0, 0, ""),
            Reason::StatementTimeout { limit_ms } => p("statement_timeout", *limit_ms, 0, ""),
            Reason::CleanupTimeout { limit_ms } => p("cleanup_timeout", *limit_ms, 0, ""),
            Reason::Deadline { limit_ms } => p("deadline", *limit_ms, 0, ""),
            Reason::TxnRolledBack { txn_id } => p("txn_rolled_back", *txn_id, 0, ""),
            Reason::MemoryBudgetExceeded { budget, requested } => {
                p("memory_budget_exceeded", *budget, *requested, "")
            }
            Reason::TenantMemoryBudgetExceeded {
                tenant,
                budget,
                requested,
            } => p("tenant_memory_budget_exceeded", *budget, *requested, tenant),
            Reason::DatabaseDropped {
                database,
                by_connection,
            } => p("database_dropped", *by_connection, 0, database),
            Reason::Shutdown => p("shutdown", 0, 0, ""),
            Reason::Other { message } => p("other", 0, 0, message),
            Reason::Remote { reason, .. } => ReasonParts::of(reason),
        }
    }

    /// The reason these parts describe. An unknown tag is an error (a
    /// newer peer's reason is not guessed at).
    pub fn into_reason(self) -> Result<Reason, RemoteError> {
        let ReasonParts { tag, a, b, text } = self;
        Ok(match tag.as_str() {
            "requested" => Reason::Requested,
            "kill_query" => Reason::KillQuery {
                by_connection: a,
                by_user: text.into(),
            },
            "kill_connection" => Reason::KillConnection {
                by_connection: a,
                by_user: text.into(),
            },
            "client_disconnected" => Reason::ClientDisconnected,
            "connection_closed" => Reason::ConnectionClosed,
            "statement_timeout" => Reason::StatementTimeout { limit_ms: a },
            "cleanup_timeout" => Reason::CleanupTimeout { limit_ms: a },
            "deadline" => Reason::Deadline { limit_ms: a },
            "txn_rolled_back" => Reason::TxnRolledBack { txn_id: a },
            "memory_budget_exceeded" => Reason::MemoryBudgetExceeded {
                budget: a,
                requested: b,
            },
            "tenant_memory_budget_exceeded" => Reason::TenantMemoryBudgetExceeded {
                tenant: text.into(),
                budget: a,
                requested: b,
            },
            "database_dropped" => Reason::DatabaseDropped {
                database: text.into(),
                by_connection: a,
            },
            "shutdown" => Reason::Shutdown,
            "other" => Reason::Other {
                message: text.into(),
            },
            _ => return Err(RemoteError::Malformed(format!("reason `{tag}`"))),
        })
    }
}

/// A cancel cause on the wire: kind, reason, the level it started at, and
/// the node it started on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireCause {
    /// `Canceled` or `DeadlineExceeded`.
    pub kind: CancelKind,
    /// The origin's reason (never [`Reason::Remote`]).
    pub reason: Reason,
    /// The level the cancellation started at, on the origin node.
    pub level: Level,
    /// The node the cancellation started on.
    pub origin_node: u64,
}

impl WireCause {
    /// The wire form of `cause`, seen on node `this_node`: a cause that
    /// came from another node keeps that node as its origin, so a cause
    /// that crosses several hops names where it started.
    pub fn of(cause: &Cause, this_node: u64) -> Self {
        let (origin_node, reason) = match &cause.reason {
            Reason::Remote { node_id, reason } => (*node_id, (**reason).clone()),
            r => (this_node, r.clone()),
        };
        WireCause {
            kind: cause.kind,
            reason,
            level: cause.level,
            origin_node,
        }
    }

    /// The cause a context on the receiving node gets: the same kind and
    /// level, the reason wrapped in [`Reason::Remote`] ("cancelled by node
    /// N: …"), `context_id` the local context it is applied to.
    pub fn to_cause(&self, context_id: u64) -> Cause {
        Cause {
            kind: self.kind,
            reason: remote_reason(self.origin_node, self.reason.clone()),
            level: self.level,
            context_id,
        }
    }
}

/// `reason` as seen on another node: wrapped once in [`Reason::Remote`] with
/// its origin node; an already remote reason keeps its own origin.
pub fn remote_reason(origin_node: u64, reason: Reason) -> Reason {
    match reason {
        r @ Reason::Remote { .. } => r,
        r => Reason::Remote {
            node_id: origin_node,
            reason: Arc::new(r),
        },
    }
}

/// What crosses to another node with a call: the context's values, level,
/// remaining deadline and trace ids.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WireContext {
    /// The sending node.
    pub origin_node: u64,
    /// The sending context's level (Request, Query or Pipeline); `None`
    /// only in a malformed form.
    pub level: Option<Level>,
    /// Tenant, user and role the work runs for (checked on arrival).
    pub identity: Option<Identity>,
    /// The connection (a global id, [`GlobalConnId`]).
    pub connection_id: Option<u64>,
    /// The session.
    pub session_id: Option<u64>,
    /// The transaction.
    pub txn_id: Option<u64>,
    /// The statement.
    pub statement_id: Option<u64>,
    /// Time left before the sender's deadline, on the sender's clock when
    /// the call was built. `None`: no deadline.
    pub budget: Option<Duration>,
    /// The cause the deadline fires with (kind `DeadlineExceeded`).
    pub deadline_cause: Option<WireCause>,
    /// W3C `traceparent`, opaque here.
    pub traceparent: Option<String>,
    /// W3C `tracestate`, opaque here.
    pub tracestate: Option<String>,
}

impl WireContext {
    /// The wire form of `ctx`: its values, its level, the time left before
    /// its deadline on its host's clock now, and the deadline's cause.
    /// Only Request, Query and Pipeline contexts may have remote children;
    /// the tree must have a node id. Trace ids are added by the caller
    /// ([`WireContext::with_trace`]).
    pub fn export(ctx: &Context) -> Result<Self, RemoteError> {
        let level = ctx.level();
        if !matches!(level, Level::Request | Level::Query | Level::Pipeline) {
            return Err(RemoteError::BadLevel(level));
        }
        let v = ctx.values();
        let node = v
            .node_id()
            .ok_or(RemoteError::MissingValue(ValueKey::NodeId))?;
        let deadline = ctx.deadline();
        Ok(WireContext {
            origin_node: node,
            level: Some(level),
            identity: v.identity().map(|i| (**i).clone()),
            connection_id: v.connection_id(),
            session_id: v.session_id(),
            txn_id: v.txn_id(),
            statement_id: v.statement_id(),
            budget: ctx.remaining(),
            deadline_cause: deadline.map(|d| WireCause::of(&d.cause, node)),
            traceparent: None,
            tracestate: None,
        })
    }

    /// With trace ids (opaque W3C strings).
    pub fn with_trace(mut self, traceparent: Option<String>, tracestate: Option<String>) -> Self {
        self.traceparent = traceparent;
        self.tracestate = tracestate;
        self
    }

    /// With the statement id a Request's remote Query gets.
    pub fn with_statement_id(mut self, id: u64) -> Self {
        self.statement_id = Some(id);
        self
    }

    /// The level of the remote child: one deeper than the sender's.
    pub fn child_level(&self) -> Result<Level, RemoteError> {
        match self.level {
            Some(Level::Request) => Ok(Level::Query),
            Some(Level::Query | Level::Pipeline) => Ok(Level::Pipeline),
            Some(l) => Err(RemoteError::BadLevel(l)),
            None => Err(RemoteError::Malformed("no level".into())),
        }
    }
}

/// What the receiving node lets an authenticated peer do. It comes from
/// the receiving node's configuration (its static peer list) or from the
/// transport's authentication (an mTLS certificate), never from the call.
///
/// The rule: a remote context is accepted only if its tenant is one the
/// grant lists (or any tenant but `sys` for [`PeerGrant::any_tenant`]) and
/// its role is not `admin` unless the grant allows `admin`. Tenant `sys` is
/// accepted only when listed by name. A peer may always lower what it may
/// not raise (an admin grant accepts a member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerGrant {
    /// The peer's node id, as authenticated.
    pub node_id: u64,
    /// The tenants it may act for; `None`: any tenant but `sys`.
    pub tenants: Option<Vec<Arc<str>>>,
    /// Whether it may carry the `admin` role.
    pub admin: bool,
}

impl PeerGrant {
    /// A peer trusted for every tenant but `sys`, without `admin`.
    pub fn any_tenant(node_id: u64) -> Self {
        PeerGrant {
            node_id,
            tenants: None,
            admin: false,
        }
    }
    /// A peer trusted for the listed tenants only, without `admin`.
    pub fn tenants(node_id: u64, tenants: &[&str]) -> Self {
        PeerGrant {
            node_id,
            tenants: Some(tenants.iter().map(|t| Arc::from(*t)).collect()),
            admin: false,
        }
    }
    /// Also allows the `admin` role.
    pub fn with_admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// Checks an identity against the grant (the rule above).
    pub fn check(&self, identity: &Identity) -> Result<(), RemoteError> {
        let tenant_ok = match &self.tenants {
            Some(list) => list.contains(&identity.tenant),
            None => &*identity.tenant != Identity::SYS_TENANT,
        };
        if !tenant_ok {
            return Err(RemoteError::Refused {
                peer: self.node_id,
                what: format!("act for tenant {}", identity.tenant),
            });
        }
        if &*identity.role == Identity::ADMIN_ROLE && !self.admin {
            return Err(RemoteError::Refused {
                peer: self.node_id,
                what: format!("carry role admin (tenant {})", identity.tenant),
            });
        }
        Ok(())
    }
}

/// A remote child: the context a receiving node runs a call's work in,
/// with the stand-ins for the remote connection and request above it.
///
/// ```text
/// local Root ── Routine (the caller's connection) ── Request
///                 ── Query (the caller's statement) [── Pipeline]
/// ```
///
/// Dropping it cancels the chain ("the remote call ended") if nothing else
/// did, so no context of the call outlives it on this node.
pub struct RemoteChild {
    routine: Context,
    child: Context,
    origin_node: u64,
    traceparent: Option<String>,
    tracestate: Option<String>,
    // The contexts between the routine and the child, held so that the
    // chain stays in the tree while the call runs.
    _between: Vec<Context>,
}

impl fmt::Debug for RemoteChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChild")
            .field("origin_node", &self.origin_node)
            .field("child", &self.child)
            .finish()
    }
}

impl RemoteChild {
    /// Builds the remote child of `wire` under `local_root` (this node's
    /// Root), for the authenticated peer `grant`: checks the node, the
    /// identity (the [`PeerGrant`] rule), the level and the mandatory
    /// values, then derives Routine → Request → Query (→ Pipeline) with
    /// the caller's values and sets the remaining budget as the child's
    /// deadline on this node's host clock, with the caller's cause.
    pub fn build(
        local_root: &Context,
        grant: &PeerGrant,
        wire: &WireContext,
    ) -> Result<RemoteChild, RemoteError> {
        if local_root.level() != Level::Root {
            return Err(RemoteError::Context(ContextError::OutOfOrder {
                parent: local_root.level(),
                child: Level::Routine,
            }));
        }
        if wire.origin_node != grant.node_id {
            return Err(RemoteError::WrongNode {
                claimed: wire.origin_node,
                peer: grant.node_id,
            });
        }
        let child_level = wire.child_level()?;
        let identity = wire
            .identity
            .as_ref()
            .ok_or(RemoteError::MissingValue(ValueKey::Identity))?;
        grant.check(identity)?;
        let connection_id = wire
            .connection_id
            .ok_or(RemoteError::MissingValue(ValueKey::ConnectionId))?;
        let session_id = wire
            .session_id
            .ok_or(RemoteError::MissingValue(ValueKey::SessionId))?;
        let statement_id = wire
            .statement_id
            .ok_or(RemoteError::MissingValue(ValueKey::StatementId))?;
        let origin = wire.origin_node as i64;
        let mut routine = local_root
            .child(Level::Routine)
            .identity(identity.clone())
            .connection_id(connection_id)
            .session_id(session_id)
            .name("remote routine")
            .attr("origin_node", origin);
        // The caller's trace: the chain's spans join it (one trace id from
        // the client to every fragment). A malformed header is ignored, as
        // a bad sqlcommenter comment is.
        if let Some(tp) = wire.traceparent.as_deref().and_then(|t| {
            let parsed = crate::trace_context::TraceParent::parse(t).ok()?;
            match wire.tracestate.as_deref() {
                Some(ts) => parsed.clone().with_tracestate(ts).ok().or(Some(parsed)),
                None => Some(parsed),
            }
        }) {
            routine = routine.trace_parent(tp);
        }
        let routine = routine.build()?;
        let request = routine
            .child(Level::Request)
            .name("remote request")
            .build()?;
        let deadline = wire.budget.map(|budget| match &wire.deadline_cause {
            Some(c) => (
                budget,
                remote_reason(c.origin_node, c.reason.clone()),
                c.level,
            ),
            None => (
                budget,
                remote_reason(
                    wire.origin_node,
                    Reason::Deadline {
                        limit_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                    },
                ),
                wire.level.unwrap_or(child_level),
            ),
        });
        let mut query = request
            .child(Level::Query)
            .statement_id(statement_id)
            .name("remote query");
        if let Some(t) = wire.txn_id {
            query = query.txn_id(t);
        }
        let (query_deadline, pipeline_deadline) = match child_level {
            Level::Query => (deadline, None),
            _ => (None, deadline),
        };
        if let Some((budget, reason, level)) = query_deadline {
            query = query.timeout_from_level(budget, reason, level);
        }
        let query = query.build()?;
        let (child, between) = if child_level == Level::Query {
            (query, vec![request])
        } else {
            let mut p = query.child(Level::Pipeline).name("remote pipeline");
            if let Some((budget, reason, level)) = pipeline_deadline {
                p = p.timeout_from_level(budget, reason, level);
            }
            (p.build()?, vec![request, query])
        };
        if let Some(t) = &wire.traceparent {
            child.set_attr("traceparent", t.as_str());
        }
        Ok(RemoteChild {
            routine,
            child,
            origin_node: wire.origin_node,
            traceparent: wire.traceparent.clone(),
            tracestate: wire.tracestate.clone(),
            _between: between,
        })
    }

    /// The context the call's work runs in (a Query or a Pipeline).
    pub fn context(&self) -> &Context {
        &self.child
    }

    /// The node the call came from.
    pub fn origin_node(&self) -> u64 {
        self.origin_node
    }

    /// The caller's W3C `traceparent`, as received (opaque here).
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The caller's W3C `tracestate`, as received (opaque here).
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// Applies a cancel that crossed from the caller: the whole chain is
    /// cancelled with `cause` as seen here ("cancelled by node N: …", the
    /// caller's kind and level). False if it was already cancelled: the
    /// first cause wins.
    pub fn cancel_from_remote(&self, cause: &WireCause) -> bool {
        self.routine.cancel_with(cause.to_cause(self.routine.id()))
    }

    /// Cancels the chain because the call was lost (the stream reset, the
    /// connection closed) without a cause from the caller.
    pub fn cancel_lost(&self, what: &str) -> bool {
        self.routine.cancel_with(Cause::canceled(
            remote_reason(
                self.origin_node,
                Reason::Other {
                    message: what.into(),
                },
            ),
            Level::Routine,
            self.routine.id(),
        ))
    }
}

impl Drop for RemoteChild {
    fn drop(&mut self) {
        if !self.routine.is_cancelled() {
            self.routine.cancel(Reason::Other {
                message: format!("the remote call from node {} ended", self.origin_node).into(),
            });
        }
    }
}

/// A cluster-wide connection id: the owner node in the high 10 bits, the
/// node's local id in the low 22, so that it fits MySQL's 4-byte thread id
/// and `KILL <id>` sent to any node can be routed to the owner. Node 0 is a
/// one-node server, whose ids are its local ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalConnId(u32);

impl GlobalConnId {
    /// Bits of the node id.
    pub const NODE_BITS: u32 = 10;
    /// Bits of the local id.
    pub const LOCAL_BITS: u32 = 22;
    /// The largest node id.
    pub const MAX_NODE: u32 = (1 << Self::NODE_BITS) - 1;
    /// The largest local id.
    pub const MAX_LOCAL: u32 = (1 << Self::LOCAL_BITS) - 1;

    /// The id of local connection `local` on node `node`; an error if
    /// either does not fit.
    pub fn new(node: u32, local: u32) -> Result<Self, RemoteError> {
        if node > Self::MAX_NODE {
            return Err(RemoteError::Malformed(format!(
                "node id {node} exceeds {}",
                Self::MAX_NODE
            )));
        }
        if local > Self::MAX_LOCAL {
            return Err(RemoteError::Malformed(format!(
                "local connection id {local} exceeds {}",
                Self::MAX_LOCAL
            )));
        }
        Ok(GlobalConnId((node << Self::LOCAL_BITS) | local))
    }

    /// The id a client sent (`KILL <id>`), if it is one.
    pub fn from_u64(id: u64) -> Option<Self> {
        u32::try_from(id).ok().map(GlobalConnId)
    }

    /// The owner node.
    pub fn node(self) -> u32 {
        self.0 >> Self::LOCAL_BITS
    }

    /// The owner's local id.
    pub fn local(self) -> u32 {
        self.0 & Self::MAX_LOCAL
    }

    /// As a connection id value.
    pub fn get(self) -> u64 {
        u64::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ManualHost;

    fn node(id: u64, host: &Arc<ManualHost>) -> Context {
        Context::root(host.clone()).node_id(id).build().unwrap()
    }

    fn caller(root: &Context, identity: Identity) -> (Context, Context, Context) {
        let conn = root
            .child(Level::Routine)
            .identity(identity)
            .connection_id(GlobalConnId::new(1, 5).unwrap().get())
            .session_id(5)
            .build()
            .unwrap();
        let req = conn.child(Level::Request).build().unwrap();
        let q = req
            .child(Level::Query)
            .statement_id(17)
            .timeout(
                Duration::from_millis(500),
                Reason::StatementTimeout { limit_ms: 500 },
            )
            .build()
            .unwrap();
        (conn, req, q)
    }

    #[test]
    fn export_and_build_carry_values_budget_and_cause() {
        let h1 = Arc::new(ManualHost::new());
        let h2 = Arc::new(ManualHost::new());
        let n1 = node(1, &h1);
        let n2 = node(2, &h2);
        let (_c, _r, q) = caller(&n1, Identity::new("acme", "alice", "member"));
        h1.advance(Duration::from_millis(120));
        let wire = WireContext::export(&q).unwrap();
        assert_eq!(wire.budget, Some(Duration::from_millis(380)));
        assert_eq!(wire.child_level().unwrap(), Level::Pipeline);
        let remote = RemoteChild::build(&n2, &PeerGrant::any_tenant(1), &wire).unwrap();
        let ctx = remote.context();
        assert_eq!(ctx.level(), Level::Pipeline);
        assert_eq!(ctx.values().node_id(), Some(2), "the child is this node's");
        assert_eq!(ctx.values().tenant(), Some("acme"));
        assert_eq!(ctx.values().statement_id(), Some(17));
        assert_eq!(ctx.values().connection_id(), wire.connection_id);
        assert_eq!(ctx.remaining(), Some(Duration::from_millis(380)));
        h2.advance(Duration::from_millis(380));
        let err = ctx.check().unwrap_err();
        assert_eq!(err.kind(), CancelKind::DeadlineExceeded);
        assert_eq!(err.cause().level, Level::Query, "the caller's level");
        assert_eq!(
            err.cause().reason.to_string(),
            "cancelled by node 1: statement timeout of 500 ms (max_execution_time) exceeded"
        );
        assert!(!n1.is_cancelled() && !n2.is_cancelled());
    }

    #[test]
    fn remote_cancel_names_the_origin_node_and_keeps_kind_and_level() {
        let h = Arc::new(ManualHost::new());
        let n1 = node(1, &h);
        let n2 = node(2, &h);
        let (_c, _r, q) = caller(&n1, Identity::new("acme", "alice", "member"));
        let remote = RemoteChild::build(
            &n2,
            &PeerGrant::any_tenant(1),
            &WireContext::export(&q).unwrap(),
        )
        .unwrap();
        q.cancel(Reason::KillQuery {
            by_connection: 9,
            by_user: "root".into(),
        });
        let wire_cause = WireCause::of(&q.cause().unwrap(), 1);
        assert!(remote.cancel_from_remote(&wire_cause));
        let cause = remote.context().cause().unwrap();
        assert_eq!(cause.kind, CancelKind::Canceled);
        assert_eq!(cause.level, Level::Query);
        assert_eq!(
            cause.to_string(),
            "cancelled by node 1: killed by KILL QUERY from connection 9 (user root) at Query level"
        );
        // First cause wins.
        let late = WireCause {
            kind: CancelKind::Canceled,
            reason: Reason::Shutdown,
            level: Level::Root,
            origin_node: 1,
        };
        assert!(!remote.cancel_from_remote(&late));
        assert_eq!(remote.context().cause().unwrap(), cause);
        // A second hop keeps the origin node.
        let again = WireCause::of(&cause, 2);
        assert_eq!(again.origin_node, 1);
        assert_eq!(again.to_cause(0).reason, cause.reason);
    }

    #[test]
    fn the_remote_chain_joins_the_callers_trace() {
        let h = Arc::new(ManualHost::new());
        let rec = crate::trace::Recorder::new(h.clone(), 100);
        let n1 = Context::root(h.clone())
            .node_id(1)
            .recorder(rec.clone())
            .build()
            .unwrap();
        let n2 = Context::root(h.clone())
            .node_id(2)
            .recorder(rec)
            .build()
            .unwrap();
        let (_c, _r, q) = caller(&n1, Identity::new("acme", "alice", "member"));
        let tp = q.traceparent().unwrap();
        let wire = WireContext::export(&q)
            .unwrap()
            .with_trace(Some(tp.to_string()), None);
        let remote = RemoteChild::build(&n2, &PeerGrant::any_tenant(1), &wire).unwrap();
        let theirs = remote.context().span_context().unwrap();
        assert_eq!(theirs.trace_id, tp.trace_id, "the caller's trace id");
        // A malformed header builds the child in a trace of its own.
        let bad = WireContext::export(&q)
            .unwrap()
            .with_trace(Some("not-a-traceparent".into()), None);
        let other = RemoteChild::build(&n2, &PeerGrant::any_tenant(1), &bad).unwrap();
        assert_ne!(
            other.context().span_context().unwrap().trace_id,
            tp.trace_id
        );
    }

    #[test]
    fn a_peer_cannot_raise_tenant_or_role() {
        let h = Arc::new(ManualHost::new());
        let n1 = node(1, &h);
        let n2 = node(2, &h);
        let grant = PeerGrant::tenants(1, &["acme"]);
        for (identity, ok) in [
            (Identity::new("acme", "alice", "member"), true),
            (Identity::new("globex", "alice", "member"), false),
            (Identity::new("acme", "root", "admin"), false),
            (Identity::new("sys", "root", "admin"), false),
        ] {
            let (_c, _r, q) = caller(&n1, identity.clone());
            let got = RemoteChild::build(&n2, &grant, &WireContext::export(&q).unwrap());
            assert_eq!(got.is_ok(), ok, "{identity}");
            if let Err(e) = got {
                assert_eq!(e.mysql_code(), 1227, "{e}");
            }
        }
        // `any_tenant` never covers sys; an admin grant still accepts a member.
        let (_c, _r, q) = caller(&n1, Identity::new("sys", "dave", "member"));
        let w = WireContext::export(&q).unwrap();
        assert!(RemoteChild::build(&n2, &PeerGrant::any_tenant(1).with_admin(), &w).is_err());
        assert!(RemoteChild::build(&n2, &PeerGrant::tenants(1, &["sys"]), &w).is_ok());
        // The claimed node must be the authenticated peer.
        let err = RemoteChild::build(&n2, &PeerGrant::any_tenant(3), &w).unwrap_err();
        assert!(matches!(
            err,
            RemoteError::WrongNode {
                claimed: 1,
                peer: 3
            }
        ));
        assert_eq!(n2.subtree_len(), 1, "refused calls leave nothing");
    }

    #[test]
    fn request_gives_a_query_child_and_routine_cannot_be_sent() {
        let h = Arc::new(ManualHost::new());
        let n1 = node(1, &h);
        let n2 = node(2, &h);
        let (c, r, _q) = caller(&n1, Identity::new("acme", "alice", "member"));
        assert_eq!(
            WireContext::export(&c).unwrap_err(),
            RemoteError::BadLevel(Level::Routine)
        );
        let w = WireContext::export(&r).unwrap();
        assert_eq!(
            RemoteChild::build(&n2, &PeerGrant::any_tenant(1), &w).unwrap_err(),
            RemoteError::MissingValue(ValueKey::StatementId)
        );
        let child =
            RemoteChild::build(&n2, &PeerGrant::any_tenant(1), &w.with_statement_id(3)).unwrap();
        assert_eq!(child.context().level(), Level::Query);
        assert_eq!(
            child.context().remaining(),
            None,
            "a Request has no deadline"
        );
    }

    #[test]
    fn dropping_the_remote_child_cancels_and_removes_the_chain() {
        let h = Arc::new(ManualHost::new());
        let n1 = node(1, &h);
        let n2 = node(2, &h);
        let (_c, _r, q) = caller(&n1, Identity::new("acme", "alice", "member"));
        let remote = RemoteChild::build(
            &n2,
            &PeerGrant::any_tenant(1),
            &WireContext::export(&q).unwrap(),
        )
        .unwrap();
        let leaked = remote.context().clone();
        assert_eq!(n2.subtree_len(), 5);
        drop(remote);
        assert!(
            leaked.is_cancelled(),
            "a handle kept by the work sees the end"
        );
        assert!(leaked.cause().unwrap().to_string().contains("ended"));
        drop(leaked);
        assert_eq!(n2.subtree_len(), 1);
    }

    #[test]
    fn reason_parts_round_trip_every_reason() {
        let reasons = [
            Reason::Requested,
            Reason::KillQuery {
                by_connection: 4,
                by_user: "u".into(),
            },
            Reason::KillConnection {
                by_connection: 4,
                by_user: "u".into(),
            },
            Reason::ClientDisconnected,
            Reason::ConnectionClosed,
            Reason::StatementTimeout { limit_ms: 7 },
            Reason::CleanupTimeout { limit_ms: 7 },
            Reason::Deadline { limit_ms: 7 },
            Reason::TxnRolledBack { txn_id: 3 },
            Reason::MemoryBudgetExceeded {
                budget: 1,
                requested: 2,
            },
            Reason::TenantMemoryBudgetExceeded {
                tenant: "acme".into(),
                budget: 1,
                requested: 2,
            },
            Reason::DatabaseDropped {
                database: "shop".into(),
                by_connection: 9,
            },
            Reason::Shutdown,
            Reason::Other {
                message: "x".into(),
            },
        ];
        for r in reasons {
            assert_eq!(ReasonParts::of(&r).into_reason().unwrap(), r);
        }
        let bad = ReasonParts {
            tag: "from_the_future".into(),
            ..Default::default()
        };
        assert!(matches!(bad.into_reason(), Err(RemoteError::Malformed(_))));
        assert!(level_from_wire(99).is_err());
        for l in Level::ALL {
            assert_eq!(level_from_wire(level_to_wire(l)).unwrap(), l);
        }
    }

    #[test]
    fn global_connection_ids_put_the_node_in_the_high_bits() {
        let id = GlobalConnId::new(3, 77).unwrap();
        assert_eq!((id.node(), id.local()), (3, 77));
        assert_eq!(id.get(), (3 << 22) | 77);
        assert_eq!(GlobalConnId::from_u64(id.get()), Some(id));
        assert_eq!(
            GlobalConnId::new(0, 5).unwrap().get(),
            5,
            "node 0: ids as today"
        );
        let max = GlobalConnId::new(GlobalConnId::MAX_NODE, GlobalConnId::MAX_LOCAL).unwrap();
        assert_eq!(max.get(), u64::from(u32::MAX));
        assert!(GlobalConnId::new(1024, 0).is_err());
        assert!(GlobalConnId::new(0, 1 << 22).is_err());
        assert_eq!(GlobalConnId::from_u64(1 << 32), None);
    }
}
