//! Per-tenant limits carried by each connection's context values:
//! `max_connections` (1040 naming the tenant; a closed connection frees its
//! slot), a memory budget shared by the tenant's running statements (1041
//! naming the tenant's budget for the statement that crosses it, the
//! others unharmed), and a default `max_execution_time`.

mod common;
use common::*;

use cascade::{
    Connection, Engine, EngineConfig, ErrorKind, Identity, Reason, StdHost, TenantLimits,
};
use futures::executor::{block_on, LocalPool};
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

const MIB: u64 = 1 << 20;

fn engine_with(tenants: &[(&str, TenantLimits)]) -> Engine {
    let mut config = EngineConfig::new(1, StdHost::shared());
    config.tenants = tenants
        .iter()
        .map(|(n, l)| (n.to_string(), l.clone()))
        .collect::<HashMap<_, _>>();
    Engine::new(config)
}

fn connect(e: &Engine, tenant: &str, user: &str) -> Result<Connection, cascade::QueryError> {
    e.connect(Identity::new(tenant, user, "member"))
}

#[test]
fn max_connections_per_tenant_refuses_with_1040_naming_the_tenant() {
    let e = engine_with(&[(
        "acme",
        TenantLimits {
            max_connections: Some(2),
            ..TenantLimits::default()
        },
    )]);
    let a1 = connect(&e, "acme", "alice").unwrap();
    let a2 = connect(&e, "acme", "bob").unwrap();
    let err = connect(&e, "acme", "alice").unwrap_err();
    assert_eq!(err.code, 1040, "{err}");
    assert_eq!(err.sqlstate, "08004");
    assert_eq!(
        err.message,
        "Too many connections for tenant 'acme' (max_connections 2)"
    );
    // Other tenants are not affected.
    let others: Vec<_> = (0..5)
        .map(|i| connect(&e, "globex", &format!("u{i}")).unwrap())
        .collect();
    assert_eq!(e.tenant("acme").unwrap().connections(), 2);
    assert_eq!(e.tenant("globex").unwrap().connections(), 5);
    // Shown to the tenant's own statements.
    assert_eq!(cell(&a1, "SELECT @@cascade_tenant_max_connections"), "2");
    assert_eq!(
        cell(&others[0], "SELECT @@cascade_tenant_max_connections"),
        "NULL"
    );

    // A closed connection frees its slot.
    block_on(a2.close());
    let a3 = connect(&e, "acme", "alice").unwrap();
    assert_eq!(connect(&e, "acme", "x").unwrap_err().code, 1040);

    // KILL CONNECTION, then the close that follows it, frees the slot.
    ok(&a1, &format!("KILL CONNECTION {}", a3.id()));
    assert_eq!(
        e.tenant("acme").unwrap().connections(),
        2,
        "a killed connection is listed until it is closed"
    );
    block_on(a3.close());
    let a4 = connect(&e, "acme", "dave").unwrap();

    // Dropping every handle of a connection frees its slot too.
    drop(a4);
    let a5 = connect(&e, "acme", "erin").unwrap();
    assert_eq!(e.tenant("acme").unwrap().connections(), 2);
    block_on(a5.close());
    block_on(a1.close());
    drop(others);
    assert_eq!(e.tenant("acme").unwrap().connections(), 0);
    assert_eq!(e.tenant("globex").unwrap().connections(), 0);
}

#[test]
fn default_max_execution_time_per_tenant_and_the_session_overrides_it() {
    let e = engine_with(&[(
        "acme",
        TenantLimits {
            max_execution_time_ms: 40,
            ..TenantLimits::default()
        },
    )]);
    let a = connect(&e, "acme", "alice").unwrap();
    let g = connect(&e, "globex", "carol").unwrap();
    assert_eq!(cell(&a, "SELECT @@max_execution_time"), "40");
    assert_eq!(cell(&g, "SELECT @@max_execution_time"), "0");
    let err = run(&a, "SELECT sleep(100)").unwrap_err();
    assert_eq!(err.code, 3024, "{err}");
    assert_eq!(
        err.cause.unwrap().reason,
        Reason::StatementTimeout { limit_ms: 40 }
    );
    // The session's own SET overrides the tenant's default, as in MySQL...
    ok(&a, "SET max_execution_time = 0");
    assert_eq!(cell(&a, "SELECT sleep(0.05)"), "0");
    // ...until the session is reset.
    a.reset().unwrap();
    assert_eq!(cell(&a, "SELECT @@max_execution_time"), "40");
}

