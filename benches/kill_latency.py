#!/usr/bin/env python3
"""Kill latency through the MySQL wire: cascade-server vs MariaDB, one run.

For each server and each kind of statement (SELECT SLEEP(100); a CPU-bound
aggregate over a 10^11-row scan; a CPU-bound aggregate over a 10^10-row
cross join), N times:

  1. the victim connection sends the statement (and does not wait);
  2. after a short, jittered delay (the statement is running by then), the
     killer connection sends KILL QUERY <victim>;   t0 = just before the send
  3. t1 = the moment the victim's socket has the error packet (select());
  4. both replies are read; the victim must have got "query interrupted".

latency = t1 - t0: KILL sent -> client sees the error. Both servers run on
this machine on 127.0.0.1, with the same client code (pymysql over TCP), in
one run, so the client's own overhead is the same on both sides. Prints
median and p99 per server and statement, and the ratios cascade / MariaDB.

    cargo build --profile native -p cascade-server
    bash scripts/setup.d/50-server.sh          # mariadb-server, pymysql
    ~/.cache/cascade-server-venv/bin/python benches/kill_latency.py [-n 200]
"""
from __future__ import annotations

import argparse
import random
import select
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server" / "tests" / "python"))

import pymysql  # noqa: E402
from pymysql.constants import COMMAND  # noqa: E402

from servers import CascadeServer, MariaDBServer  # noqa: E402

CONFIG = ROOT / "server" / "tests" / "python" / "test-config.toml"

KINDS = ["sleep", "cpu-bound scan aggregate", "cpu-bound join aggregate"]
QUERIES = {
    "cascade": {
        "sleep": "SELECT SLEEP(100)",
        "cpu-bound scan aggregate": "SELECT COUNT(*), SUM(x) FROM generate_series(1, 100000000000) AS t(x) "
                                    "WHERE x % 7 = 3",
        "cpu-bound join aggregate": "SELECT COUNT(*), SUM(a.x * b.x) FROM generate_series(1, 100000) AS a(x) "
                               "CROSS JOIN generate_series(1, 100000) AS b(x) WHERE (a.x + b.x) % 7 = 3",
    },
    "mariadb": {
        "sleep": "SELECT SLEEP(100)",
        "cpu-bound scan aggregate": "SELECT COUNT(*), SUM(seq) FROM seq_1_to_100000000000 WHERE seq % 7 = 3",
        "cpu-bound join aggregate": "SELECT COUNT(*), SUM(a.seq * b.seq) FROM seq_1_to_100000 AS a "
                               "CROSS JOIN seq_1_to_100000 AS b WHERE (a.seq + b.seq) % 7 = 3",
    },
}
INTERRUPTED = {1317, 1927, 1969}


def connection_id(c) -> int:
    with c.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        return cur.fetchone()[0]


def measure(victim, killer, sql: str, n: int, rng: random.Random) -> tuple[list[float], int]:
    vid = connection_id(victim)
    out, missed = [], 0
    for _ in range(n):
        victim._execute_command(COMMAND.COM_QUERY, sql)
        time.sleep(0.015 + rng.random() * 0.01)
        t0 = time.perf_counter()
        killer._execute_command(COMMAND.COM_QUERY, f"KILL QUERY {vid}")
        ready, _, _ = select.select([victim._sock], [], [], 5.0)
        t1 = time.perf_counter()
        killer._read_query_result()
        if not ready:
            # The kill did not land (it must not happen); kill again and
            # count it rather than letting one outlier hide.
            missed += 1
            killer.query(f"KILL QUERY {vid}")
        try:
            victim._read_query_result()
            raise RuntimeError(f"{sql!r} finished instead of being killed")
        except pymysql.err.OperationalError as e:
            if e.args[0] not in INTERRUPTED:
                raise
        if ready:
            out.append(t1 - t0)
    return out, missed


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200, help="kills per server and statement (default 200)")
    ap.add_argument("--bin", default=str(ROOT / "target" / "native" / "cascade-server"),
                    help="cascade-server binary (default target/native/cascade-server)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    cascade = CascadeServer(CONFIG, binary=Path(args.bin), log_level="warn")
    mariadb = MariaDBServer()
    results: dict[tuple[str, str], tuple[list[float], int]] = {}
    try:
        conns = {
            "cascade": lambda: cascade.connect("acme:alice", "alice"),
            "mariadb": lambda: mariadb.connect(database="cascade_corpus"),
        }
        for kind in KINDS:
            # Interleave the servers in short blocks so that both see the
            # same machine load.
            for server in ["cascade", "mariadb"]:
                results[(server, kind)] = ([], 0)
            block = max(1, args.n // 10)
            done = 0
            victims = {s: conns[s]() for s in conns}
            killers = {s: conns[s]() for s in conns}
            while done < args.n:
                step = min(block, args.n - done)
                for server in ["cascade", "mariadb"]:
                    lat, missed = measure(victims[server], killers[server], QUERIES[server][kind], step, rng)
                    prev, prev_missed = results[(server, kind)]
                    results[(server, kind)] = (prev + lat, prev_missed + missed)
                done += step
            for c in list(victims.values()) + list(killers.values()):
                c.close()
    finally:
        cascade.stop()
        mariadb.stop()

    version = "MariaDB " + subprocess_version()
    print(f"\nKill latency (KILL QUERY sent -> client sees the error), {args.n} kills each, loopback, "
          f"cascade-server ({Path(args.bin).name}) vs {version}\n")
    print(f"| statement | server | median | p99 | missed kills |")
    print(f"| --- | --- | ---: | ---: | ---: |")
    for kind in KINDS:
        for server in ["cascade", "mariadb"]:
            lat, missed = results[(server, kind)]
            print(f"| {kind} | {server} | {statistics.median(lat) * 1e3:.3f} ms | {pct(lat, 99) * 1e3:.3f} ms | {missed} |")
    print()
    for kind in KINDS:
        c, _ = results[("cascade", kind)]
        m, _ = results[("mariadb", kind)]
        print(f"{kind}: cascade/MariaDB median {statistics.median(c) / statistics.median(m):.2f}x, "
              f"p99 {pct(c, 99) / pct(m, 99):.2f}x")
    return 0


def subprocess_version() -> str:
    import subprocess
    try:
        out = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout
    except OSError:
        out = subprocess.run(["/usr/sbin/mariadbd", "--version"], capture_output=True, text=True).stdout
    parts = out.split()
    return parts[2].split("-")[0] if len(parts) > 2 else "?"


if __name__ == "__main__":
    sys.exit(main())
