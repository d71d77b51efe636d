"""The correctness corpus (corpus/*.sql) on cascade-server and on MariaDB,
through the same client, with the answers compared statement by statement."""
from __future__ import annotations

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
    setup.cursor().execute(f"CREATE DATABASE {db}")
    setup.close()
    theirs_conn = mariadb.connect(database=db)
    ours_conn = fresh_server.connect(*ROOT)
    diffs, compared = [], 0
    for st in stmts:
        ours, theirs = cr.run(ours_conn, st), cr.run(theirs_conn, st)
        if theirs.kind == "error" and not st.expect_error:
            pytest.fail(f"the corpus itself is wrong: MariaDB rejects line {st.line}: {theirs}")
        d = cr.compare(st, ours, theirs)
        compared += 1
        if d:
            diffs.append(d)
    assert not diffs, f"{len(diffs)} of {compared} statements differ:\n" + "\n".join(diffs)
