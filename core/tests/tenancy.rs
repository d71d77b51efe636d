//! Databases and per-tenant catalogs (issue 10.1, 10.2, 10.5): CREATE /
//! DROP / USE / SHOW DATABASES / DATABASE(), qualified names, every way to
//! name another tenant's table (each answers as if it did not exist),
//! DROP DATABASE cancelling the statements and transactions that use it,
//! and transactions across databases of one tenant.

mod common;
use common::*;

use cascade::{Engine, EngineConfig, Identity, Reason, StdHost};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::rc::Rc;

fn code(c: &cascade::Connection, sql: &str) -> u16 {
    match run(c, sql) {
        Ok(r) => panic!("{sql}: expected an error, got {:?}", rows(&r)),
        Err(e) => e.code,
    }
}

fn err(c: &cascade::Connection, sql: &str) -> cascade::QueryError {
    run(c, sql).expect_err(sql)
}

fn list(c: &cascade::Connection, sql: &str) -> Vec<String> {
    rows(&ok(c, sql)).into_iter().map(|r| r.join(",")).collect()
}

#[test]
fn a_connection_starts_in_its_tenants_default_database() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    assert_eq!(cell(&a, "SELECT DATABASE()"), "cascade");
    assert_eq!(cell(&a, "SELECT schema()"), "cascade");
    assert_eq!(a.database().as_deref(), Some("cascade"));
    assert_eq!(
        list(&a, "SHOW DATABASES"),
        ["cascade", "information_schema"]
    );
    // Unqualified and qualified names reach the same table.
    ok(&a, "CREATE TABLE t (x INT)");
    ok(&a, "INSERT INTO cascade.t VALUES (1)");
    assert_eq!(cell(&a, "SELECT count(*) FROM t"), "1");
    assert_eq!(list(&a, "SHOW TABLES"), ["t"]);
    assert_eq!(ok(&a, "SHOW TABLES").columns[0].name, "Tables_in_cascade");
    // SHOW PROCESSLIST's `db` column.
    ok(&a, "CREATE DATABASE shop");
    ok(&a, "USE shop");
    let me = rows(&ok(&a, "SHOW PROCESSLIST"))
        .into_iter()
        .find(|r| r[0] == a.id().to_string())
        .expect("own row");
    assert_eq!(me[3], "shop");
}

