"""KILL and SHOW PROCESSLIST across 3 cascade-server processes (issue 12.3's
control path, docs/across-nodes.md): global connection ids (the node id in
the high 10 bits of the 4-byte id), `KILL [QUERY|CONNECTION] <id>` sent to
any node reaching the node that owns the connection, the owner's 1094/1095
word for word, the cluster-wide process list, and a dead peer reported as a
warning, not a failure. All on loopback; no timing assertions (waits are
bounded, and what is asserted is what happened, never how fast)."""
from __future__ import annotations

import signal

import pymysql
import pytest

from conftest import (ALICE, ALICE_ADMIN, BOB, CAROL_ADMIN, ROOT, Background, connect, connection_id,
                      processlist, query, wait_until)
from servers import Cluster

NODE_BITS_SHIFT = 22


def node_of(conn_id: int) -> int:
    return conn_id >> NODE_BITS_SHIFT


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(3)
    yield c
    codes = c.stop()
    assert codes == [0, 0, 0], f"exit codes {codes}\n{c.logs()[-4000:]}"


def test_connection_ids_carry_the_node(cluster):
    for n in (1, 2, 3):
        conn = connect(cluster.node(n), ALICE)
        cid = connection_id(conn)
        assert node_of(cid) == n, (n, cid)
        # The handshake announced the same id (what clients pass to KILL).
        assert conn.server_thread_id[0] == cid
        rows = processlist(conn)
        mine = [p for p in rows if p["Id"] == cid]
        assert len(mine) == 1 and mine[0]["Node"] == n, rows
        conn.close()


@pytest.mark.parametrize("via", [1, 3])
def test_kill_query_sent_to_another_node_stops_the_statement(cluster, via):
    victim = connect(cluster.node(2), ALICE)
    killer = connect(cluster.node(via), ALICE_ADMIN)
    vid, kid = connection_id(victim), connection_id(killer)
    run = Background(victim, "SELECT SLEEP(100)")
    # acme's admin sees acme's connections on every node.
    wait_until(lambda: any(p["Id"] == vid and p["Command"] == "Query" for p in processlist(killer)),
               what="the victim to run on node 2, seen from node %d" % via)
    query(killer, f"KILL QUERY {vid}")
    _, err = run.result(timeout=30)
    assert isinstance(err, pymysql.err.OperationalError), err
    assert err.args[0] == 1317, err.args
    # The cause names the requesting node and connection.
    assert f"cancelled by node {via}: killed by KILL QUERY from connection {kid} (user alice)" in err.args[1], err.args
    # Only the statement: the connection goes on, and the kill is not
    # applied to its next statement.
    assert query(victim, "SELECT 1 + 1") == ((2,),)
    assert connection_id(victim) == vid
    # The owner's log names where the KILL came from.
    assert f"from_node={via}" in cluster.node(2).log_text()
    victim.close(); killer.close()


def test_kill_connection_across_nodes(cluster):
    victim = connect(cluster.node(3), BOB)
    killer = connect(cluster.node(1), ALICE_ADMIN)
    vid = connection_id(victim)
    run = Background(victim, "SELECT SLEEP(100)")
    wait_until(lambda: any(p["Id"] == vid and p["Command"] == "Query" for p in processlist(killer)),
               what="bob's statement on node 3")
    query(killer, f"KILL CONNECTION {vid}")
    _, err = run.result(timeout=30)
    assert isinstance(err, pymysql.err.OperationalError), err
    assert err.args[0] in (1317, 1927, 2013), err.args
    with pytest.raises(pymysql.err.OperationalError) as e:
        query(victim, "SELECT 1")
    assert e.value.args[0] in (1927, 2006, 2013), e.value.args
    wait_until(lambda: all(p["Id"] != vid for p in processlist(killer)), what="bob's connection to leave node 3")
    # An idle connection too (plain KILL is KILL CONNECTION).
    idle = connect(cluster.node(2), BOB)
    iid = connection_id(idle)
    query(killer, f"KILL {iid}")
    wait_until(lambda: all(p["Id"] != iid for p in processlist(killer)), what="the idle connection to leave node 2")
    with pytest.raises(pymysql.err.OperationalError):
        query(idle, "SELECT 1")
    killer.close()


