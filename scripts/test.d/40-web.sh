#!/usr/bin/env bash
# The playground's tests:
#  1. the JS API in wasm (web/tests) under Node, in a headless Chromium page
#     and in a dedicated worker (wasm-pack test; each run must report > 0
#     passed tests);
#  2. the built page's JS API from plain Node (node --test);
#  3. Playwright specs (tests/e2e) against the served page in Debian's
#     Chromium.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
# chromedriver and Playwright leave Chromium profiles (~120 MB each) in the
# temp dir when the browser is stopped from outside: keep them in ours.
mkdir -p "$log_dir/tmp"
export TMPDIR="$log_dir/tmp"

# Runs a wasm-pack test and fails unless its runner reported passed tests
# and no failures.
wasm_tests() {
  local name=$1; shift
  echo "== web: wasm-pack test $name"
  (cd web && "$@") 2>&1 | tee "$log_dir/$name.log"
  local passed failed
  passed=$(awk '/test result: ok\. [0-9]+ passed/ { for (i = 1; i <= NF; i++) if ($i == "passed;") n += $(i - 1) } END { print n + 0 }' "$log_dir/$name.log")
  failed=$(grep -Ec 'test result: FAILED' "$log_dir/$name.log" || true)
  if [ "${passed:-0}" -eq 0 ] || [ "$failed" -ne 0 ]; then
    echo "web: wasm-pack test $name ran ${passed:-0} passing tests, $failed failing runs" >&2
    exit 1
  fi
  echo "web: wasm-pack test $name: $passed passed"
}

wasm_tests node wasm-pack test --node
wasm_tests chrome env WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome
wasm_tests chrome-worker env WASM_BINDGEN_USE_DEDICATED_WORKER=1 wasm-pack test --headless --chrome

echo "== web: build the page"
bash www/build.sh

echo "== web: the module an embedder builds (wasm-pack build --release)"
# The same manifest settings as www/build.sh (Cargo.toml's release profile,
# .cargo/config.toml), so cargo reuses that build: this costs the
# wasm-bindgen step only.
(cd web && wasm-pack build --release --mode no-install --target web --out-dir "$log_dir/wasm-pack-pkg")

echo "== web: size budgets"
wasm_budget=1200000   # 1.2 MB gzipped (issue 9)
wasm_gz=$(gzip -9c www/dist/cascade_web_bg.wasm | wc -c)
pack_gz=$(gzip -9c "$log_dir/wasm-pack-pkg/cascade_web_bg.wasm" | wc -c)
js_gz=$(( $(gzip -9c www/dist/main.js | wc -c) + $(gzip -9c www/dist/worker.js | wc -c) ))
echo "wasm: $wasm_gz bytes gzipped from www/build.sh, $pack_gz from wasm-pack build --release (budget $wasm_budget); page JS: $js_gz bytes gzipped (budget 300 KiB)"
if [ "$wasm_gz" -gt "$wasm_budget" ] || [ "$pack_gz" -gt "$wasm_budget" ] || [ "$js_gz" -gt 307200 ]; then
  echo "web: over the size budget" >&2; exit 1
fi

echo "== web: JS API from Node"
node --test tests/e2e/node-api.test.mjs

echo "== web: Playwright"
npx --no-install playwright test --config tests/e2e/playwright.config.mjs
