#!/usr/bin/env bash
# A parley cluster on this machine: N release nodes sharing PostgreSQL, NATS and Redis,
# behind HAProxy (deploy/haproxy.cfg, the server lines written for N).
#   scripts/cluster.sh up N      nodes n1..nN on 127.0.0.1:8081.., HAProxy on 127.0.0.1:8080;
#                                waits until every /readyz is 200 and HAProxy answers
#   scripts/cluster.sh down      stops HAProxy and the nodes (SIGTERM, SIGKILL after a timeout)
#   scripts/cluster.sh status    each node's readiness and HAProxy's view (exit 1 unless all up)
# `up` when the same cluster is already up says so; with another N or settings it restarts.
# Environment (defaults):
#   PARLEY_DATABASE_URL         postgres://postgres@127.0.0.1:5432/parley_cluster (database
#                               created if missing, apart from the tests' `test`)
#   PARLEY_NATS_URL             nats://127.0.0.1:4222
#   PARLEY_REDIS_URL            redis://127.0.0.1:6379
#   PARLEY_CLUSTER_NAME         parley-cluster (prefix of NATS subjects and Redis keys)
#   PARLEY_LB_ADDR              127.0.0.1:8080 (HAProxy; clients use this)
#   PARLEY_LB_STATS_ADDR        127.0.0.1:8404 (HAProxy's stats page, /metrics)
#   PARLEY_LB_CONN_PER_SOURCE   256 (HAProxy's cap on concurrent connections per client
#                               address; a load generator on one address needs more)
#   PARLEY_CLUSTER_FIRST_PORT   8081 (node i listens on FIRST_PORT + i - 1)
#   PARLEY_CLUSTER_DIR          /tmp/parley-cluster (logs, pid files, generated haproxy.cfg)
#   PARLEY_CLUSTER_START_TIMEOUT 60, PARLEY_CLUSTER_STOP_TIMEOUT 20 (seconds)
#   PARLEY_BIN                  a parley binary to run instead of this checkout's release build
#   CARGO_TARGET_DIR            $HOME/.cache/parley-target (built there if the binary is missing)
# Other PARLEY_… variables (PARLEY_LIMITS__…) and RUST_LOG reach the nodes as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
dir="${PARLEY_CLUSTER_DIR:-/tmp/parley-cluster}"
database_url="${PARLEY_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/parley_cluster}"
nats_url="${PARLEY_NATS_URL:-nats://127.0.0.1:4222}"
redis_url="${PARLEY_REDIS_URL:-redis://127.0.0.1:6379}"
cluster_name="${PARLEY_CLUSTER_NAME:-parley-cluster}"
lb_addr="${PARLEY_LB_ADDR:-127.0.0.1:8080}"
stats_addr="${PARLEY_LB_STATS_ADDR:-127.0.0.1:8404}"
conn_per_source="${PARLEY_LB_CONN_PER_SOURCE:-256}"
[[ "$conn_per_source" =~ ^[1-9][0-9]*$ ]] || die "PARLEY_LB_CONN_PER_SOURCE must be a positive number"
first_port="${PARLEY_CLUSTER_FIRST_PORT:-8081}"
start_timeout="${PARLEY_CLUSTER_START_TIMEOUT:-60}"
stop_timeout="${PARLEY_CLUSTER_STOP_TIMEOUT:-20}"
template=deploy/haproxy.cfg

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# The last lines of a log, indented, on stderr (and its first `Error:` line if the tail
# misses it, as under a long backtrace).
log_tail() {
  local file=$1 lines=${2:-30} error
  if [[ -s "$file" ]]; then
    error=$(grep -m 1 '^Error:' "$file" || true)
    if [[ -n "$error" ]] && ! tail -n "$lines" "$file" | grep -qF -- "$error"; then
      printf -- '--- %s says\n  | %s\n' "$file" "$error" >&2
    fi
    printf -- '--- last %s lines of %s\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" | sed 's/^/  | /' >&2
  else
    printf -- '--- %s is empty or missing\n' "$file" >&2
  fi
}

