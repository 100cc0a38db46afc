#!/usr/bin/env bash
# Flash-sale throughput of one node against two nodes on one PostgreSQL: two load generators (16 clients each,
# each on its own SKU) drive one node, then one node each; afterwards `verify` must be clean.
# Usage: scripts/bench-two-nodes.sh [postgres://postgres@127.0.0.1:5432] (a database `bench_two` is made and dropped)
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
bin=${STOCKROOM_BIN:-target/release/stockroom}
url="$server/bench_two"
logs=$(mktemp -d)
# One admin key for the nodes (made on start) and the load generators (sent on every request).
key="sr_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export STOCKROOM_ADMIN_KEY="$key" STOCKROOM_API_KEY="$key"
run() {
  local nodes=$1 pids=()
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS bench_two" -c "CREATE DATABASE bench_two" >/dev/null 2>&1
  "$bin" --database "$url" serve --listen 127.0.0.1:24101 --max-batch-wait-us 500 >"$logs/a.log" 2>&1 &
  pids+=($!)
  local second=24101
  if [ "$nodes" = 2 ]; then
    sleep 2
    "$bin" --database "$url" serve --listen 127.0.0.1:24102 --max-batch-wait-us 500 >"$logs/b.log" 2>&1 &
    pids+=($!)
    second=24102
  fi
  sleep 2
  "$bin" bench flash-sale --url http://127.0.0.1:24101 --clients 16 --stock 1000000 --requests 15000 >"$logs/1" 2>&1 &
  local first=$!
  "$bin" bench flash-sale --url "http://127.0.0.1:$second" --clients 16 --stock 1000000 --requests 15000 >"$logs/2" 2>&1
  wait "$first"
  echo "== $nodes node(s)"
  grep -h "writes\|latency\|oversell" "$logs/1" "$logs/2"
  "$bin" --database "$url" verify | tail -n 1
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
run 1
run 2
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS bench_two" >/dev/null 2>&1 || true
rm -rf "$logs"
