//! More than one node (issue 12.3, docs/cluster.md): the `[cluster]` part
//! of the configuration, the node's gRPC endpoint, and one channel per peer.
//!
//! ```toml
//! [cluster]
//! node_id = 1                       # 1..1023, the high bits of connection ids
//! grpc_listen = "127.0.0.1:7001"    # this node's gRPC endpoint
//! token = "change-me"               # shared by the cluster's nodes
//! # keepalive_interval_ms = 1000    # HTTP/2 pings on every channel ...
//! # keepalive_timeout_ms = 2000     # ... a peer that stops answering is lost
//!
//! [[cluster.peers]]
//! node_id = 2
//! grpc = "127.0.0.1:7002"
//! mysql = "127.0.0.1:6002"          # where its clients connect (optional)
//! # tenants = ["acme"]              # whom it may act for (default: any but sys)
//! # admin = false                   # whether it may carry the admin role
//! ```
//!
//! Peers authenticate with the cluster's token: node N sends
//! `cascade-peer-token: <token>:<N>`, and a node accepts a call only from a
//! node of its peer list with that token; the grant (tenants, admin) is the
//! receiving node's, from its own file, never from the call.
//!
//! [`Cluster`] is made before the engine (its [`Cluster::nodes`] goes into
//! the engine's config); [`Cluster::endpoint`] then builds the endpoint's
//! router (the `Remote/Cancel` and `Fragments` services behind cascade-grpc's
//! [`ServerLayer`]), to which other services can be added (an admin service
//! for KILL routing), and [`Endpoint::serve`] runs it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cascade::cluster::SharedNodes;
use cascade::remote::PeerGrant;
use cascade::Engine;
use cascade_grpc::cluster::{FragmentService, GrpcNodes};
use cascade_grpc::{ClientLayer, ServerLayer, StaticPeers};
use serde::Deserialize;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint as TonicEndpoint, Server};
use tower::layer::util::{Identity, Stack};

use crate::config::ConfigError;

/// `[cluster]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileCluster {
    node_id: u64,
    grpc_listen: String,
    token: String,
    #[serde(default = "default_keepalive_interval")]
    keepalive_interval_ms: u64,
    #[serde(default = "default_keepalive_timeout")]
    keepalive_timeout_ms: u64,
    #[serde(default)]
    peers: Vec<FilePeer>,
}

fn default_keepalive_interval() -> u64 {
    1000
}
fn default_keepalive_timeout() -> u64 {
    2000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePeer {
    node_id: u64,
    grpc: String,
    #[serde(default)]
    mysql: Option<String>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    admin: bool,
}

/// One peer of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its node id.
    pub node_id: u64,
    /// Its gRPC endpoint.
    pub grpc: SocketAddr,
    /// Where its MySQL clients connect, if given.
    pub mysql: Option<SocketAddr>,
    /// The tenants it may act for here (`None`: any but `sys`).
    pub tenants: Option<Vec<String>>,
    /// Whether it may carry the `admin` role here.
    pub admin: bool,
}

/// `[cluster]`: this node's id, its gRPC endpoint, the shared token, the
/// peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id, 1..=1023.
    pub node_id: u64,
    /// Where this node's gRPC endpoint listens.
    pub grpc_listen: SocketAddr,
    /// The cluster's shared secret.
    pub token: String,
    /// HTTP/2 keep-alive ping interval on every channel and the endpoint.
    pub keepalive_interval: Duration,
    /// A peer that does not answer a ping within this is lost.
    pub keepalive_timeout: Duration,
    /// The other nodes.
    pub peers: Vec<PeerConfig>,
}

fn addr(what: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|e| ConfigError::Invalid(format!("cluster: {what} {s:?}: {e}")))
}

