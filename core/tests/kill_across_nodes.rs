//! The control path across nodes (issue 12.3) on engines in one process:
//! global connection ids, `KILL <id>` forwarded to the owner node through
//! [`PeerAdmin`], and the cluster-wide `SHOW PROCESSLIST`. The "transport"
//! here is a function call that does what `cascade-server`'s gRPC admin
//! service does: export the caller's context, build the remote child on
//! the owner under the peer's grant (a peer cannot raise tenant or role),
//! and apply the owner's rules. Deterministic: ManualHost, LocalPool.

mod common;
use common::*;

use cascade::host::ManualHost;
use cascade::remote::{GlobalConnId, PeerGrant, RemoteChild, WireContext};
use cascade::session::{PeerAdmin, PeerProcesses};
use cascade::{
    Connection, Context, Engine, EngineConfig, KillOutcome, KillScope, QueryError, QueryResult,
    Reason,
};
use futures::executor::LocalPool;
use futures::future::BoxFuture;
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

fn node(id: u64, host: &Arc<ManualHost>) -> Engine {
    let mut config = EngineConfig::new(id, host.clone());
    config.global_connection_ids = true;
    Engine::new(config)
}

/// The peers of one node: `Some(engine)` a live node, `None` a node that
/// is down. Every peer grants the caller node every tenant and admin, or
/// only what `grant` says.
struct InProcess {
    me: u64,
    peers: BTreeMap<u64, Option<Engine>>,
    grant: fn(u64) -> PeerGrant,
}

fn full_grant(node: u64) -> PeerGrant {
    PeerGrant::tenants(node, &["acme", "globex", "sys"]).with_admin()
}

impl InProcess {
    /// What the owner's admin service does with a call: the checked remote
    /// child, or the refusal as a MySQL error.
    fn child(&self, owner: &Engine, ctx: &Context) -> Result<RemoteChild, QueryError> {
        let wire =
            WireContext::export(ctx).map_err(|e| QueryError::new(1105, "HY000", e.to_string()))?;
        RemoteChild::build(owner.root(), &(self.grant)(self.me), &wire)
            .map_err(|e| QueryError::new(e.mysql_code(), e.sqlstate(), e.to_string()))
    }
}

impl PeerAdmin for InProcess {
    fn kill(
        &self,
        ctx: &Context,
        node: u64,
        target: u64,
        scope: KillScope,
    ) -> BoxFuture<'static, Result<KillOutcome, QueryError>> {
        let r = match self.peers.get(&node) {
            None => Err(cascade::KillError::UnknownThread(target).into()),
            Some(None) => Err(QueryError::new(
                1105,
                "HY000",
                format!("node {node} is unreachable"),
            )),
            Some(Some(owner)) => self
                .child(owner, ctx)
                .and_then(|child| owner.kill_for_peer(child.context(), self.me, target, scope)),
        };
        Box::pin(async move { r })
    }

    fn process_lists(&self, ctx: &Context) -> BoxFuture<'static, Vec<PeerProcesses>> {
        let out = self
            .peers
            .iter()
            .map(|(n, e)| PeerProcesses {
                node: *n,
                rows: match e {
                    None => Err(format!("node {n} is unreachable")),
                    Some(owner) => self
                        .child(owner, ctx)
                        .map(|child| {
                            let who = child.context().values().identity().cloned();
                            who.map(|i| owner.process_rows(&i)).unwrap_or_default()
                        })
                        .map_err(|e| e.message),
                },
            })
            .collect();
        Box::pin(async move { out })
    }
}

/// Nodes 1 and 2 (node 1 knows node 2, and node 3 which is down).
fn cluster(grant: fn(u64) -> PeerGrant) -> (Engine, Engine, Arc<ManualHost>) {
    let host = Arc::new(ManualHost::new());
    let (n1, n2) = (node(1, &host), node(2, &host));
    let peers = BTreeMap::from([(2, Some(n2.clone())), (3, None)]);
    n1.set_peer_admin(Arc::new(InProcess {
        me: 1,
        peers,
        grant,
    }));
    (n1, n2, host)
}

type Slot = Rc<RefCell<Option<Result<QueryResult, QueryError>>>>;

/// Starts `SELECT sleep(100)` on `victim` (the manual clock never ends
/// it) and runs the pool until it sleeps.
fn start_sleep(pool: &mut LocalPool, victim: &Connection) -> Slot {
    let slot: Slot = Rc::default();
    let (v, s) = (victim.clone(), slot.clone());
    pool.spawner()
        .spawn_local(async move {
            *s.borrow_mut() = Some(v.execute("SELECT sleep(100)").await);
        })
        .unwrap();
    pool.run_until_stalled();
    assert!(slot.borrow().is_none(), "the sleep is running");
    slot
}

