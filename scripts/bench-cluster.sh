#!/usr/bin/env bash
# Cluster-mode figures of docs/benchmarks.md: starts N release nodes on 127.0.0.1:19101..
# (raised rate and socket limits) on a fresh PostgreSQL database, the machine's NATS and
# Redis under a fresh cluster name, and runs the load generator against all nodes directly
# (no HAProxy: `parley bench --node URL` per node, clients assigned round-robin).
#   scripts/bench-cluster.sh traffic N RATE         1:1 traffic at RATE msg/s for 30 s over N nodes;
#                                                   per-node CPU per message, and the CPU split
#                                                   between nodes, postgres, nats-server, redis-server
#   scripts/bench-cluster.sh idle N CONNECTIONS     idle connections spread over N nodes, from
#                                                   several generators (≤ 19,000 sockets each);
#                                                   RSS per node and per connection per node
# Environment (defaults):
#   BENCH_BIN             a parley binary instead of building this checkout's release build
#   BENCH_FIRST_PORT      19101 (node i listens on FIRST_PORT + i - 1)
#   BENCH_DATABASE        parley_bench (dropped and created on 127.0.0.1:5432, user postgres;
#                         dropped again at the end)
#   BENCH_NATS_URL        nats://127.0.0.1:4222
#   BENCH_REDIS_URL       redis://127.0.0.1:6379
#   BENCH_DURATION        30s (traffic: measured time, after 5 s of warm-up)
#   BENCH_USERS           traffic: 200 users in 100 direct conversations;
#                         idle: 100 users per generator process
#   BENCH_PER_GENERATOR   19000 (idle: sockets per generator process)
#   BENCH_HOLD            60s (idle: each generator holds its connections this long)
#   BENCH_OUT             a directory to keep logs and JSON reports in (default: a temp dir,
#                         removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-}
nodes=${2:-}
amount=${3:-}
if [[ ! "$scenario" =~ ^(traffic|idle)$ || ! "$nodes" =~ ^[1-9][0-9]*$ || ! "$amount" =~ ^[0-9]+$ ]]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
first_port=${BENCH_FIRST_PORT:-19101}
database=${BENCH_DATABASE:-parley_bench}
nats_url=${BENCH_NATS_URL:-nats://127.0.0.1:4222}
redis_url=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
duration=${BENCH_DURATION:-30s}
per_generator=${BENCH_PER_GENERATOR:-19000}
hold=${BENCH_HOLD:-60s}
cluster_name="parley-bench-$$-$RANDOM"
clock_ticks=$(getconf CLK_TCK)
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

node_pids=()
helper_pids=()
drop_database() {
  "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 \
    || "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS \"$database\"" >/dev/null
}
cleanup() {
  local pid waited
  for pid in "${helper_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do
    for ((waited = 0; waited < 150; waited++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  drop_database || echo "bench-cluster: could not drop database $database" >&2
  [[ -n "${BENCH_OUT:-}" ]] || rm -rf "$out"
}
trap cleanup EXIT

port_of() { echo $((first_port + $1 - 1)); }
url_of() { echo "http://127.0.0.1:$(port_of "$1")"; }
# utime + stime of a process, in clock ticks (fields 14 and 15, counted after the `)`).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The sum of cpu_ticks over every process with this exact name.
cpu_ticks_named() {
  local total=0 pid
  for pid in $(pgrep -x "$1" || true); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# A counter or gauge of a node's /metrics (summed over its labels), 0 if absent.
metric() {
  curl -s --max-time 2 "$(url_of "$1")/metrics" \
    | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $NF } END { printf "%d\n", sum }'
}

for i in $(seq 1 "$nodes"); do
  # shellcheck disable=SC2016 # $0 belongs to the inner bash
  if timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$(port_of "$i")" 2>/dev/null; then
    echo "bench-cluster: port $(port_of "$i") is in use" >&2
    exit 1
  fi
done
drop_database
"${psql_admin[@]}" -c "CREATE DATABASE \"$database\"" >/dev/null

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=scripts/bench-limits.sh
source scripts/bench-limits.sh
for i in $(seq 1 "$nodes"); do
  RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$(port_of "$i")" --node-id "n$i" \
    --data-dir "$out/data-n$i" \
    --database-url "postgres://postgres@127.0.0.1:5432/$database" \
    --nats-url "$nats_url" --redis-url "$redis_url" --cluster-name "$cluster_name" \
    >"$out/n$i.log" 2>&1 &
  node_pids+=($!)
  # One node first: it runs the migrations; the others start on the migrated database.
  if ((i == 1)); then
    for ((waited = 0; waited < 600; waited++)); do
      [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(url_of 1)/readyz")" == 200 ]] && break
      kill -0 "${node_pids[0]}" 2>/dev/null || { tail -20 "$out/n1.log" >&2; exit 1; }
      sleep 0.1
    done
  fi
done
node_args=()
for i in $(seq 1 "$nodes"); do
  for ((waited = 0; waited < 600; waited++)); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(url_of "$i")/readyz")" == 200 ]] && break
    kill -0 "${node_pids[i - 1]}" 2>/dev/null || { tail -20 "$out/n$i.log" >&2; exit 1; }
    sleep 0.1
  done
  node_args+=(--node "$(url_of "$i")")
