//! The JS classes `Engine` and `Connection`.
//!
//! Each method converts its arguments, calls core, and converts the answer
//! back (see [`crate::convert`] for the shapes). Methods that run SQL return
//! a `Promise` and report bad arguments by rejecting it; synchronous methods
//! throw. Nothing here panics on input from JS.

use std::sync::Arc;
use std::time::Duration;

use cascade::trace_context::TraceParent;
use cascade::{EngineConfig, ExecOptions};
use js_sys::Promise;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::convert::{
    from_js, id_arg, plain_error, query_error_to_js, result_to_js, to_js, type_error, ConnectArg,
    IdentityArg,
};
use crate::host::WebHost;

/// Options of `new Engine({ nodeId, nodes, traceCapacity, memoryBudget,
/// tenants })`; all optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EngineOptions {
    node_id: Option<u64>,
    /// How many nodes (engines) to run, joined by an in-memory transport.
    nodes: Option<u64>,
    trace_capacity: Option<usize>,
    memory_budget: Option<u64>,
    /// Checked key by key in [`Engine::new`] (unknown keys are errors).
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    tenants: JsValue,
}

/// One tenant's limits in `new Engine({ tenants: { acme: { maxConnections,
/// memoryBudget, maxExecutionTime } } })`: all optional (no limit).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantOptions {
    max_connections: Option<u64>,
    memory_budget: Option<u64>,
    max_execution_time: Option<u64>,
}

impl TenantOptions {
    fn limits(self, tenant: &str) -> Result<cascade::TenantLimits, JsValue> {
        if self.max_connections == Some(0) || self.memory_budget == Some(0) {
            return Err(type_error(&format!(
                "new Engine(options): tenants.{tenant}: maxConnections and memoryBudget must be at least 1 (leave them out for no limit)"
            )));
        }
        Ok(cascade::TenantLimits {
            max_connections: self.max_connections,
            memory_budget: self.memory_budget,
            max_execution_time_ms: self.max_execution_time.unwrap_or(0),
        })
    }
}

/// Options of `conn.query(sql, { timeoutMs, traceparent, tracestate })`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QueryOptions {
    timeout_ms: Option<f64>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl QueryOptions {
    fn parse(value: JsValue) -> Result<(ExecOptions, Option<TraceParent>), JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok((ExecOptions::default(), None));
        }
        let opts: QueryOptions = from_js(
            "query(sql, options): expected { timeoutMs, traceparent, tracestate }",
            &["timeoutMs", "traceparent", "tracestate"],
            value,
        )?;
        let mut exec = ExecOptions::default();
        if let Some(ms) = opts.timeout_ms {
            if !ms.is_finite() || ms < 0.0 {
                return Err(type_error(&format!(
                    "query(sql, options): timeoutMs must be a non-negative number of milliseconds, got {ms}"
                )));
            }
            // 0 means "no timeout", as with MySQL's max_execution_time.
            if ms > 0.0 {
                exec.timeout = Some(Duration::from_secs_f64(ms / 1e3));
            }
        }
        // A malformed traceparent is a TypeError here: the caller passed
        // it explicitly (a sqlcommenter comment is ignored with a warning
        // instead).
        let traceparent = match &opts.traceparent {
            Some(tp) => Some(
                TraceParent::parse(tp)
                    .and_then(|p| p.with_tracestate(opts.tracestate.as_deref().unwrap_or("")))
                    .map_err(|e| type_error(&format!("query(sql, options): {e}")))?,
            ),
            None => None,
        };
        Ok((exec, traceparent))
    }
}

/// The most nodes `new Engine({ nodes })` runs in one thread.
const MAX_NODES: u64 = 8;

/// A cascade engine: one node with its context tree, process list, trace
/// recorder and tables, or (`nodes > 1`) several nodes of one process joined
/// by an in-memory transport, the first being the coordinator that
/// connections reach. Runs on the thread that made it.
#[wasm_bindgen]
pub struct Engine {
    /// The coordinator: connections, process list and traces are its.
    inner: cascade::Engine,
    /// Every node, the coordinator first.
    nodes: Vec<cascade::Engine>,
}

