#!/usr/bin/env bash
# Runs the cargo-fuzz targets of the SQL engine (CI does not: CI runs the
# replayed crashes in core/tests/fuzz_regressions.rs).
#
#   scripts/fuzz.sh [target] [seconds] [extra libFuzzer flags...]
#
# target   sql_structured (default): statements generated from the supported
#          grammar (fuzz/src/gen.rs) with a kill / disconnect / dropped
#          future / shutdown / statement timeout at a random poll;
#          sql_bytes: arbitrary bytes as SQL (first 4 bytes: the schedule),
#          seeded from fuzz/seeds/sql_bytes with the dictionary fuzz/sql.dict.
# seconds  total fuzzing time (default 600).
#
# Both run through the harness in core/tests/fuzz_harness (a ManualHost
# engine polled by hand with a no-op waker; a watchdog kills and then fails
# any request that does not finish; after the run the process list, the
# memory in use and the context tree must be back to rest).
#
# A crash lands in fuzz/artifacts/<target>/. To see the SQL and schedule of
# an artifact, run it once with CASCADE_FUZZ_PRINT=1:
#   CASCADE_FUZZ_PRINT=1 fuzz/target/x86_64-unknown-linux-gnu/release/<target> <artifact>
# then add it to core/tests/fuzz_regressions.rs and fix the engine.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# SANITIZER=address for ASan (slower, ~3x); the default `none` is enough
# for this crate, which forbids unsafe code.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target=${1:-sql_structured}
seconds=${2:-600}
shift $(( $# > 2 ? 2 : $# ))
sanitizer=${SANITIZER:-none}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
cargo +nightly fuzz build -s "$sanitizer" "$target"

corpus=corpus/$target
mkdir -p "$corpus" "artifacts/$target"
extra=()
if [ "$target" = sql_bytes ]; then
  extra=(seeds/sql_bytes -dict=sql.dict)
fi
# -fork=1 with -ignore_*: keep fuzzing after a crash (each one is saved).
exec "target/x86_64-unknown-linux-gnu/release/$target" "$corpus" ${extra[@]+"${extra[@]}"} \
  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
  -max_len=4096 -len_control=10 \
  -artifact_prefix="artifacts/$target/" "$@"
