//! `loom` model tests of the context tree: every interleaving (up to the
//! preemption bound) of concurrent cancel, derive, drop and wait.
//!
//! Run with `.ci/loom.sh`, or:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p cascade --test loom_context --release
//! ```
//!
//! Under `--cfg loom` the crate's atomics and mutexes are loom's
//! (`core/src/sync.rs`), so the models explore the real code.
#![cfg(loom)]

use std::sync::Arc;
use std::time::Duration;

use cascade::{CancelKind, Cause, Context, Host, HostFuture, Identity, Instant, Level, Reason};
use loom::thread;

/// A host whose clock stands still at 1 s and whose timers never fire:
/// enough for models, which must not touch `std` synchronisation that loom
/// cannot see.
struct StillHost;

impl Host for StillHost {
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
}

/// Runs `f` under loom with a default preemption bound of 5 (overridable
/// with `LOOM_MAX_PREEMPTIONS`).
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(5);
    }
    b.check(f);
}

struct Session {
    root: Context,
    conn: Context,
    txn: Context,
    req: Context,
}

fn session() -> Session {
    let root = Context::root(Arc::new(StillHost))
        .node_id(1)
        .build()
        .unwrap();
    let conn = root
        .child(Level::Routine)
        .identity(Identity::new("t", "u", "r"))
        .connection_id(1)
        .session_id(1)
        .build()
        .unwrap();
    let txn = conn.child(Level::Txn).txn_id(1).build().unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    Session {
        root,
        conn,
        txn,
        req,
    }
}

fn reason(n: u64) -> Reason {
    Reason::Other {
        message: format!("cause {n}").into(),
    }
}

#[test]
fn cancel_vs_derive() {
    model(|| {
        let s = session();
        let req = s.req.clone();
        let deriver = thread::spawn(move || {
            let q = req.child(Level::Query).statement_id(1).build().unwrap();
            let p = q.child(Level::Pipeline).build().unwrap();
            (q, p)
        });
        assert!(s.req.cancel(reason(1)));
        let (q, p) = deriver.join().unwrap();
        // Derived before the cancel: reached by it. After: born cancelled.
        // Either way, cancelled with the request's cause.
        assert_eq!(q.cause(), s.req.cause());
        assert_eq!(p.cause(), s.req.cause());
        assert!(!s.conn.is_cancelled());
        drop((q, p));
        assert_eq!(s.conn.subtree_len(), 3);
    });
}

#[test]
fn cancel_vs_derive_with_link() {
    model(|| {
        let s = session();
        let (req, txn) = (s.req.clone(), s.txn.clone());
        let deriver = thread::spawn(move || {
            req.child(Level::Query)
                .statement_id(1)
                .link(&txn)
                .build()
                .unwrap()
        });
        s.txn.cancel(Reason::TxnRolledBack { txn_id: 1 });
        let q = deriver.join().unwrap();
        // The link is registered before the cancel takes the links, or the
        // query sees the txn cancelled: never neither.
        assert_eq!(q.cause(), s.txn.cause());
        assert!(!s.req.is_cancelled());
    });
}

#[test]
fn cancel_vs_drop() {
    model(|| {
        let s = session();
        let q = s.req.child(Level::Query).statement_id(1).build().unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let dropper = thread::spawn(move || drop(q));
        s.conn.cancel(reason(1));
        dropper.join().unwrap();
        // The pipeline moved up to the request, or the cancel took it first:
        // it is cancelled either way.
        assert_eq!(p.cause(), s.conn.cause());
        drop(p);
        let Session {
            root,
            conn,
            txn,
            req,
        } = s;
        drop((conn, txn, req));
        assert_eq!(root.subtree_len(), 1);
    });
}

#[test]
fn drop_vs_drop_of_parent_and_child() {
    model(|| {
        let s = session();
        let q = s.req.child(Level::Query).statement_id(1).build().unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let leaf = p.child(Level::Pipeline).build().unwrap();
        let dropper = thread::spawn(move || drop(p));
        drop(q);
        dropper.join().unwrap();
        // The leaf ends up directly under the request, and is still reached.
        assert_eq!(s.req.subtree_len(), 2);
        s.req.cancel(reason(1));
        assert!(leaf.is_cancelled());
    });
}