#[wasm_bindgen]
impl Engine {
    /// `new Engine({ nodeId, traceCapacity, memoryBudget, tenants })`: a
    /// node with the browser host's clock; `tenants` maps a tenant to its
    /// `{ maxConnections, memoryBudget (bytes), maxExecutionTime (ms) }`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Engine, JsValue> {
        // wasm32 has no OS randomness: W3C trace ids get `Math.random()`.
        cascade::trace_context::add_entropy(
            (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
        );
        let opts: EngineOptions = if options.is_undefined() || options.is_null() {
            EngineOptions {
                node_id: None,
                nodes: None,
                trace_capacity: None,
                memory_budget: None,
                tenants: JsValue::UNDEFINED,
            }
        } else {
            from_js(
                "new Engine(options): expected { nodeId, nodes, traceCapacity, memoryBudget, tenants }",
                &["nodeId", "nodes", "traceCapacity", "memoryBudget", "tenants"],
                options,
            )?
        };
        let first = opts.node_id.unwrap_or(1);
        let count = opts.nodes.unwrap_or(1);
        if !(1..=MAX_NODES).contains(&count) {
            return Err(type_error(&format!(
                "new Engine(options): nodes must be between 1 and {MAX_NODES}, got {count}"
            )));
        }
        // Nodes of a cluster are 1..=1023 (node 0 is a one-node server).
        let max_node = u64::from(cascade::remote::GlobalConnId::MAX_NODE);
        if count > 1 && (first == 0 || first.saturating_add(count - 1) > max_node) {
            return Err(type_error(&format!(
                "new Engine(options): node ids {first}..{} must be between 1 and {max_node}",
                first.saturating_add(count - 1),
            )));
        }
        let mut config = EngineConfig::new(first, Arc::new(WebHost::new()));
        if let Some(capacity) = opts.trace_capacity {
            config.trace_capacity = capacity;
        }
        if let Some(budget) = opts.memory_budget {
            config.memory_budget = budget;
        }
        if !(opts.tenants.is_undefined() || opts.tenants.is_null()) {
            if !opts.tenants.is_object() || opts.tenants.is_function() {
                return Err(type_error(
                    "new Engine(options): tenants must be an object { name: { maxConnections, memoryBudget, maxExecutionTime } }",
                ));
            }
            let entries = js_sys::Object::entries(opts.tenants.unchecked_ref::<js_sys::Object>());
            for entry in entries.iter() {
                let pair = js_sys::Array::from(&entry);
                let tenant = pair.get(0).as_string().unwrap_or_default();
                let t: TenantOptions = from_js(
                    &format!("new Engine(options): tenants.{tenant}: expected {{ maxConnections, memoryBudget, maxExecutionTime }}"),
                    &["maxConnections", "memoryBudget", "maxExecutionTime"],
                    pair.get(1),
                )?;
                let limits = t.limits(&tenant)?;
                config.tenants.insert(tenant, limits);
            }
        }
        let nodes = crate::nodes::start(config, count);
        Ok(Engine {
            inner: nodes[0].clone(),
            nodes,
        })
    }

    /// `engine.nodeIds`: the ids of the nodes this engine runs, the
    /// coordinator (the one connections reach) first.
    #[wasm_bindgen(getter, js_name = nodeIds)]
    pub fn node_ids(&self) -> js_sys::Array {
        self.nodes
            .iter()
            .map(|n| JsValue::from_f64(n.node_id() as f64))
            .collect()
    }

    /// `engine.connect({ tenant, user, role, database? })`: a new
    /// connection (a Routine context and a process-list entry) whose
    /// current database is `database` (default: the tenant's `cascade`).
    pub fn connect(&self, identity: JsValue) -> Result<Connection, JsValue> {
        let (identity, database) = ConnectArg::parse("connect(identity)", identity)?;
        let inner = self
            .inner
            .connect_to(identity, database.as_deref())
            .map_err(|e| query_error_to_js(&e))?;
        Ok(Connection { inner })
    }

    /// `engine.trace(queryId)`: `{ traceId, focusId, focusTraceId, nodeId,
    /// spans }`, the statement's spans and their ancestors (Request, Txn,
    /// Routine); `focusTraceId` is the statement's W3C trace id (32 hex
    /// digits), and each span has its W3C `traceId` and `spanId` too.
    /// `nodeId` is the coordinator's; a span grafted from another node
    /// (a distributed statement's fragment) has that node's id in its
    /// attribute `node`.
    pub fn trace(&self, query_id: JsValue) -> Result<JsValue, JsValue> {
        let trace = self.find_trace("trace(queryId)", &query_id)?;
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct TraceView {
            trace_id: u64,
            focus_id: u64,
            focus_trace_id: Option<String>,
            node_id: u64,
            spans: Vec<cascade::trace::SpanView>,
        }
        to_js(&TraceView {
            trace_id: trace.trace_id.0,
            node_id: self.inner.node_id(),
            focus_id: trace.focus.0,
            focus_trace_id: trace.focus_trace_id().map(|t| t.to_string()),
            spans: trace.views(),
        })
    }

    /// `engine.chromeTrace(queryId)`: Chrome Trace Event JSON (opens in
    /// Perfetto).
    #[wasm_bindgen(js_name = chromeTrace)]
    pub fn chrome_trace(&self, query_id: JsValue) -> Result<String, JsValue> {
        Ok(self
            .find_trace("chromeTrace(queryId)", &query_id)?
            .to_chrome_json())
    }

    /// `engine.traceText(queryId)`: the EXPLAIN ANALYZE-style text tree.
    #[wasm_bindgen(js_name = traceText)]
    pub fn trace_text(&self, query_id: JsValue) -> Result<String, JsValue> {
        Ok(self.find_trace("traceText(queryId)", &query_id)?.to_text())
    }

    /// `engine.contexts(nodeId?)`: the live context tree of node `nodeId`
    /// (default: the coordinator) from its Root down.
    pub fn contexts(&self, node_id: JsValue) -> Result<JsValue, JsValue> {
        to_js(&self.node("contexts(nodeId)", &node_id)?.contexts())
    }

