//! The error a statement returns: a MySQL code and SQLSTATE, a kind, the
//! cancel cause when there is one, and a message that says it in words.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

use crate::cause::{CancelKind, Cancelled, Cause, Reason};
use crate::error::{ContextError, KillError};
use crate::level::Level;

/// What kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The statement was cancelled (kill, disconnect, shutdown, …).
    Canceled,
    /// A deadline (statement timeout) passed.
    DeadlineExceeded,
    /// Any other error.
    Error,
}

/// A statement's error.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryError {
    /// MySQL error code (1317 interrupted, 3024 timeout, 1064 syntax, …).
    pub code: u16,
    /// SQLSTATE.
    pub sqlstate: &'static str,
    /// Kind.
    pub kind: ErrorKind,
    /// The message, naming the cause.
    pub message: String,
    /// The cancel cause, when cancelled.
    pub cause: Option<Arc<Cause>>,
    /// The level the failure started at, when known.
    pub level: Option<Level>,
    /// The statement's query id, when it had one.
    pub query_id: Option<u64>,
}

impl QueryError {
    /// A plain error.
    pub fn new(code: u16, sqlstate: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            code,
            sqlstate,
            kind: ErrorKind::Error,
            message: message.into(),
            cause: None,
            level: None,
            query_id: None,
        }
    }

    /// The error for a cancellation: 3024 for a statement timeout, 1317
    /// otherwise (1927 for a killed connection is not used: MySQL clients
    /// see 1317 for the statement and then lose the connection).
    pub fn cancelled(cause: Arc<Cause>) -> Self {
        let (code, sqlstate, kind) = match (&cause.kind, &cause.reason) {
            (CancelKind::DeadlineExceeded, Reason::StatementTimeout { .. }) => {
                (3024, "HY000", ErrorKind::DeadlineExceeded)
            }
            (CancelKind::DeadlineExceeded, _) => (3024, "HY000", ErrorKind::DeadlineExceeded),
            (CancelKind::Canceled, r) if r.is_memory_budget() => (1041, "HY000", ErrorKind::Error),
            (CancelKind::Canceled, Reason::Remote { reason, .. }) if reason.is_memory_budget() => {
                (1041, "HY000", ErrorKind::Error)
            }
            (CancelKind::Canceled, _) => (1317, "70100", ErrorKind::Canceled),
        };
        let message = match (&cause.kind, &cause.reason) {
            (CancelKind::DeadlineExceeded, Reason::StatementTimeout { limit_ms }) => format!(
                "Query execution was interrupted, maximum statement execution time exceeded: {} (limit {limit_ms} ms, set at {} level)",
                cause.reason, cause.level
            ),
            _ => format!(
                "Query execution was interrupted: {} (started at {} level)",
                cause.reason, cause.level
            ),
        };
        QueryError {
            code,
            sqlstate,
            kind,
            message,
            level: Some(cause.level),
            cause: Some(cause),
            query_id: None,
        }
    }

    /// Syntax error at a position (1064).
    pub fn syntax(message: impl fmt::Display) -> Self {
        Self::new(
            1064,
            "42000",
            format!("You have an error in your SQL syntax: {message}"),
        )
    }

    /// 1264: a value the column cannot hold (strict mode), at 1-based `row`.
    pub fn out_of_range_for_column(column: &str, row: usize) -> Self {
        QueryError::new(
            1264,
            "22003",
            format!("Out of range value for column '{column}' at row {row}"),
        )
    }

    /// Unsupported feature (1235).
    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::new(
            1235,
            "42000",
            format!("This version of cascade doesn't yet support {what}"),
        )
    }

    /// Attaches the query id.
    pub fn with_query_id(mut self, id: u64) -> Self {
        self.query_id.get_or_insert(id);
        self
    }

    /// Attaches the level.
    pub fn at_level(mut self, level: Level) -> Self {
        self.level.get_or_insert(level);
        self
    }

    /// Whether this is a cancellation (kind `Canceled` or
    /// `DeadlineExceeded`).
    pub fn is_cancellation(&self) -> bool {
        self.kind != ErrorKind::Error
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code, self.sqlstate, self.message
        )
    }
}

impl std::error::Error for QueryError {}

impl From<Cancelled> for QueryError {
    fn from(c: Cancelled) -> Self {
        QueryError::cancelled(c.0)
    }
}

impl From<KillError> for QueryError {
    fn from(e: KillError) -> Self {
        QueryError::new(e.mysql_code(), e.sqlstate(), e.to_string())
    }
}

impl From<ContextError> for QueryError {
    fn from(e: ContextError) -> Self {
        QueryError::new(1105, "HY000", e.to_string())
    }
}

impl From<crate::expr::ExecError> for QueryError {
    fn from(e: crate::expr::ExecError) -> Self {
        match e {
            crate::expr::ExecError::Cancelled(c) => QueryError::cancelled(c.0),
            crate::expr::ExecError::Storage(s) => s.into(),
            crate::expr::ExecError::Assign(a) => {
                let (code, state) = a.codes();
                QueryError::new(code, state, a.to_string())
            }
            crate::expr::ExecError::DivisionByZero => QueryError::new(1365, "22012", e.to_string()),
            crate::expr::ExecError::OutOfRange { .. } => {
                QueryError::new(1690, "22003", e.to_string())
            }
            crate::expr::ExecError::WrongValue { .. } => {
                QueryError::new(1292, "22007", e.to_string())
            }
            crate::expr::ExecError::MemoryBudget { .. }
            | crate::expr::ExecError::TenantMemoryBudget { .. } => {
                QueryError::new(1041, "HY000", e.to_string())
            }
            crate::expr::ExecError::SubqueryRows => QueryError::new(1242, "21000", e.to_string()),
            crate::expr::ExecError::RecursionDepth(_) => {
                QueryError::new(3636, "HY000", e.to_string())
            }
            crate::expr::ExecError::Context(c) => c.into(),
            crate::expr::ExecError::Remote {
                code,
                sqlstate,
                message,
                ..
            } => QueryError::new(code, sqlstate, message),
        }
    }
}

impl From<crate::sql::SqlError> for QueryError {
    fn from(e: crate::sql::SqlError) -> Self {
        let (code, state) = e.codes();
        let message = match &e {
            crate::sql::SqlError::Syntax(m) => format!("You have an error in your SQL syntax: {m}"),
            crate::sql::SqlError::Unsupported(m) => {
                format!("This version of cascade doesn't yet support {m}")
            }
            other => other.to_string(),
        };
        QueryError::new(code, state, message)
    }
}

impl From<crate::storage::StorageError> for QueryError {
    fn from(e: crate::storage::StorageError) -> Self {
        let (code, state) = e.codes();
        QueryError::new(code, state, e.to_string())
    }
}
