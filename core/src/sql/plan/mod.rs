//! The planner: sqlparser's AST to a [`Plan`] tree, then to instrumented
//! operators with their pipeline contexts.
//!
//! Name resolution follows MySQL: `ORDER BY` looks at select-list aliases
//! first, then input columns; `GROUP BY` and `HAVING` look at input columns
//! first, then aliases; ordinals (`ORDER BY 2`) refer to select items. With
//! `only_full_group_by`, a select item must be an aggregate, a group key, or
//! built from them.
//!
//! - this file: the plan tree ([`Plan`]), a planned query ([`Planned`]) and
//!   what the planner reads ([`PlanCx`]);
//! - [`scope`]: the columns an expression can see and name resolution;
//! - [`types`]: SQL types and names of the AST;
//! - [`compile`]: AST expressions to [`Expr`]s (aggregates included);
//! - [`query`]: a whole query: set operations, ORDER BY, LIMIT;
//! - [`select`]: one SELECT: FROM and joins, WHERE, GROUP BY, HAVING, the
//!   select list;
//! - [`cte`]: common table expressions (`WITH [RECURSIVE]`), and the
//!   bounds on expanding them and views;
//! - [`view`]: views (`CREATE VIEW`, and their expansion);
//! - [`dml`]: UPDATE and DELETE;
//! - [`window`]: window functions of a SELECT;
//! - [`lower`]: a [`Plan`] to operators with their contexts.

mod calendar;
mod compile;
pub mod cte;
mod dml;
pub mod index;
mod joins;
mod lower;
mod query;
mod scope;
mod select;
mod subquery;
mod types;
pub mod view;
mod window;

use scope::ScopeCol;

pub use compile::{compile_const, compile_over_table, Compiler};
pub use dml::{plan_delete, plan_update, PlannedDml};
pub use lower::Parallelism;
pub use query::plan_query;
pub use scope::Scope;
pub use types::{column_limit, object_name, sql_type, MAX_JOIN_TABLES};
pub use window::WindowError;

use std::sync::Arc;

use crate::data::{DataType, Value};
use crate::expr::Expr;
use crate::pipeline::aggregate::AggSpec;
use crate::pipeline::dml::Affected;
use crate::pipeline::join::{FilterSlot, JoinKind};
use crate::pipeline::recursive::{RecursionSpec, WorkTable};
use crate::pipeline::setop::SetStep;
use crate::pipeline::sort::SortKey;
use crate::pipeline::window::WindowCall;
use crate::sql::error::SqlError;
use crate::storage::{Catalog, ColumnDef, DbKey, Table, TableData, TableKey, WriteSet};
use crate::sync::lock_std as lock;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A stage whose work runs on other nodes ([`crate::cluster`]): it lowers
/// itself into the operators that call them and merge what they send.
pub trait RemoteStage: Send + Sync {
    /// The operators of the stage, in (under) `pipeline`.
    fn lower(
        &self,
        pipeline: &crate::context::Context,
    ) -> Result<crate::pipeline::Instrumented, crate::error::ContextError>;
    /// A one-line description.
    fn describe(&self) -> String;
}