impl ClusterConfig {
    pub(crate) fn from_file(f: FileCluster) -> Result<Self, ConfigError> {
        let max = u64::from(cascade::remote::GlobalConnId::MAX_NODE);
        let check_id = |id: u64, what: &str| {
            if id == 0 || id > max {
                Err(ConfigError::Invalid(format!(
                    "cluster: {what} node_id {id} is not in 1..={max}"
                )))
            } else {
                Ok(())
            }
        };
        check_id(f.node_id, "this node's")?;
        if f.token.is_empty() || f.token.contains(|c: char| c.is_control() || c == ':') {
            return Err(ConfigError::Invalid(
                "cluster: token must be non-empty, without ':' or control characters".into(),
            ));
        }
        if f.keepalive_interval_ms == 0 || f.keepalive_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "cluster: keepalive_interval_ms and keepalive_timeout_ms must be at least 1".into(),
            ));
        }
        let mut peers = Vec::new();
        let mut seen = std::collections::BTreeSet::from([f.node_id]);
        for p in f.peers {
            check_id(p.node_id, "a peer's")?;
            if !seen.insert(p.node_id) {
                return Err(ConfigError::Invalid(format!(
                    "cluster: node_id {} is listed twice (or is this node's)",
                    p.node_id
                )));
            }
            peers.push(PeerConfig {
                node_id: p.node_id,
                grpc: addr("grpc", &p.grpc)?,
                mysql: p.mysql.as_deref().map(|m| addr("mysql", m)).transpose()?,
                tenants: p.tenants,
                admin: p.admin,
            });
        }
        Ok(ClusterConfig {
            node_id: f.node_id,
            grpc_listen: addr("grpc_listen", &f.grpc_listen)?,
            token: f.token,
            keepalive_interval: Duration::from_millis(f.keepalive_interval_ms),
            keepalive_timeout: Duration::from_millis(f.keepalive_timeout_ms),
            peers,
        })
    }

    /// The token node `node` sends.
    pub fn token_of(&self, node: u64) -> String {
        format!("{}:{node}", self.token)
    }
}

/// The layers of the endpoint's router.
pub type EndpointLayers = Stack<ServerLayer, Identity>;
/// The endpoint's router: add services with `add_service`.
pub type ClusterRouter = Router<EndpointLayers>;