#[test]
fn create_use_drop_database() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let r = ok(&a, "CREATE DATABASE shop");
    assert_eq!(r.rows_affected, 1);
    let e1007 = err(&a, "CREATE DATABASE SHOP");
    assert_eq!(
        (e1007.code, e1007.message.as_str()),
        (1007, "Can't create database 'shop'; database exists")
    );
    assert_eq!(ok(&a, "CREATE DATABASE IF NOT EXISTS shop").warnings, 1);
    ok(&a, "CREATE SCHEMA other");
    assert_eq!(
        list(&a, "SHOW DATABASES"),
        ["cascade", "information_schema", "other", "shop"]
    );
    assert_eq!(list(&a, "SHOW DATABASES LIKE 'sh%'"), ["shop"]);
    ok(&a, "USE shop");
    assert_eq!(cell(&a, "SELECT DATABASE()"), "shop");
    ok(&a, "CREATE TABLE t (x INT)");
    ok(&a, "CREATE TABLE cascade.t (x INT)");
    ok(&a, "INSERT INTO t VALUES (1), (2)");
    ok(&a, "INSERT INTO cascade.t VALUES (10)");
    assert_eq!(cell(&a, "SELECT sum(x) FROM t"), "3");
    assert_eq!(cell(&a, "SELECT sum(x) FROM cascade.t"), "10");
    assert_eq!(
        cell(
            &a,
            "SELECT count(*) FROM shop.t JOIN cascade.t AS c ON c.x > shop.t.x"
        ),
        "2"
    );
    ok(&a, "UPDATE cascade.t SET x = 11");
    ok(&a, "DELETE FROM shop.t WHERE x = 1");
    assert_eq!(cell(&a, "SELECT sum(x) FROM cascade.t"), "11");
    assert_eq!(cell(&a, "SELECT sum(x) FROM t"), "2");
    ok(&a, "REPLACE INTO cascade.t VALUES (5)");
    assert_eq!(list(&a, "SHOW TABLES FROM cascade"), ["t"]);
    assert_eq!(list(&a, "SHOW TABLES FROM other"), Vec::<String>::new());
    assert_eq!(ok(&a, "DESCRIBE cascade.t").rows.len(), 1);
    assert_eq!(ok(&a, "SHOW COLUMNS FROM t FROM cascade").rows.len(), 1);
    assert_eq!(ok(&a, "SHOW CREATE TABLE cascade.t").rows.len(), 1);
    ok(&a, "CREATE INDEX ix ON cascade.t (x)");
    ok(&a, "DROP INDEX ix ON cascade.t");
    ok(&a, "ALTER TABLE cascade.t ADD INDEX (x)");
    // information_schema: real database names.
    assert_eq!(
        list(
            &a,
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ),
        ["cascade,t", "shop,t"]
    );
    assert_eq!(
        list(
            &a,
            "SELECT schema_name FROM information_schema.schemata ORDER BY 1"
        ),
        ["cascade", "information_schema", "other", "shop"]
    );
    ok(&a, "USE information_schema");
    assert_eq!(cell(&a, "SELECT count(*) FROM schemata"), "4");
    ok(&a, "USE shop");
    // A view's query resolves its unqualified names in the database that
    // was current when it was created, whoever reads it from where.
    ok(&a, "CREATE VIEW cascade.v AS SELECT x FROM t");
    ok(&a, "USE cascade");
    assert_eq!(
        cell(&a, "SELECT sum(x) FROM v"),
        "2",
        "the view reads shop.t"
    );
    ok(&a, "DROP VIEW cascade.v");
    // Errors, word for word as MySQL's.
    let e1049 = err(&a, "USE nowhere");
    assert_eq!(
        (e1049.code, e1049.message.as_str()),
        (1049, "Unknown database 'nowhere'")
    );
    assert_eq!(code(&a, "CREATE TABLE nowhere.t (x INT)"), 1049);
    assert_eq!(code(&a, "SHOW TABLES FROM nowhere"), 1049);
    let e1146 = err(&a, "SELECT * FROM nowhere.t");
    assert_eq!(
        (e1146.code, e1146.message.as_str()),
        (1146, "Table 'nowhere.t' doesn't exist")
    );
    let e1008 = err(&a, "DROP DATABASE nowhere");
    assert_eq!(
        (e1008.code, e1008.message.as_str()),
        (
            1008,
            "Can't drop database 'nowhere'; database doesn't exist"
        )
    );
    assert_eq!(ok(&a, "DROP DATABASE IF EXISTS nowhere").warnings, 1);
    assert_eq!(code(&a, "CREATE DATABASE information_schema"), 1044);
    // Dropping the current database leaves none selected.
    ok(&a, "USE shop");
    assert_eq!(ok(&a, "DROP DATABASE shop").rows_affected, 1);
    assert_eq!(cell(&a, "SELECT DATABASE()"), "NULL");
    assert_eq!(a.database(), None);
    let e1046 = err(&a, "SELECT * FROM t");
    assert_eq!(
        (e1046.code, e1046.message.as_str()),
        (1046, "No database selected")
    );
    assert_eq!(code(&a, "CREATE TABLE t (x INT)"), 1046);
    assert_eq!(code(&a, "SHOW TABLES"), 1046);
    assert_eq!(cell(&a, "SELECT count(*) FROM cascade.t"), "2");
    // A database dropped and created again is empty.
    ok(&a, "CREATE DATABASE shop");
    assert_eq!(code(&a, "SELECT * FROM shop.t"), 1146);
    futures::executor::block_on(a.use_database("shop")).unwrap();
    assert_eq!(a.database().as_deref(), Some("shop"));
    let bad = futures::executor::block_on(a.use_database("no`where")).unwrap_err();
    assert_eq!(bad.code, 1049);
}

