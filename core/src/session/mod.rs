//! Sessions: the [`Engine`] (one per node) and its [`Connection`]s, which
//! run requests of SQL statements on the context hierarchy.
//!
//! Every request gets a Request context under the connection's Routine;
//! every statement a Query context under the Request, linked to its Txn
//! (the open transaction, or an implicit one for the statement), registered
//! with the session's [`CancelManager`] before it starts so that a
//! `KILL QUERY` is never lost, and carrying the statement timeout as its
//! deadline. The pipeline runs in Pipeline contexts under the Query.
//!
//! The execution context of a statement is split by concern, as the seed
//! plan's `ExecCtx` refactor asks: [`StmtContexts`] (the handles),
//! [`ExecState`] (phase, rows, warnings) and [`Resources`] (the memory
//! budget, released on every path when the statement's reservations drop).
//!
//! Error rules: a cancelled statement returns 1317 (or 3024 for a timeout)
//! naming the cause, never success; a real error (memory budget, division
//! by zero) is returned as itself even though it also cancels the pipeline;
//! a cancelled or timed-out DML statement never commits; `KILL CONNECTION`
//! or a disconnect rolls the open transaction back on a cleanup context.

mod background;
mod databases;
mod exec_ctx;
mod hooks;
mod reset;
mod schema_stmt;
mod upsert;

pub mod error;
mod kill;
pub mod peers;

pub use background::{Background, MaintenanceReport};
pub use error::{ErrorKind, QueryError};
pub use exec_ctx::{ExecCtx, ExecState, StmtContexts};
pub use hooks::TxnHooks;
pub use peers::{PeerAdmin, PeerProcesses, ProcessRow};

use serde::Serialize;
use sqlparser::ast;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::cause::{Cause, Reason};
use crate::context::{Context, ContextInfo};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::expr::EvalCx;
use crate::expr::ExecError;
use crate::host::Host;
use crate::index::RowId;
use crate::level::Level;
use crate::pipeline::memory::{record_budget_error, vec_bytes};
use crate::pipeline::{drive, MemoryUse, OpCx, Resources, YieldPolicy};
use crate::registry::{
    CancelManager, KillOutcome, KillScope, ProcessInfo, ProcessList, Registration,
};
use crate::remote::GlobalConnId;
use crate::sql::error::SqlError;
use crate::sql::plan::{self, Namespace, PlanCx};
use crate::storage::{
    Catalog, ColumnDef, DbKey, RowWriter, Snapshot, StorageError, TableData, WriteSet,
};
use crate::sync::lock_std as lock;
use crate::tenant::{TenantLimits, TenantSlot, TenantState, Tenants};
use crate::trace::{Recorder, SpanId, SpanStatus, Trace};
use crate::values::Identity;

use crate::phase::Phase;

/// How long a rollback on a cleanup context may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    /// This node's id.
    pub node_id: u64,
    /// Clock, timers, yield.
    pub host: Arc<dyn Host>,
    /// Spans kept by the trace recorder.
    pub trace_capacity: usize,
    /// Default per-query memory budget in bytes.
    pub memory_budget: u64,
    /// How often running statements yield to the host.
    pub yield_policy: YieldPolicy,
    /// Storage work at the end of every transaction, on a cleanup context.
    pub txn_hooks: Option<Arc<dyn TxnHooks>>,
    /// Whether the `sys` tenant's `admin` may read (and write) every
    /// tenant's data, naming another tenant's database as `` `tenant:db` ``.
    /// Off by default: `sys`'s admin then administers (process list, KILL)
    /// but sees only `sys`'s own databases.
    pub admin_reads_all_tenants: bool,
    /// Pipelines per parallel stage (`SET cascade_threads = n` changes it
    /// for a session); 1 runs every statement as one chain of pipelines.
    /// Default: the host's [`Host::parallelism`] (the available cores
    /// natively, 1 in the browser and on hosts that cannot spawn).
    pub threads: usize,
    /// Per-tenant limits by tenant name (see [`crate::tenant`]).
    pub tenants: HashMap<String, TenantLimits>,
    /// The limits of tenants not in `tenants` (default: none).
    pub default_tenant_limits: TenantLimits,
    /// Cluster-wide connection ids: `node_id` in the high bits of every
    /// connection id ([`GlobalConnId`](crate::remote::GlobalConnId)), so that
    /// `KILL <id>` sent to any node names the owner. Off (the default): ids
    /// are 1, 2, 3, … as on a one-node server. Needs a `node_id` of 1 to
    /// 1023; with another, ids stay local (and a warning is logged).
    pub global_connection_ids: bool,
    /// The other nodes of a cluster (issue 12.3, [`crate::cluster`]): the
    /// transport that runs fragments there. `None`: one node.
    pub nodes: Option<crate::cluster::SharedNodes>,
}

impl EngineConfig {
    /// Defaults: 200,000 spans, 1 GiB per query, yield every 4 ms.
    pub fn new(node_id: u64, host: Arc<dyn Host>) -> Self {
        EngineConfig {
            node_id,
            trace_capacity: 200_000,
            memory_budget: 1 << 30,
            yield_policy: YieldPolicy::default(),
            txn_hooks: None,
            admin_reads_all_tenants: false,
            threads: host.parallelism().max(1),
            host,
            tenants: HashMap::new(),
            default_tenant_limits: TenantLimits::default(),
            global_connection_ids: false,
            nodes: None,
        }
    }
}

/// Per-call options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecOptions {
    /// A statement timeout for this call (the earlier of this and
    /// `max_execution_time` applies).
    pub timeout: Option<Duration>,
}

/// A result column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: DataType,
}

/// The result of a request (its last statement).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    /// The statement's id, for [`Engine::trace`].
    pub query_id: u64,
    /// Columns (empty for statements without rows).
    pub columns: Vec<ColumnInfo>,
    /// Rows.
    pub rows: Vec<Vec<Value>>,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// Wall time on the host clock.
    #[serde(serialize_with = "ser_ms")]
    pub elapsed: Duration,
    /// Warnings (division by zero in a SELECT, …).
    pub warnings: u32,
    /// A short message ("Query OK, 3 rows affected").
    pub message: Option<String>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

struct TxnState {
    ctx: Context,
    snapshot: Snapshot,
    writes: WriteSet,
}

struct Session {
    autocommit: bool,
    max_execution_time_ms: u64,
    memory_budget: u64,
    /// Iterations a recursive CTE may start (MySQL's default is 1000).
    cte_max_recursion_depth: u64,
    /// Pipelines per parallel stage (`cascade_threads`).
    threads: usize,
    /// `cascade_distribute`: run distributable aggregates across the
    /// cluster's nodes ([`crate::cluster::dist`]).
    distribute: bool,
    txn: Option<TxnState>,
}

struct EngineInner {
    config: EngineConfig,
    root: Context,
    recorder: Arc<Recorder>,
    processes: Arc<ProcessList>,
    catalog: Arc<Catalog>,
    next_conn: AtomicU64,
    next_stmt: AtomicU64,
    next_txn: AtomicU64,
    memory: Arc<AtomicU64>,
    queries: Mutex<(HashMap<u64, SpanId>, VecDeque<u64>)>,
    connections: Mutex<HashMap<u64, Weak<ConnInner>>>,
    tenants: Tenants,
    /// The node id in connection ids, when they are global.
    global_node: Option<u32>,
    /// The control path to the other nodes, once the embedder installs it.
    peer_admin: Mutex<Option<Arc<dyn PeerAdmin>>>,
}

const QUERY_HISTORY: usize = 4096;

impl EngineInner {
    /// A live connection by id.
    fn connection(&self, id: u64) -> Option<Arc<ConnInner>> {
        lock(&self.connections).get(&id).and_then(Weak::upgrade)
    }
}

/// One node's engine: catalog, process list, trace recorder, root context.
/// Cheap to clone.
///
/// # Examples
///
/// ```
/// use cascade::{Engine, EngineConfig, Identity, StdHost, Value};
/// let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
/// let conn = engine.connect(Identity::new("acme", "alice", "member")).unwrap();
/// let r = futures::executor::block_on(conn.execute(
///     "SELECT count(*), sum(x) FROM generate_series(1, 1000) AS t(x) WHERE x % 7 = 0",
/// )).unwrap();
/// assert_eq!(r.rows, vec![vec![Value::Int(142), Value::Int(71071)]]);
/// let trace = engine.trace(r.query_id).unwrap();
/// assert!(trace.spans.iter().any(|s| s.name == "HashAggregate"));
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node_id", &self.inner.config.node_id)
            .finish()
    }
}

/// A weak handle on an [`Engine`] (a transport that must not keep its
/// engines alive).
#[derive(Clone, Debug)]
pub struct WeakEngine(Weak<EngineInner>);

impl WeakEngine {
    /// The engine, if it still exists.
    pub fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(|inner| Engine { inner })
    }
}

impl std::fmt::Debug for EngineInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineInner")
            .field("node_id", &self.config.node_id)
            .finish()
    }
}