#[test]
fn global_ids_carry_the_node_and_local_ids_stay_as_today() {
    let host = Arc::new(ManualHost::new());
    let n3 = node(3, &host);
    let a = conn(&n3, "acme", "alice", "member");
    let b = conn(&n3, "acme", "bob", "member");
    let (ga, gb) = (
        GlobalConnId::from_u64(a.id()).unwrap(),
        GlobalConnId::from_u64(b.id()).unwrap(),
    );
    assert_eq!((ga.node(), gb.node()), (3, 3));
    assert_ne!(ga.local(), gb.local());
    assert_eq!(cell(&a, "SELECT CONNECTION_ID()"), a.id().to_string());
    assert_eq!(n3.global_node(), Some(3));
    // The process list shows the ids and, in a cluster, the node.
    let r = ok(&a, "SHOW PROCESSLIST");
    assert_eq!(r.columns.last().unwrap().name, "Node");
    let seen = rows(&r);
    assert_eq!(
        seen.len(),
        1,
        "alice sees her own connection only: {seen:?}"
    );
    assert_eq!(seen[0][0], a.id().to_string());
    assert_eq!(seen[0].last().unwrap(), "3");

    // Without global ids: 1, 2, … and no Node column, as a one-node server.
    let one = Engine::new(EngineConfig::new(3, host.clone()));
    let c1 = conn(&one, "acme", "alice", "member");
    let c2 = conn(&one, "acme", "alice", "member");
    assert_eq!((c1.id(), c2.id()), (1, 2));
    assert_eq!(one.global_node(), None);
    let r = ok(&c1, "SHOW PROCESSLIST");
    assert_eq!(r.columns.last().unwrap().name, "Tenant_memory_budget");

    // A node id that does not fit 10 bits keeps ids local.
    let mut config = EngineConfig::new(5000, host);
    config.global_connection_ids = true;
    let big = Engine::new(config);
    assert_eq!(big.global_node(), None);
    assert_eq!(conn(&big, "acme", "a", "member").id(), 1);
}

#[test]
fn kill_query_sent_to_node_1_stops_the_statement_on_node_2_naming_the_requester() {
    let (n1, n2, _host) = cluster(full_grant);
    let victim = conn(&n2, "acme", "alice", "member");
    let killer = conn(&n1, "acme", "alice", "member");
    let other = conn(&n2, "acme", "alice", "member");
    let mut pool = LocalPool::new();
    let slot = start_sleep(&mut pool, &victim);

    let r = ok(&killer, &format!("KILL QUERY {}", victim.id()));
    assert_eq!(r.warnings, 0);
    pool.run_until_stalled();
    let err = slot.borrow_mut().take().expect("ended").unwrap_err();
    assert_eq!((err.code, err.sqlstate), (1317, "70100"), "{err}");
    let cause = err.cause.as_ref().expect("a cause");
    match &cause.reason {
        Reason::Remote { node_id, reason } => {
            assert_eq!(*node_id, 1);
            assert!(
                matches!(&**reason, Reason::KillQuery { by_connection, by_user }
                    if *by_connection == killer.id() && &**by_user == "alice"),
                "{reason:?}"
            );
        }
        r => panic!("not a remote cause: {r:?}"),
    }
    assert!(
        err.message.contains(&format!(
            "cancelled by node 1: killed by KILL QUERY from connection {}",
            killer.id()
        )),
        "{}",
        err.message
    );
    // Only that statement: the victim's connection and its neighbour go on.
    assert_eq!(cell(&victim, "SELECT 1"), "1");
    assert_eq!(cell(&other, "SELECT 2"), "2");

    // Nothing running: an OK that killed nothing; a statement id that is
    // not running: the warning, word for word from the owner.
    ok(&killer, &format!("KILL QUERY {}", victim.id()));
    let r = ok(&killer, &format!("KILL QUERY {} '12345'", victim.id()));
    assert_eq!(r.warnings, 1);
    assert_eq!(
        r.message.as_deref(),
        Some(
            format!(
                "statement 12345 is not running on connection {}: nothing was killed",
                victim.id()
            )
            .as_str()
        )
    );
}

#[test]
fn kill_connection_across_nodes_ends_the_connection_and_the_sqlparser_path_forwards_too() {
    let (n1, n2, _host) = cluster(full_grant);
    let victim = conn(&n2, "acme", "alice", "member");
    let admin = conn(&n1, "acme", "root", "admin");
    ok(&admin, &format!("KILL CONNECTION {}", victim.id()));
    assert!(victim.context().is_cancelled());
    let cause = victim.context().cause().unwrap();
    assert!(
        cause.to_string().contains(&format!(
            "cancelled by node 1: killed by KILL CONNECTION from connection {} (user root)",
            admin.id()
        )),
        "{cause}"
    );
    let err = run(&victim, "SELECT 1").unwrap_err();
    assert_eq!(err.code, 1927, "{err}");

    // A KILL inside a multi-statement request goes through sqlparser and
    // is forwarded the same way.
    let victim2 = conn(&n2, "acme", "bob", "member");
    ok(&admin, &format!("SELECT 1; KILL {}", victim2.id()));
    assert!(victim2.context().is_cancelled());
}

