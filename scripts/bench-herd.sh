#!/usr/bin/env bash
# The reconnect herd of docs/benchmarks.md: what the surviving nodes' clients see when a
# node dies under them and its clients all come back at once.
#   scripts/bench-herd.sh [HERD] [RATE]
# Starts 3 release nodes behind HAProxy (scripts/cluster.sh, ports 18280.. by default),
# opens HERD (default 9000) idle SDK connections through HAProxy (about a third on each
# node: these are the herd), runs 1:1 traffic at RATE msg/s (default 2000) on n1 and n2
# directly (the survivors' own clients), kills n3 with SIGKILL after 25 s of traffic, and
# reports, from the survivors' /metrics once a second:
#   - their delivery-latency p50/p99 in windows before, during and after the herd
#     (histogram buckets, interpolated: 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250 ms ...);
#   - sockets they refused by the per-node accept rate (429 + Retry-After; the SDK backs
#     off with jitter and retries), and how long until every herd connection was back;
#   - the traffic generator's own report over the whole run (lost, duplicated, p99).
# The accept rate is the default (500/s, bursts of 1000) unless BENCH_ACCEPTS_PER_SECOND
# says otherwise: only the other abuse limits are raised (scripts/bench-limits.sh), so the
# herd meets the limit production would.
# Environment (defaults):
#   BENCH_BIN           a parley binary instead of building this checkout's release build
#   BENCH_FIRST_PORT    18280 (HAProxy; nodes on the next three ports; stats on +124)
#   BENCH_DATABASE      parley_herd (dropped and created on 127.0.0.1:5432, dropped at the end)
#   BENCH_NATS_URL      nats://127.0.0.1:4222
#   BENCH_REDIS_URL     redis://127.0.0.1:6379
#   BENCH_HERD_USERS    300 (users the idle connections belong to)
#   BENCH_KILL_AFTER    25 (seconds of traffic before n3 is killed)
#   BENCH_ACCEPTS_PER_SECOND  the nodes' limits.accepts_per_second (default: theirs, 500)
#   BENCH_DURATION      75s (measured traffic time, after 5 s of warm-up)
#   BENCH_OUT           a directory to keep logs, metrics samples and reports in
set -euo pipefail
cd "$(dirname "$0")/.."

herd=${1:-9000}
rate=${2:-2000}
if [[ ! "$herd" =~ ^[0-9]+$ || ! "$rate" =~ ^[0-9]+$ ]]; then
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
# A proxied connection costs HAProxy two of its 20,000 open files.
if ((herd > 9500)); then
  echo "bench-herd: at most 9500 connections through one HAProxy process" >&2
  exit 2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
first_port=${BENCH_FIRST_PORT:-18280}
database=${BENCH_DATABASE:-parley_herd}
herd_users=${BENCH_HERD_USERS:-300}
kill_after=${BENCH_KILL_AFTER:-25}
duration=${BENCH_DURATION:-75s}
psql_admin=(psql -q -X -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1)

if [[ -n "${BENCH_BIN:-}" ]]; then
  bin="$BENCH_BIN"
else
  cargo build --release -q -p parley-server
  bin="$CARGO_TARGET_DIR/release/parley"
fi
if [[ -n "${BENCH_OUT:-}" ]]; then
  out="$BENCH_OUT"
  mkdir -p "$out"
else
  out=$(mktemp -d)
fi

export PARLEY_BIN="$bin"
export PARLEY_CLUSTER_DIR="$out/cluster"
export PARLEY_CLUSTER_FIRST_PORT=$((first_port + 1))
export PARLEY_LB_ADDR="127.0.0.1:$first_port"
export PARLEY_LB_STATS_ADDR="127.0.0.1:$((first_port + 124))"
# Every generated client comes from 127.0.0.1.
export PARLEY_LB_CONN_PER_SOURCE=100000
export PARLEY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database"
export PARLEY_NATS_URL="${BENCH_NATS_URL:-nats://127.0.0.1:4222}"
export PARLEY_REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
export PARLEY_CLUSTER_NAME="parley-herd-$$-$RANDOM"
export RUST_LOG=warn
lb="http://$PARLEY_LB_ADDR"
url_of() { echo "http://127.0.0.1:$((first_port + $1))"; }

