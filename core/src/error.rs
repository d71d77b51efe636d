//! The errors of the context layer.

use crate::level::Level;
use crate::values::ValueKey;

/// Errors from deriving or building contexts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A context was derived from a level it may not hang under.
    #[error("a {child} context cannot be derived from a {parent} context")]
    OutOfOrder {
        /// The parent's level.
        parent: Level,
        /// The requested child level.
        child: Level,
    },
    /// A mandatory value of the level was not given.
    #[error("a {level} context needs the value `{key}`, which was not given")]
    MissingValue {
        /// The level being built.
        level: Level,
        /// The missing key.
        key: ValueKey,
    },
    /// A well-known value set on an ancestor was given again, different:
    /// a descendant cannot claim another tenant, connection, transaction or
    /// statement than its ancestors'.
    #[error("a {level} context cannot override the value `{key}` set on an ancestor")]
    ValueOverride {
        /// The level being built.
        level: Level,
        /// The key whose value differs from the ancestor's.
        key: ValueKey,
    },
    /// A link target has the wrong level (a Query links to a Txn).
    #[error("a {child} context cannot be linked to a {target} context")]
    BadLink {
        /// The level being built.
        child: Level,
        /// The link target's level.
        target: Level,
    },
}

/// Errors from the process list: `KILL` and its permission rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KillError {
    /// No connection has this id (MySQL 1094).
    #[error("Unknown thread id: {0}")]
    UnknownThread(u64),
    /// The caller may not kill this connection of its own tenant (MySQL
    /// 1095). Another tenant's connection is [`KillError::UnknownThread`].
    #[error("You are not owner of thread {0}")]
    NotOwner(u64),
}

impl KillError {
    /// MySQL error code.
    pub fn mysql_code(&self) -> u16 {
        match self {
            KillError::UnknownThread(_) => 1094,
            KillError::NotOwner(_) => 1095,
        }
    }
    /// SQLSTATE.
    pub fn sqlstate(&self) -> &'static str {
        "HY000"
    }
}
