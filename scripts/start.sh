#!/usr/bin/env bash
# npm start: install what is missing, build the playground, serve it on
# 127.0.0.1 (PORT, default 8080) and print the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash www/build.sh
exec node www/serve.mjs --port "${PORT:-8080}"
