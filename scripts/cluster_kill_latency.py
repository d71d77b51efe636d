#!/usr/bin/env python3
"""KILL QUERY latency across nodes vs one node (issue 12, for the lead's
benchmarks; docs/cluster.md).

Starts 3 cascade-server processes joined by [cluster] on loopback, then for
each mode (one node: cascade_distribute = OFF; three nodes: ON) runs a long
aggregate on connection A, sends KILL QUERY from connection B once A's
statement has run for --warmup-ms, and measures the time from sending the
KILL to A's error (1317), N times. Prints min / median / p95 / max in ms.

    python3 scripts/cluster_kill_latency.py [--bin target/release/cascade-server] [-n 50]

Needs pymysql (the server suite's venv has it:
$HOME/.cache/cascade-server-venv/bin/python). Numbers depend on the load of
the machine: compare the two modes within one run.
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


def config(node, mysql, grpc):
    lines = [
        "[server]", f'listen = "127.0.0.1:{mysql[node]}"', "background_every_secs = 0", "",
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


def measure(port, distribute, n, warmup):
    a, b = connect(port), connect(port)
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


def report(name, xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
    print(f"{name:>12}: min {xs[0]:.2f}  median {statistics.median(xs):.2f}  "
          f"p95 {p95:.2f}  max {xs[-1]:.2f} ms  (n={len(xs)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "cascade-server"))
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--warmup-ms", type=float, default=50)
    args = ap.parse_args()
    mysql = [free_port() for _ in range(3)]
    grpc = [free_port() for _ in range(3)]
    procs = []
    with tempfile.TemporaryDirectory() as d:
        try:
            for node in range(3):
                path = os.path.join(d, f"node{node + 1}.toml")
                with open(path, "w") as f:
                    f.write(config(node, mysql, grpc))
                procs.append(subprocess.Popen([args.bin, "--config", path],
                                              env={**os.environ, "CASCADE_LOG": "warn"}))
            one = measure(mysql[0], False, args.n, args.warmup_ms)
            three = measure(mysql[0], True, args.n, args.warmup_ms)
            print(f"KILL QUERY latency, sent -> error at the client ({args.bin}):")
            report("one node", one)
            report("three nodes", three)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()


if __name__ == "__main__":
    main()
