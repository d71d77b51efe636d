#!/usr/bin/env python3
"""Peers side of `benches/engine.sh`: runs the four reference queries on
DuckDB (SET threads=1) and DataFusion (target_partitions=1), checks that their
results agree with cascade's, and prints one table with medians and ratios
(peer time / cascade time: >= 1.0 means cascade is faster), plus the context
check cost and the kill -> error latencies measured by the native bench.

Usage: engine_bench.py CASCADE_JSON [--nochecks JSON] [--runs N] [--markdown FILE]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import datafusion
import duckdb
from datafusion import SessionConfig, SessionContext

N1, N2, N3 = 100_000_000, 20_000_000, 5_000_000

# Same queries; only the name of generate_series' column differs: DuckDB
# takes `AS t(x)` like cascade, DataFusion's column is `value`.
DUCKDB = {
    "q1": f"SELECT count(*), sum(x) FROM generate_series(1, {N1}) AS t(x) WHERE x % 7 = 0",
    "q2": f"SELECT x % 1000 AS k, count(*), sum(x) FROM generate_series(1, {N2}) AS t(x) GROUP BY k",
    "q3": f"SELECT x, x % 1013 AS y FROM generate_series(1, {N3}) AS t(x) ORDER BY y DESC, x LIMIT 10",
}
DATAFUSION = {
    "q1": f"SELECT count(*), sum(value) FROM generate_series(1, {N1}) AS t WHERE value % 7 = 0",
    "q2": f"SELECT value % 1000 AS k, count(*), sum(value) FROM generate_series(1, {N2}) AS t GROUP BY k",
    "q3": f"SELECT value AS x, value % 1013 AS y FROM generate_series(1, {N3}) AS t ORDER BY y DESC, x LIMIT 10",
}
# Q4's tables, the same in every engine (cascade: Q4_SETUP in core/benches/engine.rs).
N4 = 2_000_000
SETUP4 = {
    "duckdb": [
        f"CREATE TABLE sales AS SELECT x AS id, (x * 7) % 49999 + 1 AS c_id, (x * 13) % 1999 + 1 AS p_id, "
        f"x % 199 + 1 AS s_id, x % 1000 AS amount FROM generate_series(1, {N4}) AS t(x)",
        "CREATE TABLE customer AS SELECT x AS c_id, x % 5 AS region FROM generate_series(1, 50000) AS t(x)",
        "CREATE TABLE product AS SELECT x AS p_id, x % 10 AS cat FROM generate_series(1, 2000) AS t(x)",
        "CREATE TABLE store AS SELECT x AS s_id, x % 4 AS state FROM generate_series(1, 200) AS t(x)",
    ],
    "datafusion": [
        f"CREATE TABLE sales AS SELECT value AS id, (value * 7) % 49999 + 1 AS c_id, (value * 13) % 1999 + 1 AS p_id, "
        f"value % 199 + 1 AS s_id, value % 1000 AS amount FROM generate_series(1, {N4}) AS t",
        "CREATE TABLE customer AS SELECT value AS c_id, value % 5 AS region FROM generate_series(1, 50000) AS t",
        "CREATE TABLE product AS SELECT value AS p_id, value % 10 AS cat FROM generate_series(1, 2000) AS t",
        "CREATE TABLE store AS SELECT value AS s_id, value % 4 AS state FROM generate_series(1, 200) AS t",
    ],
}
Q4 = ("SELECT count(*), sum(amount) FROM sales, customer, product, store "
      "WHERE sales.c_id = customer.c_id AND sales.p_id = product.p_id AND sales.s_id = store.s_id "
      "AND customer.region = 1 AND product.cat < 5 AND store.state = 2")
DUCKDB["q4"] = Q4
DATAFUSION["q4"] = Q4
LABELS = {
    "q1": "Q1 filter+aggregate, 100M rows",
    "q2": "Q2 GROUP BY 1000 keys, 20M rows",
    "q3": "Q3 ORDER BY … DESC LIMIT 10, 5M rows",
    "q4": "Q4 star join, 2M-row fact × 3 dimensions, FROM a, b, c, d WHERE …",
}
QUERIES = ("q1", "q2", "q3", "q4")
# Set-valued results are compared sorted (GROUP BY has no order).
SORTED = {"q2"}


def norm(rows, key):
    out = [[str(v) for v in r] for r in rows]
    return sorted(out) if key in SORTED else out


def duckdb_runner():
    con = duckdb.connect()
    con.execute("SET threads=1")
    for sql in SETUP4["duckdb"]:
        con.execute(sql)
    return lambda q: con.execute(DUCKDB[q]).fetchall()


def datafusion_runner():
    ctx = SessionContext(SessionConfig().with_target_partitions(1))
    for sql in SETUP4["datafusion"]:
        ctx.sql(sql).collect()

    def run(q):
        batches = ctx.sql(DATAFUSION[q]).collect()
        rows = []
        for b in batches:
            cols = [c.to_pylist() for c in b.columns]
            rows.extend(zip(*cols))
        return [tuple(r) for r in rows]

    return run


def cascade_round(binary):
    """One run of each query on cascade (the bench binary warms each up first)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "round.json")
        subprocess.run([binary, "--bench", "--runs", "1", "--only", "throughput", "--out", out],
                       check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            t = json.load(f)["throughput"]
    return {q: (t[q]["times_ms"][0], t[q]["rows"]) for q in QUERIES}


def interleaved(runs, cascade_bin):
    """Rounds of: cascade, DuckDB, DataFusion (each query once per round), so
    that a change of load on a shared machine hits every engine alike."""
    peers = {"duckdb": duckdb_runner(), "datafusion": datafusion_runner()}
    res = {e: {q: {"times_ms": [], "rows": None} for q in DUCKDB} for e in ("cascade", *peers)}
    for run in peers.values():  # warm-up
        for q in DUCKDB:
            run(q)
    for r in range(runs):
        if cascade_bin:
            for q, (t, rows) in cascade_round(cascade_bin).items():
                res["cascade"][q]["times_ms"].append(t)
                res["cascade"][q]["rows"] = rows
        for name, run in peers.items():
            for q in DUCKDB:
                t = time.perf_counter()
                rows = run(q)
                res[name][q]["times_ms"].append((time.perf_counter() - t) * 1e3)
                assert res[name][q]["rows"] in (None, rows)
                res[name][q]["rows"] = rows
        print(f"round {r + 1}/{runs}: " + ", ".join(
            f"{e} " + "/".join(f"{res[e][q]['times_ms'][-1]:.0f}" for q in DUCKDB)
            for e in res if res[e]["q1"]["times_ms"]) + " ms", file=sys.stderr)
    return res


def spread(times):
    """Relative spread (max-min)/median, as a noise indicator."""
    m = statistics.median(times)
    return (max(times) - min(times)) / m * 100 if m else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cascade_json")
    ap.add_argument("--ab", nargs="*", default=[],
                    help="JSON files of Q1 runs, alternating: with checks, without (feature bench-no-checks)")
    ap.add_argument("--kills-rt", help="JSON of the kill latencies measured at SCHED_FIFO priority")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cascade-bin", help="the native bench binary: run cascade interleaved with the peers")
    ap.add_argument("--markdown", help="also write the tables to this file")
    a = ap.parse_args()

    with open(a.cascade_json) as f:
        cas = json.load(f)
    ab_with, ab_without = [], []
    for i, path in enumerate(a.ab):
        with open(path) as f:
            t = json.load(f)["throughput"]["q1"]["times_ms"]
        (ab_with if i % 2 == 0 else ab_without).extend(t)

    res = interleaved(a.runs, a.cascade_bin)
    duck, dfn = res["duckdb"], res["datafusion"]
    if a.cascade_bin:
        cas["throughput"] = res["cascade"]

    lines = []
    p = lines.append
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or "cpu") \
        if os.path.exists("/proc/cpuinfo") else (platform.processor() or "cpu")
    p(f"Machine: {platform.machine()}, {cpu} × {os.cpu_count()}; "
      f"DuckDB {duckdb.__version__} (threads=1), DataFusion {datafusion.__version__} (target_partitions=1), "
      f"cascade release build, one thread. Medians of {a.runs} runs after one warm-up, "
      f"{'the three engines interleaved round by round' if a.cascade_bin else 'cascade run first'}; "
      f"spread = (max-min)/median.")
    p("")
    p("| query | cascade ms | DuckDB ms | DataFusion ms | DuckDB/cascade | DataFusion/cascade | results agree |")
    p("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    ok_all = True
    for q in QUERIES:
        ct = cas["throughput"][q]["times_ms"]
        c, d, f = (statistics.median(ct), statistics.median(duck[q]["times_ms"]),
                   statistics.median(dfn[q]["times_ms"]))
        cr = norm(cas["throughput"][q]["rows"], q)
        agree = cr == norm(duck[q]["rows"], q) and cr == norm(dfn[q]["rows"], q)
        ok_all &= agree
        p(f"| {LABELS[q]} | {c:.1f} (±{spread(ct):.0f}%) | {d:.1f} (±{spread(duck[q]['times_ms']):.0f}%) "
          f"| {f:.1f} (±{spread(dfn[q]['times_ms']):.0f}%) | **{d / c:.2f}** | {f / c:.2f} | "
          f"{'yes' if agree else 'NO'} |")
    p("")

    ch = cas.get("checks")
    if ch:
        p("Per-batch context checks (target ≤ 1% of run time):")
        p("")
        p("| measure | value |")
        p("| --- | ---: |")
        p(f"| one per-batch check as the pipeline does it (`pipeline::due`: atomic load + deadline compared "
          f"with the timing's clock reading), no deadline / with a deadline | {ch['ns_per_check']:.2f} ns / "
          f"{ch['ns_per_check_with_deadline']:.2f} ns |")
        if "ns_context_check_api" in ch:
            p(f"| for comparison, `Context::check()` (reads the clock itself when a deadline is set) | "
              f"{ch['ns_context_check_api']:.2f} ns / {ch['ns_context_check_api_with_deadline']:.2f} ns |")
        p(f"| checks made by Q1 ({ch['operators']} operators + the driver, × {ch['steps']} steps) | {ch['checks']} |")
        p(f"| their cost in Q1 (checks × ns per check) | {ch['cost_ms']:.3f} ms = **{ch['percent']:.3f}%** "
          f"({ch['percent_with_deadline']:.3f}% with a statement timeout set) |")
        if ab_with and ab_without:
            with_c, without = statistics.median(ab_with), statistics.median(ab_without)
            p(f"| A/B: Q1 with checks vs a build without them (`--features bench-no-checks`), "
              f"{len(ab_with)} runs each, alternating | {with_c:.1f} ms vs {without:.1f} ms = "
              f"{(with_c - without) / without * 100:+.1f}% (spread ±{max(spread(ab_with), spread(ab_without)):.0f}%) |")
        p("")

    kills = cas.get("kills")
    kills_rt = None
    if a.kills_rt:
        with open(a.kills_rt) as f:
            kills_rt = json.load(f).get("kills")
    if kills:
        p("KILL QUERY → error 1317 latency, native, killer on a second thread, from just before the "
          "killer's `execute(\"KILL QUERY n\")` to the victim's `execute` returning 1317; the kill lands "
          "1–40 ms into the statement (target p99 ≤ 200 µs). `normal`: default scheduling; `rt`: the bench "
          "threads at SCHED_FIFO (`chrt -f 10`), so that other tenants of the machine cannot keep them off the CPU.")
        p("")
        head = "| operator | kills | median µs | p99 µs | max µs | KILL statement itself, median µs |"
        if kills_rt:
            head += " rt median µs | rt p99 µs | rt max µs |"
        p(head)
        p("| --- " * (head.count("|") - 1) + "|")
        for kind, k in kills.items():
            row = (f"| {kind} | {k['n']} | {k['median_us']:.0f} | **{k['p99_us']:.0f}** | {k['max_us']:.0f} "
                   f"| {k.get('kill_stmt_median_us', float('nan')):.0f} |")
            if kills_rt and kind in kills_rt:
                r = kills_rt[kind]
                row += f" {r['median_us']:.0f} | **{r['p99_us']:.0f}** | {r['max_us']:.0f} |"
            p(row)
        p("")

    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    if not ok_all:
        print("RESULTS DIFFER between engines", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
