"""The engine's background session over the wire: a Routine of tenant `sys`
(user `cascade`) that trims the trace buffer. `sys`'s admin sees it in SHOW
PROCESSLIST as a `Daemon` and may KILL it; no other tenant sees it or can
name it; the server still shuts down cleanly."""
from __future__ import annotations

import pymysql
import pytest

from conftest import ALICE_ADMIN, BOB, CONFIG, ROOT, CascadeServer, processlist, query, wait_until


@pytest.fixture(scope="module")
def own_server():
    s = CascadeServer(CONFIG)
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def daemons(conn):
    return [p for p in processlist(conn) if p["Command"] == "Daemon"]


def test_background_session_is_a_sys_daemon_only_sys_admin_sees(own_server):
    root = own_server.connect(*ROOT)
    alice_admin = own_server.connect(*ALICE_ADMIN)
    bob = own_server.connect(*BOB)
    try:
        rows = daemons(root)
        assert len(rows) == 1, processlist(root)
        bg = rows[0]
        assert bg["User"] == "cascade", bg
        assert not daemons(alice_admin), "another tenant's admin sees no sys session"
        assert not daemons(bob)
        # Another tenant cannot name it: unknown thread, as for an id that
        # does not exist.
        for who in (alice_admin, bob):
            with pytest.raises(pymysql.err.MySQLError) as e:
                query(who, f"KILL {bg['Id']}")
            assert e.value.args[0] == 1094, e.value.args
        assert daemons(root) == [bg] or [d["Id"] for d in daemons(root)] == [bg["Id"]]
        # sys's admin may end it; it closes and leaves the list.
        query(root, f"KILL {bg['Id']}")
        wait_until(lambda: not daemons(root), timeout=10, what="the background session to leave")
        assert query(root, "SELECT 1") == ((1,),)
    finally:
        for c in (root, alice_admin, bob):
            c.close()
