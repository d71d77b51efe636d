#!/usr/bin/env bash
# Builds the playground into www/dist:
#  1. the cascade-web crate for wasm32, release, with fat LTO and one
#     codegen unit, opt-level "z" except the engine crate (`cascade`, where
#     the operators' loops are) at 3. Measured (docs/web.md): all at "s"
#     gives 879 KB gzipped but 39-51% of native throughput on some queries;
#     all at 3 gives 1.2 MB; this mix stays under 1 MB at 60-130% of native.
#     With wasm SIMD (simd128: Chrome 91, Firefox 89, Safari 16.4), which
#     measured no faster but 26 KB smaller gzipped. Set here (env and
#     --config), so native release builds of the workspace keep their own
#     settings;
#  2. its JS glue with wasm-bindgen --target web, name and producers
#     sections removed;
#  3. optionally (WASM_OPT=1) wasm-opt -Oz from the npm binaryen package:
#     measured on this module it makes the raw file 8% smaller but the
#     gzipped one 3% larger and takes minutes, so it is off by default;
#  4. the page and worker bundles with esbuild (www/build.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} -C target-feature=+simd128"
cargo build -p cascade-web --release --target wasm32-unknown-unknown \
  --config 'profile.release.package.cascade.opt-level=3'
wasm-bindgen --target web --out-dir www/pkg --no-typescript \
  --remove-name-section --remove-producers-section \
  "$target_dir/wasm32-unknown-unknown/release/cascade_web.wasm"
if [ "${WASM_OPT:-0}" = 1 ]; then
  npx --no-install wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    www/pkg/cascade_web_bg.wasm -o www/pkg/cascade_web_bg.wasm
fi
node www/build.mjs