impl Engine {
    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.config.node_id
    }

    /// A weak handle on this engine.
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    /// The settings the engine was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The node-wide count of reserved bytes (every statement's
    /// [`Resources`] adds to it).
    pub(crate) fn memory_counter(&self) -> &Arc<AtomicU64> {
        &self.inner.memory
    }

    /// `tenant`'s shared memory budget.
    pub(crate) fn tenant_budget(&self, tenant: &str) -> Arc<crate::tenant::TenantBudget> {
        self.inner.tenants.get(tenant).memory().clone()
    }

    /// Parallel stages as the engine's default (a fragment served for
    /// another node runs with them).
    pub(crate) fn parallelism(&self) -> crate::sql::plan::Parallelism {
        crate::sql::plan::Parallelism {
            threads: self.inner.config.threads.max(1),
            policy: self.inner.config.yield_policy,
        }
    }

    /// A new engine with an empty catalog.
    pub fn new(config: EngineConfig) -> Engine {
        let recorder = Recorder::new(config.host.clone(), config.trace_capacity);
        let root = Context::root(config.host.clone())
            .node_id(config.node_id)
            .recorder(recorder.clone())
            .name(format!("node {}", config.node_id))
            .build()
            .unwrap_or_else(|_| unreachable!("a root with a node id always builds"));
        let global_node = if config.global_connection_ids {
            let node = u32::try_from(config.node_id)
                .ok()
                .filter(|n| (1..=GlobalConnId::MAX_NODE).contains(n));
            if node.is_none() {
                tracing::warn!(
                    target: "cascade",
                    node_id = config.node_id,
                    "global connection ids need a node id of 1 to {}: ids stay local",
                    GlobalConnId::MAX_NODE
                );
            }
            node
        } else {
            None
        };
        Engine {
            inner: Arc::new(EngineInner {
                root,
                recorder,
                processes: Arc::new(ProcessList::new()),
                catalog: Catalog::new(),
                next_conn: AtomicU64::new(1),
                next_stmt: AtomicU64::new(1),
                next_txn: AtomicU64::new(1),
                memory: Arc::new(AtomicU64::new(0)),
                queries: Mutex::new((HashMap::new(), VecDeque::new())),
                connections: Mutex::new(HashMap::new()),
                tenants: Tenants::new(config.default_tenant_limits.clone(), config.tenants.clone()),
                global_node,
                peer_admin: Mutex::new(None),
                config,
            }),
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<dyn Host> {
        &self.inner.config.host
    }

    /// The root context.
    pub fn root(&self) -> &Context {
        &self.inner.root
    }

    /// The process list.
    pub fn process_list(&self) -> &Arc<ProcessList> {
        &self.inner.processes
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// Bytes reserved by running statements, node-wide.
    pub fn memory_in_use(&self) -> u64 {
        self.inner.memory.load(Ordering::Acquire)
    }

    /// `tenant`'s limits and use (connections, memory), if it has
    /// connected since the engine started.
    pub fn tenant(&self, tenant: &str) -> Option<Arc<TenantState>> {
        self.inner.tenants.existing(tenant)
    }

    /// Opens a connection for `identity`.
    pub fn connect(&self, identity: Identity) -> Result<Connection, QueryError> {
        self.connect_with_id(identity, self.reserve_connection_id())
    }

    /// Opens a connection for `identity` whose current database is
    /// `database` (a login that names one; `None`: the tenant's default,
    /// `cascade`). 1049 `Unknown database` if the tenant has none of that
    /// name.
    pub fn connect_to(
        &self,
        identity: Identity,
        database: Option<&str>,
    ) -> Result<Connection, QueryError> {
        let conn = self.connect(identity)?;
        if let Some(db) = database {
            conn.inner.set_database(db)?;
        }
        Ok(conn)
    }

    /// Reserves a connection id for [`Engine::connect_with_id`]: a wire
    /// protocol announces the id in its handshake, before the login.
    /// With global ids ([`EngineConfig::global_connection_ids`]) the id
    /// carries this node's id in its high bits; the local part counts
    /// 1, 2, 3, … and wraps after [`GlobalConnId::MAX_LOCAL`], skipping
    /// ids still in use.
    pub fn reserve_connection_id(&self) -> u64 {
        let Some(node) = self.inner.global_node else {
            return self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        };
        next_global_id(
            node,
            GlobalConnId::MAX_LOCAL,
            || self.inner.next_conn.fetch_add(1, Ordering::Relaxed),
            |id| self.inner.processes.get(id).is_some(),
        )
    }

    /// The node id in this engine's connection ids, when they are global
    /// ([`EngineConfig::global_connection_ids`]).
    pub fn global_node(&self) -> Option<u32> {
        self.inner.global_node
    }

    /// Installs the control path to the other nodes: `KILL <id>` of
    /// another node's connection goes there, and `SHOW PROCESSLIST` adds
    /// the other nodes' rows. Only with global connection ids.
    pub fn set_peer_admin(&self, admin: Arc<dyn PeerAdmin>) {
        *lock(&self.inner.peer_admin) = Some(admin);
    }

    /// `KILL` sent by another node for one of its connections: the caller
    /// is the identity and connection of `ctx` (a remote child context,
    /// checked against the peer's grant on arrival), `origin_node` the
    /// node it came from. The same rules as a local `KILL` (1094, 1095);
    /// the victim's cause names the node and the connection ("cancelled by
    /// node 1: killed by KILL QUERY from connection …"). An id that is not
    /// this node's is 1094: a forwarded kill is never forwarded again.
    pub fn kill_for_peer(
        &self,
        ctx: &Context,
        origin_node: u64,
        target: u64,
        scope: KillScope,
    ) -> Result<KillOutcome, QueryError> {
        let identity = ctx
            .values()
            .identity()
            .cloned()
            .ok_or_else(|| QueryError::new(1227, "42000", "Access denied: no identity"))?;
        let caller_conn = ctx.values().connection_id().unwrap_or(0);
        if kill::owner(&self.inner, target).is_some() {
            return Err(crate::error::KillError::UnknownThread(target).into());
        }
        kill::apply_as(
            &self.inner,
            &identity,
            caller_conn,
            Some(origin_node),
            kill::Kill { target, scope },
        )
    }

    /// The rows of this node's `SHOW PROCESSLIST` that `caller` may see
    /// (the kill rules), by id.
    pub fn process_rows(&self, caller: &Identity) -> Vec<ProcessRow> {
        process_rows(&self.inner, caller)
    }

    /// Opens a connection with an id from [`Engine::reserve_connection_id`].
    /// An id already in use is an error.
    pub fn connect_with_id(&self, identity: Identity, id: u64) -> Result<Connection, QueryError> {
        if self.inner.root.is_cancelled() {
            return Err(QueryError::new(
                1053,
                "08S01",
                "Server shutdown in progress",
            ));
        }
        if identity.tenant.is_empty() || identity.user.is_empty() {
            return Err(QueryError::new(
                1045,
                "28000",
                "Access denied: tenant and user must not be empty",
            ));
        }
        if id == 0 || self.inner.processes.get(id).is_some() {
            return Err(QueryError::new(
                1105,
                "HY000",
                format!("connection id {id} is already in use"),
            ));
        }
        // The tenant's limits travel with the connection's context.
        let tenant = self.inner.tenants.get(&identity.tenant);
        let slot = tenant.acquire_connection().map_err(|max| {
            QueryError::new(
                1040,
                "08004",
                format!(
                    "Too many connections for tenant '{}' (max_connections {max})",
                    identity.tenant
                ),
            )
        })?;
        let default_timeout = tenant.limits().max_execution_time_ms;
        let routine = self
            .inner
            .root
            .child(Level::Routine)
            .identity(identity.clone())
            .connection_id(id)
            .session_id(id)
            .name(format!("connection {id} ({identity})"))
            .value(tenant)
            .build()?;
        let manager = CancelManager::new(routine);
        let registration = self.inner.processes.register(manager.clone());
        let conn = Arc::new(ConnInner {
            engine: self.inner.clone(),
            id,
            identity: Arc::new(identity),
            manager,
            registration: Mutex::new(Some((registration, slot))),
            session: Mutex::new(Slot::Idle(Session {
                autocommit: true,
                max_execution_time_ms: default_timeout,
                memory_budget: self.inner.config.memory_budget,
                cte_max_recursion_depth: crate::sql::plan::cte::DEFAULT_MAX_RECURSION_DEPTH,
                threads: self.inner.config.threads.max(1),
                distribute: false,
                txn: None,
            })),
            vars: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            stmt_now: AtomicI64::new(0),
            database: Mutex::new(Some(crate::sql::info_schema::SCHEMA_NAME.to_owned())),
            touched: Mutex::new(BTreeSet::new()),
            threads: std::sync::atomic::AtomicUsize::new(self.inner.config.threads.max(1)),
            notes: Mutex::new(Vec::new()),
        });
        // Every tenant has its default database, made on first use.
        self.inner.catalog.create_database(
            &DbKey::new(&conn.tenant(), crate::sql::info_schema::SCHEMA_NAME),
            true,
        )?;
        conn.publish_vars(&Session {
            autocommit: true,
            max_execution_time_ms: default_timeout,
            memory_budget: self.inner.config.memory_budget,
            cte_max_recursion_depth: crate::sql::plan::cte::DEFAULT_MAX_RECURSION_DEPTH,
            threads: self.inner.config.threads.max(1),
            distribute: false,
            txn: None,
        });
        lock(&self.inner.connections).insert(id, Arc::downgrade(&conn));
        Ok(Connection { inner: conn })
    }

    /// The trace of a statement: its spans, its pipelines' and operators',
    /// and its ancestors (Request, Routine, Root) and Txn.
    pub fn trace(&self, query_id: u64) -> Option<Trace> {
        let span = lock(&self.inner.queries).0.get(&query_id).copied()?;
        self.inner.recorder.trace_with_links(span)
    }

    /// The live context tree.
    pub fn contexts(&self) -> ContextInfo {
        self.inner.root.snapshot()
    }

    /// What `SHOW PROCESSLIST` shows to `caller`.
    pub fn processes(&self, caller: &Identity) -> Vec<ProcessInfo> {
        self.inner.processes.snapshot(caller)
    }

    /// Cancels everything with cause `Shutdown` and rolls back every idle
    /// connection's transaction.
    pub fn shutdown(&self) {
        self.inner.root.cancel(Reason::Shutdown);
        let conns: Vec<_> = lock(&self.inner.connections)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for c in conns {
            c.reap();
        }
    }
}

struct ConnInner {
    engine: Arc<EngineInner>,
    id: u64,
    identity: Arc<Identity>,
    manager: Arc<CancelManager>,
    /// The process-list entry and the tenant's connection slot, given up
    /// together when the connection closes.
    registration: Mutex<Option<(Registration, TenantSlot)>>,
    session: Mutex<Slot>,
    /// The session's variables as `@@name` reads them.
    vars: Mutex<Vec<(&'static str, Value)>>,
    closed: AtomicBool,
    /// The running statement's wall-clock time (microseconds since the
    /// Unix epoch, read from the host once when it starts): what `NOW()`,
    /// `CURDATE()` and `UNIX_TIMESTAMP()` answer throughout it.
    stmt_now: AtomicI64,
    /// The current database (`USE`, `DATABASE()`), of the connection's
    /// tenant; `None` when none is selected (or it was dropped).
    database: Mutex<Option<String>>,
    /// The databases the open transaction's statements named (implicit
    /// or explicit; cleared when one starts), for `DROP DATABASE`.
    touched: Mutex<BTreeSet<String>>,
    /// The session's `cascade_threads`, for the planner.
    threads: std::sync::atomic::AtomicUsize,
    /// The warnings with a message of the last request (`SHOW WARNINGS`):
    /// today those of a cluster-wide `SHOW PROCESSLIST` (a node that did
    /// not answer).
    notes: Mutex<Vec<String>>,
}

impl ConnInner {
    /// The connection's tenant, as its context values carry it (never
    /// anything the SQL text says).
    fn tenant(&self) -> Arc<str> {
        self.manager
            .routine()
            .values()
            .identity()
            .map_or_else(|| self.identity.tenant.clone(), |i| i.tenant.clone())
    }

    /// Whether this connection may name other tenants' databases
    /// ([`EngineConfig::admin_reads_all_tenants`]).
    fn cross_tenant(&self) -> bool {
        self.engine.config.admin_reads_all_tenants
            && &*self.identity.tenant == Identity::SYS_TENANT
            && &*self.identity.role == Identity::ADMIN_ROLE
    }

    /// Makes `name` the current database of an idle connection (a login
    /// that names one); 1049 if the tenant has none of that name.
    fn set_database(&self, name: &str) -> Result<(), QueryError> {
        let name = name.to_lowercase();
        let ns = namespace(self);
        if name != crate::sql::info_schema::INFORMATION_SCHEMA
            && !self.engine.catalog.has_database(&ns.db_key(&name))
        {
            return Err(StorageError::UnknownDatabase(name).into());
        }
        *lock(&self.database) = Some(name);
        if let Slot::Idle(s) = &*lock(&self.session) {
            self.publish_vars(s);
        }
        Ok(())
    }

    /// The connection's tenant limits, carried by its Routine context.
    fn tenant_state(&self) -> Option<&Arc<TenantState>> {
        self.manager.routine().values().get::<Arc<TenantState>>()
    }

    /// The running statement's wall-clock time (see `stmt_now`).
    fn stmt_now(&self) -> i64 {
        self.stmt_now.load(Ordering::Relaxed)
    }

    /// How the session's statements run parallel stages.
    fn parallelism(&self) -> crate::sql::plan::Parallelism {
        crate::sql::plan::Parallelism {
            threads: self.threads.load(Ordering::Relaxed).max(1),
            policy: self.engine.config.yield_policy,
        }
    }

    /// Makes the session's settings readable as `@@name`.
    fn publish_vars(&self, s: &Session) {
        let user = format!("{}@{}", self.identity.user, self.identity.tenant);
        self.threads.store(s.threads, Ordering::Relaxed);
        *lock(&self.vars) = vec![
            ("cascade_threads", Value::Int(s.threads as i64)),
            ("cascade_distribute", Value::Int(i64::from(s.distribute))),
            ("autocommit", Value::Int(s.autocommit as i64)),
            (
                "max_execution_time",
                Value::Int(s.max_execution_time_ms as i64),
            ),
            ("cascade_memory_budget", Value::Int(s.memory_budget as i64)),
            (
                "cte_max_recursion_depth",
                Value::Int(s.cte_max_recursion_depth as i64),
            ),
            ("connection_id", Value::Int(self.id as i64)),
            (
                "database",
                lock(&self.database)
                    .as_ref()
                    .map_or(Value::Null, |d| Value::Text(d.as_str().into())),
            ),
            ("user", Value::Text(user.into())),
            ("tenant", Value::Text(self.identity.tenant.clone())),
            ("role", Value::Text(self.identity.role.clone())),
            (
                "cascade_tenant_max_connections",
                self.tenant_state()
                    .and_then(|t| t.limits().max_connections)
                    .map_or(Value::Null, |n| Value::Int(n as i64)),
            ),
            (
                "cascade_tenant_memory_budget",
                self.tenant_state()
                    .and_then(|t| t.limits().memory_budget)
                    .map_or(Value::Null, |n| Value::Int(n as i64)),
            ),
            (
                "sql_mode",
                Value::Text("ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES".into()),
            ),
            ("transaction_isolation", Value::Text("SNAPSHOT".into())),
        ];
    }

    /// Rolls back the open transaction of a killed connection on a cleanup
    /// context if the session is idle (a running statement does it itself
    /// when it ends). The slot says [`Slot::Reaping`] meanwhile, so that a
    /// request arriving then gets the kill error, as it would after.
    fn reap(&self) {
        // Only a killed connection is reaped: `Slot::Reaping` answers the
        // kill error, which needs a cancelled Routine.
        if !self.manager.routine().is_cancelled() {
            return;
        }
        let taken = {
            let mut slot = lock(&self.session);
            match std::mem::replace(&mut *slot, Slot::Reaping) {
                Slot::Idle(s) => Some(s),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(mut s) = taken {
            #[cfg(test)]
            tests::in_reap();
            self.rollback_on_cleanup(&mut s);
            *lock(&self.session) = Slot::Idle(s);
        }
    }

    /// Takes the session for a request, or says why it cannot.
    fn check_out(&self) -> Result<Session, QueryError> {
        let mut slot = lock(&self.session);
        match std::mem::replace(&mut *slot, Slot::Running) {
            Slot::Idle(s) => Ok(s),
            other => {
                let err = match &other {
                    Slot::Running => QueryError::new(
                        2014,
                        "HY000",
                        "Commands out of sync; a statement is already running on this connection",
                    ),
                    Slot::Reaping => kill_error(self.manager.routine().cause()),
                    Slot::Idle(_) | Slot::Closed => closed_error(),
                };
                *slot = other;
                Err(err)
            }
        }
    }

    /// Rolls the open transaction back on a cleanup context (after a kill,
    /// a disconnect, a reset or shutdown), showing `cleaning up` in the
    /// process list meanwhile.
    fn rollback_on_cleanup(&self, s: &mut Session) {
        let why = match self.manager.routine().cause() {
            Some(c) => format!("connection cleanup after: {c}"),
            None => "connection cleanup".to_owned(),
        };
        self.rollback_for(s, &why);
    }

    /// [`ConnInner::rollback_on_cleanup`] with the reason given.
    fn rollback_for(&self, s: &mut Session, why: &str) {
        if let Some(mut t) = s.txn.take() {
            self.manager.set_phase(Some(Phase::CleaningUp));
            // The cleanup context links to the request whose work it cleans
            // up (the one that was running when the connection was killed).
            let request = self.manager.request();
            rollback_writes(self, &mut t, why, request.as_ref());
            self.manager.set_txn(None);
            self.manager.set_phase(None);
        }
    }
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        lock(&self.engine.connections).remove(&self.id);
    }
}

/// A client connection. Clone it to kill or disconnect from elsewhere.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .finish()
    }
}

/// Where a connection's session state is. Only a request's [`Checkout`]
/// moves it out of `Idle` to `Running` and back; the other states say why
/// the session is not there, so that a request arriving meanwhile gets the
/// answer it would get a moment later, never a spurious 2014:
///
/// * `Running`: a request of this connection runs (2014: the caller sent a
///   second request before the first one's answer).
/// * `Reaping`: `KILL CONNECTION` or shutdown is rolling the transaction of
///   the idle, killed connection back (the kill error).
/// * `Closed`: [`Connection::close`] took it for good (2006).
enum Slot {
    Idle(Session),
    Running,
    Reaping,
    Closed,
}

fn closed_error() -> QueryError {
    QueryError::new(2006, "HY000", "The connection is closed")
}

/// Takes the session out for one request and puts it back on drop, also
/// when the request's future is dropped half-way.
struct Checkout<'a> {
    conn: &'a ConnInner,
    session: Option<Session>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            if self.conn.manager.routine().is_cancelled() {
                self.conn.rollback_on_cleanup(&mut s);
            }
            *lock(&self.conn.session) = Slot::Idle(s);
        }
    }
}

