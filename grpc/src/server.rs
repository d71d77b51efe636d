//! The server side: builds each call's remote child context, hands it to
//! the handler, and cancels it when the caller cancels or goes away.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cascade::remote::{PeerGrant, RemoteChild, RemoteError, WireCause};
use cascade::{Context, Instant};
use http::HeaderMap;
use http_body::Frame;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::Status;
use tower::{Layer, Service};

use crate::codec::{
    cause_from_pb, context_from_bytes, decode_grpc_timeout, status_from_remote_error,
    CONTEXT_HEADER, PEER_TOKEN_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
use crate::pb;

/// Tells who is calling: the grant of the authenticated peer, from the
/// receiving node's configuration or the transport's authentication —
/// never from the call's own claims.
pub trait PeerAuth: Send + Sync + 'static {
    /// The grant of the peer that sent a call with these headers; `None`:
    /// not a known peer.
    fn authenticate(&self, headers: &HeaderMap) -> Option<PeerGrant>;
}

/// The static peer list: each peer's grant, keyed by the shared token it
/// sends as `cascade-peer-token` (the server's TOML, issue 12.3). A
/// transport with mTLS would authenticate by certificate instead.
#[derive(Clone, Debug, Default)]
pub struct StaticPeers {
    by_token: HashMap<String, PeerGrant>,
}

impl StaticPeers {
    /// No peers.
    pub fn new() -> Self {
        StaticPeers::default()
    }
    /// Adds a peer: calls that send `token` are `grant.node_id`'s, with
    /// `grant`'s rights.
    pub fn peer(mut self, token: &str, grant: PeerGrant) -> Self {
        self.by_token.insert(token.to_owned(), grant);
        self
    }
}

impl PeerAuth for StaticPeers {
    fn authenticate(&self, headers: &HeaderMap) -> Option<PeerGrant> {
        let token = headers.get(PEER_TOKEN_HEADER)?.to_str().ok()?;
        self.by_token.get(token).cloned()
    }
}

type Key = (u64, u64);

/// How many cancels of calls not (yet) seen are remembered, and how long.
const TOMBSTONES: usize = 4096;
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Calls {
    live: HashMap<Key, Weak<RemoteChild>>,
    tombstones: HashMap<Key, WireCause>,
    order: VecDeque<(Key, Instant)>,
}

struct Shared {
    root: Context,
    auth: Box<dyn PeerAuth>,
    calls: Mutex<Calls>,
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        // A panic while holding the lock leaves plain maps: still usable.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn node(&self) -> u64 {
        self.root.values().node_id().unwrap_or(0)
    }

    /// Registers a live call; the cause of a Cancel that overtook it, if any.
    fn register(&self, key: Key, child: &Arc<RemoteChild>) -> Option<WireCause> {
        let mut c = self.calls();
        let early = c.tombstones.remove(&key);
        if early.is_some() {
            c.order.retain(|(k, _)| *k != key);
        }
        c.live.insert(key, Arc::downgrade(child));
        early
    }

    fn deregister(&self, key: Key) {
        self.calls().live.remove(&key);
    }

    /// Applies a Cancel: to the live call, or as a tombstone for a call
    /// that has not arrived. Whether the call was live.
    fn cancel(&self, key: Key, cause: WireCause) -> bool {
        let now = self.root.host().now();
        let mut c = self.calls();
        if let Some(child) = c.live.get(&key).and_then(Weak::upgrade) {
            drop(c);
            child.cancel_from_remote(&cause);
            return true;
        }
        let expired_before = Instant(now.0.saturating_sub(TOMBSTONE_TTL.as_nanos() as u64));
        while let Some((k, at)) = c.order.front().copied() {
            if at < expired_before || c.order.len() >= TOMBSTONES {
                c.order.pop_front();
                c.tombstones.remove(&k);
            } else {
                break;
            }
        }
        c.tombstones.insert(key, cause);
        c.order.push_back((key, now));
        false
    }
}

/// The server-side layer: `Server::builder().layer(layer.clone())
/// .add_service(layer.cancel_service()).add_service(YourServer::new(..))`.
#[derive(Clone)]
pub struct ServerLayer {
    shared: Arc<Shared>,
}

impl ServerLayer {
    /// A layer building remote children under `root` (this node's Root),
    /// for the peers `auth` recognises.
    pub fn new(root: Context, auth: impl PeerAuth) -> Self {
        ServerLayer {
            shared: Arc::new(Shared {
                root,
                auth: Box::new(auth),
                calls: Mutex::new(Calls::default()),
            }),
        }
    }