# host:port of a URL (scheme://user:password@host:port/path), without the credentials.
host_port() {
  local rest=${1#*://} default=$2
  rest=${rest%%/*}
  rest=${rest%%\?*}
  rest=${rest##*@}
  if [[ "$rest" == *:* ]]; then printf '%s' "$rest"; else printf '%s:%s' "$rest" "$default"; fi
}

# Whether something accepts TCP connections at host:port.
listening() {
  local host=${1%:*} port=${1##*:}
  # shellcheck disable=SC2016 # $0 and $1 belong to the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# The HTTP status of GET url (000 when nothing answers); the body goes to stdout of $2 if given.
http_status() {
  curl -s -o "${2:-/dev/null}" -w '%{http_code}' --max-time 2 "$1" || true
}

# The pid in a pid file if that process is alive and its command line contains $2.
live_pid() {
  local file=$1 marker=$2 pid
  [[ -s "$file" ]] || return 1
  pid=$(<"$file")
  kill -0 "$pid" 2>/dev/null || return 1
  ps -p "$pid" -o args= 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s' "$pid"
}

node_pid() { live_pid "$dir/$1.pid" "--node-id $1"; }
haproxy_pid() { live_pid "$dir/haproxy.pid" "$dir/haproxy.cfg"; }

# Node ids with a pid file in the state directory (a previous `up` may have had another N).
known_nodes() {
  local file
  for file in "$dir"/n*.pid; do
    [[ -e "$file" ]] || continue
    file=${file##*/}
    printf '%s\n' "${file%.pid}"
  done | sort -V
}

# One line per server of the backend: name, status (UP, DOWN, or in between: "UP 1/2"),
# current sessions; tab-separated, from HAProxy's CSV stats.
haproxy_servers() {
  curl -s --max-time 2 "http://$stats_addr/;csv" 2>/dev/null | awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) { col[$i] = i; col[substr($i, 3)] = i }; next }
    $col["pxname"] == "parley_nodes" && $col["svname"] != "BACKEND" {
      print $col["svname"] "\t" $col["status"] "\t" $col["scur"]
    }' || true
}

# The settings of the last `up` (read back by status and down, written by up).
load_state() {
  if [[ -s "$dir/cluster.env" ]]; then
    # shellcheck source=/dev/null
    source "$dir/cluster.env"
  fi
}