fn kill_error(cause: Option<Arc<Cause>>) -> QueryError {
    match cause {
        Some(c) if matches!(c.reason, Reason::Shutdown) => {
            let mut e = QueryError::cancelled(c);
            e.code = 1053;
            e.sqlstate = "08S01";
            e.message = "Server shutdown in progress".into();
            e
        }
        Some(c) => {
            let mut e = QueryError::cancelled(c.clone());
            e.code = 1927;
            e.message = format!("Connection was killed: {}", c.reason);
            e
        }
        None => QueryError::new(1927, "70100", "Connection was killed"),
    }
}

impl Connection {
    /// The connection id (`CONNECTION_ID()`).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Who is connected.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The Routine context.
    pub fn context(&self) -> &Context {
        self.inner.manager.routine()
    }

    /// The current database (`DATABASE()`); `None` when none is selected.
    /// A connection starts in its tenant's default database, `cascade`.
    pub fn database(&self) -> Option<String> {
        lock(&self.inner.database).clone()
    }

    /// Makes `database` the current database, as `USE` does (what a login
    /// or a wire handshake that names a database asks for): 1049 `Unknown
    /// database` if the connection's tenant has none of that name.
    pub async fn use_database(&self, database: &str) -> Result<(), QueryError> {
        let quoted = database.replace('`', "``");
        self.execute(&format!("USE `{quoted}`")).await.map(|_| ())
    }

    /// Runs a request (one or more statements separated by `;`) and returns
    /// the last statement's result.
    pub async fn execute(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.execute_with(sql, ExecOptions::default()).await
    }

    /// [`Connection::execute`] with options.
    pub async fn execute_with(
        &self,
        sql: &str,
        opts: ExecOptions,
    ) -> Result<QueryResult, QueryError> {
        self.execute_traced(sql, opts, None).await
    }

    /// [`Connection::execute_with`] in the caller's trace: with
    /// `traceparent` (a `traceparent` header), every statement's Query span
    /// joins that trace as a child of the caller's span (docs/tracing.md).
    /// A sqlcommenter `traceparent` comment on a statement takes precedence.
    pub async fn execute_traced(
        &self,
        sql: &str,
        opts: ExecOptions,
        traceparent: Option<crate::trace_context::TraceParent>,
    ) -> Result<QueryResult, QueryError> {
        let c = &*self.inner;
        if c.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let session = c.check_out()?;
        let mut co = Checkout {
            conn: c,
            session: Some(session),
        };
        if c.manager.routine().is_cancelled() {
            return Err(kill_error(c.manager.routine().cause()));
        }
        if is_show_warnings(sql) {
            return Ok(show_warnings(c));
        }
        lock(&c.notes).clear();
        if let Some(k) = kill::parse(sql).filter(|k| k.is_fast(c.id)) {
            if let Some(node) = kill::owner(&c.engine, k.target) {
                return kill::run_forwarded(c, node, k).await;
            }
            return kill::run_alone(c, k);
        }
        c.manager.set_phase(Some(Phase::Parsing));
        let stmts = crate::sql::parse(sql);
        c.manager.set_phase(None);
        let stmts = stmts?;
        if stmts.is_empty() {
            return Err(QueryError::new(1065, "42000", "Query was empty"));
        }
        let request = c
            .manager
            .routine()
            .child(Level::Request)
            .name("request")
            .attr("sql", truncate(sql, 200))
            .build()?;
        c.manager.set_request(Some(request.clone()));
        // sqlcommenter comments, one entry per statement; if the scanner
        // and the parser disagree on the statements, the first comment's
        // trace context applies to all of them.
        let mut comments = crate::sql::sqlcommenter::statement_comments(sql);
        if comments.len() != stmts.len() {
            let first = comments.into_iter().find_map(|c| c.traceparent);
            comments = vec![
                crate::sql::sqlcommenter::StatementComments { traceparent: first };
                stmts.len()
            ];
        }
        let mut last = None;
        let mut result = Ok(());
        // Each statement is handed over: its syntax tree is freed once
        // planned (see `dispatch`), not at the end of the request.
        for (stmt, comment) in stmts.into_iter().zip(comments) {
            let Some(s) = co.session.as_mut() else { break };
            let stmt_traceparent = match comment.traceparent {
                Some(Ok(tp)) => Some(tp),
                Some(Err(e)) => {
                    // A bad comment never fails the statement.
                    tracing::warn!(target: "cascade", connection = c.id, "sqlcommenter traceparent ignored: {e}");
                    request.set_attr("traceparent_error", e.to_string());
                    traceparent.clone()
                }
                None => traceparent.clone(),
            };
            match run_statement(c, s, &request, stmt, opts.timeout, stmt_traceparent).await {
                Ok(r) => last = Some(r),
                Err(e) => {
                    request.finish(match &e.cause {
                        Some(cause) => SpanStatus::from_cause(cause),
                        None => SpanStatus::Error {
                            message: e.message.clone(),
                        },
                    });
                    result = Err(e);
                    break;
                }
            }
        }
        // Put the session back first: after a kill or disconnect that rolls
        // the transaction back, linked to this request.
        drop(co);
        c.manager.set_request(None);
        result?;
        last.ok_or_else(|| QueryError::new(1065, "42000", "Query was empty"))
    }

