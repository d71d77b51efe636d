"""COM_RESET_CONNECTION over the wire: opensrv-mysql 0.7 answers it with OK
without telling the shim, so the server's reader spots it and resets the
engine connection first: the open transaction rolls back (on a cleanup
context) and the session variables go back to their defaults."""
from __future__ import annotations

from conftest import ALICE, BOB, connect, connection_id, query

COM_RESET_CONNECTION = 0x1F


def reset_connection(conn):
    # pymysql has no public call for it; the command has no argument and
    # its reply is an OK packet.
    conn._execute_command(COM_RESET_CONNECTION, b"")
    conn._read_ok_packet()


def test_reset_connection_rolls_back_and_resets_variables(server):
    a = connect(server, ALICE, autocommit=True)
    b = connect(server, BOB, autocommit=True)
    try:
        query(a, "DROP TABLE IF EXISTS reset_t")
        query(a, "CREATE TABLE reset_t (x BIGINT)")
        me = connection_id(a)
        query(a, "SET max_execution_time = 50")
        query(a, "BEGIN")
        query(a, "INSERT INTO reset_t VALUES (1), (2)")
        assert query(a, "SELECT count(*) FROM reset_t")[0][0] == 2

        reset_connection(a)

        assert query(b, "SELECT count(*) FROM reset_t")[0][0] == 0
        assert query(a, "SELECT count(*) FROM reset_t")[0][0] == 0, "rolled back"
        assert query(a, "SELECT @@max_execution_time")[0][0] == 0
        assert query(a, "SELECT @@autocommit")[0][0] == 1
        assert connection_id(a) == me, "the same connection"
        # Autocommit again: a write is visible to others at once.
        query(a, "INSERT INTO reset_t VALUES (3)")
        assert query(b, "SELECT count(*) FROM reset_t")[0][0] == 1
    finally:
        query(b, "DROP TABLE IF EXISTS reset_t")
        a.close()
        b.close()
