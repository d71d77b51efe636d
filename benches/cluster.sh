#!/usr/bin/env bash
# Across-nodes benchmark (issue 12): 3 cascade-server processes on loopback;
# KILL latency across nodes against one node, and the distributed
# aggregate's throughput on 3 nodes against one. Release build.
#
#   bash benches/cluster.sh
#   N=100 ROWS=100000000 bash benches/cluster.sh
#   OUT=docs/bench-cluster.md bash benches/cluster.sh   # also write the table
set -euo pipefail
cd "$(dirname "$0")/.."
renice -n -10 $$ >/dev/null 2>&1 || true
VENV="$HOME/.cache/cascade-server-venv"
if ! "$VENV/bin/python" -c 'import pymysql' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet pymysql
fi
cargo build --release -p cascade-server >&2
TARGET="${CARGO_TARGET_DIR:-target}"
MD=()
if [ -n "${OUT:-}" ]; then MD=(--markdown "$OUT"); fi
"$VENV/bin/python" benches/cluster_bench.py --bin "$TARGET/release/cascade-server" \
  -n "${N:-50}" --rows "${ROWS:-60000000}" "${MD[@]}"
