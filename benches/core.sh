#!/usr/bin/env bash
# The context-tree benchmarks of issue 2, against tokio-util's
# CancellationToken, futures' AbortHandle and std park/unpark, in one run:
#
#   1. cancel -> wake on another thread (a timing loop: median and p99),
#      core/benches/wake_latency.rs;
#   2. is_cancelled, derive + drop, cancel of 10,000 descendants, value
#      lookup (criterion), core/benches/contexts.rs, which then prints one
#      table of medians with the ratio cascade / peer for every measure,
#      and the target of each, and writes it to target/criterion/core.md.
#
#   3. when valgrind is installed: instructions per derive + drop, cascade
#      and tokio-util, counted by callgrind on core/examples/derive_drop_count.rs
#      (repeatable on a loaded machine, unlike times), and that example's
#      own interleaved timing of the pair.
#
# Takes about two minutes on two cores. The machine should be otherwise
# idle: the peers are measured in the same run, but a busy machine still
# moves the tails (p99) most.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p cascade --bench wake_latency
cargo bench -p cascade --bench contexts
if command -v valgrind >/dev/null; then
    cargo build --profile native -p cascade --example derive_drop_count
    bin="${CARGO_TARGET_DIR:-target}/native/examples/derive_drop_count"
    count() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    n=20000
    for kind in cascade tokio; do
        echo "$kind: $(( ($(count $kind $n) - $(count $kind 0)) / n )) instructions per derive + drop"
    done
    "$bin" time 200
fi
