#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: starts a release server with raised rate
# and socket limits (every client comes from 127.0.0.1) on a fresh data directory, then runs the load generator (same machine).
#   scripts/bench.sh traffic RATE      1:1 traffic at RATE msg/s for 30 s
#   scripts/bench.sh idle N            N idle connections, server RSS per connection
#   scripts/bench.sh fanout RATE       one 500-member group, 10 senders, RATE msg/s
# BENCH_BIN=path runs that binary instead of building this checkout (before/after runs of
# two builds in one sitting).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-traffic}
amount=${2:-5000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [[ -n "${BENCH_BIN:-}" ]]; then
  bin="$BENCH_BIN"
else
  cargo build --release -q -p parley-server
  bin="$CARGO_TARGET_DIR/release/parley"
fi
data=$(mktemp -d)
port=${BENCH_PORT:-19000}
# shellcheck source=scripts/bench-limits.sh
source scripts/bench-limits.sh
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
sleep 1
common=(--server "http://127.0.0.1:$port" --server-pid "$server")
case "$scenario" in
  traffic) "$bin" bench "${common[@]}" --users 200 --conversations 100 --group-ratio 0 \
             --rate "$amount" --duration 30s --warmup 5s ;;
  idle)    "$bin" bench "${common[@]}" --mode idle --users 100 --connections "$amount" --duration 20s ;;
  fanout)  "$bin" bench "${common[@]}" --group-size 500 --senders 10 \
             --rate "$amount" --duration 30s --warmup 5s ;;
  *) echo "usage: $0 traffic|idle|fanout AMOUNT" >&2; exit 2 ;;
esac