    /// The `Remote/Cancel` service that carries callers' cancel causes to
    /// this layer's calls. Add it to the same server.
    pub fn cancel_service(&self) -> pb::remote_server::RemoteServer<CancelService> {
        pb::remote_server::RemoteServer::new(CancelService {
            shared: self.shared.clone(),
        })
    }

    /// Calls running now (for tests and the process list).
    pub fn live_calls(&self) -> usize {
        self.shared
            .calls()
            .live
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;
    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A call's remote child, as a request extension: the handler gets it with
/// [`remote_call`].
#[derive(Clone, Debug)]
pub struct RemoteCall(Arc<RemoteChild>);

impl RemoteCall {
    /// The context the handler runs in: the caller's values, its remaining
    /// deadline, cancelled when the caller is.
    pub fn context(&self) -> &Context {
        self.0.context()
    }
    /// The remote child (origin node, trace ids).
    pub fn child(&self) -> &RemoteChild {
        &self.0
    }
    /// The remote child, shared (for work that outlives the borrow, such
    /// as [`cascade::Engine::serve_fragment`]).
    pub fn shared_child(&self) -> Arc<RemoteChild> {
        self.0.clone()
    }
}

/// The remote call of a request, when it came with a cascade context.
pub fn remote_call<T>(req: &tonic::Request<T>) -> Option<&RemoteCall> {
    req.extensions().get::<RemoteCall>()
}

/// The service of [`ServerLayer`].
#[derive(Clone)]
pub struct ServerService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn refuse<E: Send + 'static>(status: Status) -> BoxFuture<Result<http::Response<Body>, E>> {
    Box::pin(futures::future::ready(Ok(status.into_http())))
}

impl<S> Service<http::Request<Body>> for ServerService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let Some(raw) = req.headers().get(CONTEXT_HEADER).cloned() else {
            return Box::pin(inner.call(req));
        };
        let shared = self.shared.clone();
        let node = shared.node();
        let Some(grant) = shared.auth.authenticate(req.headers()) else {
            return refuse(Status::unauthenticated(format!(
                "node {node}: the caller is not a known peer"
            )));
        };
        let mut one = HeaderMap::new();
        one.insert(CONTEXT_HEADER, raw);
        let bytes = MetadataMap::from_headers(one)
            .get_bin(CONTEXT_HEADER)
            .and_then(|v| v.to_bytes().ok());
        let Some(bytes) = bytes else {
            let e = RemoteError::Malformed("cascade-context-bin is not base64".into());
            return refuse(status_from_remote_error(&e, node));
        };
        let (mut wire, call_id) = match context_from_bytes(&bytes) {
            Ok(w) => w,
            Err(e) => return refuse(status_from_remote_error(&e, node)),
        };
        let text = |h: &str| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The exact budget from cascade-context-bin; a caller that sent
        // only grpc-timeout (no cascade client layer) gives that.
        if wire.budget.is_none() {
            wire.budget = text("grpc-timeout").and_then(|t| decode_grpc_timeout(&t));
        }
        wire.traceparent = text(TRACEPARENT_HEADER);
        wire.tracestate = text(TRACESTATE_HEADER);
        let child = match RemoteChild::build(&shared.root, &grant, &wire) {
            Ok(c) => Arc::new(c),
            Err(e) => return refuse(status_from_remote_error(&e, node)),
        };
        let key = (grant.node_id, call_id);
        if let Some(early) = shared.register(key, &child) {
            child.cancel_from_remote(&early);
        }
        req.extensions_mut().insert(RemoteCall(child.clone()));
        let guard = CallGuard {
            shared,
            key,
            child,
            done: false,
        };
        let fut = inner.call(req);
        Box::pin(async move {
            let mut guard = guard;
            match fut.await {
                Ok(resp) => Ok(resp.map(|body| {
                    Body::new(GuardedBody {
                        inner: body,
                        guard: Some(guard),
                    })
                })),
                Err(e) => {
                    guard.done = true;
                    Err(e)
                }
            }
        })
    }
}

/// Ends a call on this node: leaves the registry, and cancels the remote
/// child if the call was dropped before its response was sent (the
/// caller's stream reset, its connection closed, tonic's own timeout).
struct CallGuard {
    shared: Arc<Shared>,
    key: Key,
    child: Arc<RemoteChild>,
    done: bool,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.shared.deregister(self.key);
        if !self.done {
            // A deadline that passed is the cause, not the drop it caused.
            let _ = self.child.context().check();
            self.child.cancel_lost("the call was dropped by the caller");
        }
    }
}

