"""Fixtures of the real-client tests: a cascade-server (the binary at
$CASCADE_SERVER_BIN, default target/debug/cascade-server) with
test-config.toml, and a throwaway MariaDB server for comparisons."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pymysql
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from servers import CascadeServer, MariaDBServer  # noqa: E402

CONFIG = HERE / "test-config.toml"

# Logins of test-config.toml: (login name, password).
ROOT = ("sys:root:admin", "rootpw")
ALICE_ADMIN = ("acme:alice:admin", "alice")
ALICE = ("acme:alice", "alice")
BOB = ("acme:bob", "bob")
CAROL_ADMIN = ("globex:carol:admin", "carol")


@pytest.fixture(scope="session")
def server():
    s = CascadeServer(CONFIG)
    yield s
    code = s.stop()
    assert code == 0, f"cascade-server exited with {code}\n{s.log_text()[-3000:]}"


@pytest.fixture(scope="session")
def mariadb():
    m = MariaDBServer()
    yield m
    m.stop()


def connect(server, login, **kw) -> pymysql.Connection:
    return server.connect(login[0], login[1], **kw)


def connection_id(conn) -> int:
    with conn.cursor() as c:
        c.execute("SELECT CONNECTION_ID()")
        return c.fetchone()[0]


def query(conn, sql):
    with conn.cursor() as c:
        c.execute(sql)
        return c.fetchall()


def wait_until(pred, timeout=10.0, step=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def processlist(conn):
    """SHOW PROCESSLIST as dicts."""
    with conn.cursor() as c:
        c.execute("SHOW PROCESSLIST")
        names = [d[0] for d in c.description]
        return [dict(zip(names, r)) for r in c.fetchall()]


def wait_running(watcher, conn_id, timeout=10.0):
    """Waits until connection `conn_id` is executing a statement, as seen by
    `watcher` (which must be allowed to see it)."""
    def running():
        return any(p["Id"] == conn_id and p["Command"] == "Query" for p in processlist(watcher))
    wait_until(running, timeout, what=f"connection {conn_id} to run a statement")


class Background:
    """Runs a statement in a thread; `.result()` gives (value, exception)."""

    def __init__(self, conn, sql):
        self.conn, self.sql = conn, sql
        self.value = self.error = None
        self.t0 = time.monotonic()
        self.t1 = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.value = query(self.conn, self.sql)
        except Exception as e:  # noqa: BLE001 - handed to the test
            self.error = e
        self.t1 = time.monotonic()

    def result(self, timeout=30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.sql!r} still running after {timeout}s"
        return self.value, self.error
