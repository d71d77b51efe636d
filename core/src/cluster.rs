//! A statement that spans nodes (issue 12.3, docs/across-nodes.md): the
//! trait an embedder implements to run a *fragment* of a statement on
//! another node, the serving side ([`Engine::serve_fragment`]), and
//! [`LocalNodes`], an in-memory transport joining engines of one process.
//!
//! No transport here (core stays free of tonic, builds for wasm32 and
//! starts no thread): the server implements [`Nodes`] over gRPC
//! (`server/src/cluster/`), the playground and the tests use [`LocalNodes`].
//!
//! A fragment call carries:
//!
//! * the caller's **context**: the transport exports it
//!   ([`crate::remote::WireContext`]: values, the deadline as the remaining
//!   budget, trace ids) and cancels the remote side with the caller's cause
//!   when the caller's context is cancelled ("cancelled by node N: …");
//! * the **fragment** ([`Fragment`]): portable text (the statement's SQL)
//!   plus what this node's part is (a range of `generate_series`).
//!
//! The replies are a stream: rows ([`FragmentReply::Rows`]), then the end
//! with the spans the fragment recorded on its node
//! ([`FragmentReply::End`]), which the coordinator grafts under its own
//! operator's span, so that one trace shows every node's work. A failure is
//! a [`FragmentError`]: the remote statement's error (code, cause, level
//! intact), or the node lost.

pub mod dist;
mod local;
pub mod remote_scan;
mod serve;

use std::sync::Arc;

use futures::stream::BoxStream;

use crate::context::Context;
use crate::data::Value;
use crate::level::Level;
use crate::session::QueryError;

pub use dist::DistributedAggregate;
pub use local::LocalNodes;

/// What a node runs for another: portable (plain data, SQL text), so that
/// any transport can carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// The partial stage of a distributed aggregate: plan `sql` (a SELECT
    /// whose aggregate is distributable, [`dist`]), and run its aggregate
    /// over `generate_series(start, stop, step)` with partial aggregates.
    /// Rows: the group keys, then the partial states
    /// ([`dist::partial_specs`]), groups in the order they were first seen.
    PartialAggregate {
        /// The whole statement, as the coordinator planned it.
        sql: String,
        /// This node's range: first value.
        start: i64,
        /// Last value (inclusive).
        stop: i64,
        /// Step (not 0).
        step: i64,
    },
}

impl Fragment {
    /// A short description (EXPLAIN, span attributes).
    pub fn describe(&self) -> String {
        match self {
            Fragment::PartialAggregate {
                start, stop, step, ..
            } => {
                if *step == 1 {
                    format!("partial aggregate over generate_series({start}, {stop})")
                } else {
                    format!("partial aggregate over generate_series({start}, {stop}, {step})")
                }
            }
        }
    }
}

/// One span a fragment recorded on its node, relative to the fragment's
/// start (clocks of two nodes are never compared).
#[derive(Clone, Debug, PartialEq)]
pub struct FragmentSpan {
    /// Its id on the remote node.
    pub id: u64,
    /// Its parent's id on the remote node (`None`: the fragment's root).
    pub parent: Option<u64>,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Start, in ns after the fragment's root span started.
    pub start_ns: u64,
    /// End, in ns after the fragment's root span started.
    pub end_ns: u64,
    /// `"ok"`, `"error"`, `"canceled"`, `"deadline_exceeded"` or `"open"`.
    pub status: String,
    /// The status message (error or cause), empty when ok.
    pub message: String,
    /// Attributes, as text.
    pub attrs: Vec<(String, String)>,
}

/// A reply of a fragment.
#[derive(Clone, Debug, PartialEq)]
pub enum FragmentReply {
    /// Rows of output.
    Rows(Vec<Vec<Value>>),
    /// The fragment ended: the spans it recorded on its node.
    End {
        /// The node that ran it.
        node: u64,
        /// Its spans, the fragment's root first.
        spans: Vec<FragmentSpan>,
    },
}

/// Why a fragment failed.
#[derive(Clone, Debug, PartialEq)]
pub enum FragmentError {
    /// The remote statement failed: its error, with code, cause and level.
    Failed(QueryError),
    /// The node could not be reached, or went away mid-call.
    Lost {
        /// The node.
        node: u64,
        /// What the transport said.
        message: String,
    },
}

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FragmentError::Failed(e) => write!(f, "{e}"),
            FragmentError::Lost { node, message } => write!(f, "node {node} lost: {message}"),
        }
    }
}

/// The replies of one fragment call. Dropping the stream abandons the call
/// (the transport ends it on the remote node).
pub type FragmentStream = BoxStream<'static, Result<FragmentReply, FragmentError>>;

/// The nodes of a cluster, as an engine sees them: the embedder's
/// transport (gRPC in the server, [`LocalNodes`] in one process).
///
/// The transport's duties (docs/across-nodes.md):
///
/// * export `caller` with the call ([`crate::remote::WireContext::export`]):
///   values, level, the remaining budget, trace ids;
/// * on the remote node, build the remote child
///   ([`crate::remote::RemoteChild::build`], checked against the peer's
///   grant) and run [`Engine::serve_fragment`] in it;
/// * when `caller` is cancelled, end the call and give the remote child the
///   caller's cause ([`crate::remote::RemoteChild::cancel_from_remote`]);
/// * report a node it cannot reach, or that goes away mid-call, as
///   [`FragmentError::Lost`] within a bounded time (keep-alive).
pub trait Nodes: Send + Sync {
    /// This node's id.
    fn this_node(&self) -> u64;
    /// The other nodes' ids (this node excluded), in a stable order.
    fn peers(&self) -> Vec<u64>;
    /// Runs `fragment` on `node` as a remote child of `caller`.
    fn run_fragment(&self, node: u64, caller: &Context, fragment: Fragment) -> FragmentStream;
}

/// A shared [`Nodes`].
pub type SharedNodes = Arc<dyn Nodes>;

pub use serve::collect_spans;

#[cfg(test)]
mod tests;
