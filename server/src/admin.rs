//! The control path between nodes (issue 12.3, docs/across-nodes.md):
//! `KILL <id>` sent to any node reaches the node that owns the connection,
//! and `SHOW PROCESSLIST` shows every node's connections.
//!
//! * [`AdminService`]: the `cascade.admin.v1.Admin` gRPC service a node
//!   serves behind `cascade-grpc`'s [`ServerLayer`](cascade_grpc::ServerLayer).
//!   Each call carries the caller's context; the layer has checked its
//!   identity against the calling peer's grant (a peer cannot raise tenant
//!   or role), and the service applies the node's own kill rules to it
//!   ([`Engine::kill_for_peer`], [`Engine::process_rows`]).
//! * [`GrpcPeers`]: the engine's [`PeerAdmin`] over gRPC: one lazily
//!   connected channel per peer, through `cascade-grpc`'s
//!   [`ClientLayer`](cascade_grpc::ClientLayer) with this node's peer
//!   token. The owner's answer comes back word for word (1094, 1095); a
//!   peer that cannot be reached is error 1429 naming the node and its
//!   address, and for `SHOW PROCESSLIST` a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use cascade::session::{PeerAdmin, PeerProcesses, ProcessRow};
use cascade::{Context, Engine, KillError, KillOutcome, KillScope, QueryError};
use cascade_grpc::{
    error_from_status, remote_call, status_from_error, with_context, ClientLayer, ClientService,
    ERROR_HEADER,
};
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tower::ServiceBuilder;

/// The generated messages and stubs of `proto/cascade_admin.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("cascade.admin.v1");
}

/// How long a forwarded `KILL` or a peer's process list may take before
/// the peer counts as unreachable (the caller's own deadline, if shorter,
/// ends it first).
pub const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to a peer may take.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The admin service of one node.
#[derive(Clone, Debug)]
pub struct AdminService {
    engine: Engine,
}

impl AdminService {
    /// The service of `engine`'s node.
    pub fn new(engine: Engine) -> Self {
        AdminService { engine }
    }

    /// As a tonic service, to add to a router behind the `ServerLayer`.
    pub fn into_server(self) -> pb::admin_server::AdminServer<AdminService> {
        pb::admin_server::AdminServer::new(self)
    }

    fn node(&self) -> u64 {
        self.engine.root().values().node_id().unwrap_or(0)
    }

    fn call<'a, T>(&self, req: &'a Request<T>) -> Result<&'a cascade_grpc::RemoteCall, Status> {
        remote_call(req).ok_or_else(|| {
            status_from_error(
                &QueryError::new(
                    1227,
                    "42000",
                    "Access denied: an admin call must carry the caller's context",
                ),
                self.node(),
            )
        })
    }
}

fn outcome_to_pb(o: KillOutcome) -> pb::KillReply {
    match o {
        KillOutcome::Killed => pb::KillReply {
            outcome: 0,
            ..Default::default()
        },
        KillOutcome::Nothing => pb::KillReply {
            outcome: 1,
            ..Default::default()
        },
        KillOutcome::NotRunning {
            connection,
            statement,
        } => pb::KillReply {
            outcome: 2,
            connection,
            statement,
        },
    }
}

fn outcome_from_pb(r: &pb::KillReply) -> Result<KillOutcome, QueryError> {
    match r.outcome {
        0 => Ok(KillOutcome::Killed),
        1 => Ok(KillOutcome::Nothing),
        2 => Ok(KillOutcome::NotRunning {
            connection: r.connection,
            statement: r.statement,
        }),
        n => Err(QueryError::new(
            1105,
            "HY000",
            format!("a peer answered KILL with an unknown outcome {n}"),
        )),
    }
}

fn row_to_pb(r: ProcessRow) -> pb::ProcessRow {
    pb::ProcessRow {
        node: r.node,
        id: r.id,
        tenant: r.tenant,
        user: r.user,
        role: r.role,
        db: r.db,
        command: r.command,
        time_ms: r.time_ms,
        state: r.state,
        info: r.info,
        statement_id: r.statement_id,
        rows_examined: r.rows_examined,
        tenant_memory: r.tenant_memory,
        tenant_memory_budget: r.tenant_memory_budget,
    }
}