/// The response body, holding the call's guard until the last frame.
struct GuardedBody {
    inner: Body,
    guard: Option<CallGuard>,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            if let Some(mut g) = self.guard.take() {
                g.done = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The `Remote/Cancel` service ([`ServerLayer::cancel_service`]).
pub struct CancelService {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl pb::remote_server::Remote for CancelService {
    async fn cancel(
        &self,
        req: tonic::Request<pb::CancelRequest>,
    ) -> Result<tonic::Response<pb::CancelReply>, Status> {
        let node = self.shared.node();
        let headers = req.metadata().clone().into_headers();
        let Some(grant) = self.shared.auth.authenticate(&headers) else {
            return Err(Status::unauthenticated(format!(
                "node {node}: the caller is not a known peer"
            )));
        };
        let m = req.into_inner();
        if m.origin_node != grant.node_id {
            let e = RemoteError::WrongNode {
                claimed: m.origin_node,
                peer: grant.node_id,
            };
            return Err(status_from_remote_error(&e, node));
        }
        let cause = m
            .cause
            .ok_or_else(|| RemoteError::Malformed("a Cancel without a cause".into()))
            .and_then(cause_from_pb)
            .map_err(|e| status_from_remote_error(&e, node))?;
        let found = self.shared.cancel((grant.node_id, m.call_id), cause);
        Ok(tonic::Response::new(pb::CancelReply { found }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade::remote::WireContext;
    use cascade::{CancelKind, Identity, Level, ManualHost, Reason};

    fn layer() -> (ServerLayer, Arc<ManualHost>) {
        let host = Arc::new(ManualHost::new());
        let root = Context::root(host.clone()).node_id(2).build().unwrap();
        (ServerLayer::new(root, StaticPeers::new()), host)
    }

    fn wire() -> WireContext {
        WireContext {
            origin_node: 1,
            level: Some(Level::Query),
            identity: Some(Identity::new("acme", "alice", "member")),
            connection_id: Some(5),
            session_id: Some(5),
            statement_id: Some(17),
            ..WireContext::default()
        }
    }

    fn kill() -> WireCause {
        WireCause {
            kind: CancelKind::Canceled,
            reason: Reason::KillQuery {
                by_connection: 9,
                by_user: "root".into(),
            },
            level: Level::Query,
            origin_node: 1,
        }
    }

    #[test]
    fn a_cancel_that_overtakes_its_call_leaves_a_tombstone_the_call_finds() {
        let (layer, _host) = layer();
        let s = &layer.shared;
        assert!(!s.cancel((1, 42), kill()), "no live call: a tombstone");
        let child =
            Arc::new(RemoteChild::build(&s.root, &PeerGrant::any_tenant(1), &wire()).unwrap());
        let early = s.register((1, 42), &child).expect("the tombstone");
        child.cancel_from_remote(&early);
        assert!(child
            .context()
            .cause()
            .unwrap()
            .to_string()
            .starts_with("cancelled by node 1: killed by KILL QUERY from connection 9"));
        // Another peer's call with the same id is another call.
        let other =
            Arc::new(RemoteChild::build(&s.root, &PeerGrant::any_tenant(1), &wire()).unwrap());
        assert_eq!(s.register((3, 42), &other), None);
        assert!(s.calls().order.is_empty(), "the used tombstone is gone");
        assert!(s.cancel((3, 42), kill()), "a live call is cancelled");
        assert!(other.context().is_cancelled());
        assert_eq!(layer.live_calls(), 2);
        s.deregister((1, 42));
        s.deregister((3, 42));
        assert_eq!(layer.live_calls(), 0);
    }

    #[test]
    fn tombstones_expire_and_are_bounded() {
        let (layer, host) = layer();
        let s = &layer.shared;
        s.cancel((1, 1), kill());
        host.advance(TOMBSTONE_TTL + Duration::from_secs(1));
        s.cancel((1, 2), kill());
        assert!(!s.calls().tombstones.contains_key(&(1, 1)), "expired");
        assert!(s.calls().tombstones.contains_key(&(1, 2)));
        for i in 0..(TOMBSTONES as u64 + 10) {
            s.cancel((1, 100 + i), kill());
        }
        let c = s.calls();
        assert!(c.tombstones.len() <= TOMBSTONES);
        assert_eq!(c.tombstones.len(), c.order.len());
    }
}
