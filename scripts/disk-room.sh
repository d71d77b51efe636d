#!/usr/bin/env bash
# Usage: scripts/disk-room.sh GB
# Makes sure the file system of the cargo target dirs has GB gigabytes free:
# if it has less, removes the caches that only speed builds up, oldest kinds
# first (incremental state, then the unoptimized build, then the optimized
# and wasm builds, then the loom build), until it has enough. Prints what it
# removed and the room left, and warns (the build may still fit) if even an
# empty cache leaves too little.
set -euo pipefail
need_gb=${1:?usage: scripts/disk-room.sh GB}
target=${CARGO_TARGET_DIR:-$HOME/.cache/cascade-target}
loom=${LOOM_TARGET_DIR:-$HOME/.cache/cascade-loom-target}
mkdir -p "$target"

free_gb() { df -Pk "$target" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }

for stale in "$target/debug/incremental" "$target/debug" "$target/native" "$target/release" \
             "$target/wasm32-unknown-unknown" "$loom"; do
  [ "$(free_gb)" -ge "$need_gb" ] && break
  if [ -e "$stale" ]; then
    echo "disk-room: $(free_gb) GB free, less than $need_gb: removing $stale ($(du -sh "$stale" | cut -f1))"
    rm -rf "$stale"
  fi
done
echo "disk-room: $(free_gb) GB free on the file system of $target"
if [ "$(free_gb)" -lt "$need_gb" ]; then
  echo "disk-room: warning: still less than $need_gb GB free: the build may run out of space" >&2
fi