#[test]
fn forwarded_kills_answer_1094_and_1095_word_for_word() {
    let (n1, n2, _host) = cluster(full_grant);
    let alice = conn(&n2, "acme", "alice", "member");
    let bob = conn(&n1, "acme", "bob", "member");
    let globex_admin = conn(&n1, "globex", "root", "admin");
    // Same tenant, not own, not admin: 1095, as on one node.
    for sql in [
        format!("KILL QUERY {}", alice.id()),
        format!("KILL {}", alice.id()),
        format!("SELECT 1; KILL {}", alice.id()),
    ] {
        let err = run(&bob, &sql).unwrap_err();
        assert_eq!((err.code, err.sqlstate), (1095, "HY000"), "{sql}: {err}");
        assert_eq!(
            err.message,
            format!("You are not owner of thread {}", alice.id())
        );
    }
    // Another tenant's connection, an id nobody has on node 2, and an id
    // of a node that is not a peer: 1094, each the same words.
    let nobody = GlobalConnId::new(2, 999).unwrap().get();
    let no_node = GlobalConnId::new(9, 1).unwrap().get();
    for (who, target) in [(&globex_admin, alice.id()), (&bob, nobody), (&bob, no_node)] {
        let err = run(who, &format!("KILL QUERY {target}")).unwrap_err();
        assert_eq!(err.code, 1094, "{err}");
        assert_eq!(err.message, format!("Unknown thread id: {target}"));
    }
    // A down node: an error that names it, not a silent success.
    let down = GlobalConnId::new(3, 1).unwrap().get();
    let err = run(&bob, &format!("KILL {down}")).unwrap_err();
    assert!(err.message.contains("node 3"), "{err}");
    assert!(!alice.context().is_cancelled());

    // The owner never forwards again: an id of a third node is unknown.
    let child_ctx = bob
        .context()
        .child(cascade::Level::Request)
        .build()
        .unwrap();
    let e = n2
        .kill_for_peer(&child_ctx, 1, no_node, KillScope::Connection)
        .unwrap_err();
    assert_eq!(e.code, 1094);
}

#[test]
fn a_peer_cannot_raise_the_role_a_forwarded_kill_carries() {
    // Node 2 trusts node 1 for acme, without admin.
    let (n1, n2, _host) = cluster(|n| PeerGrant::tenants(n, &["acme"]));
    let alice = conn(&n2, "acme", "alice", "member");
    let admin = conn(&n1, "acme", "root", "admin");
    let err = run(&admin, &format!("KILL {}", alice.id())).unwrap_err();
    assert_eq!(err.code, 1227, "{err}");
    assert!(!alice.context().is_cancelled());
    // What the grant allows still works: alice kills her own connection.
    let alice1 = conn(&n1, "acme", "alice", "member");
    ok(&alice1, &format!("KILL {}", alice.id()));
    assert!(alice.context().is_cancelled());
}

#[test]
fn show_processlist_shows_the_cluster_to_sys_admin_and_a_down_node_as_a_warning() {
    let (n1, n2, _host) = cluster(full_grant);
    let alice2 = conn(&n2, "acme", "alice", "member");
    let bob2 = conn(&n2, "acme", "bob", "member");
    let g2 = conn(&n2, "globex", "carol", "member");
    let alice1 = conn(&n1, "acme", "alice", "member");
    let sys = conn(&n1, "sys", "root", "admin");

    let r = ok(&sys, "SHOW PROCESSLIST");
    let node_col = r.columns.iter().position(|c| c.name == "Node").unwrap();
    let seen: Vec<(String, String)> = rows(&r)
        .iter()
        .map(|row| (row[0].clone(), row[node_col].clone()))
        .collect();
    for (c, n) in [
        (&alice2, "2"),
        (&bob2, "2"),
        (&g2, "2"),
        (&alice1, "1"),
        (&sys, "1"),
    ] {
        assert!(
            seen.contains(&(c.id().to_string(), n.to_string())),
            "{seen:?}"
        );
    }
    assert_eq!(seen.len(), 5);
    // Node 3 is down: a warning, not a failure.
    assert_eq!(r.warnings, 1);
    assert!(
        r.message.as_deref().unwrap().contains("node 3"),
        "{:?}",
        r.message
    );
    let w = rows(&ok(&sys, "SHOW WARNINGS"));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0][0], "Warning");
    assert!(
        w[0][2].contains("node 3") && w[0][2].contains("unreachable"),
        "{w:?}"
    );
    // The next statement clears them.
    ok(&sys, "SELECT 1");
    assert!(rows(&ok(&sys, "SHOW WARNINGS")).is_empty());

    // alice sees her own connections on every node, nobody else's.
    let r = ok(&alice1, "SHOW PROCESSLIST");
    let mut ids: Vec<String> = rows(&r).iter().map(|row| row[0].clone()).collect();
    ids.sort();
    let mut want = vec![alice1.id().to_string(), alice2.id().to_string()];
    want.sort();
    assert_eq!(ids, want);
}