#[test]
fn the_same_table_name_in_two_tenants_holds_separate_rows() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let g = conn(&e, "globex", "carol", "member");
    ok(&a, "CREATE TABLE t (who TEXT)");
    ok(&g, "CREATE TABLE t (who TEXT)");
    ok(&a, "INSERT INTO t VALUES ('acme')");
    ok(&g, "INSERT INTO t VALUES ('globex'), ('globex')");
    assert_eq!(list(&a, "SELECT who FROM t"), ["acme"]);
    assert_eq!(list(&g, "SELECT who FROM t"), ["globex", "globex"]);
    assert_eq!(list(&g, "SELECT who FROM cascade.t"), ["globex", "globex"]);
    // A second connection of a tenant sees that tenant's table.
    let a2 = conn(&e, "acme", "bob", "member");
    assert_eq!(list(&a2, "SELECT who FROM t"), ["acme"]);
}

/// acme has database `secret` with table `s`, view `sv`, and a view `av`
/// in its default database; globex tries every way to reach them.
#[test]
fn another_tenants_objects_do_not_exist() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "admin");
    ok(&a, "CREATE DATABASE secret");
    ok(&a, "CREATE TABLE secret.s (x INT, y TEXT)");
    ok(&a, "INSERT INTO secret.s VALUES (42, 'acme only')");
    ok(&a, "CREATE VIEW secret.sv AS SELECT * FROM secret.s");
    ok(&a, "CREATE VIEW av AS SELECT * FROM secret.s");
    ok(&a, "CREATE TABLE mine (x INT, y TEXT)");

    let g = conn(&e, "globex", "carol", "admin");
    ok(&g, "CREATE TABLE t (x INT, y TEXT)");
    let tables = [
        // Qualified names, subqueries, joins, CTEs, INSERT … SELECT.
        "SELECT * FROM secret.s",
        "SELECT * FROM `secret`.`s`",
        "SELECT * FROM SECRET.S",
        "SELECT * FROM secret.sv",
        "SELECT * FROM av",
        "SELECT * FROM mine",
        "SELECT * FROM cascade.mine",
        "SELECT (SELECT count(*) FROM secret.s)",
        "SELECT * FROM t WHERE x IN (SELECT x FROM secret.s)",
        "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM secret.s)",
        "SELECT * FROM (SELECT * FROM secret.s) AS d",
        "SELECT * FROM t JOIN secret.s ON t.x = s.x",
        "SELECT * FROM t, secret.s",
        "WITH c AS (SELECT * FROM secret.s) SELECT * FROM c",
        "WITH RECURSIVE r(n) AS (SELECT x FROM secret.s UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT x FROM t UNION SELECT x FROM secret.s",
        "INSERT INTO t SELECT * FROM secret.s",
        "INSERT INTO secret.s VALUES (1, 'x')",
        "REPLACE INTO secret.s VALUES (1, 'x')",
        "UPDATE secret.s SET x = 0",
        "DELETE FROM secret.s",
        "EXPLAIN SELECT * FROM secret.s",
        "EXPLAIN ANALYZE SELECT * FROM secret.s",
        // Views of globex's own that name acme's database.
        "CREATE VIEW v AS SELECT * FROM secret.s",
        "CREATE VIEW v2 AS SELECT * FROM av",
        // Schema statements.
        "DESCRIBE secret.s",
        "SHOW COLUMNS FROM s FROM secret",
        "SHOW COLUMNS FROM secret.s",
        "SHOW CREATE TABLE secret.s",
        "CREATE INDEX ix ON secret.s (x)",
        "DROP INDEX ix ON secret.s",
        "ALTER TABLE secret.s ADD INDEX (x)",
    ];
    for sql in tables {
        let e = err(&g, sql);
        assert_eq!(e.code, 1146, "{sql}: {e}");
    }
    for (sql, want) in [
        ("USE secret", 1049),
        ("SHOW TABLES FROM secret", 1049),
        ("CREATE TABLE secret.x (a INT)", 1049),
        ("DROP DATABASE secret", 1008),
        ("DROP TABLE secret.s", 1051),
        ("DROP TABLE mine", 1051),
        ("DROP VIEW secret.sv", 1051),
        ("DROP VIEW av", 1051),
    ] {
        let e = err(&g, sql);
        assert_eq!(e.code, want, "{sql}: {e}");
    }
    // A tenant name in the SQL text is just a database name.
    assert_eq!(code(&g, "SELECT * FROM `acme:secret`.s"), 1146);
    assert_eq!(code(&g, "USE `acme:secret`"), 1049);
    // information_schema lists only globex's.
    assert_eq!(
        list(
            &g,
            "SELECT table_schema, table_name FROM information_schema.tables"
        ),
        ["cascade,t"]
    );
    assert_eq!(
        cell(
            &g,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 's' OR table_name = 'mine'"
        ),
        "0"
    );
    assert_eq!(
        list(
            &g,
            "SELECT schema_name FROM information_schema.schemata ORDER BY 1"
        ),
        ["cascade", "information_schema"]
    );
    assert_eq!(
        list(&g, "SHOW DATABASES"),
        ["cascade", "information_schema"]
    );
    // globex's own `secret` is another database, empty.
    ok(&g, "CREATE DATABASE secret");
    ok(&g, "CREATE TABLE secret.s (x INT, y TEXT)");
    assert_eq!(cell(&g, "SELECT count(*) FROM secret.s"), "0");
    ok(&g, "INSERT INTO secret.s VALUES (7, 'globex')");
    ok(&g, "DROP DATABASE secret");
    // Nothing of acme's changed.
    assert_eq!(list(&a, "SELECT x, y FROM secret.s"), ["42,acme only"]);
    assert_eq!(list(&a, "SELECT x FROM secret.sv"), ["42"]);
    assert_eq!(list(&a, "SELECT x FROM av"), ["42"]);
    assert_eq!(list(&a, "SHOW TABLES FROM secret"), ["s", "sv"]);
}

