//! Storage hooks: the [`TxnHooks`] an embedder adds to the end of a transaction.

use crate::cause::Cancelled;
use crate::context::Context;

/// Storage hooks: work an embedder adds to the end of a transaction (a
/// write-ahead log flush, a remote store's commit or abort, releasing
/// locks).
///
/// Both hooks run on a *cleanup context* ([`Context::cleanup_named`]): a
/// child of the transaction's span, live even after `KILL CONNECTION`,
/// bounded by its own deadline ([`CLEANUP_TIMEOUT`](crate::session::CLEANUP_TIMEOUT)).
/// A hook checks that context as it works ([`Context::check`]) and returns
/// its cancellation if the deadline passes. The engine checks it again when
/// the hook returns: a commit whose cleanup deadline passed does not
/// commit; a rollback whose deadline passed is recorded with its cause, and
/// the transaction's writes, its registration and the connection are
/// released all the same.
///
/// Hooks are synchronous: the engine calls them from paths that cannot
/// await (dropping a request's future, `KILL` of an idle connection,
/// shutdown), and in the browser nothing may block. Work that must wait
/// belongs in the embedder's storage, fed from here.
///
/// # Examples
///
/// ```
/// use cascade::session::TxnHooks;
/// use cascade::{Cancelled, Context};
///
/// /// Logs every commit, giving up when the cleanup deadline passes.
/// struct Log;
/// impl TxnHooks for Log {
///     fn commit(&self, cx: &Context, txn_id: u64) -> Result<(), Cancelled> {
///         cx.check()?;
///         let _ = txn_id; // append to the log here
///         Ok(())
///     }
/// }
/// ```
pub trait TxnHooks: Send + Sync + 'static {
    /// Before the transaction `txn_id`'s writes are published. An error
    /// (or the cleanup deadline passing) aborts the commit.
    fn commit(&self, cx: &Context, txn_id: u64) -> Result<(), Cancelled> {
        let _ = (cx, txn_id);
        Ok(())
    }

    /// While the transaction `txn_id` is rolled back. The rollback
    /// completes whatever this returns; an error is recorded.
    fn rollback(&self, cx: &Context, txn_id: u64) -> Result<(), Cancelled> {
        let _ = (cx, txn_id);
        Ok(())
    }
}
