#!/usr/bin/env bash
# Smoke test of a cluster behind HAProxy (CI runs it from .ci/run): scripts/cluster.sh up 3
# on a fresh database, then through HAProxy with the CLI: two users register, one opens a
# direct chat live (`parley chat`, a WebSocket), the other sends; the message is in history
# through HAProxy and on every node, and arrives live across nodes. Then the node holding
# that WebSocket is killed with SIGKILL: its /readyz fails, HAProxy marks it DOWN, requests
# through HAProxy still succeed, the client reconnects (through HAProxy, to a live node) and
# the next message reaches it. Then scripts/cluster.sh down. Exits non-zero naming the
# failed check, with the nodes' log tails.
#   scripts/cluster-smoke.sh
# Its own ports, state directory, database and cluster name, so a cluster started by hand
# (scripts/cluster.sh up N on 8080..) is left alone. Environment (defaults):
#   PARLEY_SMOKE_DATABASE_URL  postgres://postgres@127.0.0.1:5432/parley_cluster_smoke
#                              (dropped and created again at each run)
#   PARLEY_NATS_URL, PARLEY_REDIS_URL, PARLEY_BIN, CARGO_TARGET_DIR: as scripts/cluster.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
export PARLEY_CLUSTER_DIR=/tmp/parley-cluster-smoke
export PARLEY_LB_ADDR=127.0.0.1:18080
export PARLEY_LB_STATS_ADDR=127.0.0.1:18404
export PARLEY_CLUSTER_FIRST_PORT=18081
export PARLEY_CLUSTER_NAME=parley-smoke
export PARLEY_DATABASE_URL="${PARLEY_SMOKE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/parley_cluster_smoke}"
lb="http://$PARLEY_LB_ADDR"
stats="http://$PARLEY_LB_STATS_ADDR"
nodes=3
started=$SECONDS

work=$(mktemp -d /tmp/parley-smoke.XXXXXX)
chat_pid=""
cleanup() {
  local status=$?
  exec 7>&- 2>/dev/null || true
  if [[ -n "$chat_pid" ]]; then kill "$chat_pid" 2>/dev/null || true; fi
  scripts/cluster.sh down || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step() { printf '\n--- smoke: %s (%ss)\n' "$*" "$((SECONDS - started))"; }
pass() { printf 'ok: %s\n' "$*"; }
fail() {
  printf '\nFAIL: %s\n' "$*" >&2
  local log
  for log in "$PARLEY_CLUSTER_DIR"/n*.log "$PARLEY_CLUSTER_DIR/haproxy.log" "$work/bob-chat.out"; do
    [[ -s "$log" ]] || continue
    printf -- '--- last lines of %s\n' "$log" >&2
    tail -n 15 "$log" | sed 's/^/  | /' >&2
  done
  exit 1
}

# The parley CLI as one user (each keeps its session in its own config directory), through HAProxy.
bin="${PARLEY_BIN:-$CARGO_TARGET_DIR/release/parley}"
as() {
  local user=$1
  shift
  PARLEY_CONFIG_DIR="$work/$user" "$bin" --server "$lb" "$@"
}

# Polls `$@` every 0.2 s for up to $1 seconds; true as soon as it succeeds.
within() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }
# HAProxy's status of one server (UP, DOWN, "UP 1/2"…) and its current sessions.
server_field() {
  curl -s --max-time 2 "$stats/;csv" | awk -F, -v server="$1" -v field="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) { col[$i] = i; col[substr($i, 3)] = i }; next }
    $col["pxname"] == "parley_nodes" && $col["svname"] == server { print $col[field] }'
}
is_down() { [[ "$(server_field "$1" status)" == DOWN ]]; }
in_output() { grep -qF -- "$1" "$work/bob-chat.out"; }
json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }
# Whether `user`'s history of the conversation, read through HAProxy, holds `text`.
history_has() {
  local out
  out=$(as "$1" history "$conversation" --json) || return 1
  grep -qF -- "$2" <<<"$out"
}

