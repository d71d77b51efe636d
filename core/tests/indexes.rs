//! PRIMARY KEY / UNIQUE / CREATE INDEX as ordered indexes kept under MVCC
//! (core/src/index.rs, storage.rs), REPLACE and INSERT … ON DUPLICATE KEY
//! UPDATE through them, and the statements that describe a table.

mod common;
use common::*;

use cascade::{Connection, QueryError};

fn code(c: &Connection, sql: &str, want: u16) -> QueryError {
    match run(c, sql) {
        Ok(r) => panic!("{sql}: expected {want}, got {:?}", rows(&r)),
        Err(e) => {
            assert_eq!(e.code, want, "{sql}: {e}");
            e
        }
    }
}

fn table(c: &Connection, sql: &str) -> Vec<Vec<String>> {
    rows(&ok(c, sql))
}

fn fresh() -> Connection {
    conn(&engine(), "acme", "alice", "member")
}

#[test]
fn duplicate_within_one_transaction_is_1062_and_keeps_the_earlier_writes() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)");
    ok(&c, "BEGIN");
    ok(&c, "INSERT INTO t VALUES (1, 'a')");
    let e = code(&c, "INSERT INTO t VALUES (2, 'b'), (1, 'c')", 1062);
    assert_eq!(e.message, "Duplicate entry '1' for key 't.PRIMARY'");
    // The failed statement wrote nothing; the transaction goes on.
    ok(&c, "INSERT INTO t VALUES (2, 'b')");
    ok(&c, "COMMIT");
    assert_eq!(
        table(&c, "SELECT id, v FROM t ORDER BY id"),
        [["1", "a"], ["2", "b"]]
    );
}

#[test]
fn duplicate_across_two_transactions_follows_first_committer_wins() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    ok(&a, "CREATE TABLE t (id INT PRIMARY KEY)");
    ok(&a, "BEGIN");
    ok(&b, "BEGIN");
    ok(&a, "INSERT INTO t VALUES (1)");
    // b's snapshot has no row 1: its own insert is not a duplicate there.
    ok(&b, "INSERT INTO t VALUES (1)");
    ok(&a, "COMMIT");
    let err = run(&b, "COMMIT").unwrap_err();
    assert_eq!(err.code, 1213, "{err}");
    assert_eq!(cell(&a, "SELECT count(*) FROM t"), "1");
    // Committed, the key is taken for everyone.
    let e2 = code(&b, "INSERT INTO t VALUES (1)", 1062);
    assert_eq!(e2.message, "Duplicate entry '1' for key 't.PRIMARY'");
}

#[test]
fn a_rolled_back_insert_leaves_no_index_entry() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (id INT PRIMARY KEY, u INT UNIQUE)");
    ok(&c, "BEGIN");
    ok(&c, "INSERT INTO t VALUES (5, 50)");
    ok(&c, "ROLLBACK");
    ok(&c, "INSERT INTO t VALUES (5, 50)");
    assert_eq!(table(&c, "SELECT id, u FROM t"), [["5", "50"]]);
}

#[test]
fn a_snapshot_reader_does_not_see_later_keys() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    ok(&a, "CREATE TABLE t (id INT PRIMARY KEY)");
    ok(&a, "INSERT INTO t VALUES (1)");
    ok(&a, "BEGIN");
    assert_eq!(cell(&a, "SELECT count(*) FROM t"), "1");
    ok(&b, "INSERT INTO t VALUES (7)");
    assert!(table(&a, "SELECT id FROM t WHERE id = 7").is_empty());
    ok(&a, "COMMIT");
    assert_eq!(table(&a, "SELECT id FROM t WHERE id = 7"), [["7"]]);
}

#[test]
fn update_and_delete_keep_the_index_in_step() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)");
    ok(&c, "INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)");
    ok(&c, "UPDATE t SET id = id + 10");
    // The old keys are free, the new ones taken.
    ok(&c, "INSERT INTO t VALUES (1, 100)");
    code(&c, "INSERT INTO t VALUES (12, 0)", 1062);
    ok(&c, "DELETE FROM t WHERE id = 12");
    ok(&c, "INSERT INTO t VALUES (12, 120)");
    code(&c, "UPDATE t SET id = 1 WHERE id = 13", 1062);
    assert_eq!(
        table(&c, "SELECT id, v FROM t ORDER BY id"),
        [["1", "100"], ["11", "1"], ["12", "120"], ["13", "3"]]
    );
}

