#!/usr/bin/env python3
"""All-cores side of `benches/engine.sh` (issue 11): the four reference
queries of `engine_bench.py` with every engine on all cores (cascade
`cascade_threads` = cores, DuckDB `SET threads` = cores, DataFusion
`target_partitions` = cores), in interleaved rounds, and cascade's scaling
from 1 to 2 threads on Q1 and Q2. Prints markdown: medians, ratios (peer
time / cascade time: >= 1.0 means cascade is faster) and the machine's load
average during the run.

Also KILL QUERY -> error latency of every heavy operator with all cores
(`cascade_threads` = cores).

Usage: parallel_bench.py CASCADE_BIN [--runs N] [--threads N] [--kills N] [--markdown FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import datafusion
import duckdb
from datafusion import SessionConfig, SessionContext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_bench import DATAFUSION, DUCKDB, LABELS, QUERIES, SETUP4, norm  # noqa: E402


def duckdb_runner(threads):
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    for sql in SETUP4["duckdb"]:
        con.execute(sql)
    return lambda q: con.execute(DUCKDB[q]).fetchall()


def datafusion_runner(threads):
    ctx = SessionContext(SessionConfig().with_target_partitions(threads))
    for sql in SETUP4["datafusion"]:
        ctx.sql(sql).collect()

    def run(q):
        rows = []
        for b in ctx.sql(DATAFUSION[q]).collect():
            cols = [c.to_pylist() for c in b.columns]
            rows.extend(zip(*cols))
        return [tuple(r) for r in rows]

    return run


def cascade(binary, threads, only):
    """One timed run of each query of `only` (after a warm-up) at `threads`."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "round.json")
        subprocess.run([binary, "--bench", "--runs", "1", "--threads", str(threads),
                        "--only", only, "--out", out], check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            t = json.load(f)["throughput"]
    return {q: (v["times_ms"][0], v["rows"]) for q, v in t.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cascade_bin")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    n = a.threads
    load0 = os.getloadavg()
    peers = {"duckdb": duckdb_runner(n), "datafusion": datafusion_runner(n)}
    for run in peers.values():
        for q in QUERIES:
            run(q)
    res = {e: {q: [] for q in QUERIES} for e in ("cascade", *peers)}
    scale = {t: {q: [] for q in ("q1", "q2")} for t in (1, 2)}
    rows = {}
    for r in range(a.runs):
        for q, (t, rws) in cascade(a.cascade_bin, n, "throughput").items():
            res["cascade"][q].append(t)
            rows[q] = rws
        for t in (1, 2):
            for q, (ms, _) in cascade(a.cascade_bin, t, "q1,q2").items():
                scale[t][q].append(ms)
        for name, run in peers.items():
            for q in QUERIES:
                t0 = time.perf_counter()
                out = run(q)
                res[name][q].append((time.perf_counter() - t0) * 1e3)
                if r == 0 and norm(out, q) != norm(rows[q], q):
                    print(f"warning: {name} {q} result differs from cascade's", file=sys.stderr)
        print(f"round {r + 1}/{a.runs}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "kills.json")
        subprocess.run([a.cascade_bin, "--bench", "--threads", str(n), "--kills", str(a.kills),
                        "--only", "kills", "--out", out], check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            kills = json.load(f)["kills"]
        # The same at real-time priority: the engine's threads at SCHED_FIFO
        # 10, the killing thread at 20 (with N busy pipelines on N cores a
        # killer of the same FIFO priority never runs). Nothing of normal
        # priority (other tenants, kernel threads) can then keep the
        # statement's threads off the CPU: what is left is the engine's.
        kills_rt = {}
        if subprocess.run(["chrt", "-f", "10", "true"], stderr=subprocess.DEVNULL).returncode == 0:
            subprocess.run(["chrt", "-f", "10", a.cascade_bin, "--bench", "--threads", str(n),
                            "--kills", str(a.kills), "--killer-fifo", "20", "--only", "kills",
                            "--out", out], check=True, stderr=subprocess.DEVNULL)
            with open(out) as f:
                kills_rt = json.load(f)["kills"]
    load1 = os.getloadavg()
    med = {e: {q: statistics.median(v) for q, v in d.items()} for e, d in res.items()}
    lines = [
        f"All cores: {n} threads each — cascade `cascade_threads = {n}`, DuckDB "
        f"{duckdb.__version__} `threads={n}`, DataFusion {datafusion.__version__} "
        f"`target_partitions={n}`; medians of {a.runs} interleaved rounds, one run; "
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end "
        "(a shared machine: ratios, not absolute times).",
        "",
        "| query | cascade | DuckDB | DataFusion | DuckDB / cascade | DataFusion / cascade |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for q in QUERIES:
        c, d, f = med["cascade"][q], med["duckdb"][q], med["datafusion"][q]
        lines.append(f"| {LABELS[q]} | {c:.1f} ms | {d:.1f} ms | {f:.1f} ms | "
                     f"{d / c:.2f} | {f / c:.2f} |")
    lines += ["", "| cascade scaling | 1 thread | 2 threads | speed-up |", "| --- | ---: | ---: | ---: |"]
    for q in ("q1", "q2"):
        one, two = statistics.median(scale[1][q]), statistics.median(scale[2][q])
        lines.append(f"| {LABELS[q]} | {one:.1f} ms | {two:.1f} ms | {one / two:.2f}× |")
    lines += ["", f"KILL QUERY -> 1317 with `cascade_threads = {n}`, every heavy operator (those "
              "with a parallel plan run as N pipelines, the rest as before); target p99 ≤ 200 µs. "
              "`rt`: the same kills with the engine's threads at SCHED_FIFO 10 and the killer at 20"
              + ("" if kills_rt else " (not run: `chrt -f` is not permitted here)") + ".", "",
              "| operator | kills | median | p99 | max | KILL statement itself, median / p99 | p99 ≤ 200 µs "
              "| rt median | rt p99 | rt max | rt p99 ≤ 200 µs |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    def met(p99):
        return "met" if p99 <= 200 else "**missed**"
    for kind, k in sorted(kills.items()):
        r = kills_rt.get(kind)
        rt = (f"{r['median_us']:.0f} µs | {r['p99_us']:.0f} µs | {r['max_us']:.0f} µs | {met(r['p99_us'])}"
              if r else "– | – | – | –")
        lines.append(f"| {kind} | {k['n']} | {k['median_us']:.0f} µs | {k['p99_us']:.0f} µs | "
                     f"{k['max_us']:.0f} µs | {k['kill_stmt_median_us']:.0f} / "
                     f"{k['kill_stmt_p99_us']:.0f} µs | {met(k['p99_us'])} | {rt} |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