/// A greedy statement of `acme` crosses the tenant's budget while another
/// `acme` statement holds part of it and a `globex` statement runs: only
/// the greedy one fails (1041 naming the tenant's budget, as its cause);
/// the holder goes on (until it is killed here), globex's finishes.
#[test]
fn tenant_budget_stops_the_statement_that_crosses_it_and_no_other() {
    let budget = 16 * MIB;
    let e = engine_with(&[(
        "acme",
        TenantLimits {
            memory_budget: Some(budget),
            ..TenantLimits::default()
        },
    )]);
    let holder = connect(&e, "acme", "alice").unwrap();
    let greedy = connect(&e, "acme", "bob").unwrap();
    let other = connect(&e, "globex", "carol").unwrap();
    let killer = connect(&e, "acme", "alice").unwrap();
    // The statement's own budget is far above the tenant's: the tenant's
    // is the one that stops it.
    assert_eq!(
        cell(&greedy, "SELECT @@cascade_memory_budget"),
        (1u64 << 30).to_string()
    );
    assert_eq!(
        cell(&greedy, "SELECT @@cascade_tenant_memory_budget"),
        budget.to_string()
    );

    let mut pool = LocalPool::new();
    let spawn = |pool: &LocalPool, c: &Connection, sql: &str| {
        let out = Rc::new(RefCell::new(None));
        let (o, c, sql) = (out.clone(), c.clone(), sql.to_owned());
        pool.spawner()
            .spawn_local(async move { *o.borrow_mut() = Some(c.execute(&sql).await) })
            .unwrap();
        out
    };
    // Holds one small hash set (1000 groups) from its first batches on,
    // then runs on without growing.
    let held = spawn(
        &pool,
        &holder,
        "SELECT count(DISTINCT x % 1000) FROM generate_series(1, 10000000000) AS t(x)",
    );
    let results = Rc::new(RefCell::new(None));
    let (e2, r2, hid) = (e.clone(), results.clone(), holder.id());
    let (greedy2, other2) = (greedy.clone(), other.clone());
    pool.spawner()
        .spawn_local(async move {
            let me = Identity::new("acme", "alice", "member");
            let row = |e: &Engine| e.processes(&me).into_iter().find(|p| p.id == hid);
            // Wait until the holder has all its groups.
            while row(&e2).is_none_or(|p| p.rows_examined <= 10_000) {
                cascade::host::YieldNow::default().await;
            }
            assert!(e2.tenant("acme").unwrap().memory().used() > 0);
            let g = greedy2
                .execute("SELECT count(DISTINCT x) FROM generate_series(1, 100000000) AS t(x)")
                .await;
            let p = row(&e2).unwrap();
            assert_eq!(p.command, "Query", "the holder still runs");
            assert_eq!(p.tenant_memory_budget, Some(16 * MIB));
            assert!(p.tenant_memory > 0 && p.tenant_memory <= 16 * MIB, "{p:?}");
            // Another tenant's statement runs and finishes meanwhile.
            let o = other2
                .execute("SELECT count(DISTINCT x) FROM generate_series(1, 300000) AS t(x)")
                .await;
            // The holder goes on: it examines more rows after all this.
            let seen = row(&e2).unwrap().rows_examined;
            loop {
                let p = row(&e2).unwrap();
                assert_eq!(p.command, "Query");
                if p.rows_examined > seen {
                    break;
                }
                cascade::host::YieldNow::default().await;
            }
            let k = killer.execute(&format!("KILL QUERY {hid}")).await;
            *r2.borrow_mut() = Some((g, o, k));
        })
        .unwrap();
    pool.run();

    let (g, o, k) = results.borrow_mut().take().expect("the driver ran");
    k.unwrap();
    let err = g.unwrap_err();
    assert_eq!(err.code, 1041, "{err}");
    assert_eq!(err.kind, ErrorKind::Error);
    assert!(
        err.message
            .contains(&format!("memory budget of tenant 'acme' ({budget} bytes")),
        "{}",
        err.message
    );
    let cause = err
        .cause
        .expect("the budget is the greedy statement's cause");
    assert!(
        matches!(&cause.reason, Reason::TenantMemoryBudgetExceeded { tenant, budget: b, requested }
            if &**tenant == "acme" && *b == budget && *requested > budget),
        "{cause:?}"
    );
    assert_eq!(o.unwrap().rows[0][0].to_string(), "300000");
    let holder_err = held
        .borrow_mut()
        .take()
        .expect("the holder ended")
        .unwrap_err();
    assert_eq!(
        holder_err.code, 1317,
        "killed, not stopped by the budget: {holder_err}"
    );
    assert_eq!(e.memory_in_use(), 0);
    assert_eq!(e.tenant("acme").unwrap().memory().used(), 0);
    assert_eq!(e.tenant("globex").unwrap().memory().used(), 0);
    // Both acme connections work afterwards.
    assert_eq!(cell(&greedy, "SELECT 1"), "1");
    assert_eq!(cell(&holder, "SELECT 1"), "1");
}