#[test]
fn multi_column_and_prefix_keys() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (a INT, b INT, UNIQUE KEY ab (a, b))");
    ok(
        &c,
        "INSERT INTO t VALUES (1, 1), (1, 2), (2, 1), (1, NULL), (1, NULL)",
    );
    let e = code(&c, "INSERT INTO t VALUES (1, 2)", 1062);
    assert_eq!(e.message, "Duplicate entry '1-2' for key 't.ab'");
    // UNIQUE (a(1)): the first character is the key (MySQL's prefix key).
    ok(&c, "CREATE TABLE p (a TEXT, UNIQUE (a(1)))");
    ok(&c, "INSERT INTO p VALUES ('b'), ('c'), (NULL), (NULL)");
    let e = code(&c, "INSERT INTO p VALUES ('bx')", 1062);
    assert_eq!(e.message, "Duplicate entry 'b' for key 'p.a'");
    code(&c, "CREATE TABLE p2 (a INT, UNIQUE (a(1)))", 1089);
    code(&c, "CREATE TABLE p2 (a INT, UNIQUE (b(1)))", 1072);
}

#[test]
fn create_and_drop_index() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (a INT, b TEXT)");
    ok(&c, "INSERT INTO t VALUES (1, 'x'), (2, 'x'), (3, 'y')");
    ok(&c, "CREATE INDEX ia ON t (a)");
    code(&c, "CREATE INDEX ia ON t (b)", 1061);
    // The rows break a unique index on b: refused, nothing created.
    let e = code(&c, "CREATE UNIQUE INDEX ub ON t (b)", 1062);
    assert_eq!(e.message, "Duplicate entry 'x' for key 't.ub'");
    ok(&c, "INSERT INTO t VALUES (4, 'x')");
    ok(&c, "CREATE UNIQUE INDEX ua ON t (a DESC)");
    code(&c, "INSERT INTO t VALUES (4, 'z')", 1062);
    ok(&c, "DROP INDEX ua ON t");
    ok(&c, "INSERT INTO t VALUES (4, 'z')");
    code(&c, "DROP INDEX ua ON t", 1091);
    code(&c, "CREATE INDEX ic ON t (c)", 1072);
    code(&c, "CREATE INDEX ic ON nope (a)", 1146);
    code(&c, "ALTER TABLE t ADD UNIQUE INDEX ub2 (b(2))", 1062);
    ok(&c, "ALTER TABLE t ADD INDEX ib (b(2))");
    code(&c, "ALTER TABLE t ADD INDEX ib (a)", 1061);
    ok(&c, "CREATE TABLE u (a INT, b TEXT)");
    ok(&c, "INSERT INTO u VALUES (1, 'xa'), (2, 'ya')");
    ok(&c, "ALTER TABLE u ADD UNIQUE INDEX ub2 (b(1))");
    code(&c, "INSERT INTO u VALUES (9, 'yb')", 1062);
    ok(&c, "ALTER TABLE u DROP INDEX ub2");
    ok(&c, "INSERT INTO u VALUES (9, 'yb')");
    assert_eq!(cell(&c, "SELECT count(*) FROM u"), "3");
    assert_eq!(cell(&c, "SELECT count(*) FROM t"), "5");
}

#[test]
fn an_index_created_after_a_snapshot_leaves_the_snapshot_alone() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    ok(&a, "CREATE TABLE t (a INT)");
    ok(&a, "INSERT INTO t VALUES (1), (2)");
    ok(&a, "BEGIN");
    ok(&a, "INSERT INTO t VALUES (2)");
    ok(&b, "CREATE UNIQUE INDEX ua ON t (a)");
    // a's write was made before the index: its commit is a write
    // conflict, never a table that breaks the new unique index.
    let err = run(&a, "COMMIT").unwrap_err();
    assert_eq!(err.code, 1213, "{err}");
    assert_eq!(cell(&b, "SELECT count(*) FROM t"), "2");
}