    /// `engine.processes({ tenant, user, role })`: what `SHOW PROCESSLIST`
    /// shows that caller, with progress (`rowsExamined`, `timeMs`).
    pub fn processes(&self, identity: JsValue) -> Result<JsValue, JsValue> {
        let caller = IdentityArg::parse("processes(identity)", identity)?;
        to_js(&self.inner.processes(&caller))
    }

    /// `engine.shutdown()`: cancels everything on every node with cause
    /// "shutdown".
    pub fn shutdown(&self) {
        for node in &self.nodes {
            node.shutdown();
        }
    }

    /// The node named by a JS argument: `undefined`/`null` for the
    /// coordinator, else a node id of this engine.
    fn node(&self, what: &str, node_id: &JsValue) -> Result<&cascade::Engine, JsValue> {
        if node_id.is_undefined() || node_id.is_null() {
            return Ok(&self.inner);
        }
        let id = id_arg(what, node_id)?;
        self.nodes
            .iter()
            .find(|n| n.node_id() == id)
            .ok_or_else(|| {
                plain_error(&format!(
                    "{what}: no node {id} in this engine (nodes {:?})",
                    self.nodes
                        .iter()
                        .map(cascade::Engine::node_id)
                        .collect::<Vec<_>>()
                ))
            })
    }

    fn find_trace(&self, what: &str, query_id: &JsValue) -> Result<cascade::Trace, JsValue> {
        let id = id_arg(what, query_id)?;
        self.inner.trace(id).ok_or_else(|| {
            plain_error(&format!(
                "{what}: no trace for query {id} (unknown id, or evicted from the trace recorder)"
            ))
        })
    }
}

/// One client connection. Cheap to hold; `close()` when done.
#[wasm_bindgen]
pub struct Connection {
    inner: cascade::Connection,
}

#[wasm_bindgen]
impl Connection {
    /// The connection id (MySQL's `CONNECTION_ID()`), the one `KILL` takes.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> f64 {
        self.inner.id() as f64
    }

    /// `await conn.query(sql, { timeoutMs })`: runs every statement of
    /// `sql` and resolves to the last one's result, or rejects with a
    /// `QueryError`.
    pub fn query(&self, sql: JsValue, options: JsValue) -> Promise {
        let conn = self.inner.clone();
        future_to_promise(async move {
            let Some(sql) = sql.as_string() else {
                return Err(type_error(&format!(
                    "query(sql): sql must be a string, got {}",
                    crate::convert::describe(&sql)
                )));
            };
            let (options, traceparent) = QueryOptions::parse(options)?;
            match conn.execute_traced(&sql, options, traceparent).await {
                Ok(result) => Ok(result_to_js(&result)),
                Err(error) => Err(query_error_to_js(&error)),
            }
        })
    }

    /// The id of the statement running on this connection now (the
    /// `queryId` its result or error will carry), or `null` when idle: the
    /// id to pass to `cancel`.
    #[wasm_bindgen(getter, js_name = runningStatementId)]
    pub fn running_statement_id(&self) -> JsValue {
        self.inner
            .running_statement()
            .map_or(JsValue::NULL, |id| JsValue::from_f64(id as f64))
    }

    /// `conn.cancel(statementId?)`: `KILL QUERY` of this connection's
    /// running statement, as its own user, without waiting for it to end
    /// (its `query` promise rejects with 1317). With a `statementId` (from
    /// `runningStatementId`, a process-list row's `statementId`, a result's
    /// `queryId`), only that statement: if it is no longer running, nothing
    /// is killed, in particular not the statement running now. Returns
    /// `{ outcome, message }`, `outcome` being `"killed"`, `"nothing"` (no
    /// statement running, or already cancelled) or `"notRunning"`.
    pub fn cancel(&self, statement_id: JsValue) -> Result<JsValue, JsValue> {
        let statement = if statement_id.is_undefined() || statement_id.is_null() {
            None
        } else {
            Some(id_arg("cancel(statementId)", &statement_id)?)
        };
        let (outcome, message) = match self.inner.cancel(statement) {
            cascade::KillOutcome::Killed => ("killed", "cancelled the running statement".to_owned()),
            cascade::KillOutcome::Nothing => ("nothing", "no statement was running".to_owned()),
            cascade::KillOutcome::NotRunning {
                connection,
                statement,
            } => (
                "notRunning",
                format!("statement {statement} is not running on connection {connection}: nothing was killed"),
            ),
        };
        let obj: JsValue = js_sys::Object::new().into();
        js_sys::Reflect::set(&obj, &"outcome".into(), &outcome.into())?;
        js_sys::Reflect::set(&obj, &"message".into(), &message.into())?;
        Ok(obj)
    }

    /// `await conn.close()`: rolls back an open transaction and leaves the
    /// process list. Idempotent.
    pub fn close(&self) -> Promise {
        let conn = self.inner.clone();
        future_to_promise(async move {
            conn.close().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}
