#!/usr/bin/env bash
# Starts the seed's three-node KV cache cluster in the background: one `strata kv` process per
# config/nodeN.yaml (HTTP on 8001-8003), logs in ./logs/nodeN.log, pids in ./pids/nodeN.pid,
# then waits until every node answers /api/v1/health. Run from anywhere after `npm ci`.
#
# Overrides (for tests and custom layouts): KV_CONFIG_DIR (config/), KV_LOG_DIR (logs/),
# KV_PID_DIR (pids/), KV_NODES ("node1 node2 node3"), STRATA_CMD (node dist/src/cli/main.js),
# KV_START_TIMEOUT seconds (30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_DIR="${KV_CONFIG_DIR:-$ROOT/config}"
LOG_DIR="${KV_LOG_DIR:-$ROOT/logs}"
PID_DIR="${KV_PID_DIR:-$ROOT/pids}"
NODES="${KV_NODES:-node1 node2 node3}"
TIMEOUT_S="${KV_START_TIMEOUT:-30}"

if [[ -n "${STRATA_CMD:-}" ]]; then
  read -r -a STRATA <<<"$STRATA_CMD"
elif [[ -f "$ROOT/dist/src/cli/main.js" ]]; then
  STRATA=(node "$ROOT/dist/src/cli/main.js")
else
  echo "start_cluster: $ROOT/dist/src/cli/main.js not found: run 'npm ci' (it builds) or 'npm run build' first" >&2
  exit 1
fi
command -v curl >/dev/null || { echo "start_cluster: curl is required" >&2; exit 1; }

# The HTTP address a node listens on, from its YAML `address:` (":8001" means 127.0.0.1:8001).
http_addr() {
  local addr
  addr="$(sed -n 's/^address:[[:space:]]*["'\'']\{0,1\}\([^"'\'' #]*\).*/\1/p' "$1" | head -n1)"
  local host="${addr%:*}" port="${addr##*:}"
  [[ -z "$host" || "$host" == "0.0.0.0" || "$host" == "::" || "$host" == "[::]" ]] && host="127.0.0.1"
  echo "$host:$port"
}

mkdir -p "$LOG_DIR" "$PID_DIR"
started=()
# On failure, stop the nodes this run started: no half-started cluster is left behind.
abort() {
  local rc="$1" n
  for n in "${started[@]}"; do
    if [[ -f "$PID_DIR/$n.pid" ]]; then
      kill -TERM "$(cat "$PID_DIR/$n.pid")" 2>/dev/null || true
      rm -f "$PID_DIR/$n.pid"
    fi
  done
  exit "$rc"
}
for n in $NODES; do
  cfg="$CONFIG_DIR/$n.yaml"
  [[ -f "$cfg" ]] || { echo "start_cluster: missing configuration $cfg" >&2; exit 1; }
  pidfile="$PID_DIR/$n.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$n: already running (pid $(cat "$pidfile"))"
    continue
  fi
  nohup "${STRATA[@]}" kv "-config=$cfg" >"$LOG_DIR/$n.log" 2>&1 &
  echo $! >"$pidfile"
  started+=("$n")
  echo "$n: started (pid $!, $(http_addr "$cfg"), log $LOG_DIR/$n.log)"
done

deadline=$((SECONDS + TIMEOUT_S))
for n in $NODES; do
  addr="$(http_addr "$CONFIG_DIR/$n.yaml")"
  pid="$(cat "$PID_DIR/$n.pid")"
  until curl -fsS -m 2 "http://$addr/api/v1/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      # Started by this script: its exit status is ours to report (2 = bad configuration).
      rc=1
      if [[ " ${started[*]} " == *" $n "* ]]; then
        wait "$pid" && rc=0 || rc=$?
      fi
      echo "start_cluster: $n exited during startup (status $rc); last lines of $LOG_DIR/$n.log:" >&2
      tail -n 20 "$LOG_DIR/$n.log" >&2 || true
      rm -f "$PID_DIR/$n.pid"
      abort "$rc"
    fi
    if ((SECONDS >= deadline)); then
      echo "start_cluster: $n not healthy after ${TIMEOUT_S}s (http://$addr/api/v1/health)" >&2
      abort 1
    fi
    sleep 0.2
  done
  echo "$n: healthy at http://$addr"
done
# Healthy alone is not enough: wait until every node sees every other as up, so the first
# requests are routed the same way whichever node receives them.
count=0
for _ in $NODES; do count=$((count + 1)); done
for n in $NODES; do
  addr="$(http_addr "$CONFIG_DIR/$n.yaml")"
  until [[ "$(curl -fsS -m 2 "http://$addr/admin/cluster" 2>/dev/null | grep -o '"state":"up"' | wc -l)" -ge "$count" ]]; do
    if ((SECONDS >= deadline)); then
      echo "start_cluster: $n does not see all $count nodes up after ${TIMEOUT_S}s (http://$addr/admin/cluster)" >&2
      abort 1
    fi
    sleep 0.2
  done
done
echo "cluster up: ${NODES// /, } (stop with scripts/stop_cluster.sh)"