#[test]
fn replace_goes_through_the_unique_indexes() {
    let c = fresh();
    ok(
        &c,
        "CREATE TABLE r (id INT PRIMARY KEY, v VARCHAR(5) UNIQUE, w INT)",
    );
    ok(
        &c,
        "INSERT INTO r VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)",
    );
    assert_eq!(
        ok(&c, "REPLACE INTO r VALUES (4, 'd', 40)").rows_affected,
        1
    );
    assert_eq!(
        ok(&c, "REPLACE INTO r VALUES (3, 'c', 31)").rows_affected,
        2
    );
    // Deleted rows leave the index: their keys can come back.
    assert_eq!(
        ok(&c, "REPLACE INTO r VALUES (1, 'b', 99)").rows_affected,
        3
    );
    ok(&c, "INSERT INTO r VALUES (2, 'a', 0)");
    assert_eq!(
        table(&c, "SELECT id, v, w FROM r ORDER BY id"),
        [
            ["1", "b", "99"],
            ["2", "a", "0"],
            ["3", "c", "31"],
            ["4", "d", "40"]
        ]
    );
}

#[test]
fn on_duplicate_key_update_counts_as_mysql() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (id INT PRIMARY KEY, n INT, s TEXT)");
    ok(&c, "INSERT INTO t VALUES (1, 1, 'a')");
    let up = "INSERT INTO t VALUES (1, 5, 'b') ON DUPLICATE KEY UPDATE n = n + VALUES(n)";
    // 2: a row updated.
    assert_eq!(ok(&c, up).rows_affected, 2);
    assert_eq!(table(&c, "SELECT id, n, s FROM t"), [["1", "6", "a"]]);
    // 1: a row inserted.
    let ins = "INSERT INTO t VALUES (2, 5, 'b') ON DUPLICATE KEY UPDATE n = n + VALUES(n)";
    assert_eq!(ok(&c, ins).rows_affected, 1);
    // 0: the update changes nothing.
    let same = "INSERT INTO t VALUES (2, 9, 'z') ON DUPLICATE KEY UPDATE s = 'b'";
    assert_eq!(ok(&c, same).rows_affected, 0);
    // Assignments run left to right: the second sees the first's value.
    ok(
        &c,
        "INSERT INTO t VALUES (1, 0, 'q') ON DUPLICATE KEY UPDATE n = 100, s = CONCAT(VALUES(s), n)",
    );
    // Within one statement a later row sees an earlier one.
    let r = ok(
        &c,
        "INSERT INTO t VALUES (3, 1, 'x'), (3, 1, 'y') ON DUPLICATE KEY UPDATE n = n + 1",
    );
    assert_eq!(r.rows_affected, 3);
    assert_eq!(
        table(&c, "SELECT id, n, s FROM t ORDER BY id"),
        [["1", "100", "q100"], ["2", "5", "b"], ["3", "2", "x"]]
    );
    // An update that takes another row's key is 1062; nothing is written.
    let e = code(
        &c,
        "INSERT INTO t VALUES (3, 0, '') ON DUPLICATE KEY UPDATE id = 1",
        1062,
    );
    assert_eq!(e.message, "Duplicate entry '1' for key 't.PRIMARY'");
    assert_eq!(cell(&c, "SELECT n FROM t WHERE id = 3"), "2");
    code(
        &c,
        "INSERT INTO t VALUES (3, 0, '') ON DUPLICATE KEY UPDATE nope = 1",
        1054,
    );
    // An out-of-range value is 1264 as in an UPDATE.
    ok(&c, "CREATE TABLE small (id INT PRIMARY KEY, n TINYINT)");
    ok(&c, "INSERT INTO small VALUES (1, 100)");
    code(
        &c,
        "INSERT INTO small VALUES (1, 0) ON DUPLICATE KEY UPDATE n = n + 100",
        1264,
    );
}

