"""The wire, with real clients: logins, column types, error codes and
SQLSTATEs (pymysql and the `mariadb` CLI), client disconnects, connection
limits, bad packets and graceful shutdown."""
from __future__ import annotations

from decimal import Decimal

import signal
import socket
import struct
import subprocess
import time
import uuid

import pymysql
import pytest

from conftest import (ALICE, ALICE_ADMIN, BOB, CONFIG, ROOT, Background, CascadeServer, connect, connection_id,
                      processlist, query, wait_running, wait_until)


def table():
    return "t_" + uuid.uuid4().hex[:10]


def mariadb_cli(server, login, sql, *extra, timeout=30):
    """Runs the `mariadb` command-line client; returns (exit code, stdout, stderr)."""
    p = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(server.port), "-u", login[0], f"-p{login[1]}",
         "--batch", *extra, "-e", sql],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


# ---- logging in -------------------------------------------------------------

@pytest.mark.parametrize("login,password", [
    ("acme:alice", "wrong"),          # wrong password
    ("acme:alice", ""),               # no password
    ("acme:nobody", "alice"),         # unknown user
    ("nowhere:alice", "alice"),       # unknown tenant
    ("acme:bob:admin", "bob"),        # role not granted
    ("a:b:c:d", "x"),                 # not tenant:user[:role]
])
def test_bad_logins_get_access_denied_1045(server, login, password):
    with pytest.raises(pymysql.err.OperationalError) as e:
        server.connect(login, password)
    assert e.value.args[0] == 1045, e.value.args
    assert "Access denied" in e.value.args[1]


def test_denied_login_closes_the_connection_cleanly(server):
    rc, out, err = mariadb_cli(server, ("acme:alice", "nope"), "SELECT 1")
    assert rc == 1 and "ERROR 1045 (28000)" in err, err
    # The server is still fine.
    assert query(connect(server, ALICE), "SELECT 1") == ((1,),)


def test_login_identity_reaches_the_engine(server):
    c = connect(server, ALICE_ADMIN)
    me = next(p for p in processlist(c) if p["Id"] == connection_id(c))
    assert (me["Tenant"], me["User"], me["Role"]) == ("acme", "alice", "admin")
    c2 = connect(server, ALICE)  # no role: the first configured one
    me = next(p for p in processlist(c2) if p["Id"] == connection_id(c2))
    assert me["Role"] == "member"
    c.close(); c2.close()


def test_database_in_handshake_and_use_are_accepted(server):
    # The tenant's default database; others: see test_tenancy.py.
    c = server.connect(*ALICE, database="cascade")
    assert query(c, "SELECT 1, DATABASE()") == ((1, "cascade"),)
    c.select_db("information_schema")
    assert query(c, "SELECT 2, DATABASE()") == ((2, "information_schema"),)
    c.close()


# ---- results and errors ------------------------------------------------------

def test_column_types_and_values(server):
    c = connect(server, ALICE)
    with c.cursor() as cur:
        cur.execute("SELECT 42, -7 * 3, 1.5, 0.1 + 0.2, 'héllo', NULL, CONCAT('a', 1), 2 > 1")
        row = cur.fetchone()
        types = [d[1] for d in cur.description]
    # Decimal literals are exact DECIMALs, as in MySQL: 0.1 + 0.2 is 0.3.
    LONGLONG, NEWDECIMAL, VAR_STRING, NULL = 8, 246, 253, 6
    assert types == [LONGLONG, LONGLONG, NEWDECIMAL, NEWDECIMAL, VAR_STRING, NULL, VAR_STRING, LONGLONG]
    assert row == (42, -21, Decimal("1.5"), Decimal("0.3"), "héllo", None, "a1", 1)
    assert all(type(v) is t for v, t in zip(row, [int, int, Decimal, Decimal, str, type(None), str, int]))
    c.close()


def test_dml_reports_affected_rows(server):
    t = table()
    c = connect(server, ALICE)
    with c.cursor() as cur:
        assert cur.execute(f"CREATE TABLE {t} (x BIGINT, s VARCHAR(10))") == 0
        assert cur.execute(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, NULL)") == 3
        assert cur.execute(f"UPDATE {t} SET x = x + 10 WHERE x >= 2") == 2
        assert cur.execute(f"DELETE FROM {t} WHERE s IS NULL") == 1
        cur.execute(f"SELECT x, s FROM {t} ORDER BY x")
        assert cur.fetchall() == ((1, "a"), (12, "b"))
    c.close()