#[test]
fn sys_admin_administers_but_reads_no_tenants_data_by_default() {
    for reads_all in [false, true] {
        let mut config = EngineConfig::new(1, StdHost::shared());
        config.admin_reads_all_tenants = reads_all;
        let e = Engine::new(config);
        let a = conn(&e, "acme", "alice", "member");
        ok(&a, "CREATE TABLE t (x INT)");
        ok(&a, "INSERT INTO t VALUES (5)");
        let root = conn(&e, Identity::SYS_TENANT, "root", Identity::ADMIN_ROLE);
        // Administers: sees acme's connection.
        let ids = list(&root, "SHOW PROCESSLIST");
        assert!(
            ids.iter().any(|r| r.starts_with(&format!("{},", a.id()))),
            "{ids:?}"
        );
        assert_eq!(code(&root, "SELECT * FROM t"), 1146);
        assert_eq!(code(&root, "SELECT * FROM cascade.t"), 1146);
        let qualified = "SELECT x FROM `acme:cascade`.t";
        if reads_all {
            assert_eq!(cell(&root, qualified), "5");
        } else {
            assert_eq!(code(&root, qualified), 1146);
        }
        // A tenant's admin never crosses tenants, whatever the switch.
        let g = conn(&e, "globex", "gadmin", Identity::ADMIN_ROLE);
        assert_eq!(code(&g, qualified), 1146);
    }
}

