#!/usr/bin/env bash
# loom model tests of the context tree: every interleaving of concurrent
# cancel / derive / drop / wait, within the preemption bound.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/loom.sh
