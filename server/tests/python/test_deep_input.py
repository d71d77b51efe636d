"""Issue 8: statements shaped to exhaust the stack (long operator chains,
wide UNIONs, deep nesting, a statement as big as the packet limit) get their
result or a clean error, and the server keeps serving everyone else. Before
the fix the first of them aborted the whole process (a stack overflow in a
tokio worker)."""
from __future__ import annotations

import pymysql
import pytest

from conftest import ALICE, BOB, connect, query


def chain(first: str, op: str, term: str, n: int) -> str:
    return first + (op + term) * (n - 1)


def ors(n: int) -> str:
    return "x = -1" + "".join(f" OR x = {i + 4}" for i in range(n))


G = "FROM generate_series(1, 5) AS g(x)"

# (statement, rows it returns, or the error code it gets)
CASES = [
    (f"SELECT {chain('1', '+', '1', 2000)}", ((2000,),)),
    (f"SELECT count(*) {G} WHERE {chain('x > 1', ' AND ', 'x < 5', 50_000)}", ((3,),)),
    (f"SELECT count(*) {G} WHERE {ors(20_000)}", ((2,),)),
    (f"SELECT {chain('0', ' || ', '0', 10_000)} || 1", ((1,),)),
    (f"SELECT sum(x) FROM ({chain('SELECT 1', ' UNION ALL ', 'SELECT 1', 5000)}) AS u(x)", ((5000,),)),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000, 1436),
    ("SELECT " + "- " * 100_000 + "1", 1436),
    ("SELECT 1" + " IS NULL" * 100_000, 1436),
    ("SELECT " + "abs(" * 5000 + "1" + ")" * 5000, 1436),
]


def run(conn, sql, want):
    if isinstance(want, int):
        with pytest.raises(pymysql.err.MySQLError) as e:
            query(conn, sql)
        assert e.value.args[0] == want, (sql[:60], e.value.args)
    else:
        got = query(conn, sql)
        assert tuple(tuple(int(v) for v in r) for r in got) == want, sql[:60]


def test_deep_and_long_statements_answer_and_the_server_keeps_serving(server):
    bystander = connect(server, BOB)
    conn = connect(server, ALICE)
    for sql, want in CASES:
        run(conn, sql, want)
        # Everyone else is still served, on the same connection too.
        assert query(bystander, "SELECT 1") == ((1,),)
        assert query(conn, "SELECT 2") == ((2,),)
    assert server.proc.poll() is None, server.log_text()[-3000:]
    conn.close()
    bystander.close()


def test_a_statement_as_big_as_the_packet_limit(server):
    """test-config.toml allows 1 MiB commands: the biggest left-deep chain
    that fits computes, the deepest nesting that fits is an error."""
    limit = 1 << 20
    conn = connect(server, ALICE)
    terms = (limit - 64) // 2
    run(conn, "SELECT 1" + "+1" * (terms - 1), ((terms,),))
    n = (limit - 64) // 2
    run(conn, "SELECT " + "(" * n + "1" + ")" * n, 1436)
    n = (limit - 64) // 8
    run(conn, "SELECT 1" + " IS NULL" * n, 1436)
    assert query(conn, "SELECT 1") == ((1,),)
    assert server.proc.poll() is None, server.log_text()[-3000:]
    conn.close()
