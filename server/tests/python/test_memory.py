"""The memory budget through the wire: the issue's count(DISTINCT) over two
billion rows, under the server's default budget (1 GiB), fails with error
1041 naming the budget, and the server's RSS stays bounded meanwhile.

A server of its own, so that the RSS measured is this statement's alone. A
watchdog kills the statement if the server grows past the bound, so that a
regression fails the test instead of exhausting the machine's memory."""
from __future__ import annotations

import threading
import time

import pymysql

from conftest import ALICE, CONFIG, CascadeServer, connection_id, query
from servers import rss_kib

ISSUE_SQL = "SELECT count(DISTINCT x) FROM generate_series(1, 2000000000) AS g(x)"
DEFAULT_BUDGET = 1 << 30
# The budget holds the set and its rehash; batches and the allocator's slack
# are small. Before the set was budgeted the server grew to 2.4 GB.
BOUND_KIB = (DEFAULT_BUDGET + (256 << 20)) // 1024


def test_count_distinct_hits_the_default_budget_and_rss_stays_bounded():
    s = CascadeServer(CONFIG)
    try:
        victim = s.connect(*ALICE, read_timeout=300)
        killer = s.connect(*ALICE)
        vid = connection_id(victim)
        base = rss_kib(s.pid)
        peak = [base]
        stop = threading.Event()
        tripped = threading.Event()

        def watch():
            while not stop.is_set():
                r = rss_kib(s.pid)
                peak[0] = max(peak[0], r)
                if r - base > BOUND_KIB and not tripped.is_set():
                    tripped.set()
                    query(killer, f"KILL QUERY {vid}")
                time.sleep(0.005)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        err = None
        try:
            query(victim, ISSUE_SQL)
        except pymysql.err.MySQLError as e:
            err = e
        stop.set()
        t.join(10)
        grown = peak[0] - base
        print(f"\nserver RSS grew by {grown} KiB (bound {BOUND_KIB} KiB): {err!r}")
        assert not tripped.is_set(), f"the server grew past {BOUND_KIB} KiB; the statement was killed: {err!r}"
        assert err is not None, "the statement succeeded"
        assert err.args[0] == 1041, err
        assert f"memory budget of {DEFAULT_BUDGET} bytes exceeded" in err.args[1], err
        assert grown < BOUND_KIB
        # The connection works afterwards.
        assert query(victim, "SELECT 2") == ((2,),)
        victim.close()
        killer.close()
    finally:
        code = s.stop()
    assert code == 0, s.log_text()[-3000:]
