#!/usr/bin/env bash
# Builds the playground into www/dist:
#  1. the cascade-web crate for wasm32 with the workspace's `release`
#     profile (Cargo.toml: fat LTO, one codegen unit, opt-level "z" except
#     the engine crate `cascade` at 3) and wasm SIMD (.cargo/config.toml):
#     the same settings a plain `wasm-pack build --release web` uses, so an
#     embedder's module is this one (docs/web.md has the measures);
#  2. its JS glue with wasm-bindgen --target web, name and producers
#     sections removed;
#  3. optionally (WASM_OPT=1) wasm-opt -Oz from the npm binaryen package:
#     measured on this module it makes the raw file 8% smaller but the
#     gzipped one 3% larger and takes minutes, so it is off by default;
#  4. the page and worker bundles with esbuild (www/build.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build -p cascade-web --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir www/pkg --no-typescript \
  --remove-name-section --remove-producers-section \
  "$target_dir/wasm32-unknown-unknown/release/cascade_web.wasm"
if [ "${WASM_OPT:-0}" = 1 ]; then
  npx --no-install wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    www/pkg/cascade_web_bg.wasm -o www/pkg/cascade_web_bg.wasm
fi
node www/build.mjs
