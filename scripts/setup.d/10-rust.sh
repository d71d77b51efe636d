#!/usr/bin/env bash
# Rust components and the wasm32 target.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
