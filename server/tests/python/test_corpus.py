"""The correctness corpus (corpus/*.sql) on cascade-server and on MariaDB,
through the same client, with the answers compared statement by statement.

MariaDB runs with utf8mb4 and the binary collation, as cascade compares
text by its bytes (MariaDB's default collation is case-insensitive).
Statements marked `-- known-difference: why` are engine differences on
record: they are still run on both sides and reported as warnings, and the
run says so when one of them starts to agree."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import corpus_runner as cr
from conftest import CONFIG, ROOT, CascadeServer

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.sql"))


@pytest.fixture(scope="module")
def fresh_server():
    # A server of its own, so that the corpus's tables start from nothing.
    s = CascadeServer(CONFIG)
    yield s
    assert s.stop() == 0


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_matches_mariadb(fresh_server, mariadb, path):
    stmts = cr.parse(path)
    assert len(stmts) >= 20, f"{path.name}: only {len(stmts)} statements"
    db = "corpus_" + path.stem
    setup = mariadb.connect()
    setup.cursor().execute(f"DROP DATABASE IF EXISTS {db}")
    setup.cursor().execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    setup.close()
    theirs_conn = mariadb.connect(database=db, charset="utf8mb4", collation="utf8mb4_bin")
    ours_conn = fresh_server.connect(*ROOT)
    diffs, compared = [], 0
    for st in stmts:
        ours, theirs = cr.run(ours_conn, st), cr.run(theirs_conn, st)
        if theirs.kind == "error" and not st.expect_error:
            pytest.fail(f"the corpus itself is wrong: MariaDB rejects line {st.line}: {theirs}")
        d = cr.compare(st, ours, theirs)
        compared += 1
        if st.known_difference:
            if d:
                warnings.warn(f"{path.name}: known difference ({st.known_difference}): {d}")
            else:
                warnings.warn(f"{path.name} line {st.line}: the known difference "
                              f"'{st.known_difference}' is gone: remove its marker")
        elif d:
            diffs.append(d)
    assert not diffs, f"{len(diffs)} of {compared} statements differ:\n" + "\n".join(diffs)
