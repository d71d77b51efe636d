//! The fragment service of a cluster node and [`GrpcNodes`], core's
//! [`Nodes`] over gRPC (issue 12.3, docs/across-nodes.md).
//!
//! A fragment call is one unary `Fragments/Run` through [`ClientLayer`]:
//! the caller's context crosses with it (values, the remaining budget,
//! `traceparent`), a cancel of the caller sends `Remote/Cancel` with the
//! cause and resets the call, and the remote side runs
//! [`cascade::Engine::serve_fragment`] in the remote child that
//! [`ServerLayer`](crate::ServerLayer) built. A status without
//! `cascade-error-bin` (a reset connection, a peer that went away) is
//! reported as the node lost.
//!
//! The coordinator's own fragment does not cross the network: it runs
//! through a one-engine [`LocalNodes`], with the same context rules.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use cascade::cluster::{
    Fragment, FragmentError, FragmentReply, FragmentSpan, FragmentStream, LocalNodes, Nodes,
    SharedNodes,
};
use cascade::decimal::Dec;
use cascade::remote::{level_from_wire, level_to_wire, PeerGrant, RemoteChild};
use cascade::{Context, Engine, Level, QueryError, Value};
use futures::stream::{self, StreamExt};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::{error_from_status, remote_call, status_from_error, with_context, ClientLayer};
use crate::{ClientService, ServerLayer, ERROR_HEADER, TRACEPARENT_HEADER};

/// The generated messages and stubs of `proto/cascade_cluster.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("cascade.cluster.v1");
}

/// A client of a peer's fragment service, through [`ClientLayer`].
pub type FragmentsClient = pb::fragments_client::FragmentsClient<ClientService<Channel>>;

fn value_to_pb(v: &Value) -> pb::Value {
    use pb::value::Kind;
    pb::Value {
        kind: Some(match v {
            Value::Null => Kind::Null(true),
            Value::Int(i) => Kind::Int(*i),
            Value::Float(f) => Kind::Float(*f),
            Value::Text(t) => Kind::Text(t.to_string()),
            Value::Date(d) => Kind::Date(*d),
            Value::DateTime(d) => Kind::Datetime(*d),
            Value::Time(t) => Kind::Time(*t),
            Value::Decimal(d) => Kind::Decimal(d.to_string()),
        }),
    }
}

fn value_from_pb(v: pb::Value) -> Result<Value, String> {
    use pb::value::Kind;
    Ok(match v.kind {
        None | Some(Kind::Null(_)) => Value::Null,
        Some(Kind::Int(i)) => Value::Int(i),
        Some(Kind::Float(f)) => Value::Float(f),
        Some(Kind::Text(t)) => Value::Text(t.into()),
        Some(Kind::Date(d)) => Value::Date(d),
        Some(Kind::Datetime(d)) => Value::DateTime(d),
        Some(Kind::Time(t)) => Value::Time(t),
        Some(Kind::Decimal(d)) => {
            Value::Decimal(Dec::parse(&d).ok_or_else(|| format!("malformed decimal {d:?}"))?)
        }
    })
}