/// A plan node. Cloned to build a recursive CTE's recursive part anew
/// for each iteration, and a correlated subquery's plan for each run.
#[derive(Clone)]
pub enum Plan {
    /// A stage that runs on other nodes (a distributed aggregate).
    Remote(Arc<dyn RemoteStage>),
    /// `generate_series`.
    Series {
        /// First value.
        start: i64,
        /// Last value (inclusive).
        stop: i64,
        /// Step.
        step: i64,
    },
    /// A table scan.
    Scan {
        /// Table name.
        table: String,
        /// The snapshot's data.
        data: Arc<TableData>,
    },
    /// Literal rows.
    Values {
        /// Rows.
        rows: Vec<Vec<Expr>>,
        /// Column types.
        types: Vec<DataType>,
    },
    /// Filter.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        pred: Expr,
        /// EXPLAIN text.
        text: String,
    },
    /// Projection.
    Project {
        /// Input.
        input: Box<Plan>,
        /// Expressions.
        exprs: Vec<Expr>,
        /// Output types.
        types: Vec<DataType>,
        /// EXPLAIN text.
        text: String,
    },
    /// Hash aggregate.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<Expr>,
        /// Key types.
        key_types: Vec<DataType>,
        /// Aggregates.
        aggs: Vec<AggSpec>,
        /// EXPLAIN text.
        text: String,
    },
    /// Sort / top-N.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<SortKey>,
        /// Rows to keep.
        limit: Option<usize>,
        /// EXPLAIN text.
        text: String,
    },
    /// Limit / offset.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Rows to skip.
        offset: u64,
        /// Rows to pass.
        limit: Option<u64>,
    },
    /// Join.
    Join {
        /// Left (probe).
        left: Box<Plan>,
        /// Right (build).
        right: Box<Plan>,
        /// Left keys.
        left_keys: Vec<Expr>,
        /// Right keys.
        right_keys: Vec<Expr>,
        /// One integer key on both sides.
        int_keys: bool,
        /// Residual condition over left ++ right.
        residual: Option<Expr>,
        /// Kind.
        kind: JoinKind,
        /// Right column types.
        right_types: Vec<DataType>,
        /// EXPLAIN text.
        text: String,
        /// The left and right columns the output keeps (`None`: all); the
        /// residual condition is over that output.
        emit: Option<(Vec<usize>, Vec<usize>)>,
        /// Key filters of joins above, applied to the left (probe) input:
        /// its column, the slot the join above publishes in. Empty as
        /// planned; filled while lowering ([`joins::push_key_filter`]), so
        /// that each execution of a cloned plan has slots of its own.
        filters: Vec<(usize, FilterSlot)>,
    },
    /// `UPDATE`: the table's chunks rewritten ([`crate::pipeline::dml::Update`]).
    Update {
        /// Table name.
        table: String,
        /// The snapshot's data.
        data: Arc<TableData>,
        /// `WHERE`.
        pred: Option<Expr>,
        /// Column index, definition and new value.
        sets: Vec<(usize, ColumnDef, Expr)>,
        /// Rows affected.
        affected: Affected,
        /// EXPLAIN text.
        text: String,
    },
    /// `DELETE`: the table's chunks without the deleted rows.
    Delete {
        /// Table name.
        table: String,
        /// The snapshot's data.
        data: Arc<TableData>,
        /// `WHERE` (none: every row).
        pred: Option<Expr>,
        /// Rows affected.
        affected: Affected,
        /// EXPLAIN text.
        text: String,
    },
    /// Window functions over one window: the input's columns, then one
    /// column per call.
    Window {
        /// Input.
        input: Box<Plan>,
        /// PARTITION BY.
        partition: Vec<Expr>,
        /// ORDER BY.
        order: Vec<SortKey>,
        /// The calls.
        calls: Vec<WindowCall>,
        /// EXPLAIN text.
        text: String,
    },
    /// Union all.
    Union {
        /// Inputs.
        inputs: Vec<Plan>,
        /// Output types.
        types: Vec<DataType>,
    },
    /// Subqueries in expressions: a column per subquery appended to the
    /// input's rows (see [`crate::pipeline::subquery`]).
    Apply {
        /// Input.
        input: Box<Plan>,
        /// The subqueries.
        subs: Vec<crate::pipeline::subquery::Subquery>,
    },
    /// A run of set operations with `EXCEPT` or `INTERSECT`, by counting
    /// rows ([`crate::pipeline::setop::SetOp`]).
    SetOp {
        /// Inputs, in order.
        inputs: Vec<Plan>,
        /// The operators between them.
        steps: Vec<SetStep>,
        /// Output types.
        types: Vec<DataType>,
    },
    /// A recursive CTE: the anchor, then the recursive part until it
    /// yields nothing ([`crate::pipeline::recursive::RecursiveUnion`]).
    Recursive {
        /// The non-recursive part.
        anchor: Box<Plan>,
        /// The recursive part (built anew for each iteration).
        term: Box<Plan>,
        /// The working table the recursive part reads.
        table: Arc<WorkTable>,
        /// How the recursion runs.
        spec: RecursionSpec,
    },
    /// The working table of a recursive CTE, read by its recursive part.
    WorkTable {
        /// The CTE's name.
        name: String,
        /// The table.
        table: Arc<WorkTable>,
    },
}

/// A planned query: the plan and its output columns.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Output names.
    pub names: Vec<String>,
    /// Output types.
    pub types: Vec<DataType>,
}

impl Planned {
    /// The output columns as a scope (unqualified).
    pub(super) fn scope(&self) -> Scope {
        Scope {
            cols: self
                .names
                .iter()
                .zip(&self.types)
                .map(|(n, t)| ScopeCol {
                    qualifier: None,
                    name: n.clone(),
                    ty: *t,
                })
                .collect(),
        }
    }
}

