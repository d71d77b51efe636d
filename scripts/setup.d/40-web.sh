#!/usr/bin/env bash
# The playground's tools, installed only when missing (idempotent):
# the wasm32 target, wasm-bindgen-cli pinned to the wasm-bindgen in
# Cargo.lock, wasm-pack, Debian's Chromium + ChromeDriver, and the npm
# packages (esbuild, CodeMirror, binaryen's wasm-opt, Playwright; no browser
# download).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wb_version" ]; then
  echo "40-web: no wasm-bindgen in Cargo.lock" >&2; exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wb_version"; then
  echo "installing wasm-bindgen-cli $wb_version"
  # --locked first; its lock can name a crate version the index no longer
  # serves, so fall back to a fresh resolution of the same CLI version.
  cargo install --locked wasm-bindgen-cli --version "$wb_version" --force ||
    cargo install wasm-bindgen-cli --version "$wb_version" --force
fi
command -v wasm-pack >/dev/null || cargo install --locked wasm-pack

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update
  apt-get install -y chromium chromium-driver
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