    /// `KILL QUERY` of this connection's own running statement, sent from
    /// outside its request (a Cancel button), as its own user: with
    /// `Some(id)`, only if the statement running is `id` (a result's
    /// `query_id`, a process-list row's `statement_id`); a statement that is
    /// no longer running is left alone and the outcome says so
    /// ([`KillOutcome::NotRunning`]), so a late cancel never hits the next
    /// statement. Does not wait for the statement to end.
    ///
    /// # Examples
    ///
    /// ```
    /// use cascade::{Engine, EngineConfig, Identity, KillOutcome, StdHost};
    /// let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    /// let conn = engine.connect(Identity::new("acme", "alice", "member")).unwrap();
    /// let done = futures::executor::block_on(conn.execute("SELECT 1")).unwrap();
    /// // That statement has ended: cancelling it is a no-op that says so.
    /// assert_eq!(
    ///     conn.cancel(Some(done.query_id)),
    ///     KillOutcome::NotRunning { connection: conn.id(), statement: done.query_id }
    /// );
    /// assert_eq!(conn.running_statement(), None);
    /// ```
    pub fn cancel(&self, statement: Option<u64>) -> KillOutcome {
        let c = &*self.inner;
        c.manager.kill(
            KillScope::Query { statement },
            Reason::KillQuery {
                by_connection: c.id,
                by_user: c.identity.user.clone(),
            },
        )
    }

    /// The id of the statement running on this connection now, if any (the
    /// id [`Connection::cancel`] takes).
    pub fn running_statement(&self) -> Option<u64> {
        self.inner.manager.running_statement()
    }

    /// The client went away: cancels everything of the connection with
    /// cause `ClientDisconnected`. Call [`Connection::close`] after.
    pub fn disconnect(&self) {
        self.inner
            .manager
            .routine()
            .cancel(Reason::ClientDisconnected);
    }

    /// Closes the connection: cancels what still runs, rolls back an open
    /// transaction on a cleanup context, and leaves the process list.
    /// Idempotent.
    pub async fn close(&self) {
        let c = &*self.inner;
        if c.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let host = c.engine.config.host.clone();
        // A statement still running: stop it and wait for the session.
        let mut waited = Duration::ZERO;
        loop {
            let taken = {
                let mut slot = lock(&c.session);
                match std::mem::replace(&mut *slot, Slot::Closed) {
                    Slot::Idle(s) => Some(s),
                    // Already closed (unreachable: `closed` guards it).
                    Slot::Closed => break,
                    other => {
                        *slot = other;
                        None
                    }
                }
            };
            if let Some(mut s) = taken {
                c.rollback_on_cleanup(&mut s);
                break;
            }
            c.manager.routine().cancel(Reason::ConnectionClosed);
            if waited > CLEANUP_TIMEOUT {
                break;
            }
            let step = Duration::from_millis(1);
            host.sleep_until(host.now().saturating_add(step)).await;
            waited += step;
        }
        let reg = lock(&c.registration).take();
        drop(reg);
    }
}

/// The next global connection id of node `node`: the local part is the
/// counter `next` (1, 2, 3, …) wrapped into `1..=max_local`, skipping ids
/// `in_use`. Bounded: it tries each local id at most once; if all are in
/// use it returns the last candidate, which `connect_with_id` refuses.
fn next_global_id(
    node: u32,
    max_local: u32,
    mut next: impl FnMut() -> u64,
    in_use: impl Fn(u64) -> bool,
) -> u64 {
    let span = u64::from(max_local.clamp(1, GlobalConnId::MAX_LOCAL));
    let mut id = 0;
    for _ in 0..span {
        let local = u32::try_from((next().max(1) - 1) % span + 1)
            .unwrap_or_else(|_| unreachable!("at most MAX_LOCAL, which fits 22 bits"));
        id = GlobalConnId::new(node, local)
            .map(GlobalConnId::get)
            .unwrap_or_else(|_| unreachable!("node and local id are in range"));
        if !in_use(id) {
            break;
        }
    }
    id
}

/// Whether a request is exactly `SHOW WARNINGS` (sqlparser does not know
/// it; any case, an optional `;`).
fn is_show_warnings(sql: &str) -> bool {
    let body = sql.trim();
    let body = body.strip_suffix(';').unwrap_or(body);
    let mut words = body.split_ascii_whitespace();
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(a), Some(b), None) if a.eq_ignore_ascii_case("show") && b.eq_ignore_ascii_case("warnings")
    )
}

/// `SHOW WARNINGS`: the last request's warnings that have a message
/// (`Level`, `Code`, `Message`, as MySQL shows them). Warnings counted
/// without a message (a SELECT's division by zero) are not listed.
fn show_warnings(c: &ConnInner) -> QueryResult {
    let stmt_id = c.engine.next_stmt.fetch_add(1, Ordering::Relaxed);
    let rows = lock(&c.notes)
        .iter()
        .map(|m| {
            vec![
                Value::Text("Warning".into()),
                Value::Int(1105),
                Value::Text(m.as_str().into()),
            ]
        })
        .collect();
    let col = |n: &str, ty| ColumnInfo { name: n.into(), ty };
    QueryResult {
        query_id: stmt_id,
        columns: vec![
            col("Level", DataType::Text),
            col("Code", DataType::Int),
            col("Message", DataType::Text),
        ],
        rows,
        rows_affected: 0,
        elapsed: Duration::ZERO,
        warnings: 0,
        message: None,
    }
}

/// This node's process-list rows that `caller` may see, with each
/// connection's current database.
fn process_rows(e: &EngineInner, caller: &Identity) -> Vec<ProcessRow> {
    let node = e.global_node.map_or(e.config.node_id, u64::from);
    e.processes
        .snapshot(caller)
        .into_iter()
        .map(|p| {
            // The connection's current database, as MySQL shows it.
            let db = e.connection(p.id).and_then(|o| lock(&o.database).clone());
            ProcessRow::new(node, p, db)
        })
        .collect()
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn stmt_kind(stmt: &ast::Statement) -> &'static str {
    match stmt {
        ast::Statement::Query(_) => "select",
        ast::Statement::Insert(_) => "insert",
        ast::Statement::Update(_) => "update",
        ast::Statement::Delete(_) => "delete",
        ast::Statement::CreateTable(_) => "create table",
        ast::Statement::CreateView(_) => "create view",
        ast::Statement::Drop { .. } => "drop table",
        ast::Statement::StartTransaction { .. } => "begin",
        ast::Statement::Commit { .. } => "commit",
        ast::Statement::Rollback { .. } => "rollback",
        ast::Statement::Set(_) => "set",
        ast::Statement::Kill { .. } => "kill",
        ast::Statement::ShowProcessList { .. } => "show processlist",
        ast::Statement::ShowTables { .. } => "show tables",
        ast::Statement::Explain { .. } => "explain",
        _ => "statement",
    }
}

fn ok_result(query_id: u64, rows_affected: u64, message: Option<String>) -> QueryResult {
    QueryResult {
        query_id,
        columns: vec![],
        rows: vec![],
        rows_affected,
        elapsed: Duration::ZERO,
        warnings: 0,
        message,
    }
}

fn affected(query_id: u64, n: u64) -> QueryResult {
    ok_result(query_id, n, Some(format!("Query OK, {n} rows affected")))
}

fn text_rows(query_id: u64, header: &str, lines: impl IntoIterator<Item = String>) -> QueryResult {
    QueryResult {
        query_id,
        columns: vec![ColumnInfo {
            name: header.into(),
            ty: DataType::Text,
        }],
        rows: lines
            .into_iter()
            .map(|l| vec![Value::Text(l.into())])
            .collect(),
        rows_affected: 0,
        elapsed: Duration::ZERO,
        warnings: 0,
        message: None,
    }
}

/// Whether the statement reads or writes table data (and so runs in a
/// transaction).
fn needs_txn(stmt: &ast::Statement) -> bool {
    match stmt {
        ast::Statement::Query(_)
        | ast::Statement::Insert(_)
        | ast::Statement::Update(_)
        | ast::Statement::Delete(_) => true,
        ast::Statement::Explain { statement, .. } => needs_txn(statement),
        _ => false,
    }
}

