"""Per-tenant limits over the wire (server/tests/python/tenant-limits.toml):
`max_connections` of one tenant refuses its next login with 1040 naming the
tenant while other tenants log in; a closed, killed or dropped connection
frees its slot. A tenant's memory budget, shared by its statements, stops
the statement that crosses it with 1041 naming the tenant's budget, while
the tenant's other statement and another tenant's go on."""
from __future__ import annotations

import socket
from pathlib import Path

import pymysql
import pytest

from conftest import Background, CascadeServer, connection_id, processlist, query, wait_running, wait_until

CONFIG = Path(__file__).resolve().parent / "tenant-limits.toml"
DAVE = ("initech:dave", "dave")
ALICE_ADMIN = ("acme:alice:admin", "alice")
BOB = ("acme:bob", "bob")
CAROL = ("globex:carol", "carol")
MIB = 1 << 20


@pytest.fixture(scope="module")
def server():
    s = CascadeServer(CONFIG)
    yield s
    code = s.stop()
    assert code == 0, f"cascade-server exited with {code}\n{s.log_text()[-3000:]}"


def refused(server, login):
    with pytest.raises(pymysql.err.OperationalError) as e:
        server.connect(*login)
    return e.value


def connects(server, login):
    """A login that succeeds once the server has let go of a closed slot."""
    def attempt():
        try:
            return server.connect(*login)
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1040, e
            return None
    return wait_until(attempt, what=f"a {login[0]} login to be accepted")


def test_max_connections_per_tenant(server):
    a = server.connect(*DAVE)
    b = server.connect(*DAVE)
    e = refused(server, DAVE)
    assert e.args[0] == 1040, e
    assert e.args[1] == "Too many connections for tenant 'initech' (max_connections 2)", e
    # Other tenants are not affected.
    others = [server.connect(*CAROL) for _ in range(3)]
    assert query(a, "SELECT @@cascade_tenant_max_connections") == ((2,),)

    # A closed connection frees its slot.
    b.close()
    c = connects(server, DAVE)
    assert refused(server, DAVE).args[0] == 1040

    # KILL CONNECTION frees it (the server closes the killed connection).
    query(a, f"KILL CONNECTION {connection_id(c)}")
    d = connects(server, DAVE)

    # A client that goes away without a word frees it too.
    d_sock = d._sock
    d_sock.shutdown(socket.SHUT_RDWR)
    d_sock.close()
    e2 = connects(server, DAVE)
    for conn in [a, e2, *others]:
        conn.close()


def test_tenant_memory_budget_stops_the_greedy_statement_only(server):
    alice = server.connect(*ALICE_ADMIN)
    holder = server.connect(*ALICE_ADMIN, read_timeout=120)
    greedy = server.connect(*BOB, read_timeout=120)
    carol = server.connect(*CAROL, read_timeout=120)
    carol_watch = server.connect(*CAROL)
    hid, cid = connection_id(holder), connection_id(carol)
    # acme's default max_execution_time comes from its [tenants.acme].
    assert query(greedy, "SELECT @@max_execution_time") == ((600000,),)
    assert query(greedy, "SELECT @@cascade_tenant_memory_budget") == ((16 * MIB,),)

    # Holds a small set of acme's budget and runs on.
    held = Background(holder, "SELECT count(DISTINCT x % 1000) FROM generate_series(1, 10000000000) AS t(x)")
    wait_running(alice, hid)
    wait_until(lambda: next(p for p in processlist(alice) if p["Id"] == hid)["Tenant_memory"] > 0,
               what="the holder to reserve memory")
    # Another tenant's long query runs meanwhile.
    other = Background(carol, "SELECT count(*) FROM generate_series(1, 10000000000) AS t(x) WHERE x % 7 = 0")
    wait_running(carol_watch, cid)

    with pytest.raises(pymysql.err.OperationalError) as e:
        query(greedy, "SELECT count(DISTINCT x) FROM generate_series(1, 100000000) AS t(x)")
    assert e.value.args[0] == 1041, e.value
    assert f"memory budget of tenant 'acme' ({16 * MIB} bytes" in e.value.args[1], e.value

    # The tenant's other statement and the other tenant's go on.
    rows = {p["Id"]: p for p in processlist(alice)}
    assert rows[hid]["Command"] == "Query", rows[hid]
    assert rows[hid]["Tenant_memory_budget"] == 16 * MIB
    assert 0 < rows[hid]["Tenant_memory"] <= 16 * MIB
    assert hid in rows and cid not in rows, "another tenant's connection is not listed"
    carol_row = next(p for p in processlist(carol_watch) if p["Id"] == cid)
    assert carol_row["Command"] == "Query" and carol_row["Tenant_memory_budget"] is None
    # The greedy connection works on.
    assert query(greedy, "SELECT 1") == ((1,),)

    query(alice, f"KILL QUERY {hid}")
    query(carol_watch, f"KILL QUERY {cid}")
    for bg in (held, other):
        _, err = bg.result()
        assert err is not None and err.args[0] == 1317, err
    wait_until(lambda: next(p for p in processlist(alice) if p["Id"] == hid)["Tenant_memory"] == 0,
               what="acme's memory to be given back")
    for conn in (alice, holder, greedy, carol, carol_watch):
        conn.close()