def test_kill_permissions_across_nodes_answer_word_for_word(cluster):
    alice = connect(cluster.node(2), ALICE)
    aid = connection_id(alice)
    bob = connect(cluster.node(1), BOB)
    carol = connect(cluster.node(3), CAROL_ADMIN)
    # Same tenant, not own, not admin: 1095, as on one node.
    for sql in (f"KILL QUERY {aid}", f"KILL {aid}"):
        with pytest.raises(pymysql.err.OperationalError) as e:
            query(bob, sql)
        assert e.value.args == (1095, f"You are not owner of thread {aid}"), (sql, e.value.args)
    # Another tenant's connection is invisible, even to its admin: 1094,
    # the same words as an id nobody has.
    with pytest.raises(pymysql.err.OperationalError) as e:
        query(carol, f"KILL {aid}")
    assert e.value.args == (1094, f"Unknown thread id: {aid}"), e.value.args
    nobody = (2 << NODE_BITS_SHIFT) | 4_000_000
    with pytest.raises(pymysql.err.OperationalError) as e:
        query(bob, f"KILL QUERY {nobody}")
    assert e.value.args == (1094, f"Unknown thread id: {nobody}"), e.value.args
    # An id of a node that is not in the cluster: 1094 as well.
    stranger = (9 << NODE_BITS_SHIFT) | 1
    with pytest.raises(pymysql.err.OperationalError) as e:
        query(bob, f"KILL {stranger}")
    assert e.value.args == (1094, f"Unknown thread id: {stranger}"), e.value.args
    assert query(alice, "SELECT 7") == ((7,),), "alice is untouched"
    alice.close(); bob.close(); carol.close()


def test_sys_admin_sees_the_whole_cluster_from_node_3(cluster):
    conns = {}
    for n, login in ((1, ALICE), (2, BOB), (2, CAROL_ADMIN), (3, ALICE)):
        c = connect(cluster.node(n), login)
        conns[connection_id(c)] = (c, n, login[0].split(":")[1])
    root = connect(cluster.node(3), ROOT)
    rows = processlist(root)
    by_id = {p["Id"]: p for p in rows}
    for cid, (_, n, user) in conns.items():
        assert cid in by_id, (cid, rows)
        assert by_id[cid]["Node"] == n and node_of(cid) == n
        assert by_id[cid]["User"] == user
    assert {p["Node"] for p in rows} >= {1, 2, 3}
    assert query(root, "SHOW WARNINGS") == ()
    # Other users see only what the kill rules let them see: alice her
    # own connections, on every node.
    alice = next(c for c, n, u in conns.values() if u == "alice" and n == 1)
    seen = {p["Id"] for p in processlist(alice)} & set(conns)
    assert seen == {cid for cid, (_, _, u) in conns.items() if u == "alice"}
    for c, _, _ in conns.values():
        c.close()
    root.close()


@pytest.fixture()
def cluster_with_a_dead_peer():
    c = Cluster(3)
    # Node 2 dies without a goodbye.
    c.node(2).stop(signal.SIGKILL)
    yield c
    c.stop()


def test_a_dead_peer_is_a_warning_in_the_process_list_and_a_named_error_for_kill(cluster_with_a_dead_peer):
    c = cluster_with_a_dead_peer
    root = connect(c.node(1), ROOT)
    other = connect(c.node(3), ALICE)
    oid = connection_id(other)
    rows = processlist(root)
    assert any(p["Id"] == oid and p["Node"] == 3 for p in rows), rows
    assert all(p["Node"] != 2 for p in rows)
    warnings = query(root, "SHOW WARNINGS")
    assert len(warnings) == 1, warnings
    level, _code, message = warnings[0]
    assert level == "Warning"
    assert message.startswith("node 2: processlist unavailable: node 2 ("), message
    # KILL of a connection id of the dead node: an error that names it.
    on2 = (2 << NODE_BITS_SHIFT) | 1
    with pytest.raises(pymysql.err.OperationalError) as e:
        query(root, f"KILL {on2}")
    assert e.value.args[0] == 1429, e.value.args
    assert e.value.args[1].startswith("node 2 (") and "unreachable" in e.value.args[1], e.value.args
    # The live peer still answers.
    query(root, f"KILL {oid}")
    wait_until(lambda: all(p["Id"] != oid for p in processlist(root)), what="node 3's connection to leave")
    root.close()