async fn run_statement(
    c: &ConnInner,
    s: &mut Session,
    request: &Context,
    stmt: ast::Statement,
    timeout: Option<Duration>,
    traceparent: Option<crate::trace_context::TraceParent>,
) -> Result<QueryResult, QueryError> {
    let e = &c.engine;
    let host = e.config.host.clone();
    let started = host.now();
    let stmt_id = e.next_stmt.fetch_add(1, Ordering::Relaxed);
    let text = stmt.to_string();
    let kind = stmt_kind(&stmt);

    // A transaction ended from outside (`DROP DATABASE` of a database it
    // used) while the session was idle: it rolls back now, and this
    // statement says why (a ROLLBACK just ends it).
    if let Some(cause) = dropped_cause(s) {
        rollback_dropped(c, s, &cause);
        if !matches!(stmt, ast::Statement::Rollback { .. }) {
            return Err(QueryError::cancelled(cause)
                .with_query_id(stmt_id)
                .at_level(Level::Query));
        }
    }
    // DDL and BEGIN end an open transaction first (MySQL's implicit commit).
    let implicit_commit = matches!(
        stmt,
        ast::Statement::CreateTable(_)
            | ast::Statement::CreateView(_)
            | ast::Statement::Drop { .. }
            | ast::Statement::CreateDatabase { .. }
            | ast::Statement::CreateSchema { .. }
            | ast::Statement::StartTransaction { .. }
    );
    if implicit_commit && s.txn.is_some() {
        c.manager.set_phase(Some(Phase::Committing));
        let committed = commit_txn(c, s);
        c.manager.set_phase(None);
        committed?;
    }
    // The statement's transaction.
    let mut implicit = None;
    if needs_txn(&stmt) && s.txn.is_none() {
        let t = new_txn(c, !s.autocommit)?;
        if s.autocommit {
            implicit = Some(t);
        } else {
            c.manager.set_txn(Some(t.ctx.clone()));
            s.txn = Some(t);
        }
    }
    let limit_ms = match (timeout, s.max_execution_time_ms) {
        (Some(t), 0) => Some(t.as_millis() as u64),
        (Some(t), m) => Some((t.as_millis() as u64).min(m)),
        (None, 0) => None,
        (None, m) => Some(m),
    };
    let txn_ctx = implicit.as_ref().or(s.txn.as_ref()).map(|t| t.ctx.clone());
    let mut qb = request
        .child(Level::Query)
        .statement_id(stmt_id)
        .name(kind)
        .attr("sql", truncate(&text, 500))
        .attr("query_id", stmt_id);
    if let Some(t) = &txn_ctx {
        qb = qb.link(t);
    }
    if let Some(tp) = traceparent {
        qb = qb.trace_parent(tp);
    }
    if let Some(ms) = limit_ms {
        qb = qb.timeout(
            Duration::from_millis(ms),
            Reason::StatementTimeout { limit_ms: ms },
        );
    }
    let query = qb.build()?;
    if let Some(span) = query.span_id() {
        let mut q = lock(&e.queries);
        q.0.insert(stmt_id, span);
        q.1.push_back(stmt_id);
        while q.1.len() > QUERY_HISTORY {
            if let Some(old) = q.1.pop_front() {
                q.0.remove(&old);
            }
        }
    }
    let registration = c.manager.register_query(&query, &truncate(&text, 1000));
    let resources = Resources::with_tenant(
        s.memory_budget,
        e.memory.clone(),
        c.tenant_state().map(|t| t.memory().clone()),
    );
    c.stmt_now
        .store(e.config.host.unix_micros(), Ordering::Relaxed);
    let mut x = ExecCtx {
        contexts: StmtContexts {
            request: request.clone(),
            txn: txn_ctx,
            query: query.clone(),
        },
        state: ExecState::new(registration.phase().clone()),
        resources,
    };
    let res = dispatch(
        c,
        s,
        &mut x,
        implicit.as_mut(),
        stmt,
        stmt_id,
        registration.progress(),
    )
    .await;
    // The implicit transaction commits only a statement that succeeded and
    // was not cancelled.
    let res = match (res, implicit) {
        (Ok(r), Some(mut t)) if !t.writes.is_empty() => match x.contexts.query.check() {
            Ok(()) => {
                x.state.set_phase(Phase::Committing);
                commit_writes(c, &mut t).map(|_| r)
            }
            Err(cancel) => {
                x.state.set_phase(Phase::RollingBack);
                rollback_writes(c, &mut t, "statement cancelled before commit", None);
                Err(cancel.into())
            }
        },
        (Err(err), Some(mut t)) => {
            if !t.writes.is_empty() {
                x.state.set_phase(Phase::RollingBack);
                rollback_writes(c, &mut t, &err.message, None);
            }
            Err(err)
        }
        (r, _) => r,
    };
    // A running statement whose transaction a `DROP DATABASE` cancelled:
    // the explicit transaction rolls back with it.
    if let Some(cause) = dropped_cause(s) {
        rollback_dropped(c, s, &cause);
    }
    drop(registration);
    let elapsed = host.now().saturating_since(started);
    match res {
        Ok(mut r) => {
            r.query_id = stmt_id;
            r.elapsed = elapsed;
            r.warnings += x.state.eval.warnings;
            query.set_attr("rows", r.rows.len());
            query.set_attr("rows_affected", r.rows_affected);
            query.finish(SpanStatus::Ok);
            Ok(r)
        }
        Err(err) => {
            let err = err.with_query_id(stmt_id).at_level(Level::Query);
            query.finish(match &err.cause {
                Some(cause) => SpanStatus::from_cause(cause),
                None => SpanStatus::Error {
                    message: err.message.clone(),
                },
            });
            Err(err)
        }
    }
}

/// The cause of the open transaction's cancellation by `DROP DATABASE`.
fn dropped_cause(s: &Session) -> Option<Arc<Cause>> {
    s.txn
        .as_ref()
        .and_then(|t| t.ctx.cause())
        .filter(|c| matches!(c.reason, Reason::DatabaseDropped { .. }))
}

/// Rolls back the open transaction that `DROP DATABASE` cancelled.
fn rollback_dropped(c: &ConnInner, s: &mut Session, cause: &Cause) {
    if let Some(mut t) = s.txn.take() {
        c.manager.set_txn(None);
        rollback_writes(c, &mut t, &cause.reason.to_string(), None);
    }
}

fn new_txn(c: &ConnInner, explicit: bool) -> Result<TxnState, QueryError> {
    let e = &c.engine;
    let id = e.next_txn.fetch_add(1, Ordering::Relaxed);
    let ctx = c
        .manager
        .routine()
        .child(Level::Txn)
        .txn_id(id)
        .name(if explicit { "txn" } else { "txn (implicit)" })
        .attr("explicit", explicit)
        .build()?;
    lock(&c.touched).clear();
    Ok(TxnState {
        ctx,
        snapshot: e.catalog.snapshot(),
        writes: WriteSet::new(),
    })
}

/// The span status of a failed statement or transaction step.
fn error_status(err: &QueryError) -> SpanStatus {
    match &err.cause {
        Some(cause) => SpanStatus::from_cause(cause),
        None => SpanStatus::Error {
            message: err.message.clone(),
        },
    }
}

/// Commits `t` on a cleanup context whose span, `commit`, is a child of the
/// transaction's: the storage hook, then the catalog. A kill that lands
/// meanwhile does not stop it half-way; the cleanup deadline does, before
/// anything is published.
fn commit_writes(c: &ConnInner, t: &mut TxnState) -> Result<(), QueryError> {
    let cx = t.ctx.cleanup_named("commit", CLEANUP_TIMEOUT, None);
    cx.set_attr("tables", t.writes.len());
    let txn_id = t.ctx.values().txn_id().unwrap_or(0);
    let hooked = match &c.engine.config.txn_hooks {
        Some(h) => h.commit(&cx, txn_id),
        None => Ok(()),
    };
    let res = hooked
        .and_then(|()| cx.check())
        .map_err(QueryError::from)
        .and_then(|()| {
            c.engine
                .catalog
                .commit(t.snapshot.ts, &t.writes)
                .map_err(QueryError::from)
        });
    match res {
        Ok(ts) => {
            cx.set_attr("commit_ts", ts);
            cx.finish(SpanStatus::Ok);
            Ok(())
        }
        Err(err) => {
            cx.finish(error_status(&err));
            Err(err)
        }
    }
}

/// Rolls `t` back on a cleanup context whose span, `rollback`, is a child
/// of the transaction's and links to `cleans_up` (the request whose work
/// it undoes): the storage hook, then the release of the writes, which
/// happens whatever the hook returns. A cleanup deadline that passed is
/// recorded as the span's status, with its cause. Ends the transaction's
/// context with `TxnRolledBack`.
fn rollback_writes(c: &ConnInner, t: &mut TxnState, why: &str, cleans_up: Option<&Context>) {
    let cx = t.ctx.cleanup_named("rollback", CLEANUP_TIMEOUT, cleans_up);
    cx.set_attr("reason", why);
    cx.set_attr("on_cleanup_context", true);
    let txn_id = t.ctx.values().txn_id().unwrap_or(0);
    let hooked = match &c.engine.config.txn_hooks {
        Some(h) => h.rollback(&cx, txn_id),
        None => Ok(()),
    };
    let released = std::mem::take(&mut t.writes);
    cx.set_attr("discarded_tables", released.len());
    drop(released);
    cx.finish(match hooked.and_then(|()| cx.check()) {
        Ok(()) => SpanStatus::Ok,
        Err(cancelled) => SpanStatus::from_cause(cancelled.cause()),
    });
    t.ctx.cancel(Reason::TxnRolledBack { txn_id });
}

fn commit_txn(c: &ConnInner, s: &mut Session) -> Result<(), QueryError> {
    if let Some(mut t) = s.txn.take() {
        c.manager.set_txn(None);
        let res = commit_writes(c, &mut t);
        if res.is_err() {
            rollback_writes(c, &mut t, "commit failed", None);
        } else {
            t.ctx.finish(SpanStatus::Ok);
        }
        res?;
    }
    Ok(())
}