/// A node of a cluster: its channels to the peers and its [`GrpcNodes`].
pub struct Cluster {
    config: ClusterConfig,
    channels: BTreeMap<u64, Channel>,
    nodes: Arc<GrpcNodes>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.config.node_id)
            .field("peers", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Cluster {
    /// A channel per peer (connected lazily, with HTTP/2 keep-alive), and
    /// the transport for the engine. Call inside the tokio runtime (an
    /// error otherwise).
    pub fn new(config: ClusterConfig) -> Result<Cluster, ConfigError> {
        let mut channels = BTreeMap::new();
        for p in &config.peers {
            let ep = TonicEndpoint::from_shared(format!("http://{}", p.grpc))
                .map_err(|e| ConfigError::Invalid(format!("cluster: peer {}: {e}", p.node_id)))?
                .connect_timeout(config.keepalive_timeout)
                .http2_keep_alive_interval(config.keepalive_interval)
                .keep_alive_timeout(config.keepalive_timeout)
                .keep_alive_while_idle(true)
                .tcp_nodelay(true);
            channels.insert(p.node_id, ep.connect_lazy());
        }
        let nodes = GrpcNodes::new(
            config.node_id,
            channels.iter().map(|(n, c)| (*n, c.clone())).collect(),
            ClientLayer::new().with_token(&config.token_of(config.node_id)),
        )
        .map_err(|e| {
            ConfigError::Invalid(format!("cluster: start it inside the tokio runtime ({e})"))
        })?;
        Ok(Cluster {
            config,
            channels,
            nodes,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The transport, for [`cascade::EngineConfig::nodes`].
    pub fn nodes(&self) -> SharedNodes {
        self.nodes.clone()
    }

    /// The channel to peer `node` (without layers): other clients (an
    /// admin service's) wrap it in [`Cluster::client_layer`].
    pub fn channel(&self, node: u64) -> Option<Channel> {
        self.channels.get(&node).cloned()
    }

    /// The client layer of this node's calls (with its token).
    pub fn client_layer(&self) -> ClientLayer {
        ClientLayer::new().with_token(&self.config.token_of(self.config.node_id))
    }

    /// The grants of the peers, by the token each sends.
    fn peer_auth(&self) -> StaticPeers {
        let mut auth = StaticPeers::new();
        for p in &self.config.peers {
            let grant = PeerGrant {
                node_id: p.node_id,
                tenants: p
                    .tenants
                    .as_ref()
                    .map(|t| t.iter().map(|s| Arc::from(s.as_str())).collect()),
                admin: p.admin,
            };
            auth = auth.peer(&self.config.token_of(p.node_id), grant);
        }
        auth
    }

    /// The endpoint of `engine` (this node's): the server layer (remote
    /// children under the engine's root, for the listed peers), with the
    /// `Remote/Cancel` and `Fragments` services; add more to its router.
    /// Attaches the engine to the transport (its own fragments).
    pub fn endpoint(&self, engine: &Engine) -> Endpoint {
        self.nodes.attach(engine);
        let layer = ServerLayer::new(engine.root().clone(), self.peer_auth());
        let router = Server::builder()
            .http2_keepalive_interval(Some(self.config.keepalive_interval))
            .http2_keepalive_timeout(Some(self.config.keepalive_timeout))
            .tcp_nodelay(true)
            .layer(layer.clone())
            .add_service(layer.cancel_service())
            .add_service(FragmentService::new(engine.clone(), layer.clone()).into_server());
        Endpoint {
            layer,
            router,
            listen: self.config.grpc_listen,
        }
    }
}

/// A node's gRPC endpoint, not yet serving.
pub struct Endpoint {
    /// The server layer (its live calls).
    pub layer: ServerLayer,
    /// The router: add services here before [`Endpoint::serve`].
    pub router: ClusterRouter,
    /// Where it listens.
    pub listen: SocketAddr,
}

impl Endpoint {
    /// Binds and serves until `shutdown` resolves (on a task of the
    /// runtime); the bound address.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(self.listen).await?;
        let bound = listener.local_addr()?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let router = self.router;
        let task = tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
            {
                tracing::error!("the cluster endpoint failed: {e}");
            }
        });
        Ok((bound, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerConfig;

    const BASE: &str =
        "[cluster]\nnode_id = 1\ngrpc_listen = \"127.0.0.1:7001\"\ntoken = \"s3cret\"\n";

    #[test]
    fn cluster_config_parses_and_checks() {
        let text = format!(
            "{BASE}[[cluster.peers]]\nnode_id = 2\ngrpc = \"127.0.0.1:7002\"\nmysql = \"127.0.0.1:6002\"\n\
             [[cluster.peers]]\nnode_id = 3\ngrpc = \"127.0.0.1:7003\"\ntenants = [\"acme\"]\nadmin = true\n"
        );
        let c = ServerConfig::from_toml(&text).unwrap().cluster.unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[0].mysql, Some("127.0.0.1:6002".parse().unwrap()));
        assert_eq!(c.peers[1].tenants, Some(vec!["acme".to_owned()]));
        assert!(c.peers[1].admin);
        assert_eq!(c.keepalive_interval, Duration::from_secs(1));
        assert_eq!(c.token_of(3), "s3cret:3");
        assert!(ServerConfig::from_toml("").unwrap().cluster.is_none());
        for bad in [
            BASE.replace("node_id = 1", "node_id = 0"),
            BASE.replace("node_id = 1", "node_id = 1024"),
            BASE.replace("s3cret", ""),
            BASE.replace("s3cret", "a:b"),
            BASE.replace("127.0.0.1:7001", "nowhere"),
            format!("{BASE}[[cluster.peers]]\nnode_id = 1\ngrpc = \"127.0.0.1:7002\"\n"),
            format!("{BASE}[[cluster.peers]]\nnode_id = 2\ngrpc = \"x\"\n"),
            format!("{BASE}color = \"blue\"\n"),
        ] {
            assert!(ServerConfig::from_toml(&bad).is_err(), "{bad}");
        }
    }
}