fn row_from_pb(r: pb::ProcessRow) -> ProcessRow {
    ProcessRow {
        node: r.node,
        id: r.id,
        tenant: r.tenant,
        user: r.user,
        role: r.role,
        db: r.db,
        command: r.command,
        time_ms: r.time_ms,
        state: r.state,
        info: r.info,
        statement_id: r.statement_id,
        rows_examined: r.rows_examined,
        tenant_memory: r.tenant_memory,
        tenant_memory_budget: r.tenant_memory_budget,
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<pb::KillReply>, Status> {
        let call = self.call(&req)?.clone();
        let m = req.into_inner();
        let scope = if m.query {
            KillScope::Query {
                statement: m.statement,
            }
        } else {
            KillScope::Connection
        };
        let origin = call.child().origin_node();
        tracing::info!(
            target: "cascade_server",
            from_node = origin,
            target_conn = m.target,
            query = m.query,
            "KILL forwarded by a peer"
        );
        self.engine
            .kill_for_peer(call.context(), origin, m.target, scope)
            .map(|o| Response::new(outcome_to_pb(o)))
            .map_err(|e| status_from_error(&e, self.node()))
    }

    async fn process_list(
        &self,
        req: Request<pb::ProcessListRequest>,
    ) -> Result<Response<pb::ProcessListReply>, Status> {
        let call = self.call(&req)?;
        let Some(identity) = call.context().values().identity().cloned() else {
            return Err(status_from_error(
                &QueryError::new(1227, "42000", "Access denied: no identity"),
                self.node(),
            ));
        };
        let rows = self
            .engine
            .process_rows(&identity)
            .into_iter()
            .map(row_to_pb)
            .collect();
        Ok(Response::new(pb::ProcessListReply { rows }))
    }
}

type Client = pb::admin_client::AdminClient<ClientService<Channel>>;

struct Peer {
    address: String,
    client: Result<Client, String>,
}

/// The engine's [`PeerAdmin`] over gRPC: the other nodes of the static
/// peer list, each behind a lazily connected channel.
pub struct GrpcPeers {
    me: u64,
    peers: BTreeMap<u64, Peer>,
}

impl std::fmt::Debug for GrpcPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcPeers")
            .field("me", &self.me)
            .field("peers", &self.peers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GrpcPeers {
    /// Node `me`'s peers, none yet; it sends `token` to every peer (the
    /// token that peer's `StaticPeers` knows this node by).
    pub fn new(me: u64) -> Self {
        GrpcPeers {
            me,
            peers: BTreeMap::new(),
        }
    }

    /// Adds peer `node` at gRPC endpoint `address` (`http://host:port`),
    /// sending `token`. Needs a tokio runtime (the channel connects on
    /// first use). A malformed address makes every call to that peer an
    /// error naming it.
    pub fn peer(mut self, node: u64, address: &str, token: &str) -> Self {
        let client = Endpoint::from_shared(address.to_owned())
            .map(|e| {
                let channel = e
                    .connect_timeout(PEER_CONNECT_TIMEOUT)
                    .timeout(PEER_CALL_TIMEOUT)
                    .connect_lazy();
                pb::admin_client::AdminClient::new(
                    ServiceBuilder::new()
                        .layer(ClientLayer::new().with_token(token))
                        .service(channel),
                )
            })
            .map_err(|e| format!("bad address {address:?}: {e}"));
        self.peers.insert(
            node,
            Peer {
                address: address.to_owned(),
                client,
            },
        );
        self
    }

    /// Every peer of `cluster`, over the cluster's own channels (with
    /// their keep-alive) and this node's token.
    pub fn from_cluster(cluster: &crate::cluster::Cluster) -> Self {
        let config = cluster.config();
        let token = config.token_of(config.node_id);
        let mut peers = GrpcPeers::new(config.node_id);
        for p in &config.peers {
            if let Some(channel) = cluster.channel(p.node_id) {
                peers =
                    peers.peer_channel(p.node_id, &format!("http://{}", p.grpc), channel, &token);
            }
        }
        peers
    }

    /// Adds peer `node` over an existing `channel` (the cluster's own
    /// channel to it, with its keep-alive), sending `token`; `address`
    /// names it in errors.
    pub fn peer_channel(mut self, node: u64, address: &str, channel: Channel, token: &str) -> Self {
        let client = pb::admin_client::AdminClient::new(
            ServiceBuilder::new()
                .layer(ClientLayer::new().with_token(token))
                .service(channel),
        );
        self.peers.insert(
            node,
            Peer {
                address: address.to_owned(),
                client: Ok(client),
            },
        );
        self
    }

    fn unreachable(node: u64, address: &str, why: &str) -> QueryError {
        QueryError::new(
            1429,
            "HY000",
            format!("node {node} ({address}) is unreachable: {why}"),
        )
    }

    /// The error of a failed call: the peer's own error word for word, or
    /// "unreachable" naming the node when the failure is the transport's.
    fn failure(me: u64, node: u64, address: &str, s: &Status) -> QueryError {
        if s.metadata().get_bin(ERROR_HEADER).is_some() {
            error_from_status(s, Some(me))
        } else {
            Self::unreachable(node, address, &format!("{} ({:?})", s.message(), s.code()))
        }
    }
}

impl PeerAdmin for GrpcPeers {
    fn kill(
        &self,
        ctx: &Context,
        node: u64,
        target: u64,
        scope: KillScope,
    ) -> BoxFuture<'static, Result<KillOutcome, QueryError>> {
        let me = self.me;
        let Some(peer) = self.peers.get(&node) else {
            // Not a node of the cluster: as an id no connection has.
            let e: QueryError = KillError::UnknownThread(target).into();
            return Box::pin(async move { Err(e) });
        };
        let address = peer.address.clone();
        let client = peer.client.clone();
        let (query, statement) = match scope {
            KillScope::Query { statement } => (true, statement),
            KillScope::Connection => (false, None),
        };
        let req = with_context(
            Request::new(pb::KillRequest {
                target,
                query,
                statement,
            }),
            ctx,
        );
        Box::pin(async move {
            let mut client = client.map_err(|e| Self::unreachable(node, &address, &e))?;
            match tokio::time::timeout(PEER_CALL_TIMEOUT, client.kill(req)).await {
                Ok(Ok(r)) => outcome_from_pb(r.get_ref()),
                Ok(Err(s)) => Err(Self::failure(me, node, &address, &s)),
                Err(_) => Err(Self::unreachable(
                    node,
                    &address,
                    &format!("no answer within {PEER_CALL_TIMEOUT:?}"),
                )),
            }
        })
    }

    fn process_lists(&self, ctx: &Context) -> BoxFuture<'static, Vec<PeerProcesses>> {
        let me = self.me;
        let calls: Vec<_> = self
            .peers
            .iter()
            .map(|(&node, peer)| {
                let address = peer.address.clone();
                let client = peer.client.clone();
                let req = with_context(Request::new(pb::ProcessListRequest {}), ctx);
                async move {
                    let rows = async {
                        let mut client =
                            client.map_err(|e| Self::unreachable(node, &address, &e))?;
                        match tokio::time::timeout(PEER_CALL_TIMEOUT, client.process_list(req))
                            .await
                        {
                            Ok(Ok(r)) => {
                                Ok(r.into_inner().rows.into_iter().map(row_from_pb).collect())
                            }
                            Ok(Err(s)) => Err(Self::failure(me, node, &address, &s)),
                            Err(_) => Err(Self::unreachable(
                                node,
                                &address,
                                &format!("no answer within {PEER_CALL_TIMEOUT:?}"),
                            )),
                        }
                    }
                    .await
                    .map_err(|e: QueryError| e.message);
                    PeerProcesses { node, rows }
                }
            })
            .collect();
        // Every peer at once: one slow or dead peer costs one timeout.
        Box::pin(futures::future::join_all(calls))
    }
}
