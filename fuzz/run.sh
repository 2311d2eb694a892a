#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on the stable toolchain and runs
# each for a fixed budget (docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS] [TARGET...]    default: 60 s each, every target
#
# No cargo-fuzz and no nightly: cargo-fuzz's `-s none` build is plain
# cargo with the SanitizerCoverage flags below, which stable rustc takes
# (`-C passes` and `-C llvm-args` are stable); only the sanitizers need -Z.
# A crash stops the run with libFuzzer's report; the input is saved under
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mwan-fuzz$')
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
# An explicit --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --locked --target "$host" "${bins[@]}"
for t in "${targets[@]}"; do
  # Seeds are read-only input; what libFuzzer learns goes to a scratch dir.
  work="$CARGO_TARGET_DIR/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  echo "=== fuzz $t: ${seconds}s ==="
  log="$CARGO_TARGET_DIR/fuzz-$t.log"
  status=0
  "$CARGO_TARGET_DIR/$host/release/$t" "$work" "corpus/$t" \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  # libFuzzer's progress lines are many: keep the summary and any crash.
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|seed corpus|panicked|ERROR|SUMMARY|Test unit written' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz $t: crashed (exit $status; input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
done
