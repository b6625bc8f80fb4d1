#!/usr/bin/env bash
# The seed's cluster checks with curl, against the nodes of config/nodeN.yaml (or KV_HTTP_NODES,
# e.g. "localhost:8001 localhost:8002 localhost:8003"): health of every node, a value written
# through one node read through every other, cluster info, keys spread over the nodes, delete and
# 404, the error answers of bad requests, metrics, and an export/import round trip.
# Prints one line per check and exits 1 when any fails.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_DIR="${KV_CONFIG_DIR:-$ROOT/config}"
NODES="${KV_NODES:-node1 node2 node3}"
command -v curl >/dev/null || { echo "test_cluster: curl is required" >&2; exit 1; }

http_addr() {
  local addr
  addr="$(sed -n 's/^address:[[:space:]]*["'\'']\{0,1\}\([^"'\'' #]*\).*/\1/p' "$1" | head -n1)"
  local host="${addr%:*}" port="${addr##*:}"
  [[ -z "$host" || "$host" == "0.0.0.0" || "$host" == "::" || "$host" == "[::]" ]] && host="127.0.0.1"
  echo "$host:$port"
}

if [[ -n "${KV_HTTP_NODES:-}" ]]; then
  read -r -a ADDRS <<<"$KV_HTTP_NODES"
else
  ADDRS=()
  for n in $NODES; do ADDRS+=("$(http_addr "$CONFIG_DIR/$n.yaml")"); done
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS  $1"; }
ko() { fail=$((fail + 1)); echo "FAIL  $1${2:+: $2}"; }
# req METHOD URL [BODY] -> sets CODE and BODY
req() {
  local out
  if [[ $# -ge 3 ]]; then
    out="$(curl -sS -m 10 -X "$1" -H 'Content-Type: application/json' --data-binary "$3" -w '\n%{http_code}' "$2" 2>&1)"
  else
    out="$(curl -sS -m 10 -X "$1" -w '\n%{http_code}' "$2" 2>&1)"
  fi
  CODE="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
}
expect() { # name expected-code [body-substring]
  if [[ "$CODE" == "$2" && ( -z "${3:-}" || "$BODY" == *"$3"* ) ]]; then ok "$1"; else ko "$1" "got $CODE $BODY"; fi
}

echo "== health"
for a in "${ADDRS[@]}"; do
  req GET "http://$a/api/v1/health"
  expect "health $a" 200 '"status":"healthy"'
done

echo "== set through one node, get through every node"
first="${ADDRS[0]}"
req PUT "http://$first/api/v1/cache/test" '{"value":"hello world"}'
expect "PUT test via $first" 200 '"stored":true'
for a in "${ADDRS[@]}"; do
  req GET "http://$a/api/v1/cache/test"
  expect "GET test via $a" 200 '"value":"hello world"'
done
req PUT "http://${ADDRS[-1]}/api/v1/cache/user%3A1" '{"value":{"name":"Ann","langs":["go","ts"],"age":31}}'
expect "PUT a JSON object" 200
req GET "http://$first/api/v1/cache/user%3A1"
expect "GET keeps the JSON value" 200 '"value":{"name":"Ann","langs":["go","ts"],"age":31}'

echo "== cluster info"
req GET "http://$first/admin/cluster"
expect "GET /admin/cluster" 200 '"nodes":['
# Peers see each other within a health-check interval of starting: allow a few seconds.
for _ in $(seq 1 50); do
  ups="$(grep -o '"state":"up"' <<<"$BODY" | wc -l)"
  [[ "$ups" -ge "${#ADDRS[@]}" ]] && break
  sleep 0.1
  req GET "http://$first/admin/cluster"
done
[[ "$ups" -ge "${#ADDRS[@]}" ]] && ok "all ${#ADDRS[@]} nodes up in the cluster view" || ko "nodes up" "$ups of ${#ADDRS[@]}: $BODY"

echo "== spread: 30 keys written round-robin, read back through the next node"
bad=0
why=""
for i in $(seq 1 30); do
  w="${ADDRS[$((i % ${#ADDRS[@]}))]}"
  r="${ADDRS[$(((i + 1) % ${#ADDRS[@]}))]}"
  req PUT "http://$w/api/v1/cache/spread-$i" "{\"value\":$i}"
  [[ "$CODE" == 200 ]] || { bad=$((bad + 1)); why+=" PUT spread-$i via $w: $CODE $BODY;"; }
  req GET "http://$r/api/v1/cache/spread-$i"
  [[ "$CODE" == 200 && "$BODY" == *"\"value\":$i}"* ]] || { bad=$((bad + 1)); why+=" GET spread-$i via $r: $CODE $BODY;"; }
done
[[ $bad -eq 0 ]] && ok "30 keys written and read across nodes" || ko "spread" "$bad failures:$why"
holders=0
for a in "${ADDRS[@]}"; do
  req GET "http://$a/api/v1/health"
  keys="$(sed -n 's/.*"keys":\([0-9]*\).*/\1/p' <<<"$BODY")"
  echo "      $a holds ${keys:-?} keys"
  [[ "${keys:-0}" -gt 0 ]] && holders=$((holders + 1))
done
[[ $holders -eq ${#ADDRS[@]} ]] && ok "every node holds keys" || ko "every node holds keys" "$holders of ${#ADDRS[@]}"

echo "== delete"
req DELETE "http://${ADDRS[-1]}/api/v1/cache/test"
expect "DELETE test" 200 '"deleted":true'
req GET "http://$first/api/v1/cache/test"
expect "GET after delete is 404" 404 'STRATA_KV_NOT_FOUND'

echo "== bad requests"
req PUT "http://$first/api/v1/cache/x" '{not json'
expect "bad JSON is 400" 400 'STRATA_KV_BAD_JSON'
req PUT "http://$first/api/v1/cache/x" '{"val":1}'
expect "missing value is 400" 400 'STRATA_KV_MISSING_VALUE'
req PUT "http://$first/api/v1/cache/x" '{"value":1,"ttl":"soon"}'
expect "bad ttl is 400" 400 'STRATA_KV_BAD_TTL'
req GET "http://$first/api/v1/cache/$(printf 'k%.0s' $(seq 1 1100))"
expect "key over max_key_bytes is 413" 413 'STRATA_KV_KEY_TOO_LONG'
req POST "http://$first/api/v1/cache/x" '{"value":1}'
expect "POST on a key is 405" 405

echo "== metrics"
req GET "http://$first/admin/metrics"
expect "GET /admin/metrics" 200 'cache_hits_total'
[[ "$BODY" == *cache_request_duration_seconds* && "$BODY" == *cache_ring_ownership_ratio* ]] && ok "latency and ring metrics present" || ko "metrics content"

echo "== export / import"
req GET "http://$first/admin/export"
expect "GET /admin/export" 200 '"complete":true'
backup="$BODY"
count="$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' <<<"$backup" | tail -n1)"
[[ "${count:-0}" -ge 31 ]] && ok "export lists ${count} keys" || ko "export count" "${count:-none}"
req DELETE "http://$first/api/v1/cache/spread-7"
req POST "http://${ADDRS[-1]}/admin/import" "$backup"
expect "POST /admin/import" 200 "\"imported\":$count"
req GET "http://$first/api/v1/cache/spread-7"
expect "deleted key restored by import" 200 '"value":7}'

echo
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
