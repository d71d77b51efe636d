#!/usr/bin/env python3
"""Across nodes (issue 12): KILL QUERY latency and the distributed
aggregate's throughput, 3 nodes against one, in one run.

Starts 3 cascade-server processes joined by [cluster] on loopback (release
build), then:

* KILL QUERY latency, sent -> the victim's error (1317) at the client, of a
  long aggregate: on one node (`cascade_distribute = OFF`), across three
  (`ON`: the KILL must reach the fragments on the two peers), and across
  three with the KILL sent to another node than the victim's (routed to the
  owner over gRPC);
* the throughput of an aggregate over `generate_series` on one node and
  split across three (rows per second), with every server at `threads` = 1
  (one pipeline per node: what a node adds) and at the default (all cores).

    bash benches/cluster.sh               # builds the release server, runs this
    python3 benches/cluster_bench.py --bin target/release/cascade-server [-n 50]

Needs pymysql (the server suite's venv has it:
$HOME/.cache/cascade-server-venv/bin/python). This machine has 2 cores, so 3
nodes share them: the throughput ratio says what splitting costs and gains
here, not what 3 machines would give.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import pymysql

LONG = ("SELECT x % 3 AS k, count(*) FROM generate_series(1, 1000000000000) "
        "AS t(x) GROUP BY k")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(node, mysql, grpc, threads):
    lines = [
        "[server]", f'listen = "127.0.0.1:{mysql[node]}"', "background_every_secs = 0",
        f"threads = {threads}", "",
        "[[user]]", 'tenant = "acme"', 'name = "alice"', 'password = ""', 'roles = ["member"]', "",
        "[cluster]", f"node_id = {node + 1}", f'grpc_listen = "127.0.0.1:{grpc[node]}"',
        'token = "bench"',
    ]
    for peer in range(len(grpc)):
        if peer != node:
            lines += ["[[cluster.peers]]", f"node_id = {peer + 1}",
                      f'grpc = "127.0.0.1:{grpc[peer]}"']
    return "\n".join(lines) + "\n"


def connect(port):
    deadline = time.time() + 30
    while True:
        try:
            return pymysql.connect(host="127.0.0.1", port=port, user="acme:alice",
                                   password="", autocommit=True)
        except pymysql.err.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def kills(victim_port, killer_port, distribute, n, warmup):
    """KILL QUERY latency (ms): a long aggregate on `victim_port`, killed
    from a connection on `killer_port` once it has run `warmup` ms."""
    a, b = connect(victim_port), connect(killer_port)
    with a.cursor() as c:
        c.execute(f"SET cascade_distribute = {'ON' if distribute else 'OFF'}")
        c.execute("SELECT CONNECTION_ID()")
        a_id = c.fetchone()[0]
    out = []
    for _ in range(n):
        done = {}

        def run():
            try:
                with a.cursor() as c:
                    c.execute(LONG)
            except pymysql.err.OperationalError as e:
                done["at"] = time.perf_counter()
                done["code"] = e.args[0]

        t = threading.Thread(target=run)
        t.start()
        time.sleep(warmup / 1000)
        sent = time.perf_counter()
        with b.cursor() as c:
            c.execute(f"KILL QUERY {a_id}")
        t.join()
        if done.get("code") != 1317:
            sys.exit(f"expected 1317, got {done}")
        out.append((done["at"] - sent) * 1000)
    a.close()
    b.close()
    return out


def throughput(port, distribute, rows, runs):
    """Median seconds of an aggregate over `rows` rows of generate_series."""
    sql = (f"SELECT x % 7 AS k, count(*), sum(x), min(x), max(x) "
           f"FROM generate_series(1, {rows}) AS t(x) GROUP BY k")
    a = connect(port)
    with a.cursor() as c:
        c.execute(f"SET cascade_distribute = {'ON' if distribute else 'OFF'}")
        c.execute(sql)  # warm-up
        expect = sorted(c.fetchall())
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            c.execute(sql)
            got = sorted(c.fetchall())
            times.append(time.perf_counter() - t0)
            if got != expect:
                sys.exit("distributed result differs")
    a.close()
    return statistics.median(times), expect


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


class Cluster:
    def __init__(self, binary, threads, d):
        self.mysql = [free_port() for _ in range(3)]
        grpc = [free_port() for _ in range(3)]
        self.procs = []
        for node in range(3):
            path = os.path.join(d, f"node{node + 1}-t{threads}.toml")
            with open(path, "w") as f:
                f.write(config(node, self.mysql, grpc, threads))
            self.procs.append(subprocess.Popen([binary, "--config", path],
                                               env={**os.environ, "CASCADE_LOG": "warn"}))

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "cascade-server"))
    ap.add_argument("-n", type=int, default=50, help="kills per mode")
    ap.add_argument("--warmup-ms", type=float, default=50)
    ap.add_argument("--rows", type=int, default=60_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    lines = []
    with tempfile.TemporaryDirectory() as d:
        kill_rows = []
        tp_rows = []
        for threads in (1, 0):
            c = Cluster(args.bin, threads, d)
            try:
                one, _ = throughput(c.mysql[0], False, args.rows, args.runs)
                three, _ = throughput(c.mysql[0], True, args.rows, args.runs)
                label = "1 pipeline per node" if threads == 1 else "all cores per node"
                tp_rows.append((label, one, three))
                if threads == 0:
                    kill_rows.append(("one node", kills(c.mysql[0], c.mysql[0], False,
                                                       args.n, args.warmup_ms)))
                    kill_rows.append(("3 nodes, KILL on the coordinator",
                                      kills(c.mysql[0], c.mysql[0], True, args.n, args.warmup_ms)))
                    kill_rows.append(("3 nodes, KILL sent to node 2",
                                      kills(c.mysql[0], c.mysql[1], True, args.n, args.warmup_ms)))
            finally:
                c.stop()
    load1 = os.getloadavg()[0]
    lines += [
        f"Across nodes: 3 `cascade-server` processes on loopback ({args.bin}), one run; "
        f"load average {load0:.1f} at the start, {load1:.1f} at the end (2 shared cores: "
        "the 3 nodes share them).",
        "",
        f"| aggregate over {args.rows:,} rows (GROUP BY x % 7) | one node | 3 nodes "
        "| 3 nodes / one node (throughput) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, one, three in tp_rows:
        lines.append(f"| {label} | {one * 1e3:.0f} ms ({args.rows / one / 1e6:.0f} M rows/s) | "
                     f"{three * 1e3:.0f} ms ({args.rows / three / 1e6:.0f} M rows/s) | "
                     f"{one / three:.2f}× |")
    lines += ["", "| KILL QUERY -> 1317 at the client | n | median | p99 | max |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for label, xs in kill_rows:
        lines.append(f"| {label} | {len(xs)} | {statistics.median(xs):.2f} ms | "
                     f"{pct(xs, 0.99):.2f} ms | {max(xs):.2f} ms |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
