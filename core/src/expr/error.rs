//! Errors of execution: what evaluating expressions and running operators
//! can fail with.

use crate::cause::Cancelled;
use crate::error::ContextError;
use crate::storage::StorageError;

/// An error while executing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// Division by zero in strict (DML) mode.
    #[error("Division by 0")]
    DivisionByZero,
    /// A result that its type cannot hold (MySQL 1690): a BIGINT past
    /// 64 bits, a DOUBLE past ±1.8e308, a negative UNSIGNED. Never clamped,
    /// wrapped or turned into inf/NaN.
    #[error("{ty} value is out of range in '{what}'")]
    OutOfRange {
        /// The SQL type: `BIGINT`, `DOUBLE` or `BIGINT UNSIGNED`.
        ty: &'static str,
        /// The expression, MySQL style: `(9223372036854775807 + 1)`.
        what: String,
    },
    /// The query's memory budget ran out.
    #[error("memory budget of {budget} bytes exceeded: the query asked for {requested} bytes in total (SET cascade_memory_budget to raise it)")]
    MemoryBudget {
        /// Budget in bytes.
        budget: u64,
        /// Bytes asked for in total.
        requested: u64,
    },
    /// The tenant's memory budget, shared by its running statements, ran
    /// out: the statement whose reservation crossed it fails.
    #[error("memory budget of tenant '{tenant}' ({budget} bytes, shared by its running statements) exceeded: they asked for {requested} bytes in total")]
    TenantMemoryBudget {
        /// The tenant.
        tenant: String,
        /// The tenant's budget in bytes.
        budget: u64,
        /// Bytes the tenant's statements asked for in total.
        requested: u64,
    },
    /// A value that is no valid date, datetime or time where one must be
    /// (MySQL 1292): `CAST('x' AS DATE)` in strict DML.
    #[error("Incorrect {ty} value: '{value}'")]
    WrongValue {
        /// `date`, `datetime` or `time`.
        ty: &'static str,
        /// The value as given.
        value: String,
    },
    /// The context was cancelled.
    #[error("{0}")]
    Cancelled(#[from] Cancelled),
    /// A value its column cannot hold (INSERT, UPDATE).
    #[error("{0}")]
    Assign(#[from] super::assign::AssignError),
    /// A storage error.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A scalar subquery gave more than one row (MySQL 1242).
    #[error("Subquery returns more than 1 row")]
    SubqueryRows,
    /// A recursive common table expression started more iterations than
    /// `cte_max_recursion_depth` allows (MySQL 3636).
    #[error("Recursive query aborted after {0} iterations. Try increasing @@cte_max_recursion_depth to a larger value.")]
    RecursionDepth(u64),
    /// A fragment of the statement failed on another node
    /// ([`crate::cluster`]): the remote error's code, SQLSTATE and message.
    #[error("{message}")]
    Remote {
        /// The node.
        node: u64,
        /// MySQL error code.
        code: u16,
        /// SQLSTATE.
        sqlstate: &'static str,
        /// The message.
        message: String,
    },
    /// Building the contexts of operators made while the query runs (the
    /// iterations of a recursive CTE) failed.
    #[error("{0}")]
    Context(#[from] ContextError),
}

impl ExecError {
    /// A BIGINT overflow in `what`.
    pub fn overflow(what: impl Into<String>) -> Self {
        ExecError::OutOfRange {
            ty: "BIGINT",
            what: what.into(),
        }
    }
    /// A DOUBLE overflow (a result that would be inf or NaN) in `what`.
    pub fn double_overflow(what: impl Into<String>) -> Self {
        ExecError::OutOfRange {
            ty: "DOUBLE",
            what: what.into(),
        }
    }
    /// A DECIMAL result past the digits cascade keeps (28) in `what`.
    pub fn decimal_overflow(what: impl Into<String>) -> Self {
        ExecError::OutOfRange {
            ty: "DECIMAL",
            what: what.into(),
        }
    }
    /// A negative (or too large) value where an UNSIGNED one is required.
    pub fn unsigned_overflow(what: impl Into<String>) -> Self {
        ExecError::OutOfRange {
            ty: "BIGINT UNSIGNED",
            what: what.into(),
        }
    }
    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ExecError::Cancelled(_))
    }
}