done
echo "bench-cluster: $nodes node(s) ready on $(url_of 1).., database $database, cluster $cluster_name"

# Busy CPU ticks of the whole machine (all cores: user, nice, system, irq, softirq, steal).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# One line per second: time, then per node CPU ticks and parley_messages_total, then the
# CPU ticks of all postgres, nats-server and redis-server processes, of the generator
# (the `parley bench` processes) and of the whole machine.
sample_line() {
  local line i generator=0 pid
  line="$(date +%s.%N)"
  for i in $(seq 1 "$nodes"); do
    line+=" $(cpu_ticks "${node_pids[i - 1]}") $(metric "$i" parley_messages_total)"
  done
  for pid in $(pgrep -f -- "parley bench --node $(url_of 1)" || true); do
    generator=$((generator + $(cpu_ticks "$pid")))
  done
  echo "$line $(cpu_ticks_named postgres) $(cpu_ticks_named nats-server) $(cpu_ticks_named redis-server) $generator $(machine_ticks)"
}

case "$scenario" in
  traffic)
    (while true; do sample_line; sleep 1; done) >"$out/samples.txt" &
    helper_pids+=($!)
    users=${BENCH_USERS:-200}
    status=0
    "$bin" bench "${node_args[@]}" --users "$users" --conversations "$((users / 2))" \
      --group-ratio 0 --rate "$amount" --duration "$duration" --warmup 5s --json \
      >"$out/report.json" || status=$?
    sleep 1.5
    kill "${helper_pids[0]}" 2>/dev/null || true
    jq -r '"sent \(.sent), acked \(.acked), delivered \(.delivered) of \(.expected_deliveries), lost \(.lost), duplicated \(.duplicated), errors \(.send_errors)+\(.other_errors), disconnects \(.disconnects)",
           "deliveries/s \(.deliveries_per_sec | floor), delivery p50 \(.delivery_latency.p50_ms) ms, p95 \(.delivery_latency.p95_ms) ms, p99 \(.delivery_latency.p99_ms) ms, max \(.delivery_latency.max_ms) ms",
           "ack p50 \(.ack_latency.p50_ms) ms, p99 \(.ack_latency.p99_ms) ms"' "$out/report.json" \
      || cat "$out/report.json"
    # The traffic window: from the last sample before the message counters moved to the
    # first sample after they stopped (warm-up and measured time, no registration).
    awk -v nodes="$nodes" -v hz="$clock_ticks" '
      {
        t[NR] = $1; total = 0
        for (i = 1; i <= nodes; i++) { cpu[NR, i] = $(2 * i); msg[NR, i] = $(2 * i + 1); total += $(2 * i + 1) }
        msgs[NR] = total; pg[NR] = $(2 * nodes + 2); nats[NR] = $(2 * nodes + 3); redis[NR] = $(2 * nodes + 4)
        gen[NR] = $(2 * nodes + 5); machine[NR] = $(2 * nodes + 6)
      }
      END {
        first = 0; last = 0
        for (r = 2; r <= NR; r++) if (msgs[r] > msgs[r - 1]) { if (!first) first = r - 1; last = r }
        if (!first) { print "no messages counted in /metrics samples"; exit }
        secs = t[last] - t[first]; sent = msgs[last] - msgs[first]
        printf "traffic window %.1f s, %d messages stored (%.0f/s)\n", secs, sent, sent / secs
        node_total = 0
        for (i = 1; i <= nodes; i++) {
          c = (cpu[last, i] - cpu[first, i]) / hz; m = msg[last, i] - msg[first, i]; node_total += c
          printf "  n%d: CPU %.1f s (%.0f%% of a core), %d sends accepted, %.1f us CPU per accepted send, %.1f us per cluster message\n",
            i, c, 100 * c / secs, m, (m ? 1e6 * c / m : 0), 1e6 * c / sent
        }
        printf "  all nodes: %.1f us CPU per message\n", 1e6 * node_total / sent
        split("postgres nats-server redis-server generator", names, " ")
        vals[1] = (pg[last] - pg[first]) / hz; vals[2] = (nats[last] - nats[first]) / hz
        # The generator may have exited by the last sample: take its last live one.
        glast = last; while (glast > first && gen[glast] < gen[first]) glast--
        vals[3] = (redis[last] - redis[first]) / hz; vals[4] = (gen[glast] - gen[first]) / hz
        ours = node_total
        for (k = 1; k <= 4; k++) {
          ours += vals[k]
          printf "  %s: CPU %.1f s (%.0f%% of a core), %.1f us per message\n", names[k], vals[k], 100 * vals[k] / secs, 1e6 * vals[k] / sent
        }
        busy = (machine[last] - machine[first]) / hz
        printf "  machine busy %.0f%% of a core (all cores), of which %.0f%% outside this benchmark\n", 100 * busy / secs, 100 * (busy - ours) / secs
      }' "$out/samples.txt"
    exit "$status"
    ;;
  idle)
    generators=$(((amount + per_generator - 1) / per_generator))
    declare -a before_kib
    for i in $(seq 1 "$nodes"); do before_kib[i]=$(rss_kib "${node_pids[i - 1]}"); done
    started=$(date +%s)
    for g in $(seq 1 "$generators"); do
      share=$((amount / generators + (g <= amount % generators ? 1 : 0)))
      "$bin" bench "${node_args[@]}" --mode idle --users "${BENCH_USERS:-100}" \
        --connections "$share" --duration "$hold" --json >"$out/idle-$g.json" 2>"$out/idle-$g.err" &
      helper_pids+=($!)
    done
    echo "bench-cluster: $generators generator(s) opening $amount connections"
    # Wait until the nodes hold them all (or the count stops growing for 15 s).
    open=0 previous=-1 still=0
    while ((open < amount && still < 15)); do
      sleep 1
      open=0
      for i in $(seq 1 "$nodes"); do open=$((open + $(metric "$i" parley_connections))); done
      if ((open == previous)); then still=$((still + 1)); else still=0; fi
      previous=$open
    done
    sleep 3
    echo "bench-cluster: $open connections open after $(($(date +%s) - started)) s"
    total_growth=0
    for i in $(seq 1 "$nodes"); do
      after=$(rss_kib "${node_pids[i - 1]}")
      held=$(metric "$i" parley_connections)
      growth=$((after - before_kib[i]))
      total_growth=$((total_growth + growth))
      awk -v i="$i" -v b="${before_kib[i]}" -v a="$after" -v c="$held" 'BEGIN {
        printf "  n%d: %d connections, RSS %.1f -> %.1f MiB, %.2f KiB per connection\n",
          i, c, b / 1024, a / 1024, (c ? (a - b) / c : 0) }'
    done
    awk -v g="$total_growth" -v c="$open" 'BEGIN {
      printf "  all nodes: %.1f MiB growth, %.2f KiB per connection\n", g / 1024, (c ? g / c : 0) }'
    status=0
    for pid in "${helper_pids[@]}"; do wait "$pid" || status=$?; done
    helper_pids=()
    for g in $(seq 1 "$generators"); do
      jq -r --arg g "$g" '"  generator \($g): \(.users) users, opened \(.idle.opened) of \(.idle.requested) in \(.idle.open_secs | floor) s, failed \(.idle.failed), disconnected while held \(.idle.disconnected), generator RSS \((.loadgen_rss_kib // 0) / 1024 | floor) MiB\(if .idle.first_error then ", first error: " + .idle.first_error else "" end)"' \
        "$out/idle-$g.json" 2>/dev/null || { echo "  generator $g failed:"; tail -5 "$out/idle-$g.err"; }
    done
    exit "$status"
    ;;
esac