helper_pids=()
drop_database() {
  "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 \
    || "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS \"$database\"" >/dev/null
}
cleanup() {
  local pid
  for pid in "${helper_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/cluster.sh down >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  drop_database || echo "bench-herd: could not drop database $database" >&2
  [[ -n "${BENCH_OUT:-}" ]] || rm -rf "$out"
}
trap cleanup EXIT

# A counter or gauge of a node's /metrics (summed over its labels), 0 if absent.
metric() {
  curl -s --max-time 2 "$(url_of "$1")/metrics" \
    | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $NF } END { printf "%d\n", sum }'
}

drop_database
"${psql_admin[@]}" -c "CREATE DATABASE \"$database\"" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=scripts/bench-limits.sh
source scripts/bench-limits.sh
unset PARLEY_LIMITS__ACCEPTS_PER_SECOND
if [[ -n "${BENCH_ACCEPTS_PER_SECOND:-}" ]]; then
  export PARLEY_LIMITS__ACCEPTS_PER_SECOND="$BENCH_ACCEPTS_PER_SECOND"
fi
scripts/cluster.sh up 3 >"$out/cluster-up.log" 2>&1 || { cat "$out/cluster-up.log" >&2; exit 1; }
n3_pid=$(<"$PARLEY_CLUSTER_DIR/n3.pid")
echo "bench-herd: 3 nodes behind HAProxy on $lb, database $database"

# The herd: idle connections through HAProxy, held for the whole run.
"$bin" bench --node "$lb" --mode idle --users "$herd_users" --connections "$herd" \
  --connect-concurrency 64 --duration 600s --json >"$out/herd.json" 2>"$out/herd.err" &
helper_pids+=($!)
open=0 previous=-1 still=0
# Registering the herd's users (Argon2) comes first; then the connections, at the
# accept rate.
while ((open < herd && still < 120)); do
  sleep 1
  open=$(($(metric 1 parley_connections) + $(metric 2 parley_connections) + $(metric 3 parley_connections)))
  if ((open == previous)); then still=$((still + 1)); else still=0; fi
  previous=$open
  kill -0 "${helper_pids[0]}" 2>/dev/null || break
done
echo "bench-herd: $open idle connections open: n1 $(metric 1 parley_connections), n2 $(metric 2 parley_connections), n3 $(metric 3 parley_connections)"
((open >= herd)) || { echo "bench-herd: the herd did not open" >&2; tail -5 "$out/herd.err" >&2; exit 1; }

# One sample per second: time, then for n1 and n2 the delivery-latency buckets
# (le=value pairs), connections and accept-rate refusals.
sample() {
  local i t
  t=$(date +%s.%N)
  for i in 1 2; do
    curl -s --max-time 2 "$(url_of "$i")/metrics" | awk -v t="$t" -v n="n$i" '
      /^parley_delivery_latency_seconds_bucket/ {
        match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); b[le] += $NF
      }
      $1 == "parley_connections" { c = $NF }
      /^parley_sockets_refused_total\{.*accept_rate/ { r += $NF }
      END {
        printf "%s %s conns=%d refused=%d", t, n, c, r
        for (le in b) printf " %s=%d", le, b[le]
        printf "\n"
      }'
  done
}
(while true; do sample; sleep 1; done) >"$out/samples.txt" &
helper_pids+=($!)

"$bin" bench --node "$(url_of 1)" --node "$(url_of 2)" --users 200 --conversations 100 \
  --group-ratio 0 --rate "$rate" --duration "$duration" --warmup 5s --json \
  >"$out/traffic.json" 2>"$out/traffic.err" &
traffic_pid=$!
# Kill once the traffic has run KILL_AFTER seconds (after its setup and warm-up).
for ((waited = 0; waited < 600; waited++)); do
  (($(metric 1 parley_messages_total) > 0)) && break
  sleep 0.5
done
sleep "$((5 + kill_after))"
n3_share=$(metric 3 parley_connections)
kill -KILL "$n3_pid"
killed_at=$(date +%s.%N)
echo "bench-herd: killed n3 (pid $n3_pid, $n3_share sockets) at $(date -u +%H:%M:%S)"
status=0
wait "$traffic_pid" || status=$?
sleep 2
kill "${helper_pids[1]}" 2>/dev/null || true