fn rollback_txn(c: &ConnInner, s: &mut Session) {
    if let Some(mut t) = s.txn.take() {
        c.manager.set_txn(None);
        rollback_writes(c, &mut t, "ROLLBACK", None);
        t.ctx.finish(SpanStatus::Ok);
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    c: &ConnInner,
    s: &mut Session,
    x: &mut ExecCtx,
    implicit: Option<&mut TxnState>,
    stmt: ast::Statement,
    stmt_id: u64,
    progress: &AtomicU64,
) -> Result<QueryResult, QueryError> {
    let e = &c.engine;
    if let ast::Statement::Query(q) = &stmt {
        let t = implicit.map(|t| &*t).or(s.txn.as_ref());
        let empty = WriteSet::new();
        let pcx = plan_cx(c, t, &empty);
        let mut planned = plan::plan_query(q, &pcx)?;
        if s.distribute {
            distribute(c, &mut planned.plan, &stmt);
        }
        // The syntax tree is not needed past the plan: freed now, while it
        // is in the caches, rather than on a killed statement's way out
        // (8–12 µs there, up to 0.1 ms: a few hundred cold frees).
        drop(stmt);
        let out = run_plan(c, x, planned.plan, progress, Collect::Reserved).await?;
        let rows = to_rows(out, x)?;
        let columns = planned
            .names
            .into_iter()
            .zip(planned.types)
            .map(|(name, ty)| ColumnInfo { name, ty })
            .collect();
        return Ok(QueryResult {
            query_id: stmt_id,
            columns,
            rows,
            rows_affected: 0,
            elapsed: Duration::ZERO,
            warnings: 0,
            message: None,
        });
    }
    let stmt = &stmt;
    match stmt {
        ast::Statement::Explain {
            analyze, statement, ..
        } => {
            let t = implicit.map(|t| &*t).or(s.txn.as_ref());
            let empty = WriteSet::new();
            let pcx = plan_cx(c, t, &empty);
            // UPDATE and DELETE are operators too: EXPLAIN shows them, and
            // EXPLAIN ANALYZE runs them and discards what they wrote.
            let plan = match statement.as_ref() {
                ast::Statement::Query(q) => {
                    let mut plan = plan::plan_query(q, &pcx)?.plan;
                    if s.distribute {
                        distribute(c, &mut plan, statement);
                    }
                    plan
                }
                ast::Statement::Update(u) => plan::plan_update(u, &pcx)?.plan,
                ast::Statement::Delete(d) => plan::plan_delete(d, &pcx)?.plan,
                _ => {
                    return Err(QueryError::unsupported(
                        "EXPLAIN of statements other than SELECT, UPDATE and DELETE",
                    ))
                }
            };
            let text = if *analyze {
                x.state.eval.strict = !matches!(statement.as_ref(), ast::Statement::Query(_));
                run_plan(c, x, plan, progress, Collect::Discard).await?.tree
            } else {
                let pipeline = x
                    .contexts
                    .query
                    .child(Level::Pipeline)
                    .name("pipeline")
                    .build()?;
                plan.build_parallel(&pipeline, c.parallelism())?
                    .explain(false)
            };
            Ok(text_rows(
                stmt_id,
                "EXPLAIN",
                text.lines().map(str::to_owned),
            ))
        }
        ast::Statement::Insert(_) | ast::Statement::Update(_) | ast::Statement::Delete(_) => {
            let t = txn_for_write(implicit, s)?;
            let n = match stmt {
                ast::Statement::Insert(ins) => exec_insert(c, x, t, ins, progress).await?,
                ast::Statement::Update(u) => exec_update(c, x, t, u, progress).await?,
                ast::Statement::Delete(d) => exec_delete(c, x, t, d, progress).await?,
                _ => return Err(QueryError::unsupported("this statement")),
            };
            x.state.rows_affected = n;
            Ok(affected(stmt_id, n))
        }
        ast::Statement::CreateTable(ct) => {
            let key = namespace(c).resolve(&ct.name)?;
            let (schema, indexes) = crate::sql::ddl::table_schema(ct, c.id)?;
            let created = e
                .catalog
                .create_table(&key, schema, indexes, ct.if_not_exists)?;
            let mut r = affected(stmt_id, 0);
            if !created {
                r.warnings = 1;
            }
            Ok(r)
        }
        ast::Statement::CreateView(cv) => {
            let t = implicit.map(|t| &*t).or(s.txn.as_ref());
            let empty = WriteSet::new();
            let pcx = plan_cx(c, t, &empty);
            let (key, view) = plan::view::define_view(cv, &pcx)?;
            let created = e
                .catalog
                .create_view(&key.db, view, cv.or_replace, cv.if_not_exists)?;
            let mut r = affected(stmt_id, 0);
            if !created {
                r.warnings = 1;
            }
            Ok(r)
        }
        ast::Statement::Drop {
            object_type: ast::ObjectType::View,
            if_exists,
            names,
            ..
        } => {
            // Every name is checked before any view is dropped (MySQL: an
            // error names the missing views and changes nothing).
            let ns = namespace(c);
            let keys = names
                .iter()
                .map(|n| ns.resolve(n))
                .collect::<Result<Vec<_>, _>>()?;
            let missing: Vec<&crate::storage::TableKey> = keys
                .iter()
                .filter(|k| e.catalog.view(k).is_none())
                .collect();
            let mut warnings = 0;
            if !missing.is_empty() {
                if let Some(t) = missing.iter().find(|k| e.catalog.table(k).is_ok()) {
                    return Err(StorageError::NotView(t.name.clone()).into());
                }
                if !*if_exists {
                    let names: Vec<String> = missing.iter().map(|k| k.display()).collect();
                    return Err(StorageError::BadTable(names.join(",")).into());
                }
                warnings = missing.len() as u32;
            }
            for k in &keys {
                e.catalog.drop_view(k, true)?;
            }
            let mut r = affected(stmt_id, 0);
            r.warnings = warnings;
            Ok(r)
        }
        // Indexes and table descriptions (session/schema_stmt.rs).
        ast::Statement::CreateIndex(ci) => {
            let key = namespace(c).resolve(&ci.table_name)?;
            schema_stmt::create_index(&e.catalog, &key, ci)?;
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::Drop {
            object_type: ast::ObjectType::Index,
            names,
            table,
            ..
        } => {
            let Some(table) = table else {
                return Err(QueryError::unsupported("DROP INDEX without ON <table>"));
            };
            let key = namespace(c).resolve(table)?;
            for n in names {
                schema_stmt::drop_index(&e.catalog, &plan::object_name(n), &key)?;
            }
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::AlterTable(at) => {
            let key = namespace(c).resolve(&at.name)?;
            schema_stmt::alter_table(&e.catalog, &key, &at.operations)?;
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::ExplainTable { table_name, .. } => {
            let key = namespace(c).resolve(table_name)?;
            schema_stmt::describe(&e.catalog, &key, stmt_id)
        }
        ast::Statement::ShowColumns {
            extended,
            full,
            show_options,
        } => {
            let key =
                schema_stmt::show_columns_table(&namespace(c), *full, *extended, show_options)?;
            schema_stmt::describe(&e.catalog, &key, stmt_id)
        }
        ast::Statement::ShowCreate {
            obj_type: ast::ShowCreateObject::Table,
            obj_name,
        } => {
            let key = namespace(c).resolve(obj_name)?;
            schema_stmt::show_create(&e.catalog, &key, stmt_id)
        }
        ast::Statement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => {
            if matches!(
                object_type,
                ast::ObjectType::Database | ast::ObjectType::Schema
            ) {
                return databases::drop_database(c, s, names, *if_exists, stmt_id);
            }
            if *object_type != ast::ObjectType::Table {
                return Err(QueryError::unsupported(format!("DROP {object_type}")));
            }
            let ns = namespace(c);
            let mut missing = Vec::new();
            for n in names {
                let key = ns.resolve(n)?;
                if let Err(StorageError::BadTable(t)) = e.catalog.drop_table(&key, *if_exists) {
                    missing.push(t);
                }
            }
            if !missing.is_empty() {
                return Err(StorageError::BadTable(missing.join(",")).into());
            }
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::StartTransaction { .. } => {
            let t = new_txn(c, true)?;
            c.manager.set_txn(Some(t.ctx.clone()));
            s.txn = Some(t);
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::Commit { .. } => {
            x.state.set_phase(Phase::Committing);
            commit_txn(c, s)?;
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::Rollback { savepoint, .. } => {
            if savepoint.is_some() {
                return Err(QueryError::unsupported("savepoints"));
            }
            x.state.set_phase(Phase::RollingBack);
            rollback_txn(c, s);
            Ok(affected(stmt_id, 0))
        }
        ast::Statement::Set(set) => exec_set(c, s, set, stmt_id),
        ast::Statement::Kill { modifier, id } => {
            let scope = match modifier {
                Some(ast::KillType::Query) => KillScope::Query { statement: None },
                Some(ast::KillType::Connection) | None => KillScope::Connection,
                Some(ast::KillType::Mutation) => {
                    return Err(QueryError::unsupported("KILL MUTATION"))
                }
            };
            let k = kill::Kill { target: *id, scope };
            let outcome = match kill::owner(e, *id) {
                Some(node) => kill::forward(e, &x.contexts.query, node, k).await?,
                None => kill::apply(c, k)?,
            };
            // A KILL of the caller's own connection or running statement
            // ended this statement: it answers 1317, as in MySQL.
            x.contexts.query.check()?;
            Ok(kill::answer(stmt_id, outcome))
        }
        ast::Statement::ShowProcessList { .. } => {
            let mut list = process_rows(e, &c.identity);
            let mut notes = Vec::new();
            let admin = e.global_node.and_then(|_| lock(&e.peer_admin).clone());
            if let Some(admin) = &admin {
                // The other nodes' rows, as each applies the kill rules to
                // this caller; a node that cannot answer is a warning.
                for peer in admin.process_lists(&x.contexts.query).await {
                    match peer.rows {
                        Ok(rows) => list.extend(rows),
                        Err(why) => notes.push(format!(
                            "node {}: processlist unavailable: {why}",
                            peer.node
                        )),
                    }
                }
                list.sort_by_key(|r| r.id);
            }
            let clustered = e.global_node.is_some();
            let rows = list
                .into_iter()
                .map(|p| {
                    let mut row = vec![
                        Value::Int(p.id as i64),
                        Value::Text(p.user.into()),
                        Value::Text("localhost".into()),
                        p.db.map_or(Value::Null, |d| Value::Text(d.into())),
                        Value::Text(p.command.into()),
                        Value::Int((p.time_ms / 1000) as i64),
                        Value::Text(p.state.into()),
                        p.info.map_or(Value::Null, |i| Value::Text(i.into())),
                        Value::Text(p.tenant.into()),
                        Value::Text(p.role.into()),
                        Value::Int(p.rows_examined as i64),
                        p.statement_id
                            .map_or(Value::Null, |id| Value::Int(id as i64)),
                        Value::Int(p.tenant_memory as i64),
                        p.tenant_memory_budget
                            .map_or(Value::Null, |b| Value::Int(b as i64)),
                    ];
                    if clustered {
                        row.push(Value::Int(p.node as i64));
                    }
                    row
                })
                .collect();
            let col = |n: &str, ty| ColumnInfo { name: n.into(), ty };
            let mut columns = vec![
                col("Id", DataType::Int),
                col("User", DataType::Text),
                col("Host", DataType::Text),
                col("db", DataType::Text),
                col("Command", DataType::Text),
                col("Time", DataType::Int),
                col("State", DataType::Text),
                col("Info", DataType::Text),
                col("Tenant", DataType::Text),
                col("Role", DataType::Text),
                col("Rows_examined", DataType::Int),
                // The id `KILL QUERY <Id> '<Statement_id>'` takes.
                col("Statement_id", DataType::Int),
                // What the tenant's running statements hold of its
                // memory budget (NULL: no budget).
                col("Tenant_memory", DataType::Int),
                col("Tenant_memory_budget", DataType::Int),
            ];
            if clustered {
                // The node the connection lives on (also the high bits of
                // its id).
                columns.push(col("Node", DataType::Int));
            }
            let warnings = u32::try_from(notes.len()).unwrap_or(u32::MAX);
            let message = (!notes.is_empty()).then(|| notes.join("; "));
            *lock(&c.notes) = notes;
            Ok(QueryResult {
                query_id: stmt_id,
                columns,
                rows,
                rows_affected: 0,
                elapsed: Duration::ZERO,
                warnings,
                message,
            })
        }
        ast::Statement::ShowDatabases { show_options, .. } => {
            databases::show_databases(c, show_options, stmt_id)
        }
        ast::Statement::ShowTables {
            show_options,
            full,
            extended,
            ..
        } => databases::show_tables(c, *full || *extended, show_options, stmt_id),
        ast::Statement::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => databases::create_database(c, db_name, *if_not_exists, stmt_id),
        ast::Statement::CreateSchema {
            schema_name: ast::SchemaName::Simple(db_name),
            if_not_exists,
            ..
        } => databases::create_database(c, db_name, *if_not_exists, stmt_id),
        ast::Statement::Use(u) => {
            let name = match u {
                ast::Use::Object(n) | ast::Use::Database(n) | ast::Use::Schema(n) => n,
                _ => return Err(QueryError::unsupported(format!("{u}"))),
            };
            databases::use_database(c, s, &databases::db_name(name)?)?;
            Ok(ok_result(stmt_id, 0, Some("Database changed".into())))
        }
        other => Err(QueryError::unsupported(format!(
            "the statement `{}`",
            truncate(&other.to_string(), 60)
        ))),
    }
}

/// With a cluster configured, rewrites a distributable aggregate of `plan`
/// (the plan of `stmt`) to run across the nodes ([`crate::cluster::dist`]).
fn distribute(c: &ConnInner, plan: &mut plan::Plan, stmt: &ast::Statement) {
    if let Some(nodes) = &c.engine.config.nodes {
        if !nodes.peers().is_empty() {
            crate::cluster::dist::distribute(plan, &stmt.to_string(), nodes);
        }
    }
}

fn plan_cx<'a>(c: &'a ConnInner, t: Option<&'a TxnState>, empty: &'a WriteSet) -> PlanCx<'a> {
    PlanCx {
        catalog: &c.engine.catalog,
        snapshot_ts: t.map_or(u64::MAX, |t| t.snapshot.ts),
        writes: t.map_or(empty, |t| &t.writes),
        connection_id: c.id,
        vars: lock(&c.vars).clone(),
        now_micros: c.stmt_now(),
        names: Default::default(),
        ns: namespace(c),
    }
}

/// Where connection `c`'s names resolve now.
fn namespace(c: &ConnInner) -> Namespace<'_> {
    Namespace {
        tenant: c.tenant(),
        database: Mutex::new(lock(&c.database).clone()),
        touched: Some(&c.touched),
        cross_tenant: c.cross_tenant(),
    }
}

fn txn_for_write<'a>(
    implicit: Option<&'a mut TxnState>,
    s: &'a mut Session,
) -> Result<&'a mut TxnState, QueryError> {
    match implicit {
        Some(t) => Ok(t),
        None => s
            .txn
            .as_mut()
            .ok_or_else(|| QueryError::new(1105, "HY000", "no transaction for a write")),
    }
}

/// What [`run_plan`] does with the output batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collect {
    /// Drops them (EXPLAIN ANALYZE).
    Discard,
    /// Keeps them, each reserved against the memory budget.
    Reserved,
    /// Keeps them unreserved: DML output, whose new chunks the operator
    /// has reserved and whose other chunks are the snapshot's.
    Unreserved,
}

/// What [`run_plan`] gives back.
struct PlanOutput {
    /// The output batches (none when not kept).
    batches: Vec<Batch>,
    /// Their memory, still reserved.
    mem: MemoryUse,
    /// The EXPLAIN ANALYZE text.
    tree: String,
}

/// Runs a plan in a Pipeline context under the query; returns the batches
/// (when `keep`; else they are dropped as they come), their memory still
/// reserved, and the EXPLAIN ANALYZE text.
async fn run_plan(
    c: &ConnInner,
    x: &mut ExecCtx,
    plan: plan::Plan,
    progress: &AtomicU64,
    collect: Collect,
) -> Result<PlanOutput, QueryError> {
    let pipeline = x
        .contexts
        .query
        .child(Level::Pipeline)
        .name("pipeline")
        .build()?;
    let mut root = plan.build_parallel(&pipeline, c.parallelism())?;
    x.state.set_phase(Phase::Executing);
    let mut out = Vec::new();
    let mut mem = MemoryUse::default();
    let resources = x.resources.clone();
    let mut cx = OpCx {
        eval: &mut x.state.eval,
        resources: &resources,
        progress,
        clock: Some(x.contexts.query.host().clone()),
    };
    let res = drive(
        &mut root,
        &x.contexts.query,
        &mut cx,
        c.engine.config.yield_policy,
        |b| {
            match collect {
                Collect::Discard => {}
                Collect::Reserved => {
                    mem.grow(&resources, b.heap_bytes() as u64)?;
                    out.push(b);
                }
                Collect::Unreserved => out.push(b),
            }
            Ok(())
        },
    )
    .await;
    // The EXPLAIN ANALYZE text only for a result: a failed or killed
    // statement returns its error without it.
    let tree = if res.is_ok() {
        root.explain(true)
    } else {
        String::new()
    };
    drop(root);
    drop(pipeline);
    res.map_err(|e| primary_error(e, &x.contexts.query))?;
    Ok(PlanOutput {
        batches: out,
        mem,
        tree,
    })
}

/// The primary error of a statement: a real error stays itself; a
/// cancellation is reported with the query's own cause.
fn primary_error(e: ExecError, query: &Context) -> QueryError {
    match e {
        ExecError::Cancelled(c) => {
            let cause = query.cause().unwrap_or_else(|| c.cause().clone());
            QueryError::cancelled(cause)
        }
        other => {
            // The budget error is the statement's cause: recorded on its
            // context (if the pipeline has not yet) and in the error.
            record_budget_error(query, &other);
            let mut err = QueryError::from(other);
            if let Some(cause) = query.cause() {
                if cause.reason.is_memory_budget() {
                    err.cause = Some(cause);
                }
            }
            err
        }
    }
}

/// The result rows of `out`, a batch at a time, each batch's rows reserved
/// before they are made and the batch's own memory (but its strings, which
/// the rows keep) given back after: result rows are inside the statement's
/// budget, and the batches and rows are not held twice over.
fn to_rows(out: PlanOutput, x: &ExecCtx) -> Result<Vec<Vec<Value>>, QueryError> {
    let PlanOutput {
        batches, mut mem, ..
    } = out;
    let res = &x.resources;
    let budget_err = |e: ExecError| primary_error(e, &x.contexts.query);
    let total: usize = batches.iter().map(|b| b.len).sum();
    mem.grow(res, vec_bytes::<Vec<Value>>(total))
        .map_err(budget_err)?;
    let mut rows = Vec::with_capacity(total);
    for b in batches {
        let width = b.columns.len();
        mem.grow(res, (b.len * width * std::mem::size_of::<Value>()) as u64)
            .map_err(budget_err)?;
        for i in 0..b.len {
            rows.push(b.row(i));
        }
        let strings: usize = b
            .columns
            .iter()
            .filter_map(|c| match &c.data {
                ColumnData::Text(v) => Some(
                    v.iter()
                        .map(|s| crate::data::text_heap_bytes(s))
                        .sum::<usize>(),
                ),
                _ => None,
            })
            .sum();
        mem.shrink(b.heap_bytes().saturating_sub(strings) as u64);
    }
    Ok(rows)
}

/// [`crate::expr::assign::coerce`], as a statement's error.
fn coerce(col: &Column, def: &ColumnDef, row_base: usize) -> Result<Column, QueryError> {
    crate::expr::assign::coerce(col, def, row_base).map_err(|e| ExecError::from(e).into())
}

async fn exec_insert(
    c: &ConnInner,
    x: &mut ExecCtx,
    t: &mut TxnState,
    ins: &ast::Insert,
    progress: &AtomicU64,
) -> Result<u64, QueryError> {
    let target = match &ins.table {
        ast::TableObject::TableName(n) => n,
        _ => return Err(QueryError::unsupported("INSERT INTO TABLE FUNCTION")),
    };
    let on_dup = match &ins.on {
        None => None,
        Some(ast::OnInsert::DuplicateKeyUpdate(a)) => Some(a),
        Some(_) => return Err(QueryError::unsupported("INSERT … ON CONFLICT")),
    };
    if ins.returning.is_some() {
        return Err(QueryError::unsupported("INSERT … RETURNING"));
    }
    // MySQL's INSERT IGNORE also stores clamped values in place of the
    // errors it ignores: cascade never does that.
    if ins.ignore {
        return Err(QueryError::unsupported(
            "INSERT IGNORE (it stores clamped values with warnings where INSERT fails)",
        ));
    }
    let Some(source) = &ins.source else {
        return Err(QueryError::unsupported("INSERT without VALUES or SELECT"));
    };
    let empty = WriteSet::new();
    let (key, table, data) = plan_cx(c, Some(t), &empty).named_table(target)?;
    let name = key.name.clone();
    let schema = table.schema.clone();
    let targets: Vec<usize> = if ins.columns.is_empty() {
        (0..schema.columns.len()).collect()
    } else {
        let mut v = Vec::new();
        for col in &ins.columns {
            let n = col.to_string().trim_matches('`').to_lowercase();
            let i = schema
                .columns
                .iter()
                .position(|d| d.name == n)
                .ok_or_else(|| {
                    QueryError::from(SqlError::UnknownColumn {
                        name: n.clone(),
                        clause: "field list",
                    })
                })?;
            if v.contains(&i) {
                return Err(QueryError::new(
                    1110,
                    "42000",
                    format!("Column '{n}' specified twice"),
                ));
            }
            v.push(i);
        }
        v
    };
    x.state.eval.strict = true;
    let planned = {
        let pcx = plan_cx(c, Some(t), &empty);
        plan::plan_query(source, &pcx)?
    };
    if planned.types.len() != targets.len() {
        return Err(SqlError::ColumnCount(1).into());
    }
    let PlanOutput {
        batches, mut mem, ..
    } = run_plan(c, x, planned.plan, progress, Collect::Reserved).await?;
    let on_dup = match on_dup {
        Some(a) => Some(upsert::OnDuplicate::compile(a, &table, c.id, c.stmt_now())?),
        None => None,
    };
    // REPLACE and ON DUPLICATE KEY UPDATE write row by row through the
    // unique indexes; a plain INSERT appends each batch.
    let keyed_write =
        (ins.replace_into || on_dup.is_some()) && data.indexes.iter().any(|ix| ix.def.unique());
    let mut writer = keyed_write.then(|| RowWriter::new(&data, &schema));
    let mut new_data: TableData = (*data).clone();
    let mut total = 0usize;
    let mut keyed = 0u64;
    let mut appended = Vec::new();
    for b in batches {
        x.contexts.query.check()?;
        // Staging a batch copies it twice at most (converted, then into the
        // table's chunks); the source batch is freed after.
        let bytes = b.heap_bytes() as u64;
        // Each index grows by one row id per row, and stays grown.
        let index_bytes = (b.len * data.indexes.len() * std::mem::size_of::<RowId>()) as u64;
        mem.grow(&x.resources, 2 * bytes + index_bytes)
            .map_err(|e| primary_error(e, &x.contexts.query))?;
        let mut cols = Vec::with_capacity(schema.columns.len());
        for (k, def) in schema.columns.iter().enumerate() {
            let col = match targets.iter().position(|&t| t == k) {
                Some(src) => coerce(&b.columns[src], def, total)?,
                None => match &def.default {
                    Some(v) => coerce(
                        &Column::from_values(def.ty, &vec![v.clone(); b.len]),
                        def,
                        total,
                    )?,
                    None if !def.nullable => {
                        return Err(QueryError::new(
                            1364,
                            "HY000",
                            format!("Field '{}' doesn't have a default value", def.name),
                        ));
                    }
                    None => Column::from_values(def.ty, &vec![Value::Null; b.len]),
                },
            };
            cols.push(Arc::new(col));
        }
        let rows = Batch::new(cols, b.len);
        match &mut writer {
            Some(w) => {
                keyed += upsert::write_rows(w, &rows, &table, on_dup.as_ref(), &mut x.state.eval)?
            }
            // Indexed once all rows are in (one sort for a bulk load).
            None => appended.extend(new_data.append_unindexed(&rows)),
        }
        total += b.len;
        // The converted copy and the source batch are gone; the staged
        // chunk takes the source's place in `mem`.
        mem.shrink(2 * bytes);
    }
    x.contexts.query.check()?;
    new_data
        .index_rows(&appended)
        .map_err(|d| QueryError::from(d.into_error(&name)))?;
    let affected = match writer {
        Some(w) => {
            new_data = w.finish();
            keyed
        }
        None => total as u64,
    };
    t.writes.insert(key, (table, Arc::new(new_data)));
    Ok(affected)
}

async fn exec_update(
    c: &ConnInner,
    x: &mut ExecCtx,
    t: &mut TxnState,
    u: &ast::Update,
    progress: &AtomicU64,
) -> Result<u64, QueryError> {
    let empty = WriteSet::new();
    let planned = plan::plan_update(u, &plan_cx(c, Some(t), &empty))?;
    run_dml(c, x, t, planned, progress).await
}

/// Runs a planned UPDATE or DELETE: its operator's output is the table's
/// new chunks, checked for unique keys and staged in the transaction.
async fn run_dml(
    c: &ConnInner,
    x: &mut ExecCtx,
    t: &mut TxnState,
    planned: plan::PlannedDml,
    progress: &AtomicU64,
) -> Result<u64, QueryError> {
    x.state.eval.strict = true;
    let plan::PlannedDml {
        plan,
        key,
        table,
        affected,
    } = planned;
    // The operator reserves the chunks it rewrites; the chunks it passes
    // on are the snapshot's own, so they are not reserved twice.
    let out = run_plan(c, x, plan, progress, Collect::Unreserved).await?;
    // The indexes of the version the statement read, rebuilt over the new
    // rows: 1062 if they break a unique key.
    let empty = WriteSet::new();
    let (_, base) = plan_cx(c, Some(t), &empty).table(&key)?;
    let new_data = base
        .with_chunks(out.batches.into_iter().map(Arc::new).collect())
        .map_err(|d| QueryError::from(d.into_error(&key.name)))?;
    t.writes.insert(key, (table, Arc::new(new_data)));
    let n = affected.get();
    x.state.rows_affected = n;
    Ok(n)
}

async fn exec_delete(
    c: &ConnInner,
    x: &mut ExecCtx,
    t: &mut TxnState,
    d: &ast::Delete,
    progress: &AtomicU64,
) -> Result<u64, QueryError> {
    let empty = WriteSet::new();
    let planned = plan::plan_delete(d, &plan_cx(c, Some(t), &empty))?;
    run_dml(c, x, t, planned, progress).await
}

fn exec_set(
    c: &ConnInner,
    s: &mut Session,
    set: &ast::Set,
    stmt_id: u64,
) -> Result<QueryResult, QueryError> {
    let ok = affected(stmt_id, 0);
    let (variable, values) = match set {
        ast::Set::SingleAssignment {
            variable, values, ..
        } => (variable, values),
        ast::Set::SetNames { .. } | ast::Set::SetNamesDefault { .. } => return Ok(ok),
        _ => return Err(QueryError::unsupported("this SET form")),
    };
    let name = plan::object_name(variable)
        .trim_start_matches("@@")
        .trim_start_matches("session.")
        .to_owned();
    let [value] = values.as_slice() else {
        return Err(SqlError::InvalidValue("SET takes one value".into()).into());
    };
    let v = match value {
        ast::Expr::Identifier(i) => match i.value.to_lowercase().as_str() {
            "on" | "true" => Value::Int(1),
            "off" | "false" => Value::Int(0),
            other => Value::Text(other.into()),
        },
        e => {
            let expr = plan::compile_const(e, c.id, Some(c.stmt_now()))?;
            let mut cx = EvalCx::default();
            let v = expr
                .eval_row(&Batch::new(vec![], 1), 0, &mut cx)
                .map_err(QueryError::from)?;
            // Nothing waits here: refuse rather than not sleep.
            if cx.sleep_owed > 0.0 {
                return Err(QueryError::unsupported("SLEEP() in SET"));
            }
            v
        }
    };
    let int = |v: &Value| -> Result<u64, QueryError> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            other => Err(QueryError::new(
                1231,
                "42000",
                format!("Variable '{name}' can't be set to the value of '{other}'"),
            )),
        }
    };
    match name.as_str() {
        "autocommit" => {
            let on = int(&v)? != 0;
            if on && !s.autocommit {
                commit_txn(c, s)?;
            }
            s.autocommit = on;
        }
        "max_execution_time" => s.max_execution_time_ms = int(&v)?,
        "cascade_memory_budget" => s.memory_budget = int(&v)?.max(1),
        // Pipelines per parallel stage: 1 to 256 (0 is 1).
        "cascade_threads" => s.threads = int(&v)?.clamp(1, 256) as usize,
        // Distributed aggregates across the cluster (ON/OFF).
        "cascade_distribute" => s.distribute = int(&v)? != 0,
        // MySQL's range: 0 to 4294967295.
        "cte_max_recursion_depth" => s.cte_max_recursion_depth = int(&v)?.min(u64::from(u32::MAX)),
        "names"
        | "character_set_client"
        | "character_set_results"
        | "character_set_connection"
        | "sql_mode"
        | "time_zone"
        | "sql_safe_updates"
        | "transaction_isolation"
        | "tx_isolation"
        | "net_write_timeout"
        | "net_read_timeout"
        | "wait_timeout"
        | "interactive_timeout"
        | "collation_connection"
        | "sql_select_limit" => {}
        other => {
            return Err(QueryError::new(
                1193,
                "HY000",
                format!("Unknown system variable '{other}'"),
            ))
        }
    }
    c.publish_vars(s);
    Ok(ok)
}