/// What the planner reads: tables as of a snapshot, plus the transaction's
/// own writes, in the caller's tenant's databases.
pub struct PlanCx<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// Snapshot timestamp.
    pub snapshot_ts: u64,
    /// The transaction's uncommitted writes.
    pub writes: &'a WriteSet,
    /// `CONNECTION_ID()`.
    pub connection_id: u64,
    /// System variables readable as `@@name` (and `version()`, `user()`,
    /// `database()`).
    pub vars: Vec<(&'static str, Value)>,
    /// The statement's wall-clock time, microseconds since the Unix epoch
    /// (read from the host once per statement): `NOW()`, `CURDATE()`,
    /// `UNIX_TIMESTAMP()`.
    pub now_micros: i64,
    /// The CTEs in scope and the bounds on expanding CTEs and views
    /// (empty when a statement's planning starts).
    pub names: cte::Names,
    /// Where names resolve: the caller's tenant and current database.
    pub ns: Namespace<'a>,
}

/// Where a statement's table names resolve. The tenant is the
/// connection's (from its context values), never the SQL text's: a name
/// can only reach the tenant's own databases.
pub struct Namespace<'a> {
    /// The caller's tenant.
    pub tenant: Arc<str>,
    /// The current database (`USE`); a view's query runs with its own.
    pub database: Mutex<Option<String>>,
    /// The databases the statement's names reached are added here (so that
    /// `DROP DATABASE` finds the transactions that use one).
    pub touched: Option<&'a Mutex<BTreeSet<String>>>,
    /// `tenant:db` names another tenant's database (the `sys` admin, when
    /// the engine allows it to read every tenant's data).
    pub cross_tenant: bool,
}

impl Namespace<'_> {
    /// A namespace of `tenant` with current database `database`.
    pub fn new(tenant: Arc<str>, database: Option<String>) -> Namespace<'static> {
        Namespace {
            tenant,
            database: Mutex::new(database),
            touched: None,
            cross_tenant: false,
        }
    }

    /// The key of the database a name calls `name`.
    pub fn db_key(&self, name: &str) -> DbKey {
        if self.cross_tenant {
            if let Some((tenant, db)) = name.split_once(':') {
                return DbKey::new(&Arc::from(tenant), db);
            }
        }
        DbKey::new(&self.tenant, name)
    }

    /// The current database's name.
    pub fn current(&self) -> Option<String> {
        lock(&self.database).clone()
    }

    /// The current database's key; 1046 without one.
    pub fn current_key(&self) -> Result<DbKey, SqlError> {
        match self.current() {
            Some(d) => Ok(self.db_key(&d)),
            None => Err(SqlError::NoDatabase),
        }
    }

    /// The key `name` resolves to: `db.t` in the tenant's database `db`,
    /// `t` in the current database (1046 without one).
    pub fn resolve(&self, name: &sqlparser::ast::ObjectName) -> Result<TableKey, SqlError> {
        let parts: Vec<&str> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
            .collect();
        let key = match parts.as_slice() {
            [t] => TableKey::new(self.current_key()?, t),
            [db, t] => TableKey::new(self.db_key(db), t),
            _ => {
                return Err(SqlError::Unsupported(format!(
                    "the name {name} (a table is named `table` or `database.table`)"
                )))
            }
        };
        self.touch(&key.db);
        Ok(key)
    }

    /// Records that the statement reached database `db`.
    pub fn touch(&self, db: &DbKey) {
        if let Some(t) = self.touched {
            lock(t).insert(db.name.clone());
        }
    }

    /// Makes `database` the current database (a view's query runs in its
    /// own) and returns the one it replaces, to be put back after.
    pub fn set_database(&self, database: Option<String>) -> Option<String> {
        std::mem::replace(&mut *lock(&self.database), database)
    }
}

impl PlanCx<'_> {
    /// A table and the data this transaction sees.
    pub fn table(&self, key: &TableKey) -> Result<(Arc<Table>, Arc<TableData>), SqlError> {
        if let Some((t, d)) = self.writes.get(key) {
            return Ok((t.clone(), d.clone()));
        }
        let t = self.catalog.table(key).map_err(|_| {
            // A SELECT reads a view before asking for a table: what asks
            // for one by a view's name writes (MySQL's updatable views).
            if self.catalog.view(key).is_some() {
                SqlError::Unsupported(format!("writing through the view '{}'", key.name))
            } else {
                SqlError::UnknownTable(key.display())
            }
        })?;
        let d = t.read(self.snapshot_ts);
        Ok((t, d))
    }

    /// [`Namespace::resolve`] then [`PlanCx::table`].
    pub fn named_table(
        &self,
        name: &sqlparser::ast::ObjectName,
    ) -> Result<(TableKey, Arc<Table>, Arc<TableData>), SqlError> {
        let key = self.ns.resolve(name)?;
        let (t, d) = self.table(&key)?;
        Ok((key, t, d))
    }
}
