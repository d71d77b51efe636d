#!/usr/bin/env bash
# Runs every test suite: scripts/setup.sh, then each scripts/test.d/*.sh in order.
# Fails on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for t in scripts/test.d/*.sh; do
  [ -e "$t" ] || continue
  echo "== test: $t"
  bash "$t"
done
echo "== all test suites passed"