jq -r '"traffic on n1+n2, whole run: sent \(.sent), acked \(.acked), delivered \(.delivered) of \(.expected_deliveries), lost \(.lost), duplicated \(.duplicated), errors \(.send_errors)+\(.other_errors), disconnects \(.disconnects)",
       "  delivery p50 \(.delivery_latency.p50_ms) ms, p99 \(.delivery_latency.p99_ms) ms, max \(.delivery_latency.max_ms) ms; ack p99 \(.ack_latency.p99_ms) ms"' \
  "$out/traffic.json" || { tail -20 "$out/traffic.err"; status=1; }

# Windows relative to the kill, from the survivors' summed histograms.
awk -v killed="$killed_at" -v share="$n3_share" '
  function quantile(q, from, to,   k, total, target, prev_le, prev_c, c, le) {
    total = cnt[to, "+Inf"] - cnt[from, "+Inf"]
    if (total <= 0) return "-"
    target = q * total; prev_le = 0; prev_c = 0
    for (k = 1; k <= nles; k++) {
      le = les[k]; c = cnt[to, le] - cnt[from, le]
      if (c >= target) {
        if (le == "+Inf") return ">" prev_le * 1000 " ms"
        return sprintf("%.1f ms", 1000 * (prev_le + (le - prev_le) * (target - prev_c) / (c - prev_c)))
      }
      prev_le = le; prev_c = c
    }
  }
  {
    t = $1 - killed; n = $2
    if (!(t in seen)) { seen[t] = 1; times[++nt] = t }
    for (f = 3; f <= NF; f++) {
      split($f, kv, "=")
      if (kv[1] == "conns") conns[t] += kv[2]
      else if (kv[1] == "refused") refused[t] += kv[2]
      else { cnt[t, kv[1]] += kv[2]; if (!(kv[1] in isle)) { isle[kv[1]] = 1; lelist[++nl] = kv[1] } }
    }
  }
  END {
    # Bucket bounds in order (+Inf last).
    for (i = 1; i <= nl; i++) if (lelist[i] != "+Inf") les[++nles] = lelist[i] + 0
    for (i = 1; i <= nles; i++) for (j = i + 1; j <= nles; j++) if (les[j] < les[i]) { x = les[i]; les[i] = les[j]; les[j] = x }
    for (i = 1; i <= nles; i++) les[i] = les[i] ""
    les[++nles] = "+Inf"
    for (i = 1; i <= nt; i++) for (k = 1; k <= nles; k++) if (!((times[i], les[k]) in cnt)) cnt[times[i], les[k]] = 0
    split("-20 -10 -5 0 0 5 5 15 15 30 30 45", w, " ")
    base_conns = -1
    for (i = 1; i <= nt; i++) if (times[i] < 0) base_conns = conns[times[i]]
    printf "survivors (n1+n2) delivery latency by window, seconds from the kill:\n"
    for (k = 1; k <= 12; k += 2) {
      from = ""; to = ""
      for (i = 1; i <= nt; i++) {
        if (from == "" && times[i] >= w[k]) from = times[i]
        if (times[i] <= w[k + 1]) to = times[i]
      }
      if (from == "" || to == "" || to <= from) continue
      n = cnt[to, "+Inf"] - cnt[from, "+Inf"]
      printf "  [%+3d s, %+3d s]: %7d deliveries, p50 %s, p99 %s, accept-rate refusals %d, survivors hold %d sockets\n",
        w[k], w[k + 1], n, quantile(0.5, from, to), quantile(0.99, from, to), refused[to] - refused[from], conns[to]
    }
    back = ""
    for (i = 1; i <= nt; i++) if (times[i] > 0 && back == "" && conns[times[i]] >= base_conns + share) back = times[i]
    last = times[nt]
    printf "sockets on the survivors: %d before the kill, %d at the end; refused by the accept rate in all: %d\n", base_conns, conns[last], refused[last]
    if (back != "") printf "the dead node'"'"'s share was back on the survivors %.1f s after the kill\n", back
    else printf "the dead node'"'"'s share was not back on the survivors by the end\n"
  }' "$out/samples.txt"
exit "$status"