@pytest.mark.parametrize("sql,code,sqlstate", [
    ("SELEC 1", 1064, "42000"),
    ("SELECT * FROM no_such_table_xyz", 1146, "42S02"),
    ("SELECT no_such_column FROM generate_series(1, 2) AS t(x)", 1054, "42S22"),
    ("KILL QUERY 987654321", 1094, "HY000"),
])
def test_engine_errors_keep_code_and_sqlstate(server, sql, code, sqlstate):
    c = connect(server, ALICE)
    with pytest.raises(pymysql.err.MySQLError) as e:
        query(c, sql)
    assert e.value.args[0] == code, e.value.args
    c.close()
    rc, _, err = mariadb_cli(server, ALICE, sql)
    assert rc == 1 and f"ERROR {code} ({sqlstate})" in err, err


def test_statement_timeout_code_is_3024_through_the_cli(server):
    rc, _, err = mariadb_cli(server, ALICE, "SET max_execution_time = 100; SELECT SLEEP(10)")
    assert rc == 1 and "ERROR 3024 (HY000)" in err, err


def test_mariadb_cli_runs_queries(server):
    rc, out, err = mariadb_cli(server, ALICE, "SELECT 1 AS one, 'two' AS two, NULL AS three; SELECT 2.5 AS x")
    assert rc == 0, err
    assert out.splitlines() == ["one\ttwo\tthree", "1\ttwo\tNULL", "x", "2.5"]


