//! The client side: carries the caller's context with each call and ends
//! the call when the context is cancelled.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cascade::remote::{WireCause, WireContext};
use cascade::{Context, QueryError};
use futures::future::{select, Either};
use http::HeaderValue;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::codec::{
    cause_to_pb, context_to_bytes, encode_grpc_timeout, status_from_error,
    status_from_remote_error, CONTEXT_HEADER, PEER_TOKEN_HEADER, TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
};
use crate::pb;

/// How long the client waits for the answer to a `Remote/Cancel` before it
/// resets the call's stream anyway. The caller does not wait: its future
/// returns at once; this only orders the Cancel before the reset, so that
/// the remote side sees the cause rather than a bare reset.
pub const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// How much later than the cascade deadline (the exact budget, in
/// `cascade-context-bin`) the `grpc-timeout` header lets the transport
/// give up: tonic's server drops a call at its `grpc-timeout`, before the
/// layers run, and the remote side would then end with "the call was
/// dropped" instead of the caller's deadline cause.
pub const GRPC_TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// The caller's context of one call, as a request extension.
#[derive(Clone)]
struct CallerContext(Context);

/// Attaches `ctx` to a request: the [`ClientLayer`] carries it across.
/// Without it the call goes out as a plain gRPC call.
pub fn with_context<T>(mut req: tonic::Request<T>, ctx: &Context) -> tonic::Request<T> {
    req.extensions_mut().insert(CallerContext(ctx.clone()));
    req
}

/// Call ids: unique per node and per process start (the start time is the
/// base, so that a restarted node does not reuse a tombstoned id).
fn next_call_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        let _ = NEXT.compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The client-side layer, for a tonic `Channel`:
/// `ToyClient::new(ServiceBuilder::new().layer(ClientLayer::new()).service(channel))`.
#[derive(Clone, Debug, Default)]
pub struct ClientLayer {
    token: Option<HeaderValue>,
}

impl ClientLayer {
    /// A layer with no peer token.
    pub fn new() -> Self {
        ClientLayer::default()
    }

    /// Sends `token` as `cascade-peer-token` with every call and Cancel, for
    /// a server that authenticates peers with [`StaticPeers`](crate::StaticPeers).
    /// A token that is not a valid header value is not sent.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = HeaderValue::from_str(token).ok();
        self
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;
    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service of [`ClientLayer`].
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    token: Option<HeaderValue>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for ClientService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // The service that was made ready is the one that takes the call.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let Some(CallerContext(ctx)) = req.extensions_mut().remove::<CallerContext>() else {
            return Box::pin(inner.call(req));
        };
        let node = ctx.values().node_id().unwrap_or(0);
        if let Err(c) = ctx.check() {
            let status = status_from_error(&QueryError::cancelled(c.0), node);
            return Box::pin(futures::future::ready(Ok(status.into_http())));
        }
        let wire = match WireContext::export(&ctx) {
            Ok(w) => w,
            Err(e) => {
                let status = status_from_remote_error(&e, node);
                return Box::pin(futures::future::ready(Ok(status.into_http())));
            }
        };
        let call_id = next_call_id();
        let headers = req.headers_mut();
        let bytes = context_to_bytes(&wire, call_id);
        // `-bin` metadata: tonic's encoder (base64, as gRPC sends it).
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert_bin(
            CONTEXT_HEADER,
            tonic::metadata::MetadataValue::from_bytes(&bytes),
        );
        if let Some(v) = md.into_headers().remove(CONTEXT_HEADER) {
            headers.insert(CONTEXT_HEADER, v);
        }
        if let Some(budget) = wire.budget {
            // The transport's own timeout (tonic's server enforces it, and
            // drops the call) comes a little after the cascade deadline, so
            // that the remote side ends with the caller's cause.
            let transport = budget.saturating_add(GRPC_TIMEOUT_SLACK);
            if let Ok(v) = HeaderValue::from_str(&encode_grpc_timeout(transport)) {
                headers.insert("grpc-timeout", v);
            }
        }
        // Trace ids: whoever set them on the request (the otel layer, the
        // application) owns them; they cross as they are.
        let _ = (TRACEPARENT_HEADER, TRACESTATE_HEADER);
        if let Some(t) = &self.token {
            headers.insert(PEER_TOKEN_HEADER, t.clone());
        }
        let token = self.token.clone();
        let cancel_channel = self.inner.clone();
        Box::pin(async move {
            let call = Box::pin(inner.call(req));
            match select(call, Box::pin(ctx.cancelled())).await {
                Either::Left((res, _)) => res,
                Either::Right((cause, call)) => {
                    let wire_cause = WireCause::of(&cause, node);
                    // The caller returns now; the Cancel goes first and the
                    // call's stream is reset after its answer (or the grace).
                    tokio::spawn(async move {
                        let mut client = pb::remote_client::RemoteClient::new(cancel_channel);
                        let mut req = tonic::Request::new(pb::CancelRequest {
                            call_id,
                            origin_node: node,
                            cause: Some(cause_to_pb(&wire_cause)),
                        });
                        if let Some(t) = token {
                            if let Ok(v) = t.to_str() {
                                if let Ok(v) = v.parse() {
                                    req.metadata_mut().insert(PEER_TOKEN_HEADER, v);
                                }
                            }
                        }
                        let _ = tokio::time::timeout(CANCEL_GRACE, client.cancel(req)).await;
                        drop(call);
                    });
                    let status = status_from_error(&QueryError::cancelled(cause), node);
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_do_not_repeat() {
        let a = next_call_id();
        let b = next_call_id();
        assert_ne!(a, b);
    }
}