#[test]
fn describe_show_columns_and_show_create_table() {
    let c = fresh();
    ok(
        &c,
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', \
         score DECIMAL(6,2), tag TEXT, UNIQUE KEY nm (name), KEY tg (tag(4), score DESC))",
    );
    let want = [
        ["id", "int", "NO", "PRI", "NULL", ""],
        ["name", "varchar(20)", "NO", "UNI", "x", ""],
        ["score", "decimal(6,2)", "YES", "", "NULL", ""],
        ["tag", "text", "YES", "MUL", "NULL", ""],
    ];
    assert_eq!(table(&c, "DESCRIBE t"), want);
    assert_eq!(table(&c, "DESC t"), want);
    assert_eq!(table(&c, "SHOW COLUMNS FROM t"), want);
    let r = ok(&c, "DESCRIBE t");
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Field", "Type", "Null", "Key", "Default", "Extra"]);
    let create = table(&c, "SHOW CREATE TABLE t");
    assert_eq!(create[0][0], "t");
    assert_eq!(
        create[0][1],
        "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `name` varchar(20) NOT NULL DEFAULT 'x',\n  \
         `score` decimal(6,2) DEFAULT NULL,\n  `tag` text,\n  PRIMARY KEY (`id`),\n  \
         UNIQUE KEY `nm` (`name`),\n  KEY `tg` (`tag`(4),`score` DESC)\n)"
    );
    // The text makes the same table.
    ok(&c, "DROP TABLE t");
    ok(&c, &create[0][1]);
    assert_eq!(table(&c, "DESCRIBE t"), want);
    code(&c, "DESCRIBE nope", 1146);
}

/// The storage layer alone: a transaction's index is its own copy, and a
/// snapshot reads the index of its own version.
mod storage_level {
    use std::sync::Arc;

    use cascade::data::{Batch, Column, DataType, Value};
    use cascade::index::{IndexDef, IndexKind, KeyPart};
    use cascade::storage::{Catalog, ColumnDef, ColumnLimit, DbKey, Schema, TableKey, WriteSet};

    fn key() -> TableKey {
        TableKey::new(DbKey::new(&Arc::from("acme"), "cascade"), "t")
    }

    fn setup() -> (Arc<Catalog>, Arc<cascade::storage::Table>) {
        let cat = Catalog::new();
        cat.create_database(&key().db, false).unwrap();
        let schema = Schema {
            columns: vec![ColumnDef {
                name: "id".into(),
                ty: DataType::Int,
                nullable: false,
                limit: ColumnLimit::None,
                default: None,
            }],
        };
        let pk = IndexDef {
            name: "PRIMARY".into(),
            kind: IndexKind::Primary,
            parts: vec![KeyPart {
                column: 0,
                prefix: None,
                desc: false,
            }],
        };
        cat.create_table(&key(), schema, vec![pk], false).unwrap();
        let t = cat.table(&key()).unwrap();
        (cat, t)
    }

    fn ints(v: Vec<i64>) -> Batch {
        let n = v.len();
        Batch::new(vec![Arc::new(Column::ints(v))], n)
    }

    #[test]
    fn a_dropped_write_set_leaves_the_committed_index_unchanged() {
        let (cat, t) = setup();
        let s = cat.snapshot();
        let mut w = WriteSet::new();
        let written = t.read(s.ts).appended(&ints(vec![5])).unwrap();
        assert_eq!(
            written.indexes[0]
                .lookup(&written.chunks, &[Value::Int(5)])
                .len(),
            1
        );
        w.insert(key(), (t.clone(), Arc::new(written)));
        // A rollback drops the write set.
        drop(w);
        let now = t.read(u64::MAX);
        assert!(now.indexes[0].is_empty());
        assert!(now.indexes[0]
            .lookup(&now.chunks, &[Value::Int(5)])
            .is_empty());
    }

    #[test]
    fn a_snapshot_reads_the_index_of_its_version() {
        let (cat, t) = setup();
        let before = cat.snapshot();
        let s = cat.snapshot();
        let mut w = WriteSet::new();
        let written = t.read(s.ts).appended(&ints(vec![1, 2, 3])).unwrap();
        w.insert(key(), (t.clone(), Arc::new(written)));
        cat.commit(s.ts, &w).unwrap();
        let old = t.read(before.ts);
        assert!(old.indexes[0]
            .lookup(&old.chunks, &[Value::Int(2)])
            .is_empty());
        let new = t.read(u64::MAX);
        assert_eq!(
            new.indexes[0].lookup(&new.chunks, &[Value::Int(2)]).len(),
            1
        );
        // A duplicate against the committed version is refused there.
        let d = new.appended(&ints(vec![3])).unwrap_err();
        assert_eq!(d.entry, "3");
        assert_eq!(
            d.into_error("t").to_string(),
            "Duplicate entry '3' for key 't.PRIMARY'"
        );
    }
}