#[test]
fn cancel_vs_waiter_loses_no_wakeup() {
    model(|| {
        let s = session();
        let q = s.req.child(Level::Query).statement_id(1).build().unwrap();
        let waiter = thread::spawn(move || loom::future::block_on(q.cancelled()));
        s.conn.cancel(reason(7));
        // A lost wake-up would leave the waiter blocked: loom reports it as
        // a deadlock.
        let cause = waiter.join().unwrap();
        assert_eq!(cause.reason, reason(7));
        assert_eq!(cause.level, Level::Routine);
    });
}

#[test]
fn two_cancels_of_one_context_exactly_one_wins_everywhere() {
    model(|| {
        let s = session();
        let q = s.req.child(Level::Query).statement_id(1).build().unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let other = s.req.clone();
        let second = thread::spawn(move || other.cancel(reason(2)));
        let won_first = s.req.cancel(reason(1));
        let won_second = second.join().unwrap();
        assert!(won_first ^ won_second, "exactly one cancel wins");
        let winner = if won_first { reason(1) } else { reason(2) };
        for c in [&s.req, &q, &p] {
            assert_eq!(c.cause().unwrap().reason, winner);
        }
        assert!(!s.conn.is_cancelled());
    });
}

#[test]
fn two_cancels_from_parent_and_link_agree_below() {
    model(|| {
        let s = session();
        let q = s
            .req
            .child(Level::Query)
            .statement_id(1)
            .link(&s.txn)
            .build()
            .unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let txn = s.txn.clone();
        let rollback = thread::spawn(move || txn.cancel(Reason::TxnRolledBack { txn_id: 1 }));
        s.req.cancel(reason(1));
        rollback.join().unwrap();
        let cause = q.cause().unwrap();
        assert!(cause == s.req.cause().unwrap() || cause == s.txn.cause().unwrap());
        assert_eq!(p.cause().unwrap(), cause, "one cause for the whole subtree");
    });
}

#[test]
fn deadline_vs_cancel_keeps_one_kind() {
    model(|| {
        let s = session();
        // The clock stands at the deadline: the first check fires it.
        let q = s
            .req
            .child(Level::Query)
            .statement_id(1)
            .timeout(Duration::ZERO, Reason::StatementTimeout { limit_ms: 0 })
            .build()
            .unwrap();
        let p = q.child(Level::Pipeline).build().unwrap();
        let checker = p.clone();
        let check = thread::spawn(move || checker.check().unwrap_err());
        s.conn.cancel(reason(1));
        let err = check.join().unwrap();
        let cause: Arc<Cause> = q.cause().unwrap();
        assert_eq!(p.cause().unwrap(), cause);
        assert_eq!(*err.cause(), cause, "check reports the cause that won");
        match cause.kind {
            CancelKind::DeadlineExceeded => assert_eq!(cause.level, Level::Query),
            CancelKind::Canceled => assert_eq!(cause.reason, reason(1)),
        }
    });
}

#[test]
fn cancel_vs_derive_vs_drop_three_threads() {
    model(|| {
        let s = session();
        let q1 = s.req.child(Level::Query).statement_id(1).build().unwrap();
        let p1 = q1.child(Level::Pipeline).build().unwrap();
        let dropper = thread::spawn(move || drop(q1));
        let req = s.req.clone();
        let deriver = thread::spawn(move || {
            let q2 = req.child(Level::Query).statement_id(2).build().unwrap();
            let p2 = q2.child(Level::Pipeline).build().unwrap();
            drop(q2);
            p2
        });
        s.req.cancel(reason(3));
        dropper.join().unwrap();
        let p2 = deriver.join().unwrap();
        assert_eq!(p1.cause(), s.req.cause());
        assert_eq!(p2.cause(), s.req.cause());
        drop((p1, p2));
        assert_eq!(s.conn.subtree_len(), 3, "conn, txn, req");
        let Session {
            root,
            conn,
            txn,
            req,
        } = s;
        drop((conn, txn, req));
        assert_eq!(root.subtree_len(), 1);
    });
}
