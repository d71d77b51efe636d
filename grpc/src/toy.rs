//! A toy tonic service that shows the layers at work: the example
//! (`examples/toy.rs`) and the integration tests run it.
//!
//! `Work` answers in one of four modes: `report` (what the handler's
//! context holds: node, tenant, role, ids, level, remaining budget, trace
//! parent), `wait` (run until the context is cancelled, then fail with
//! its cause), `hop` (do some work, then call the next node with `report`
//! and return both answers), `fail` (fail with MySQL error 1365).

use std::sync::Arc;
use std::time::Duration;

use cascade::{Cause, Context, Level, QueryError};
use tokio::sync::mpsc::UnboundedSender;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::{remote_call, status_from_error, with_context, ClientService};

/// The generated messages and stubs of `proto/toy.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("cascade.toy.v1");
}

/// What the toy handler went through, for a test or a log.
#[derive(Clone, Debug)]
pub enum ToyEvent {
    /// A `wait` call started on `node`, in `ctx`.
    Started {
        /// This node.
        node: u64,
        /// The handler's context (a test may watch it; holding it keeps
        /// it in the node's tree).
        ctx: Context,
    },
    /// A `wait` call's context was cancelled with `cause`.
    Cancelled {
        /// This node.
        node: u64,
        /// The cause, as this node sees it.
        cause: Arc<Cause>,
    },
}

/// The client type of a node's next hop.
pub type NextHop = pb::toy_client::ToyClient<ClientService<Channel>>;

/// The toy service of one node.
#[derive(Clone)]
pub struct ToyService {
    node: u64,
    next: Option<NextHop>,
    work: Option<Arc<dyn Fn() + Send + Sync>>,
    events: Option<UnboundedSender<ToyEvent>>,
}

impl ToyService {
    /// The service of node `node`.
    pub fn new(node: u64) -> Self {
        ToyService {
            node,
            next: None,
            work: None,
            events: None,
        }
    }
    /// `hop` calls `next`.
    pub fn with_next(mut self, next: NextHop) -> Self {
        self.next = Some(next);
        self
    }
    /// `hop` runs `work` before calling the next node (a test advances a
    /// manual clock here: time spent on this node).
    pub fn with_work(mut self, work: impl Fn() + Send + Sync + 'static) -> Self {
        self.work = Some(Arc::new(work));
        self
    }
    /// Reports what happens to `events`.
    pub fn with_events(mut self, events: UnboundedSender<ToyEvent>) -> Self {
        self.events = Some(events);
        self
    }

    fn report(&self, ctx: &Context, traceparent: Option<&str>) -> pb::WorkReply {
        let v = ctx.values();
        let budget = ctx.remaining();
        pb::WorkReply {
            node_id: v.node_id().unwrap_or(0),
            tenant: v.tenant().unwrap_or("").to_owned(),
            role: v.role().unwrap_or("").to_owned(),
            connection_id: v.connection_id().unwrap_or(0),
            statement_id: v.statement_id().unwrap_or(0),
            level: ctx.level().as_str().to_owned(),
            budget_us: budget.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            has_budget: budget.is_some(),
            traceparent: traceparent.unwrap_or("").to_owned(),
            next: None,
        }
    }

    fn emit(&self, e: ToyEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }
}

#[tonic::async_trait]
impl pb::toy_server::Toy for ToyService {
    async fn work(&self, req: Request<pb::WorkRequest>) -> Result<Response<pb::WorkReply>, Status> {
        let Some(call) = remote_call(&req).cloned() else {
            return Err(Status::failed_precondition(
                "the toy service runs only calls that carry a cascade context",
            ));
        };
        let ctx = call.context().clone();
        let node = self.node;
        match req.get_ref().mode.as_str() {
            "report" => Ok(Response::new(self.report(&ctx, call.child().traceparent()))),
            "wait" => {
                self.emit(ToyEvent::Started {
                    node,
                    ctx: ctx.clone(),
                });
                let cause = ctx.cancelled().await;
                self.emit(ToyEvent::Cancelled {
                    node,
                    cause: cause.clone(),
                });
                Err(status_from_error(&QueryError::cancelled(cause), node))
            }
            "hop" => {
                let mut reply = self.report(&ctx, call.child().traceparent());
                if let Some(work) = &self.work {
                    work();
                }
                let Some(mut next) = self.next.clone() else {
                    return Err(Status::failed_precondition("no next hop"));
                };
                let r = with_context(
                    Request::new(pb::WorkRequest {
                        mode: "report".into(),
                    }),
                    &ctx,
                );
                let inner = next.work(r).await?;
                reply.next = Some(Box::new(inner.into_inner()));
                Ok(Response::new(reply))
            }
            "fail" => Err(status_from_error(
                &QueryError::new(1365, "22012", "Division by 0").at_level(Level::Pipeline),
                node,
            )),
            other => Err(Status::invalid_argument(format!("unknown mode {other:?}"))),
        }
    }
}

/// How long a toy client waits to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