/// Runs `victim_sql` on `victim` and, once it is executing, `DROP DATABASE
/// shop` on `dropper`, on one thread; returns the victim's result.
fn drop_while_running(
    e: &Engine,
    victim: &cascade::Connection,
    dropper: &cascade::Connection,
    victim_sql: &str,
) -> Result<cascade::QueryResult, cascade::QueryError> {
    let mut pool = LocalPool::new();
    let result = Rc::new(RefCell::new(None));
    let (r2, v2, sql) = (result.clone(), victim.clone(), victim_sql.to_owned());
    pool.spawner()
        .spawn_local(async move {
            *r2.borrow_mut() = Some(v2.execute(&sql).await);
        })
        .unwrap();
    let (e2, d2, vid) = (e.clone(), dropper.clone(), victim.id());
    pool.spawner()
        .spawn_local(async move {
            let me = Identity::new("acme", "admin", "admin");
            loop {
                let executing = e2
                    .processes(&me)
                    .iter()
                    .any(|p| p.id == vid && p.state == "executing");
                if executing {
                    break;
                }
                futures_yield().await;
            }
            d2.execute("DROP DATABASE shop").await.unwrap();
        })
        .unwrap();
    pool.run();
    let r = result.borrow_mut().take().expect("the victim ran");
    r
}

/// Yields once to the local pool.
async fn futures_yield() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

#[test]
fn drop_database_cancels_the_statements_that_use_it_and_rolls_back() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let dropper = conn(&e, "acme", "bob", "member");
    ok(&victim, "CREATE DATABASE shop");
    ok(&victim, "CREATE TABLE shop.t (x INT)");
    ok(&victim, "CREATE TABLE keep (x INT)");
    ok(&victim, "INSERT INTO shop.t VALUES (1)");
    // An explicit transaction that wrote both databases, then runs a
    // statement that blocks on shop.t.
    ok(&victim, "BEGIN");
    ok(&victim, "INSERT INTO keep VALUES (1)");
    ok(&victim, "INSERT INTO shop.t VALUES (2)");
    let err = drop_while_running(&e, &victim, &dropper, "SELECT sleep(100) FROM shop.t")
        .expect_err("the statement was cancelled");
    assert_eq!(err.code, 1317, "{err}");
    assert!(err.message.contains("database dropped"), "{}", err.message);
    let cause = err.cause.clone().expect("a cause");
    assert!(
        matches!(&cause.reason, Reason::DatabaseDropped { database, by_connection }
            if &**database == "shop" && *by_connection == dropper.id()),
        "{cause:?}"
    );
    // The trace of the statement says why.
    let trace = e.trace(err.query_id.expect("a query id")).expect("a trace");
    let q = trace
        .spans
        .iter()
        .find(|s| s.level == cascade::Level::Query)
        .expect("the query span");
    assert!(
        matches!(&q.status, cascade::SpanStatus::Canceled { message, .. } if message.contains("database dropped")),
        "{:?}",
        q.status
    );
    // The whole transaction rolled back: its write to the other database
    // too; the connection goes on in a new one.
    assert_eq!(cell(&victim, "SELECT count(*) FROM keep"), "0");
    assert_eq!(cell(&dropper, "SELECT count(*) FROM keep"), "0");
    ok(&victim, "INSERT INTO keep VALUES (3)");
    assert_eq!(cell(&dropper, "SELECT count(*) FROM keep"), "1");
}