def test_mariadb_cli_query_killed_from_another_connection(server):
    admin = connect(server, ALICE_ADMIN)
    before = {p["Id"] for p in processlist(admin)}
    cli = subprocess.Popen(
        ["mariadb", "-h", "127.0.0.1", "-P", str(server.port), "-u", BOB[0], f"-p{BOB[1]}", "--batch",
         "-e", "SELECT SLEEP(100); SELECT 'after'"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        def cli_running():
            return [p for p in processlist(admin) if p["Id"] not in before and p["Command"] == "Query"
                    and "SLEEP(100)" in (p["Info"] or "")]
        target = wait_until(cli_running, what="the CLI's statement")[0]["Id"]
        query(admin, f"KILL QUERY {target}")
        out, err = cli.communicate(timeout=10)
    finally:
        cli.kill()
    assert cli.returncode == 1 and "ERROR 1317 (70100)" in err, (cli.returncode, out, err)
    admin.close()


# ---- clients that leave --------------------------------------------------------

def abort(conn):
    """Drops the client's socket without a COM_QUIT, as a crashed client does."""
    conn._sock.shutdown(socket.SHUT_RDWR)
    conn._sock.close()


def test_disconnect_mid_query_cancels_it_and_rolls_back(server):
    t = table()
    admin = connect(server, ALICE_ADMIN)
    query(admin, f"CREATE TABLE {t} (x BIGINT)")
    c = connect(server, ALICE)
    cid = connection_id(c)
    query(c, "BEGIN")
    query(c, f"INSERT INTO {t} VALUES (1), (2)")
    c.cursor().execute  # noqa: B018
    # Send the long statement without waiting for its answer, then vanish.
    c._execute_command(pymysql.constants.COMMAND.COM_QUERY, "SELECT SLEEP(100)")
    wait_running(admin, cid)
    abort(c)
    wait_until(lambda: all(p["Id"] != cid for p in processlist(admin)), timeout=5,
               what="the disconnected connection to leave the process list")
    assert query(admin, f"SELECT COUNT(*) FROM {t}") == ((0,),)
    wait_until(lambda: "client disconnected during a query" in server.log_text(), timeout=5,
               what="the server to log the disconnect")
    admin.close()


def test_disconnect_idle_in_transaction_rolls_back(server):
    t = table()
    admin = connect(server, ALICE_ADMIN)
    query(admin, f"CREATE TABLE {t} (x BIGINT)")
    c = connect(server, ALICE)
    cid = connection_id(c)
    query(c, "BEGIN")
    query(c, f"INSERT INTO {t} VALUES (1), (2), (3)")
    abort(c)
    wait_until(lambda: all(p["Id"] != cid for p in processlist(admin)), timeout=5, what="the connection to leave")
    assert query(admin, f"SELECT COUNT(*) FROM {t}") == ((0,),)
    admin.close()


# ---- limits and bad input --------------------------------------------------------

def test_max_connections_gives_1040_and_frees_slots():
    s = CascadeServer(CONFIG, "--max-connections", "3")
    try:
        held = [connect(s, ALICE) for _ in range(3)]
        with pytest.raises(pymysql.err.OperationalError) as e:
            connect(s, ALICE)
        assert e.value.args[0] == 1040, e.value.args
        # The held connections are unaffected.
        assert all(query(c, "SELECT 1") == ((1,),) for c in held)
        held.pop().close()
        c = wait_until(lambda: _try_connect(s), timeout=5, what="a free slot")
        assert query(c, "SELECT 1") == ((1,),)
    finally:
        assert s.stop() == 0


def _try_connect(s):
    try:
        return connect(s, ALICE)
    except pymysql.err.OperationalError:
        return None


def raw_handshake(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    hdr = s.recv(4)
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    assert body[0] == 10, "protocol 10 handshake"
    return s


def closed_by_server(s, timeout=5.0):
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@pytest.mark.parametrize("garbage", [
    b"\x05\x00\x00\x01hello",                           # a handshake response that is not one
    b"\x01\x00\x00\x01",                                # a truncated packet, then EOF-less silence
    b"\xff\xff\xff\x01" + b"\x00" * 100 + b"\x03\x00\x00\x09abc",  # broken multi-packet sequence
], ids=["bad_handshake", "truncated", "bad_sequence"])
def test_malformed_packets_close_only_that_connection(server, garbage):
    bystander = connect(server, ALICE)
    run = Background(bystander, "SELECT SLEEP(0.5), 1")
    s = raw_handshake(server)
    s.sendall(garbage)
    if garbage == b"\x01\x00\x00\x01":
        s.shutdown(socket.SHUT_WR)
    assert closed_by_server(s), "the server kept a connection that sent garbage"
    s.close()
    value, err = run.result(10)
    assert err is None and value == ((0, 1),)
    assert query(connect(server, ALICE), "SELECT 1") == ((1,),)
    bystander.close()


@pytest.mark.parametrize("packet", [
    b"\x05\x00\x00\x00\x03\xff\xfe\xfd\xfc",                       # COM_QUERY that is not UTF-8
    b"\xff\xff\xff\x00\x03" + b"x" * 0xFFFFFE + b"\x01\x00\x00\x07y",  # 16 MiB + bad sequence id
], ids=["not_utf8", "huge_bad_sequence"])
def test_garbage_after_login_closes_only_that_connection(server, packet):
    c = connect(server, ALICE)
    bystander = connect(server, BOB)
    try:
        c._sock.sendall(packet)
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed while we were still sending: that is the point
    assert closed_by_server(c._sock)
    assert query(bystander, "SELECT 1") == ((1,),)
    bystander.close()


def test_oversized_command_closes_only_that_connection(server):
    c = connect(server, ALICE)
    cid = connection_id(c)
    bystander = connect(server, ALICE_ADMIN)
    big = "SELECT '" + "x" * (2 * 1024 * 1024) + "'"   # test-config: max_packet_bytes = 1 MiB
    with pytest.raises(pymysql.err.OperationalError):
        query(c, big)
    assert query(bystander, "SELECT 1") == ((1,),)
    wait_until(lambda: all(p["Id"] != cid for p in processlist(bystander)), timeout=5, what="the connection to leave")
    # A command under the limit is fine.
    fine = connect(server, ALICE)
    assert len(query(fine, "SELECT '" + "y" * 500_000 + "'")[0][0]) == 500_000
    fine.close(); bystander.close()


def test_slow_handshake_is_closed():
    s = CascadeServer(CONFIG)
    try:
        sock = raw_handshake(s)
        # test-config: handshake_timeout_secs = 5
        assert closed_by_server(sock, timeout=10)
        assert query(connect(s, ALICE), "SELECT 1") == ((1,),)
    finally:
        assert s.stop() == 0


# ---- shutdown --------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(sig):
    s = CascadeServer(CONFIG)
    t = table()
    admin = connect(s, ROOT)
    owner = connect(s, ALICE_ADMIN)  # the table is acme's, where bob writes
    query(owner, f"CREATE TABLE {t} (x BIGINT)")
    owner.close()
    busy, idle_txn = connect(s, ALICE), connect(s, BOB)
    bid = connection_id(busy)
    query(idle_txn, "BEGIN")
    query(idle_txn, f"INSERT INTO {t} VALUES (1)")
    run = Background(busy, "SELECT SLEEP(100)")
    wait_running(admin, bid)
    t0 = time.monotonic()
    s.proc.send_signal(sig)
    _, err = run.result(timeout=10)
    assert isinstance(err, pymysql.err.OperationalError), err
    assert err.args[0] in (1053, 1317, 2013), err.args
    code = s.proc.wait(timeout=15)
    elapsed = time.monotonic() - t0
    s.stop()
    assert code == 0, s.log_text()[-2000:]
    assert elapsed < 5, elapsed
    print(f"shutdown took {elapsed:.3f}s")
    log = s.log_text()
    assert "every connection closed" in log, log[-2000:]
    with pytest.raises(pymysql.err.OperationalError):
        query(idle_txn, "SELECT 1")


def test_handshake_announces_the_real_connection_id(server):
    # pymysql keeps the id from the handshake as server_thread_id; clients
    # such as `mariadb` use it for Ctrl-C's KILL QUERY.
    c = connect(server, ALICE)
    try:
        announced = c.server_thread_id[0]
        assert announced == connection_id(c)
        assert announced > 0
    finally:
        c.close()
