#!/usr/bin/env bash
# Runs the loom model tests of the context tree (core/tests/loom_context.rs)
# and of a parallel stage's exchange (core/tests/loom_exchange.rs).
#
# They build the crate with `--cfg loom`, which swaps its atomics and mutexes
# for loom's, so they use their own target directory: sharing `target/` would
# throw away the normal build's cache on every switch of RUSTFLAGS.
#
# LOOM_MAX_PREEMPTIONS bounds the interleavings explored (default 5 in the
# tests; the whole suite takes seconds, the build about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
exec cargo test -p cascade --test loom_context --test loom_exchange --profile native "$@"
