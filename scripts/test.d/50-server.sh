#!/usr/bin/env bash
# cascade-server with real MySQL clients: builds the server, then runs the
# pytest suite in server/tests/python (pymysql and the `mariadb` CLI; a
# private MariaDB server on 127.0.0.1 for the correctness corpus), all on
# loopback. Tools come from scripts/setup.d/50-server.sh.
# Fails if any test fails or if no test ran.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${CASCADE_PY_VENV:-$HOME/.cache/cascade-server-venv}"
if ! "$venv/bin/python" -c 'import pymysql, pytest' >/dev/null 2>&1 \
  || ! command -v openssl >/dev/null 2>&1; then
  bash scripts/setup.d/50-server.sh
fi

cargo build -p cascade-server
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CASCADE_SERVER_BIN="$target/debug/cascade-server"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest server/tests/python -p no:cacheprovider -q -rfE "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "server tests failed (pytest exit $status)" >&2
  exit "$status"
fi
if ! grep -Eq '^[0-9]+ passed' "$log" && ! grep -Eq ' [0-9]+ passed' "$log"; then
  echo "server tests: no test ran" >&2
  exit 1
fi
