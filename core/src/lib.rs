//! # cascade
//!
//! Hierarchical execution contexts for a SQL compute engine.
//!
//! A context tree mirrors the work of a database node:
//! **Root** (the node) > **Routine** (a connection) > **Txn** and
//! **Request** > **Query** (a statement, also linked to its Txn) >
//! **Pipeline** (nesting). Each [`Context`] carries:
//!
//! * **cancellation** that cascades to every descendant and linked context,
//!   never to siblings or ancestors, checked with one atomic load
//!   ([`Context::is_cancelled`]) and awaited with a future
//!   ([`Context::cancelled`]);
//! * a **cause** kept apart from the kind ([`Cause`], [`CancelKind`]): who
//!   killed it, which limit passed, at which level it started; the first
//!   cause wins;
//! * a **deadline** with its cause, the earliest of its own and its
//!   ancestors', timed by the embedder's [`Host`];
//! * **values** set once by a [`ContextBuilder`], looked up in O(1) at any
//!   depth ([`Values`]);
//! * a **span**, in the `tracing` crate and in an in-memory [`Recorder`]
//!   that exports JSON, Chrome Trace Event JSON and a text tree.
//!
//! [`Context::cleanup`] gives a context for rollback that a kill has not
//! cancelled. The [`ProcessList`] and per-session [`CancelManager`] carry out
//! `KILL QUERY` / `KILL CONNECTION` with MySQL's permission rules.
//!
//! # Examples
//!
//! ```
//! use cascade::{Context, Identity, Level, Reason, CancelKind, ManualHost};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let host = Arc::new(ManualHost::new());
//! let root = Context::root(host.clone()).node_id(1).build()?;
//! let conn = root.child(Level::Routine)
//!     .identity(Identity::new("acme", "alice", "member"))
//!     .connection_id(1).session_id(1).build()?;
//! let req = conn.child(Level::Request).build()?;
//! let query = req.child(Level::Query).statement_id(1)
//!     .timeout(Duration::from_millis(500), Reason::StatementTimeout { limit_ms: 500 })
//!     .build()?;
//! let pipeline = query.child(Level::Pipeline).build()?;
//!
//! host.advance(Duration::from_millis(501));
//! let err = pipeline.check().unwrap_err();
//! assert_eq!(err.kind(), CancelKind::DeadlineExceeded);
//! assert_eq!(err.cause().level, Level::Query);
//! assert!(query.is_cancelled() && !req.is_cancelled());
//! # Ok::<(), cascade::ContextError>(())
//! ```
#![warn(missing_docs)]

pub mod cause;
pub mod cluster;
pub mod context;
pub mod data;
pub mod datetime;
pub mod decimal;
pub mod error;
pub mod expr;
pub mod format;
pub mod host;
pub mod index;
pub mod level;
pub mod phase;
pub mod pipeline;
pub mod registry;
pub mod remote;
pub mod session;
pub mod sql;
pub mod storage;
mod sync;
pub mod tenant;
pub mod trace;
pub mod trace_context;
pub mod values;

pub use cause::{CancelKind, Cancelled, Cause, Reason};
pub use context::{Context, ContextBuilder, ContextInfo, Ctx, Deadline, WaitCancelled};
pub use data::{DataType, Value};
pub use error::{ContextError, KillError};
#[cfg(not(target_arch = "wasm32"))]
pub use host::StdHost;
pub use host::{Host, HostFuture, Instant, ManualHost};
pub use level::{levels, Level};
pub use registry::{CancelManager, KillOutcome, KillScope, ProcessInfo, ProcessList};
pub use session::{
    ColumnInfo, Connection, Engine, EngineConfig, ErrorKind, ExecOptions, QueryError, QueryResult,
    WeakEngine,
};
pub use tenant::{TenantLimits, TenantState};
pub use trace::{Recorder, SpanId, SpanStatus, Trace};

pub use phase::Phase;
pub use values::{Identity, ValueKey, Values};
