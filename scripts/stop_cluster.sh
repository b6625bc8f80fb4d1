#!/usr/bin/env bash
# Stops the KV nodes started by start_cluster.sh: SIGTERM to each (a node still having peers up
# hands its keys to them before exiting; to restart one node, KV_NODES=node2), SIGKILL after
# KV_STOP_TIMEOUT seconds (15), pid files removed. Same overrides as
# start_cluster.sh (KV_PID_DIR, KV_NODES).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PID_DIR="${KV_PID_DIR:-$ROOT/pids}"
NODES="${KV_NODES:-node1 node2 node3}"
TIMEOUT_S="${KV_STOP_TIMEOUT:-15}"

status=0
declare -A pids=()
for n in $NODES; do
  pidfile="$PID_DIR/$n.pid"
  if [[ ! -f "$pidfile" ]]; then
    echo "$n: not running (no $pidfile)"
    continue
  fi
  pid="$(cat "$pidfile")"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$n: not running (stale pid $pid)"
    rm -f "$pidfile"
    continue
  fi
  # All at once: stopping the whole cluster, there is nowhere useful to hand keys to.
  kill -TERM "$pid"
  pids[$n]="$pid"
done

deadline=$((SECONDS + TIMEOUT_S))
for n in "${!pids[@]}"; do
  pid="${pids[$n]}"
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$n: did not stop within ${TIMEOUT_S}s; killing pid $pid" >&2
    kill -KILL "$pid" 2>/dev/null
    status=1
  else
    echo "$n: stopped (pid $pid)"
  fi
  rm -f "$PID_DIR/$n.pid"
done
exit "$status"
