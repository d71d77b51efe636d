//! What operators' unit tests share: a source of given batches and a
//! statement's worth of resources to step an operator with.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::{Instrumented, OpCx, Operator, Resources, Step};
use crate::context::Context;
use crate::data::Batch;
use crate::expr::{EvalCx, ExecError};
use crate::host::ManualHost;

/// Emits the given batches, one per step.
pub(crate) struct Source(pub(crate) std::vec::IntoIter<Batch>);

impl Operator for Source {
    fn next(&mut self, _: &mut OpCx<'_>) -> Result<Step, ExecError> {
        Ok(self.0.next().map_or(Step::Done, Step::Batch))
    }
    fn describe(&self) -> String {
        "source".into()
    }
    fn name(&self) -> &'static str {
        "Source"
    }
    fn children(&self) -> Vec<&Instrumented> {
        vec![]
    }
}

/// A root context on a [`ManualHost`], a budget of 1 GiB, and what an
/// [`OpCx`] borrows (no clock: steps do not depend on timing).
pub(crate) struct Harness {
    pub(crate) ctx: Context,
    pub(crate) res: Arc<Resources>,
    progress: AtomicU64,
    eval: EvalCx,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Harness {
            ctx: Context::root(Arc::new(ManualHost::new()))
                .node_id(1)
                .build()
                .expect("a root context builds"),
            res: Resources::new(1 << 30, Arc::new(AtomicU64::new(0))),
            progress: AtomicU64::new(0),
            eval: EvalCx::default(),
        }
    }

    /// An operator over `batches`, in this harness's context.
    pub(crate) fn source(&self, batches: Vec<Batch>) -> Instrumented {
        Instrumented::new(Box::new(Source(batches.into_iter())), self.ctx.clone())
    }

    /// The context to step an operator with.
    pub(crate) fn cx(&mut self) -> OpCx<'_> {
        OpCx {
            eval: &mut self.eval,
            resources: &self.res,
            progress: &self.progress,
            clock: None,
        }
    }
}