#[test]
fn drop_database_rolls_back_an_idle_transaction_that_used_it() {
    let e = engine();
    let victim = conn(&e, "acme", "alice", "member");
    let dropper = conn(&e, "acme", "bob", "member");
    let bystander = conn(&e, "acme", "carol", "member");
    ok(&victim, "CREATE DATABASE shop");
    ok(&victim, "CREATE TABLE shop.t (x INT)");
    ok(&victim, "CREATE TABLE keep (x INT)");
    ok(&victim, "BEGIN");
    ok(&victim, "INSERT INTO keep VALUES (1)");
    ok(&victim, "SELECT * FROM shop.t");
    // A transaction of another tenant's and one that did not name shop
    // are left alone.
    let g = conn(&e, "globex", "gina", "member");
    ok(&g, "CREATE DATABASE shop");
    ok(&g, "CREATE TABLE shop.t (x INT)");
    ok(&g, "BEGIN");
    ok(&g, "INSERT INTO shop.t VALUES (1)");
    ok(&bystander, "BEGIN");
    ok(&bystander, "INSERT INTO keep VALUES (9)");
    ok(&dropper, "DROP DATABASE shop");
    let err = err(&victim, "SELECT 1");
    assert_eq!(err.code, 1317, "{err}");
    assert!(err.message.contains("database dropped"), "{}", err.message);
    // Rolled back: a COMMIT now commits nothing.
    ok(&victim, "COMMIT");
    ok(&g, "COMMIT");
    ok(&bystander, "COMMIT");
    assert_eq!(list(&dropper, "SELECT x FROM keep"), ["9"]);
    assert_eq!(cell(&g, "SELECT count(*) FROM shop.t"), "1");
}

#[test]
fn transactions_across_databases_keep_snapshot_isolation_and_roll_back_together() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let other = conn(&e, "acme", "bob", "member");
    ok(&a, "CREATE DATABASE d1");
    ok(&a, "CREATE DATABASE d2");
    ok(&a, "CREATE TABLE d1.t (x INT)");
    ok(&a, "CREATE TABLE d2.t (x INT)");
    // Snapshot isolation across both databases.
    ok(&a, "BEGIN");
    assert_eq!(cell(&a, "SELECT count(*) FROM d1.t"), "0");
    ok(&other, "INSERT INTO d2.t VALUES (1)");
    assert_eq!(
        cell(&a, "SELECT count(*) FROM d2.t"),
        "0",
        "a commit after the snapshot is not seen, in another database either"
    );
    ok(&a, "INSERT INTO d1.t VALUES (10)");
    ok(&a, "INSERT INTO d2.t VALUES (20)");
    assert_eq!(
        cell(
            &a,
            "SELECT (SELECT sum(x) FROM d1.t) + (SELECT sum(x) FROM d2.t)"
        ),
        "30"
    );
    assert_eq!(cell(&other, "SELECT count(*) FROM d1.t"), "0");
    // d2.t was committed by `other` after the snapshot: first committer
    // wins, and neither write of the transaction is kept.
    assert_eq!(code(&a, "COMMIT"), 1213);
    assert_eq!(cell(&other, "SELECT count(*) FROM d1.t"), "0");
    // Both commit together.
    ok(&a, "BEGIN");
    ok(&a, "INSERT INTO d1.t VALUES (1)");
    ok(&a, "INSERT INTO d2.t VALUES (2)");
    ok(&a, "COMMIT");
    assert_eq!(cell(&other, "SELECT count(*) FROM d1.t"), "1");
    assert_eq!(cell(&other, "SELECT count(*) FROM d2.t"), "2");
    // KILL CONNECTION rolls both back.
    let victim = conn(&e, "acme", "alice", "member");
    ok(&victim, "BEGIN");
    ok(&victim, "INSERT INTO d1.t VALUES (100)");
    ok(&victim, "INSERT INTO d2.t VALUES (200)");
    let killer = conn(&e, "acme", "alice", "member");
    ok(&killer, &format!("KILL CONNECTION {}", victim.id()));
    assert_eq!(code(&victim, "SELECT 1"), 1927);
    assert_eq!(cell(&other, "SELECT count(*) FROM d1.t WHERE x = 100"), "0");
    assert_eq!(cell(&other, "SELECT count(*) FROM d2.t WHERE x = 200"), "0");
}