/// Every point and range predicate answers the same through an index as
/// through a full scan (same rows, NULLs, duplicates, mixed literal types).
#[test]
fn index_scans_answer_as_full_scans() {
    let c = fresh();
    for (t, keys) in [
        ("plain", ""),
        (
            "keyed",
            ", UNIQUE KEY ua (a), KEY ib (b), KEY ic (c), KEY id (d)",
        ),
    ] {
        ok(
            &c,
            &format!("CREATE TABLE {t} (a INT, b INT, c DOUBLE, d VARCHAR(10){keys})"),
        );
        ok(
            &c,
            &format!(
                "INSERT INTO {t} SELECT CASE WHEN x % 50 = 0 THEN NULL ELSE x - 300 END, \
                 x % 37 - 5, CASE WHEN x % 11 = 0 THEN NULL ELSE (x % 23) / 2 END, \
                 concat('k', x % 61) FROM generate_series(1, 3000) AS g(x)"
            ),
        );
    }
    let preds = [
        "a = 5",
        "a = -5",
        "a = 0",
        "a = NULL",
        "a IN (1, 2, 2, -299, 100000, NULL)",
        "a < -290",
        "a <= -290",
        "a > 2690",
        "a >= 2690",
        "a BETWEEN 10 AND 20",
        "a BETWEEN 20 AND 10",
        "a > 10 AND a < 15",
        "10 < a AND 15 >= a",
        "a > 10 AND a < 15 AND b = 3",
        "b = 3",
        "b IN (-5, 31)",
        "b < -4",
        "b = 3 AND a < 100",
        "c = 5",
        "c = 5.5",
        "c > 10.5",
        "c BETWEEN 1 AND 1.5",
        "c = 0",
        "d = 'k7'",
        "d < 'k10'",
        "d > 'k59'",
        "d IN ('k1', 'k2', 'nope')",
        "d BETWEEN 'k3' AND 'k31'",
        "a = 1.5",
        "a = '7'",
        "a = 7 OR b = 3",
    ];
    let mut used = 0;
    for p in preds {
        let q = |t: &str| {
            let mut r = table(&c, &format!("SELECT a, b, c, d FROM {t} WHERE {p}"));
            r.sort();
            r
        };
        assert_eq!(q("keyed"), q("plain"), "WHERE {p}");
        let plan = rows(&ok(&c, &format!("EXPLAIN SELECT a FROM keyed WHERE {p}"))).concat();
        used += usize::from(plan.iter().any(|l| l.contains("IndexScan")));
    }
    // Most of them read through an index.
    assert!(used >= 20, "{used} predicates used an index");
}

#[test]
fn information_schema_is_queried_like_a_table() {
    let c = fresh();
    ok(&c, "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))");
    ok(&c, "CREATE TABLE u (a INT)");
    ok(&c, "INSERT INTO u VALUES (1), (2)");
    assert_eq!(
        table(
            &c,
            "SELECT c.table_name, count(*) FROM information_schema.columns AS c \
             JOIN information_schema.tables AS t ON c.table_name = t.table_name \
             GROUP BY c.table_name ORDER BY 1"
        ),
        [["t", "2"], ["u", "1"]]
    );
    assert_eq!(
        table(
            &c,
            "SELECT TABLE_NAME, TABLE_ROWS FROM INFORMATION_SCHEMA.TABLES WHERE table_rows > 0"
        ),
        [["u", "2"]]
    );
    let r = ok(
        &c,
        "SELECT * FROM information_schema.tables WHERE table_name = 't'",
    );
    assert_eq!(r.columns[2].name, "TABLE_NAME");
    // The transaction's own writes are what it sees.
    ok(&c, "BEGIN");
    ok(&c, "INSERT INTO t VALUES (1, 'a')");
    assert_eq!(
        cell(
            &c,
            "SELECT table_rows FROM information_schema.tables WHERE table_name = 't'"
        ),
        "1"
    );
    ok(&c, "ROLLBACK");
    code(&c, "SELECT * FROM information_schema.nope", 1109);
    // A user table named like a virtual one is still the user's.
    ok(&c, "CREATE TABLE tables (x INT)");
    assert_eq!(cell(&c, "SELECT count(*) FROM tables"), "0");
}
