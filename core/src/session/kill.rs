//! `KILL`: its own small parser and its rules.
//!
//! Forms (keywords in any case, an optional trailing `;`):
//!
//! * `KILL [CONNECTION] <conn>`: ends connection `<conn>`.
//! * `KILL QUERY <conn>`: ends the statement running on `<conn>` now.
//! * `KILL QUERY <conn> '<statement id>'` (MatrixOne's form; the id is the
//!   `query_id` of a result, the `statementId` of a process-list row): ends
//!   that statement if it is the one running on `<conn>`; if it is not
//!   running (any more), nothing is killed and the answer is an OK with one
//!   warning that names the statement: never a kill of the next statement.
//!
//! sqlparser does not know the third form, so a request that is one `KILL`
//! statement is recognised here before sqlparser sees it, and served on a
//! fast path: no SQL parse, no Request or Query context, no trace spans
//! (it is a lookup, a permission check and a cancel). A `KILL` inside a
//! multi-statement request, and a `KILL` of the caller's own connection
//! (which must end the `KILL` statement itself), go through sqlparser and
//! the statement dispatch, and end up in the same [`apply`].
//!
//! Answers: an id that no connection has, or a connection of another tenant
//! (invisible to the caller), is error 1094; a connection of the caller's
//! tenant that the caller may not kill (not its own, caller not `admin`) is
//! 1095. `KILL QUERY` of the caller's own connection ends the running
//! statement, which is that `KILL`: error 1317, as in MySQL.

use std::sync::atomic::Ordering;

use crate::context::Context;
use crate::error::KillError;
use crate::level::Level;
use crate::registry::{KillOutcome, KillScope};
use crate::remote::GlobalConnId;
use crate::session::{ConnInner, EngineInner, QueryError, QueryResult};
use crate::sync::lock_std as lock;
use crate::values::Identity;

/// A parsed `KILL` statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kill {
    /// The target connection.
    pub(crate) target: u64,
    /// What to kill there.
    pub(crate) scope: KillScope,
}

/// Recognises a request that is exactly one `KILL` statement in one of the
/// forms of the module docs. `None` for anything else, which then goes to
/// sqlparser (and gets its syntax error if it is a malformed `KILL`).
pub(crate) fn parse(sql: &str) -> Option<Kill> {
    let body = sql.trim();
    let body = body.strip_suffix(';').unwrap_or(body);
    let mut words = body.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    let mut next = words.next()?;
    let query = if next.eq_ignore_ascii_case("query") {
        next = words.next()?;
        true
    } else if next.eq_ignore_ascii_case("connection") {
        next = words.next()?;
        false
    } else {
        false
    };
    let target = number(next)?;
    let statement = match words.next() {
        None => None,
        // Only `KILL QUERY` names a statement.
        Some(w) if query => Some(quoted_number(w)?),
        Some(_) => return None,
    };
    if words.next().is_some() {
        return None;
    }
    let scope = if query {
        KillScope::Query { statement }
    } else {
        KillScope::Connection
    };
    Some(Kill { target, scope })
}

/// A plain decimal `u64` (no sign, no leading `+`).
fn number(w: &str) -> Option<u64> {
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    w.parse().ok()
}

/// `'123'` or `"123"`.
fn quoted_number(w: &str) -> Option<u64> {
    let inner = w
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| w.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    number(inner)
}

/// What a `KILL` answers when it did not end its own statement.
pub(crate) fn answer(stmt_id: u64, outcome: KillOutcome) -> QueryResult {
    let mut r = super::affected(stmt_id, 0);
    if let KillOutcome::NotRunning {
        connection,
        statement,
    } = outcome
    {
        r.warnings = 1;
        r.message = Some(format!(
            "statement {statement} is not running on connection {connection}: nothing was killed"
        ));
    }
    r
}

/// Applies `kill` as connection `c`: the permission rules, the cancel, and
/// for `KILL CONNECTION` of another connection the rollback of its open
/// transaction if it is idle.
pub(crate) fn apply(c: &ConnInner, kill: Kill) -> Result<KillOutcome, QueryError> {
    apply_as(&c.engine, &c.identity, c.id, None, kill)
}

/// [`apply`] for `caller` on its connection `caller_conn`, which lives on
/// this node (`origin_node` `None`) or on node `origin_node` (a forwarded
/// `KILL`). The target must be this node's.
pub(crate) fn apply_as(
    e: &EngineInner,
    caller: &Identity,
    caller_conn: u64,
    origin_node: Option<u64>,
    kill: Kill,
) -> Result<KillOutcome, QueryError> {
    let outcome =
        e.processes
            .kill_from(caller, caller_conn, origin_node, kill.target, kill.scope)?;
    let own = origin_node.is_none() && kill.target == caller_conn;
    if kill.scope == KillScope::Connection && !own {
        if let Some(t) = e.connection(kill.target) {
            t.reap();
        }
    }
    Ok(outcome)
}