step "fresh database, 3 nodes and HAProxy"
if command -v psql >/dev/null; then
  name=${PARLEY_DATABASE_URL##*/}
  PGOPTIONS='--client-min-messages=warning' psql -q "${PARLEY_DATABASE_URL%/*}/postgres" \
    -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null \
    || fail "could not drop the smoke database $name"
fi
scripts/cluster.sh up "$nodes" || fail "scripts/cluster.sh up $nodes"
# shellcheck source=/dev/null
source "$PARLEY_CLUSTER_DIR/cluster.env"
[[ -x "$bin" ]] || fail "no parley binary at $bin"

step "two users register through HAProxy"
run=$(date +%s)$((RANDOM % 1000))
alice="alice_$run"
bob="bob_$run"
password="smoke-password-$run"
as alice register "$alice" --display-name Alice --password "$password" || fail "registering $alice"
as bob register "$bob" --display-name Bob --password "$password" || fail "registering $bob"
created=$(as alice create direct "$bob" --json) || fail "creating a direct chat with $bob"
conversation=$(json_field conversation_id <<<"$created")
[[ "$conversation" == c_* ]] || fail "creating a direct chat gave no conversation id: $created"
pass "$alice and $bob registered, direct chat $conversation"

step "$bob opens the chat live (a WebSocket through HAProxy)"
mkfifo "$work/bob-chat.in"
as bob chat "$conversation" --history 0 <"$work/bob-chat.in" >"$work/bob-chat.out" 2>&1 &
chat_pid=$!
exec 7>"$work/bob-chat.in"
# The node holding the socket: the one counting a WebSocket in its metrics (HAProxy's
# session counts would also show the CLI's kept-alive REST connection).
socket_node=""
find_socket_node() {
  local i count
  for i in $(seq 1 "$nodes"); do
    count=$(curl -s --max-time 2 "http://127.0.0.1:$((PARLEY_CLUSTER_FIRST_PORT + i - 1))/metrics" \
      | awk '$1 == "parley_connections" { print int($2) }')
    if [[ "${count:-0}" -ge 1 ]]; then socket_node="n$i"; return 0; fi
  done
  return 1
}
within 10 find_socket_node || fail "no WebSocket session through HAProxy after 10 s"
pass "$bob's socket is on $socket_node"

step "$alice sends through HAProxy (leastconn: another node than $socket_node)"
first="hello across nodes $run"
as alice send "$conversation" "$first" || fail "sending through HAProxy"
for attempt in 1 2 3; do
  history_has bob "$first" || fail "history through HAProxy (read $attempt) lacks the message"
done
pass "in history through HAProxy (3 reads)"
token=$(json_field token <"$work/bob/session.json")
for i in $(seq 1 "$nodes"); do
  page=$(curl -sf --max-time 5 -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$((PARLEY_CLUSTER_FIRST_PORT + i - 1))/api/v1/conversations/$conversation/messages") \
    || fail "reading history directly from node n$i"
  grep -qF -- "$first" <<<"$page" || fail "history read directly from node n$i lacks the message"
done
pass "in history on every node (n1..n$nodes directly)"
if [[ "${bus:-none}" == nats ]]; then
  within 10 in_output "$first" || fail "$bob's live chat did not receive the message within 10 s"
  pass "delivered live to $bob's socket on $socket_node"
else
  printf 'skipped: live delivery across nodes (this build has no --nats-url)\n'
fi

step "kill -9 $socket_node"
victim_port=$((PARLEY_CLUSTER_FIRST_PORT + ${socket_node#n} - 1))
kill -KILL "$(cat "$PARLEY_CLUSTER_DIR/$socket_node.pid")"
victim_gone() { [[ "$(status_of "http://127.0.0.1:$victim_port/readyz")" == 000 ]]; }
within 3 victim_gone || fail "$socket_node's /readyz still answers after kill -9"
pass "$socket_node's /readyz fails"
within 5 is_down "$socket_node" \
  || fail "HAProxy did not mark $socket_node DOWN within 5 s (status: $(server_field "$socket_node" status))"
pass "HAProxy marked $socket_node DOWN"
for attempt in $(seq 1 6); do
  [[ "$(status_of "$lb/readyz")" == 200 ]] || fail "/readyz through HAProxy failed (request $attempt)"
done
history_has alice "$first" || fail "history through HAProxy after the kill"
pass "requests through HAProxy still succeed (6 x /readyz, history)"

step "$bob's client reconnects through HAProxy and keeps receiving"
within 20 in_output "reconnected" || fail "$bob's chat did not reconnect within 20 s"
pass "$bob reconnected"
second="after failover $run"
as alice send "$conversation" "$second" || fail "sending through HAProxy after the kill"
if [[ "${bus:-none}" == nats ]]; then
  within 10 in_output "$second" || fail "$bob's chat did not receive the message sent after the failover"
  pass "message sent after the failover arrived live"
else
  history_has bob "$second" || fail "history through HAProxy lacks the message sent after the failover"
  pass "message sent after the failover is in history"
fi
echo /quit >&7
exec 7>&-
chat_gone() { ! kill -0 "$chat_pid" 2>/dev/null; }
within 5 chat_gone || kill "$chat_pid" 2>/dev/null || true
wait "$chat_pid" 2>/dev/null || true
chat_pid=""
printf '\n'
scripts/cluster.sh status || true

step "down"
trap - EXIT
scripts/cluster.sh down || fail "scripts/cluster.sh down"
rm -rf "$work"
printf '\nsmoke: PASS in %ss\n' "$((SECONDS - started))"
