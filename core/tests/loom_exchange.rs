//! `loom` models of a parallel stage's exchange (issue 11): the consumer
//! (`ParallelAggregate` under `pipeline::drive`, waiting with `Step::Wait`)
//! and its pipelines, each on its own loom thread (the host's spawn),
//! against a cancel of the Query at any point. Every
//! interleaving within the preemption bound: no lost wake-up (loom reports
//! a deadlock if the consumer waits on an exchange nobody will wake), no
//! pipeline outlives the run, no memory held, the right error.
//!
//! The model of a failing sibling found that the statement could report
//! the sibling's cancellation instead of the real error (a delivery that
//! arrived between the consumer's take and its `live()` check); the
//! consumer now takes again once no pipeline is live.
//!
//! Run with `.ci/loom.sh` (which runs every loom test), or:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p cascade --test loom_exchange --profile native
//! ```
#![cfg(loom)]

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use cascade::expr::{EvalCx, ExecError};
use cascade::pipeline::aggregate::HashAggregate;
use cascade::pipeline::parallel::{Empty, ParallelAggregate, PipelineSpec};
use cascade::pipeline::{drive, Instrumented, OpCx, Operator, Resources, Step, YieldPolicy};
use cascade::{Context, Host, HostFuture, Identity, Instant, Level, Reason};

/// A host whose clock stands still, whose timers never fire, whose yield
/// is immediate, and whose spawn starts a loom thread.
struct LoomHost;

impl Host for LoomHost {
    fn now(&self) -> Instant {
        Instant(1_000_000_000)
    }
    fn unix_micros(&self) -> i64 {
        0
    }
    fn sleep_until(&self, _deadline: Instant) -> HostFuture {
        Box::pin(futures::future::pending())
    }
    fn yield_now(&self) -> HostFuture {
        Box::pin(futures::future::ready(()))
    }
    fn spawn(&self, fut: HostFuture) -> Result<(), HostFuture> {
        // Not joined here: loom ends a model's execution only when every
        // thread has, and reports one that never does.
        drop(loom::thread::spawn(move || loom::future::block_on(fut)));
        Ok(())
    }
    fn parallelism(&self) -> usize {
        2
    }
}

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}

/// A pipeline's operator: `steps` units of work, or an error at step
/// `fail_at`.
struct Steps {
    left: u32,
    fail_at: Option<u32>,
    done: u32,
}

impl Operator for Steps {
    fn next(&mut self, _cx: &mut OpCx<'_>) -> Result<Step, ExecError> {
        if self.fail_at == Some(self.done) {
            return Err(ExecError::DivisionByZero);
        }
        if self.left == 0 {
            return Ok(Step::Done);
        }
        self.left -= 1;
        self.done += 1;
        Ok(Step::Pending)
    }
    fn describe(&self) -> String {
        "Steps".into()
    }
    fn name(&self) -> &'static str {
        "Steps"
    }
    fn children(&self) -> Vec<&Instrumented> {
        Vec::new()
    }
}

/// A Query context and a consumer over two pipelines of `steps` steps
/// each (`fail` fails the first one at its first step).
fn stage(steps: u32, fail: bool) -> (Context, Instrumented) {
    let root = Context::root(Arc::new(LoomHost))
        .node_id(1)
        .build()
        .expect("root");
    let conn = root
        .child(Level::Routine)
        .identity(Identity::new("t", "u", "r"))
        .connection_id(1)
        .session_id(1)
        .build()
        .expect("routine");
    let req = conn.child(Level::Request).build().expect("request");
    let q = req
        .child(Level::Query)
        .statement_id(1)
        .build()
        .expect("query");
    let specs = (0..2)
        .map(|i| {
            let p = q.child(Level::Pipeline).build().expect("pipeline");
            let op = Steps {
                left: steps,
                fail_at: (fail && i == 0).then_some(0),
                done: 0,
            };
            PipelineSpec {
                root: Instrumented::new(Box::new(op), p.clone()),
                ctx: p,
            }
        })
        .collect();
    let merged = HashAggregate::new(
        Instrumented::new(Box::new(Empty), q.clone()),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        "final".into(),
    )
    .merging();
    let policy = YieldPolicy::default();
    let consumer = Instrumented::new(
        Box::new(ParallelAggregate::new(specs, Vec::new(), merged, policy)),
        q.clone(),
    );
    (q, consumer)
}

/// Drives the consumer to its end; then every pipeline has ended and no
/// memory is held.
fn run(q: &Context, consumer: &mut Instrumented) -> Result<(), ExecError> {
    let resources = Resources::new(1 << 20, Arc::new(AtomicU64::new(0)));
    let progress = AtomicU64::new(0);
    let mut eval = EvalCx::default();
    let mut ocx = OpCx {
        eval: &mut eval,
        resources: &resources,
        progress: &progress,
        clock: None,
    };
    let r = loom::future::block_on(drive(consumer, q, &mut ocx, YieldPolicy::default(), |_| {
        Ok(())
    }));
    for set in consumer.pipeline_sets() {
        assert_eq!(set.live(), 0, "a pipeline outlived the run");
    }
    assert_eq!(resources.used(), 0, "memory held after the run");
    r
}

#[test]
fn exchange_completes() {
    model(|| {
        let (q, mut consumer) = stage(2, false);
        assert!(run(&q, &mut consumer).is_ok());
    });
}

#[test]
fn cancel_at_any_point_wakes_the_consumer() {
    model(|| {
        let (q, mut consumer) = stage(1, false);
        let q2 = q.clone();
        let killer = loom::thread::spawn(move || {
            q2.cancel(Reason::Other {
                message: "KILL".into(),
            });
        });
        match run(&q, &mut consumer) {
            // Cancelled before the end, or after it: either way no hang.
            Ok(()) => {}
            Err(e) => assert!(matches!(e, ExecError::Cancelled(_)), "{e}"),
        }
        killer.join().expect("killer");
    });
}

#[test]
fn a_failing_sibling_is_the_error_never_a_cancellation() {
    model(|| {
        let (q, mut consumer) = stage(2, true);
        let r = run(&q, &mut consumer);
        assert!(matches!(r, Err(ExecError::DivisionByZero)), "{r:?}");
    });
}
