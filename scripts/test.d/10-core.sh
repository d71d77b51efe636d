#!/usr/bin/env bash
# Native tests of the whole workspace (unit, integration, doctests), and the
# check that core builds for wasm32 with no runtime in its dependency tree.
set -euo pipefail
cargo test --workspace --all-targets
cargo test --workspace --doc
cargo build -p cascade --target wasm32-unknown-unknown
if cargo tree -p cascade --target wasm32-unknown-unknown -e normal --prefix none | grep -E '^(tokio|wasm-bindgen) ' ; then
  echo "core must not depend on tokio or wasm-bindgen" >&2; exit 1
fi
