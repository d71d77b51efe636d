"""Tenants own their data, over the wire (issue 10): two tenants create the
same table name and each sees only its own rows; every way to name the
other tenant's table answers as if it did not exist (1146 / 1049); `USE`,
COM_INIT_DB and the handshake's database field select a database of the
caller's tenant only."""
from __future__ import annotations

import uuid

import pymysql
import pytest

from conftest import (ALICE, BOB, CAROL_ADMIN, ROOT, Background, connect, connection_id, processlist, query,
                      wait_until)


def name(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def error_code(conn, sql):
    with pytest.raises(pymysql.MySQLError) as e:
        query(conn, sql)
    return e.value.args[0]


def test_two_tenants_same_table_name_separate_rows(server):
    t = name("t")
    acme, globex = connect(server, ALICE), connect(server, CAROL_ADMIN)
    query(acme, f"CREATE TABLE {t} (who VARCHAR(10))")
    query(globex, f"CREATE TABLE {t} (who VARCHAR(10))")
    query(acme, f"INSERT INTO {t} VALUES ('acme')")
    query(globex, f"INSERT INTO {t} VALUES ('globex'), ('globex')")
    assert query(acme, f"SELECT who FROM {t}") == (("acme",),)
    assert query(globex, f"SELECT who FROM {t}") == (("globex",), ("globex",))
    # Another connection of the same tenant sees the tenant's rows.
    bob = connect(server, BOB)
    assert query(bob, f"SELECT who FROM cascade.{t}") == (("acme",),)
    for c in (acme, globex, bob):
        c.close()


def test_escape_attempts_get_1146_or_1049(server):
    db, t = name("secret"), name("s")
    acme, globex = connect(server, ALICE), connect(server, CAROL_ADMIN)
    query(acme, f"CREATE DATABASE {db}")
    query(acme, f"CREATE TABLE {db}.{t} (x INT)")
    query(acme, f"INSERT INTO {db}.{t} VALUES (42)")
    query(acme, f"CREATE VIEW {db}.v AS SELECT * FROM {db}.{t}")
    mine = name("mine")
    query(globex, f"CREATE TABLE {mine} (x INT)")
    for sql in [
        f"SELECT * FROM {db}.{t}",
        f"SELECT * FROM {db}.v",
        f"SELECT (SELECT count(*) FROM {db}.{t})",
        f"SELECT * FROM {mine} WHERE x IN (SELECT x FROM {db}.{t})",
        f"WITH c AS (SELECT * FROM {db}.{t}) SELECT * FROM c",
        f"INSERT INTO {mine} SELECT * FROM {db}.{t}",
        f"INSERT INTO {db}.{t} VALUES (1)",
        f"UPDATE {db}.{t} SET x = 0",
        f"DELETE FROM {db}.{t}",
        f"CREATE VIEW {name('v')} AS SELECT * FROM {db}.{t}",
        f"DESCRIBE {db}.{t}",
        f"SHOW COLUMNS FROM {t} FROM {db}",
        f"SHOW CREATE TABLE {db}.{t}",
        f"CREATE INDEX ix ON {db}.{t} (x)",
    ]:
        assert error_code(globex, sql) == 1146, sql
    assert error_code(globex, f"USE {db}") == 1049
    assert error_code(globex, f"SHOW TABLES FROM {db}") == 1049
    assert error_code(globex, f"DROP TABLE {db}.{t}") == 1051
    assert error_code(globex, f"DROP DATABASE {db}") == 1008
    with pytest.raises(pymysql.MySQLError) as e:
        globex.select_db(db)
    assert e.value.args[0] == 1049
    assert query(globex, f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{db}'") == ((0,),)
    assert (db,) not in query(globex, "SHOW DATABASES")
    # The handshake's database field: the tenant's only.
    with pytest.raises(pymysql.MySQLError) as e:
        server.connect(*CAROL_ADMIN, database=db)
    assert e.value.args[0] == 1049
    assert "Unknown database" in e.value.args[1]
    # The sys admin administers but reads no tenant's data (the default).
    root = connect(server, ROOT)
    assert error_code(root, f"SELECT * FROM {db}.{t}") == 1146
    # acme's data is untouched.
    assert query(acme, f"SELECT x FROM {db}.v") == ((42,),)
    query(acme, f"DROP DATABASE {db}")
    for c in (acme, globex, root):
        c.close()


def test_create_use_drop_database_and_handshake_database(server):
    db = name("shop")
    c = connect(server, ALICE)
    assert query(c, "SELECT DATABASE()") == (("cascade",),)
    query(c, f"CREATE DATABASE {db}")
    assert error_code(c, f"CREATE DATABASE {db}") == 1007
    assert (db,) in query(c, "SHOW DATABASES")
    query(c, f"USE {db}")
    assert query(c, "SELECT DATABASE()") == ((db,),)
    query(c, "CREATE TABLE t (x INT)")
    query(c, "INSERT INTO t VALUES (1), (2)")
    c2 = server.connect(*ALICE, database=db)
    assert query(c2, "SELECT DATABASE(), count(*) FROM t") == ((db, 2),)
    c2.select_db("cascade")
    assert error_code(c2, "SELECT * FROM t") == 1146
    assert query(c2, f"SELECT count(*) FROM {db}.t") == ((2,),)
    query(c, f"DROP DATABASE {db}")
    assert query(c, "SELECT DATABASE()") == ((None,),)
    assert error_code(c, "SELECT * FROM t") == 1046
    assert error_code(c, f"USE {db}") == 1049
    c.close(); c2.close()


def test_drop_database_cancels_a_running_query_on_it(server):
    db = name("busy")
    victim, dropper = connect(server, ALICE), connect(server, BOB)
    query(victim, f"CREATE DATABASE {db}")
    query(victim, f"CREATE TABLE {db}.t (x INT)")
    query(victim, f"INSERT INTO {db}.t VALUES (1)")
    vid = connection_id(victim)
    run = Background(victim, f"SELECT SLEEP(100) FROM {db}.t")
    # Executing, not just registered: its names are resolved by then.
    watcher = connect(server, ALICE)
    wait_until(lambda: any(p["Id"] == vid and p["State"] == "executing" for p in processlist(watcher)),
               what="the query to execute")
    query(dropper, f"DROP DATABASE {db}")
    _, err = run.result(timeout=10)
    assert isinstance(err, pymysql.err.OperationalError), err
    assert err.args[0] == 1317, err.args
    assert "database dropped" in err.args[1], err.args
    assert query(victim, "SELECT 1") == ((1,),)
    victim.close(); dropper.close()
