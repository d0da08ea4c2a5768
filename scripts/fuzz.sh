#!/usr/bin/env bash
# Fuzzes parley's wire decoding (the cargo-fuzz targets in fuzz/) for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default: 30 s, every target
#
# Needs rustup; installs the nightly toolchain and cargo-fuzz when they are missing.
# Builds into $CARGO_TARGET_DIR (default: $HOME/.cache/parley-fuzz-target). The seeds in
# fuzz/corpus/<target>/ are only read: new inputs go to a temporary directory, logs and
# crash inputs under $FUZZ_OUT (default: $CARGO_TARGET_DIR/fuzz-out), so the repo stays
# clean. Prints one line per target; exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
# (libFuzzer takes -max_total_time=0 as "no limit": refuse it.)
case "$seconds" in '' | *[!0-9]* | 0) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-fuzz-target}"
export CARGO_TERM_COLOR=never
toolchain=${FUZZ_TOOLCHAIN:-nightly}
out=${FUZZ_OUT:-$CARGO_TARGET_DIR/fuzz-out}
mkdir -p "$CARGO_TARGET_DIR" "$out"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$PATH:$cargo_bin"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the $toolchain toolchain"
  rustup toolchain install "$toolchain" --profile minimal >"$out/rustup.log" 2>&1 \
    || { tail -20 "$out/rustup.log"; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  started=$SECONDS
  cargo install cargo-fuzz --locked >"$out/install.log" 2>&1 \
    || { tail -20 "$out/install.log"; exit 1; }
  echo "fuzz: $(cargo fuzz --version) installed in $((SECONDS - started)) s"
fi

host=$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')
bin_dir="$CARGO_TARGET_DIR/$host/release"

started=$SECONDS
if ! cargo "+$toolchain" fuzz build --fuzz-dir fuzz >"$out/build.log" 2>&1; then
  echo "fuzz: build failed (log: $out/build.log)"
  tail -30 "$out/build.log"
  exit 1
fi
echo "fuzz: built the targets with $(rustup run "$toolchain" rustc --version) in $((SECONDS - started)) s"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list --fuzz-dir fuzz)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets found in fuzz/" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/parley-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
for target in "${targets[@]}"; do
  seeds="fuzz/corpus/$target"
  log="$out/$target.log"
  artifacts="$out/artifacts/$target"
  rm -rf "$artifacts"
  mkdir -p "$work/$target" "$artifacts"
  # libFuzzer writes new inputs to the first corpus directory only: the temporary one.
  corpora=("$work/$target")
  [ -d "$seeds" ] && corpora+=("$seeds")
  status=0
  "$bin_dir/$target" "${corpora[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $target ok: ${execs:-?} execs (${rate:-?}/s) in ${seconds} s, ${cov:-no stats}"
  else
    failed=1
    echo "fuzz: $target FAILED (exit $status) after ${execs:-?} execs; log: $log"
    echo "---- $log: the error, the frames in parley code, the last lines"
    awk '/panicked at|==ERROR: AddressSanitizer|ERROR: libFuzzer: (timeout|out-of-memory)/ { p = 1 }
         p && /^stack backtrace:/ { p = 0 }
         p && n < 25 { print; n++ }' "$log"
    { grep -E ' (in|at) .*(parley_proto|fuzz_targets/)' "$log" | grep -v -e NEW_FUNC -e 'panicked at' | head -10; } || true
    tail -12 "$log"
    echo "----"
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: crash inputs are in $out/artifacts; replay one with" \
    "$bin_dir/<target> <input>"
  exit 1
fi