fn span_to_pb(s: &FragmentSpan) -> pb::Span {
    pb::Span {
        id: s.id,
        parent: s.parent,
        name: s.name.clone(),
        level: level_to_wire(s.level),
        start_ns: s.start_ns,
        end_ns: s.end_ns,
        status: s.status.clone(),
        message: s.message.clone(),
        attrs: s
            .attrs
            .iter()
            .map(|(k, v)| pb::Attr {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    }
}

fn span_from_pb(s: pb::Span) -> FragmentSpan {
    FragmentSpan {
        id: s.id,
        parent: s.parent,
        name: s.name,
        level: level_from_wire(s.level).unwrap_or(Level::Operator),
        start_ns: s.start_ns,
        end_ns: s.end_ns.max(s.start_ns),
        status: s.status,
        message: s.message,
        attrs: s.attrs.into_iter().map(|a| (a.key, a.value)).collect(),
    }
}

/// The largest fragment reply (tonic's default is 4 MiB: a partial
/// aggregate with many groups is bigger). The coordinator reserves the
/// rows against the statement's budget once they arrive.
pub const MAX_REPLY_BYTES: usize = 1 << 30;

/// How many ended calls [`FragmentService`] remembers for `Status`.
const RECENT: usize = 64;

/// The fragment service of one node: runs fragments for its peers.
#[derive(Clone)]
pub struct FragmentService {
    engine: Engine,
    layer: ServerLayer,
    recent: Arc<Mutex<VecDeque<pb::CallOutcome>>>,
}

/// Records how a call ended when its handler ends or is dropped (a reset
/// call drops the handler's future).
struct Outcome {
    recent: Arc<Mutex<VecDeque<pb::CallOutcome>>>,
    child: Arc<RemoteChild>,
    budget_us: Option<u64>,
    ok: bool,
    /// A failure that is not a cancellation.
    error: Option<String>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // A deadline that passed is the cause, even if nothing checked it.
        let _ = self.child.context().check();
        let outcome = if self.ok {
            "ok".to_owned()
        } else if let Some(e) = self.error.take() {
            e
        } else {
            match self.child.context().cause() {
                Some(c) => c.reason.to_string(),
                None => "dropped".to_owned(),
            }
        };
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() >= RECENT {
            r.pop_front();
        }
        r.push_back(pb::CallOutcome {
            origin_node: self.child.origin_node(),
            budget_us: self.budget_us,
            outcome,
        });
    }
}

impl FragmentService {
    /// The service of `engine`, whose calls `layer` authenticates (for
    /// `Status`'s count of live calls).
    pub fn new(engine: Engine, layer: ServerLayer) -> Self {
        FragmentService {
            engine,
            layer,
            recent: Arc::default(),
        }
    }

    /// As a tonic service.
    pub fn into_server(self) -> pb::fragments_server::FragmentsServer<FragmentService> {
        pb::fragments_server::FragmentsServer::new(self)
            .max_decoding_message_size(MAX_REPLY_BYTES)
            .max_encoding_message_size(MAX_REPLY_BYTES)
    }
}

#[tonic::async_trait]
impl pb::fragments_server::Fragments for FragmentService {
    async fn run(
        &self,
        req: Request<pb::FragmentRequest>,
    ) -> Result<Response<pb::FragmentReply>, Status> {
        let node = self.engine.node_id();
        let Some(call) = remote_call(&req).cloned() else {
            return Err(Status::failed_precondition(
                "a fragment runs only in a call that carries a cascade context",
            ));
        };
        let m = req.into_inner();
        if m.step == 0 {
            return Err(status_from_error(
                &QueryError::new(1105, "HY000", "generate_series step must not be 0"),
                node,
            ));
        }
        let fragment = Fragment::PartialAggregate {
            sql: m.sql,
            start: m.start,
            stop: m.stop,
            step: m.step,
        };
        let child = call.shared_child();
        let mut outcome = Outcome {
            recent: self.recent.clone(),
            budget_us: child
                .context()
                .remaining()
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            child: child.clone(),
            ok: false,
            error: None,
        };
        let mut replies = self.engine.serve_fragment(child, fragment);
        let mut out = pb::FragmentReply {
            node,
            rows: Vec::new(),
            spans: Vec::new(),
        };
        while let Some(r) = replies.next().await {
            match r {
                Ok(FragmentReply::Rows(rows)) => out.rows.extend(rows.iter().map(|r| pb::Row {
                    values: r.iter().map(value_to_pb).collect(),
                })),
                Ok(FragmentReply::End { spans, .. }) => {
                    out.spans = spans.iter().map(span_to_pb).collect()
                }
                Err(FragmentError::Failed(e)) => {
                    if e.cause.is_none() {
                        outcome.error = Some(format!("error {}: {}", e.code, e.message));
                    }
                    return Err(status_from_error(&e, node));
                }
                Err(e @ FragmentError::Lost { .. }) => {
                    return Err(status_from_error(
                        &QueryError::new(1105, "HY000", e.to_string()),
                        node,
                    ))
                }
            }
        }
        outcome.ok = true;
        Ok(Response::new(out))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        Ok(Response::new(pb::StatusReply {
            node: self.engine.node_id(),
            live_calls: self.layer.live_calls() as u64,
            live_contexts: self.engine.root().subtree_len() as u64,
            memory_in_use: self.engine.memory_in_use(),
            recent: self
                .recent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
        }))
    }
}

/// The failure a status of node `node` stands for, seen on `this`.
fn classify(s: &Status, node: u64, this: u64) -> FragmentError {
    if s.metadata().get_bin(ERROR_HEADER).is_some() {
        return FragmentError::Failed(error_from_status(s, Some(this)));
    }
    match s.code() {
        tonic::Code::Unavailable
        | tonic::Code::Unknown
        | tonic::Code::Cancelled
        | tonic::Code::Internal
        | tonic::Code::Aborted
        | tonic::Code::DeadlineExceeded => FragmentError::Lost {
            node,
            message: format!("{} ({:?})", s.message(), s.code()),
        },
        _ => FragmentError::Failed(error_from_status(s, Some(this))),
    }
}

/// Core's [`Nodes`] over gRPC: one lazily connected channel per peer,
/// each call through [`ClientLayer`] on a task of the runtime the nodes
/// were made in; this node's own fragments through a one-engine
/// [`LocalNodes`].
pub struct GrpcNodes {
    this: u64,
    clients: BTreeMap<u64, FragmentsClient>,
    local: LocalNodes,
    local_nodes: SharedNodes,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for GrpcNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcNodes")
            .field("this", &self.this)
            .field("peers", &self.clients.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GrpcNodes {
    /// Node `this` with `peers` (node id, channel), calling them through
    /// `layer` (with this node's token). Must be called inside a tokio
    /// runtime (calls are spawned on it). Then [`GrpcNodes::attach`] the
    /// engine.
    pub fn new(
        this: u64,
        peers: Vec<(u64, Channel)>,
        layer: ClientLayer,
    ) -> Result<Arc<GrpcNodes>, tokio::runtime::TryCurrentError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let clients = peers
            .into_iter()
            .filter(|(n, _)| *n != this)
            .map(|(n, ch)| {
                let svc = tower::ServiceBuilder::new()
                    .layer(layer.clone())
                    .service(ch);
                (
                    n,
                    pb::fragments_client::FragmentsClient::new(svc)
                        .max_decoding_message_size(MAX_REPLY_BYTES)
                        .max_encoding_message_size(MAX_REPLY_BYTES),
                )
            })
            .collect();
        let local = LocalNodes::new();
        let local_nodes = local.node(this);
        Ok(Arc::new(GrpcNodes {
            this,
            clients,
            local,
            local_nodes,
            runtime,
        }))
    }

    /// The engine of this node (its own fragments run in it).
    pub fn attach(&self, engine: &Engine) {
        self.local.add(engine);
        // This node trusts itself as it trusts any peer, with `admin`.
        self.local.grant(
            self.this,
            PeerGrant {
                node_id: self.this,
                tenants: None,
                admin: true,
            },
        );
    }
}

impl Nodes for GrpcNodes {
    fn this_node(&self) -> u64 {
        self.this
    }

    fn peers(&self) -> Vec<u64> {
        self.clients.keys().copied().collect()
    }

    fn run_fragment(&self, node: u64, caller: &Context, fragment: Fragment) -> FragmentStream {
        if node == self.this {
            return self.local_nodes.run_fragment(node, caller, fragment);
        }
        let Some(client) = self.clients.get(&node).cloned() else {
            return Box::pin(stream::once(futures::future::ready(Err(
                FragmentError::Lost {
                    node,
                    message: "not a configured peer".into(),
                },
            ))));
        };
        let Fragment::PartialAggregate {
            sql,
            start,
            stop,
            step,
        } = fragment;
        let mut req = with_context(
            Request::new(pb::FragmentRequest {
                sql,
                start,
                stop,
                step,
            }),
            caller,
        );
        if let Some(tp) = caller.traceparent() {
            if let Ok(v) = tp.to_string().parse() {
                req.metadata_mut().insert(TRACEPARENT_HEADER, v);
            }
        }
        let this = self.this;
        let (tx, rx) = futures::channel::oneshot::channel();
        let mut client = client;
        self.runtime.spawn(async move {
            let r = client.run(req).await;
            let _ = tx.send(r);
        });
        Box::pin(stream::once(rx).flat_map(move |r| {
            let items: Vec<Result<FragmentReply, FragmentError>> = match r {
                Ok(Ok(resp)) => {
                    let m = resp.into_inner();
                    let rows: Result<Vec<Vec<Value>>, String> = m
                        .rows
                        .into_iter()
                        .map(|r| r.values.into_iter().map(value_from_pb).collect())
                        .collect();
                    match rows {
                        Ok(rows) => vec![
                            Ok(FragmentReply::Rows(rows)),
                            Ok(FragmentReply::End {
                                node: m.node,
                                spans: m.spans.into_iter().map(span_from_pb).collect(),
                            }),
                        ],
                        Err(e) => vec![Err(FragmentError::Failed(QueryError::new(
                            1105,
                            "HY000",
                            format!("node {node} sent {e}"),
                        )))],
                    }
                }
                Ok(Err(status)) => vec![Err(classify(&status, node, this))],
                Err(_) => vec![Err(FragmentError::Lost {
                    node,
                    message: "the call's task ended".into(),
                })],
            };
            stream::iter(items)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Null,
            Value::Int(-5),
            Value::Float(1.5),
            Value::Text("x".into()),
            Value::Date(19000),
            Value::DateTime(-7),
            Value::Time(3),
            Value::Decimal(Dec::parse("12.3400").unwrap()),
        ] {
            let back = value_from_pb(value_to_pb(&v)).unwrap();
            assert_eq!(back, v);
            if let (Value::Decimal(a), Value::Decimal(b)) = (&v, &back) {
                assert_eq!(a.to_string(), b.to_string(), "the scale is kept");
            }
        }
        let bad = pb::Value {
            kind: Some(pb::value::Kind::Decimal("1.2.3".into())),
        };
        assert!(value_from_pb(bad).is_err());
    }
}
