#!/usr/bin/env bash
# Installs what the build and tests need, idempotently: each scripts/setup.d/*.sh in order.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/setup.d/*.sh; do
  [ -e "$s" ] || continue
  echo "== setup: $s"
  bash "$s"
done
