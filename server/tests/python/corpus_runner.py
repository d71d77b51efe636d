"""Runs a SQL corpus file statement by statement and normalises the outcomes
so that two servers' answers can be compared."""
from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pymysql


@dataclass
class Statement:
    sql: str
    line: int
    expect_error: bool
    known_difference: str | None = None


@dataclass
class Outcome:
    kind: str  # "rows" | "ok" | "error"
    rows: list | None = None
    affected: int | None = None
    error: int | None = None
    message: str = ""


def parse(path: Path) -> list[Statement]:
    stmts, buf, start, expect_error, known = [], [], 0, False, None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("--")):
            if s == "-- expect-error":
                expect_error = True
            elif s.startswith("-- known-difference:"):
                known = s.split(":", 1)[1].strip()
            continue
        if not buf:
            start = n
        buf.append(line)
        if s.endswith(";"):
            stmts.append(Statement("\n".join(buf).strip().rstrip(";"), start, expect_error, known))
            buf, expect_error, known = [], False, None
    assert not buf, f"{path}: unterminated statement at line {start}"
    return stmts


def run(conn: pymysql.Connection, stmt: Statement) -> Outcome:
    cur = conn.cursor()
    try:
        cur.execute(stmt.sql)
    except pymysql.MySQLError as e:
        return Outcome("error", error=e.args[0], message=str(e.args[1:]))
    if cur.description is None:
        return Outcome("ok", affected=cur.rowcount)
    return Outcome("rows", rows=[tuple(norm(v) for v in r) for r in cur.fetchall()])


def norm(v):
    """Numbers become floats (MariaDB answers DECIMAL where cascade answers
    BIGINT or DOUBLE), text stays text, NULL stays None."""
    if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def same_rows(a: list, b: list, ordered: bool) -> bool:
    if len(a) != len(b):
        return False
    if not ordered:
        key = lambda r: tuple((x is None, str(x)) for x in r)  # noqa: E731
        a, b = sorted(a, key=key), sorted(b, key=key)
    return all(len(x) == len(y) and all(same_value(p, q) for p, q in zip(x, y)) for x, y in zip(a, b))


def ordered(sql: str) -> bool:
    return re.search(r"\border\s+by\b", sql, re.I) is not None


def compare(stmt: Statement, ours: Outcome, theirs: Outcome) -> str | None:
    """None when the outcomes agree, else a description of the difference."""
    where = f"line {stmt.line}: {stmt.sql!r}"
    if stmt.expect_error:
        if ours.kind != "error" or theirs.kind != "error":
            return f"{where}: expected both to fail, cascade={ours}, mariadb={theirs}"
        if ours.error != theirs.error:
            return f"{where}: error codes differ: cascade {ours.error} {ours.message}, mariadb {theirs.error} {theirs.message}"
        return None
    if ours.kind != theirs.kind:
        return f"{where}: cascade={ours}, mariadb={theirs}"
    if ours.kind == "rows" and not same_rows(ours.rows, theirs.rows, ordered(stmt.sql)):
        return f"{where}:\n  cascade: {ours.rows}\n  mariadb: {theirs.rows}"
    if ours.kind == "ok" and ours.affected != theirs.affected and not stmt.sql.lstrip().upper().startswith(("CREATE", "BEGIN", "COMMIT", "ROLLBACK", "DROP", "SET")):
        return f"{where}: affected rows: cascade {ours.affected}, mariadb {theirs.affected}"
    if ours.kind == "error" and ours.error != theirs.error:
        return f"{where}: error codes differ: cascade {ours.error} {ours.message}, mariadb {theirs.error} {theirs.message}"
    return None
