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
# Takes about two minutes on two cores. The machine should be otherwise
# idle: the peers are measured in the same run, but a busy machine still
# moves the tails (p99) most.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p cascade --bench wake_latency
cargo bench -p cascade --bench contexts