/// The node that owns connection `target` when it is another node
/// (global connection ids, docs/across-nodes.md); `None`: this node's,
/// or ids are local.
pub(crate) fn owner(e: &EngineInner, target: u64) -> Option<u64> {
    let node = e.global_node?;
    let owner = GlobalConnId::from_u64(target)?.node();
    (owner != node).then_some(u64::from(owner))
}

/// `KILL` of another node's connection, as the caller of `query` (the
/// statement's Query context, whose values cross to the owner): the
/// owner's answer word for word. Without a control path to the peers, the
/// id is one no connection has here (1094).
pub(crate) async fn forward(
    e: &EngineInner,
    query: &Context,
    node: u64,
    kill: Kill,
) -> Result<KillOutcome, QueryError> {
    let admin = lock(&e.peer_admin).clone();
    match admin {
        Some(a) => a.kill(query, node, kill.target, kill.scope).await,
        None => Err(KillError::UnknownThread(kill.target).into()),
    }
}

/// The fast path of a request that is one `KILL` of another node's
/// connection: a Request and a Query context for the call (its values,
/// its cancellation: killing the caller's connection ends the wait), no
/// SQL parse.
pub(crate) async fn run_forwarded(
    c: &ConnInner,
    node: u64,
    kill: Kill,
) -> Result<QueryResult, QueryError> {
    let stmt_id = c.engine.next_stmt.fetch_add(1, Ordering::Relaxed);
    let query = c
        .manager
        .routine()
        .child(Level::Request)
        .name("request")
        .build()
        .and_then(|r| {
            r.child(Level::Query)
                .statement_id(stmt_id)
                .name(format!("KILL forwarded to node {node}"))
                .build()
        })
        .map_err(|e| QueryError::from(e).with_query_id(stmt_id))?;
    let outcome = forward(&c.engine, &query, node, kill)
        .await
        .map_err(|e| e.with_query_id(stmt_id))?;
    Ok(answer(stmt_id, outcome))
}

impl Kill {
    /// Whether the fast path serves it: everything but a kill of the
    /// caller's own running statement or connection, which must end the
    /// `KILL` itself and so needs its Query context.
    pub(crate) fn is_fast(&self, caller: u64) -> bool {
        self.target != caller || matches!(self.scope, KillScope::Query { statement: Some(_) })
    }
}

/// The fast path of a request that is one `KILL` statement ([`Kill::is_fast`];
/// the caller has checked the session out).
pub(crate) fn run_alone(c: &ConnInner, kill: Kill) -> Result<QueryResult, QueryError> {
    let stmt_id = c.engine.next_stmt.fetch_add(1, Ordering::Relaxed);
    let outcome = apply(c, kill).map_err(|e| e.with_query_id(stmt_id))?;
    Ok(answer(stmt_id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(target: u64, scope: KillScope) -> Option<Kill> {
        Some(Kill { target, scope })
    }

    #[test]
    fn parses_every_form() {
        let q = |s| KillScope::Query { statement: s };
        assert_eq!(parse("KILL 5"), k(5, KillScope::Connection));
        assert_eq!(parse("kill connection 5;"), k(5, KillScope::Connection));
        assert_eq!(parse("  Kill\tQuery\n7 ; "), k(7, q(None)));
        assert_eq!(parse("KILL QUERY 7 '123'"), k(7, q(Some(123))));
        assert_eq!(parse("KILL QUERY 7 \"123\";"), k(7, q(Some(123))));
        assert_eq!(
            parse("KILL QUERY 18446744073709551615 '18446744073709551615'"),
            k(u64::MAX, q(Some(u64::MAX)))
        );
    }

    #[test]
    fn leaves_everything_else_to_sqlparser() {
        for sql in [
            "",
            "KILL",
            "KILL QUERY",
            "KILL QUERY x",
            "KILL QUERY -1",
            "KILL QUERY +1",
            "KILL QUERY 1.5",
            "KILL QUERY 99999999999999999999",
            "KILL CONNECTION 5 '3'",
            "KILL 5 '3'",
            "KILL QUERY 5 3",
            "KILL QUERY 5 'x'",
            "KILL QUERY 5 '3",
            "KILL QUERY 5 '3\"",
            "KILL QUERY 5 ''",
            "KILL QUERY 5 '3' '4'",
            "KILL QUERY 5; SELECT 1",
            "KILL MUTATION 5",
            "KILLQUERY 5",
            "SELECT 1",
            "/* c */ KILL 5",
        ] {
            assert_eq!(parse(sql), None, "{sql:?}");
        }
    }
}
