//! # cascade-grpc
//!
//! cascade contexts across gRPC calls, for any tonic service
//! (docs/across-nodes.md):
//!
//! * [`ClientLayer`] (on a `Channel`): a call made with
//!   [`with_context`] carries the caller's context: its values and level
//!   (`cascade-context-bin`), its remaining deadline (`grpc-timeout`), and
//!   its trace ids (`traceparent` / `tracestate`). Cancelling the caller's
//!   context ends the call at once: the caller gets the local cause, the
//!   remote side gets it too through the `Remote/Cancel` RPC, and the call's
//!   stream is reset.
//! * [`ServerLayer`] (on a `Server`): builds the remote child context of
//!   each call ([`cascade::remote::RemoteChild`]) after checking the values
//!   against the authenticated peer's grant ([`PeerAuth`]), hands it to the
//!   handler ([`RemoteCall`], a request extension), and cancels it when the
//!   caller cancels ("cancelled by node N: <cause>") or drops the call.
//! * [`status_from_error`] / [`error_from_status`]: a failure crosses back
//!   with its MySQL code, SQLSTATE, message, kind, level and cause.
//!
//! See `examples/toy.rs` for a complete pair of nodes.

mod client;
pub mod cluster;
mod codec;
mod server;
pub mod toy;

/// The generated messages and stubs of `proto/cascade_remote.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("cascade.remote.v1");
}

pub use client::{with_context, ClientLayer, ClientService, CANCEL_GRACE, GRPC_TIMEOUT_SLACK};
pub use codec::{
    decode_grpc_timeout, encode_grpc_timeout, error_from_status, status_from_error,
    status_from_remote_error, CONTEXT_HEADER, ERROR_HEADER, PEER_TOKEN_HEADER, TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
};
pub use server::{
    remote_call, CancelService, PeerAuth, RemoteCall, ServerLayer, ServerService, StaticPeers,
};