impl Engine {
    /// The engine's span recorder (for exports beyond [`Engine::trace`]).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.inner.recorder
    }
}

/// Whether a statement can be cancelled by a reason: used by embedders
/// that map their own shutdown signals.
pub fn shutdown_cause(level: Level, context_id: u64) -> Cause {
    Cause::canceled(Reason::Shutdown, level, context_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn global_ids_wrap_and_skip_ids_in_use() {
        use std::cell::Cell;
        let n = Cell::new(0u64);
        let next = || {
            n.set(n.get() + 1);
            n.get()
        };
        let id = |local| GlobalConnId::new(7, local).unwrap().get();
        let none = |_| false;
        assert_eq!(next_global_id(7, 3, next, none), id(1));
        assert_eq!(next_global_id(7, 3, next, none), id(2));
        assert_eq!(next_global_id(7, 3, next, none), id(3));
        // Wraps to 1, skipping 1 and 2 while they are in use.
        let used = |x| x == id(1) || x == id(2);
        assert_eq!(next_global_id(7, 3, next, used), id(3));
        // All in use: the last candidate (connect_with_id refuses it).
        assert!(next_global_id(7, 3, next, |_| true) >> GlobalConnId::LOCAL_BITS == 7);
    }

    use super::*;
    use crate::host::ManualHost;
    use futures::executor::block_on;
    use futures::FutureExt;
    use std::cell::RefCell;

    type Hook = Box<dyn FnOnce()>;

    thread_local! {
        /// Runs inside `ConnInner::reap`, while the session is being rolled
        /// back: the window a concurrent request could land in.
        static IN_REAP: RefCell<Option<Hook>> = RefCell::new(None);
    }

    pub(super) fn in_reap() {
        if let Some(hook) = IN_REAP.with(|h| h.borrow_mut().take()) {
            hook();
        }
    }

    fn engine() -> Engine {
        Engine::new(EngineConfig::new(1, Arc::new(ManualHost::new())))
    }

    fn alice(e: &Engine) -> Connection {
        e.connect(Identity::new("acme", "alice", "member")).unwrap()
    }

    /// Sends `SELECT 1` on `victim` from inside the reap window and returns
    /// what it answered (every early answer is ready at the first poll).
    fn probe_during_reap(victim: &Connection) -> std::rc::Rc<RefCell<Option<QueryError>>> {
        let seen = std::rc::Rc::new(RefCell::new(None));
        let (v, s) = (victim.clone(), seen.clone());
        IN_REAP.with(|h| {
            *h.borrow_mut() = Some(Box::new(move || {
                let r = v.execute("SELECT 1").now_or_never();
                *s.borrow_mut() = Some(match r {
                    Some(Err(e)) => e,
                    Some(Ok(_)) => {
                        QueryError::new(0, "00000", "a killed connection ran a statement")
                    }
                    None => QueryError::new(0, "00000", "the statement did not answer at once"),
                });
            }));
        });
        seen
    }

    #[test]
    fn a_request_during_the_rollback_of_kill_connection_gets_the_kill_error() {
        let e = engine();
        let victim = alice(&e);
        let killer = alice(&e);
        block_on(victim.execute("BEGIN")).unwrap();
        let seen = probe_during_reap(&victim);
        block_on(killer.execute(&format!("KILL CONNECTION {}", victim.id()))).unwrap();
        let err = seen.borrow_mut().take().expect("the reap ran the probe");
        assert_eq!(err.code, 1927, "{err}");
        // And after the rollback: the same answer, never 2014.
        let err = block_on(victim.execute("SELECT 1")).unwrap_err();
        assert_eq!(err.code, 1927, "{err}");
    }

    #[test]
    fn a_request_during_the_shutdown_rollback_gets_the_shutdown_error() {
        let e = engine();
        let victim = alice(&e);
        block_on(victim.execute("BEGIN")).unwrap();
        let seen = probe_during_reap(&victim);
        e.shutdown();
        let err = seen.borrow_mut().take().expect("the reap ran the probe");
        assert_eq!(err.code, 1053, "{err}");
    }
}