cmd_status() {
  load_state
  local nodes
  mapfile -t nodes < <(known_nodes)
  if [[ ${#nodes[@]} -eq 0 ]] && ! haproxy_pid >/dev/null; then
    say "not running (state in $dir)"
    return 1
  fi
  local -A lb_status=() lb_sessions=()
  local name state sessions
  while IFS=$'\t' read -r name state sessions; do
    [[ -n "$name" ]] || continue
    lb_status[$name]=$state
    lb_sessions[$name]=$sessions
  done < <(haproxy_servers)
  local ok=0 id port pid code body
  printf '%-5s %-16s %-13s %-38s %-8s %s\n' node address process /readyz haproxy sessions
  for id in "${nodes[@]}"; do
    port=$((first_port + ${id#n} - 1))
    if pid=$(node_pid "$id"); then pid="pid $pid"; else pid="not running"; ok=1; fi
    body=$(mktemp)
    code=$(http_status "http://127.0.0.1:$port/readyz" "$body")
    [[ "$code" == 200 ]] || ok=1
    printf '%-5s %-16s %-13s %-38.38s %-8s %s\n' "$id" "127.0.0.1:$port" "$pid" \
      "$code $(tr -d '\n' <"$body")" "${lb_status[$id]:--}" "${lb_sessions[$id]:--}"
    rm -f "$body"
    [[ "${lb_status[$id]:-}" == UP ]] || ok=1
  done
  if pid=$(haproxy_pid); then
    code=$(http_status "http://$lb_addr/readyz")
    printf 'haproxy pid %s on %s: /readyz through it %s; stats http://%s/\n' \
      "$pid" "$lb_addr" "$code" "$stats_addr"
    [[ "$code" == 200 ]] || ok=1
  else
    printf 'haproxy not running\n'
    ok=1
  fi
  return "$ok"
}

# Waits up to $2 seconds for the process $1 to exit.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

cmd_down() {
  local lb id pid stopped=0
  local -a pids=() ids=()
  # Soft stop: HAProxy closes its listener and lets open sessions run on, so the nodes'
  # close frames (1001, "server shutting down") still reach the clients.
  if lb=$(haproxy_pid); then
    kill -USR1 "$lb"
  fi
  for id in $(known_nodes); do
    if pid=$(node_pid "$id"); then
      kill -TERM "$pid"
      pids+=("$pid")
      ids+=("$id")
    fi
    stopped=1
  done
  local i
  for i in "${!pids[@]}"; do
    if ! wait_exit "${pids[$i]}" "$stop_timeout"; then
      say "${ids[$i]} (pid ${pids[$i]}) still running ${stop_timeout}s after SIGTERM: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      wait_exit "${pids[$i]}" 5 || true
    fi
  done
  if [[ -n "${lb:-}" ]]; then
    stopped=1
    if ! wait_exit "$lb" 5; then
      kill -TERM "$lb" 2>/dev/null || true
      wait_exit "$lb" 5 || { kill -KILL "$lb" 2>/dev/null || true; }
    fi
  fi
  rm -f "$dir"/n*.pid "$dir/haproxy.pid"
  if [[ "$stopped" == 1 ]]; then
    lb=${lb:+pid $lb}
    say "stopped (${#pids[@]} nodes, haproxy ${lb:-not running}); logs in $dir"
  else
    say "not running"
  fi
}

# The binary to run: PARLEY_BIN, else this checkout's release build (built if missing).
find_binary() {
  if [[ -n "${PARLEY_BIN:-}" ]]; then
    [[ -x "$PARLEY_BIN" ]] || die "PARLEY_BIN=$PARLEY_BIN is not an executable"
    printf '%s' "$PARLEY_BIN"
    return
  fi
  local bin="$CARGO_TARGET_DIR/release/parley"
  if [[ ! -x "$bin" ]]; then
    say "building $bin (cargo build --release -p parley-server)" >&2
    cargo build --release -q -p parley-server >&2 || die "the release build failed"
  fi
  printf '%s' "$bin"
}

# Creates the database of a postgres:// URL if it does not exist (via psql and the
# `postgres` database of the same server). Without psql the nodes will say what is wrong.
ensure_database() {
  local url=$1 name base
  name=${url##*/}
  name=${name%%\?*}
  base=${url%/*}
  if ! command -v psql >/dev/null; then
    say "psql not found: not checking that database $name exists" >&2
    return
  fi
  [[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || return 0
  if [[ -z "$(psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]]; then
    say "creating database $name"
    psql -q "$base/postgres" -c "CREATE DATABASE \"$name\"" >/dev/null \
      || die "could not create database $name"
  fi
}

# deploy/haproxy.cfg with this cluster's addresses, maxconn and one server line per node.
write_haproxy_cfg() {
  local count=$1 maxconn=$2
  awk -v count="$count" -v first="$first_port" -v lb="$lb_addr" -v stats="$stats_addr" \
      -v maxconn="$maxconn" -v per_source="$conn_per_source" '
    /# cluster.sh: PARLEY_LB_ADDR/       { sub(/bind [^ ]+/, "bind " lb) }
    /# cluster.sh: PARLEY_LB_CONN_PER_SOURCE/ { sub(/conn_cur gt [0-9]+/, "conn_cur gt " per_source) }
    /# cluster.sh: PARLEY_LB_STATS_ADDR/ { sub(/bind [^ ]+/, "bind " stats) }
    /# cluster.sh: maxconn/              { sub(/maxconn [0-9]+/, "maxconn " maxconn) }
    /^[ \t]*server n[0-9]+ / {
      if (!done) {
        for (i = 1; i <= count; i++) printf "    server n%d 127.0.0.1:%d\n", i, first + i - 1
        done = 1
      }
      next
    }
    { print }' "$template" >"$dir/haproxy.cfg.new"
  mv "$dir/haproxy.cfg.new" "$dir/haproxy.cfg"
}

print_urls() {
  local count=$1 i
  say "up: $count node(s) behind HAProxy"
  printf '  web client, REST, WebSocket  http://%s/  (/api/v1, ws://%s/ws)\n' "$lb_addr" "$lb_addr"
  printf '  HAProxy stats                http://%s/  (Prometheus: /metrics)\n' "$stats_addr"
  for i in $(seq 1 "$count"); do
    printf '  node n%-3s                    http://127.0.0.1:%s/\n' "$i" "$((first_port + i - 1))"
  done
  printf '  logs, pids, haproxy.cfg      %s\n' "$dir"
  printf '  CLI                          parley --server http://%s register <name>\n' "$lb_addr"
}

cmd_up() {
  local count=$1
  [[ "$count" =~ ^[1-9][0-9]*$ ]] || die "up needs a node count, e.g. up 3"
  command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install -y haproxy)"
  command -v curl >/dev/null || die "curl is not installed"
  mkdir -p "$dir"

  local bin
  bin=$(find_binary)
  local -a flags=(--database-url "$database_url")
  local help missing=()
  help=$("$bin" serve --help)
  for flag in nats-url redis-url cluster-name; do
    if grep -q -- "--$flag" <<<"$help"; then
      case $flag in
        nats-url) flags+=(--nats-url "$nats_url") ;;
        redis-url) flags+=(--redis-url "$redis_url") ;;
        cluster-name) flags+=(--cluster-name "$cluster_name") ;;
      esac
    else
      missing+=("--$flag")
    fi
  done

  # Same cluster already up: say so. Anything else left running: stop it first.
  local wanted
  wanted=$(printf '%s\n' "count=$count" "bin=$bin" "first_port=$first_port" \
    "lb_addr=$lb_addr" "stats_addr=$stats_addr" "per_source=$conn_per_source" "flags=${flags[*]}")
  local running=0 id
  for id in $(known_nodes); do node_pid "$id" >/dev/null && running=1; done
  haproxy_pid >/dev/null && running=1
  if [[ "$running" == 1 ]]; then
    if [[ "$wanted" == "$(cat "$dir/fingerprint" 2>/dev/null)" ]] && cmd_status >/dev/null; then
      say "already up ($dir); scripts/cluster.sh down to stop it"
      print_urls "$count"
      return
    fi
    say "a cluster from $dir is running with other settings or not healthy: restarting it"
    cmd_down
  fi
  rm -f "$dir"/n*.pid "$dir/haproxy.pid"

  # The services, and the ports, before starting anything.
  local service address
  for service in "PostgreSQL $(host_port "$database_url" 5432)" \
                 "NATS $(host_port "$nats_url" 4222)" "Redis $(host_port "$redis_url" 6379)"; do
    address=${service#* }
    listening "$address" || die "${service% *} is not reachable at $address"
  done
  local port
  for port in "$lb_addr" "$stats_addr" $(seq -f '127.0.0.1:%g' "$first_port" "$((first_port + count - 1))"); do
    ! listening "$port" || die "$port is already in use (ss -ltnp | grep ${port##*:})"
  done
  ensure_database "$database_url"

  # One socket is one descriptor: nodes and HAProxy get the hard limit.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local hard maxconn=9500
  hard=$(ulimit -Hn)
  if [[ "$hard" != unlimited ]] && (((hard - 1000) / 2 < maxconn)); then
    maxconn=$(((hard - 1000) / 2))
    ((maxconn >= 100)) || maxconn=100
  fi
  write_haproxy_cfg "$count" "$maxconn"
  haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy rejects $dir/haproxy.cfg"

  # Variables of this script and its smoke test are no settings of the server (which
  # refuses unknown PARLEY_ keys); the ones given as flags are passed as flags.
  local -a scrub=()
  local name
  while read -r name; do
    case $name in
      PARLEY_CLUSTER_*|PARLEY_LB_*|PARLEY_SMOKE_*|PARLEY_DATABASE_URL|PARLEY_NATS_URL|\
      PARLEY_REDIS_URL|PARLEY_NODE_ID|PARLEY_LISTEN|PARLEY_DATA_DIR) scrub+=(-u "$name") ;;
    esac
  done < <(compgen -e)
  # Behind an L4 proxy every client has HAProxy's address: the per-address socket cap is
  # HAProxy's (deploy/haproxy.cfg), not the nodes'.
  export PARLEY_LIMITS__MAX_SOCKETS_PER_IP="${PARLEY_LIMITS__MAX_SOCKETS_PER_IP:-1000000}"
  # A startup error is one line, not a backtrace (panics keep theirs with RUST_BACKTRACE).
  export RUST_LIB_BACKTRACE="${RUST_LIB_BACKTRACE:-0}"
  export NO_COLOR="${NO_COLOR:-1}"  # plain log files

  say "starting $count node(s) with $bin (built $(date -r "$bin" '+%F %T'))"
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "WARNING: this build has no ${missing[*]}: nodes share PostgreSQL only (no NATS/Redis)"
  fi
  local i
  for i in $(seq 1 "$count"); do
    mkdir -p "$dir/n$i.data"
    # setsid: a Ctrl-C in this terminal does not reach the nodes; `down` stops them.
    env "${scrub[@]}" setsid "$bin" serve --listen "127.0.0.1:$((first_port + i - 1))" \
      --node-id "n$i" --data-dir "$dir/n$i.data" "${flags[@]}" \
      </dev/null >"$dir/n$i.log" 2>&1 &
    echo $! >"$dir/n$i.pid"
  done
  printf '%s\n' "$wanted" >"$dir/fingerprint"
  {
    printf 'first_port=%q\nlb_addr=%q\nstats_addr=%q\n' "$first_port" "$lb_addr" "$stats_addr"
    printf 'nodes=%q\nbus=%q\n' "$count" "$([[ " ${flags[*]} " == *" --nats-url "* ]] && echo nats || echo none)"
  } >"$dir/cluster.env"

  # Every node ready, or the log of the one that is not.
  local deadline=$((SECONDS + start_timeout)) pending code
  while :; do
    pending=()
    for i in $(seq 1 "$count"); do
      if ! node_pid "n$i" >/dev/null; then
        log_tail "$dir/n$i.log"
        cmd_down >/dev/null
        die "node n$i exited while starting (log above: $dir/n$i.log)"
      fi
      code=$(http_status "http://127.0.0.1:$((first_port + i - 1))/readyz")
      [[ "$code" == 200 ]] || pending+=("n$i:$code")
    done
    [[ ${#pending[@]} -gt 0 ]] || break
    if ((SECONDS >= deadline)); then
      for id in "${pending[@]}"; do
        id=${id%%:*}
        printf -- '--- %s /readyz: %s\n' "$id" \
          "$(curl -s --max-time 2 "http://127.0.0.1:$((first_port + ${id#n} - 1))/readyz" || echo 'no answer')" >&2
        log_tail "$dir/$id.log"
      done
      cmd_down >/dev/null
      die "not ready after ${start_timeout}s: ${pending[*]} (node:status of /readyz)"
    fi
    sleep 0.2
  done
  say "nodes ready; starting HAProxy on $lb_addr (maxconn $maxconn, open files $(ulimit -n))"

  haproxy -db -f "$dir/haproxy.cfg" </dev/null >"$dir/haproxy.log" 2>&1 &
  echo $! >"$dir/haproxy.pid"
  # HAProxy up, every server UP in its checks, and a request through it answered.
  deadline=$((SECONDS + 15))
  local up
  while :; do
    if ! haproxy_pid >/dev/null; then
      log_tail "$dir/haproxy.log"
      cmd_down >/dev/null
      die "haproxy exited while starting (log above: $dir/haproxy.log)"
    fi
    up=$(haproxy_servers | awk -F '\t' '$2 == "UP"' | wc -l)
    if ((up == count)) && [[ "$(http_status "http://$lb_addr/readyz")" == 200 ]]; then
      break
    fi
    if ((SECONDS >= deadline)); then
      haproxy_servers >&2
      log_tail "$dir/haproxy.log"
      cmd_down >/dev/null
      die "HAProxy does not see all $count nodes UP after 15s (servers above)"
    fi
    sleep 0.2
  done
  print_urls "$count"
}

case "${1:-}" in
  up) [[ $# -eq 2 ]] || usage; cmd_up "$2" ;;
  down) [[ $# -eq 1 ]] || usage; load_state; cmd_down ;;
  status) [[ $# -eq 1 ]] || usage; cmd_status ;;
  *) usage ;;
esac
