#!/usr/bin/env bash
# Memory and start-up of a server holding a large catalog: SKUS SKUs (default 1,000,000) with stock in 3
# warehouses, imported with `stockroom import`. Prints the import times, how long `serve` takes to answer
# /healthz, its resident memory while it works through the import's events and computes the feed of two
# channels, and once restarted: ready time, idle memory, and memory after a flash-sale run.
# Usage: scripts/bench-million-skus.sh [sqlite | postgres://postgres@127.0.0.1:5432] [SKUS]
# (PostgreSQL: a database `bench_million` is made and dropped.) Set STOCKROOM_BIN to use another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-sqlite}
skus=${2:-1000000}
bin=${STOCKROOM_BIN:-target/release/stockroom}
[ -x "$bin" ] || cargo build --release -p stockroom
work=$(mktemp -d)
port=24201
key=bench-million-admin-key
case "$target" in
  sqlite) db="sqlite://$work/million.db" ;;
  postgres://*)
    psql "$target/postgres" -qc "DROP DATABASE IF EXISTS bench_million" -c "CREATE DATABASE bench_million"
    db="$target/bench_million" ;;
  *) echo "usage: $0 [sqlite | postgres://…] [SKUS]" >&2; exit 2 ;;
esac
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  case "$target" in postgres://*) psql "$target/postgres" -qc "DROP DATABASE IF EXISTS bench_million" ;; esac
  rm -rf "$work"
}
trap cleanup EXIT

awk -v n="$skus" 'BEGIN {
  print "Handle,Title,Description,Vendor,Category,Tags,Images,Status,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,SKU,Barcode,Price,Compare At Price,Currency,Cost,Weight Grams,Length mm,Width mm,Height mm,Tracked,Inventory Policy"
  for (i = 0; i < n; i++) printf "p%d,Product %d,,Acme,,,,active,,,,,,,SKU-%07d,,9.99,,EUR,4.00,100,,,,true,deny\n", i, i, i
}' >"$work/products.csv"
awk -v n="$skus" 'BEGIN {
  print "Handle,Title,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,SKU,Location,Bin,Incoming,Unavailable,Committed,Available,On hand"
  for (i = 0; i < n; i++) for (w = 1; w <= 3; w++) printf "p%d,Product %d,,,,,,,SKU-%07d,WH%d,WH%d/A/%d,0,0,0,10,10\n", i, i, i, w, w, i % 50
}' >"$work/stock.csv"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$server/status"; }
peak() { awk '/^VmHWM/ {print $2 " kB"}' "/proc/$server/status"; }
start() {
  local t0
  t0=$(now_ms)
  STOCKROOM_ADMIN_KEY=$key "$bin" serve --database "$db" --listen "127.0.0.1:$port" --rate-limit-per-second 0 \
    >>"$work/serve.log" 2>&1 &
  server=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.005; done
  echo "ready in $(($(now_ms) - t0)) ms, resident $(rss)"
}
stop() { kill "$server" && wait "$server" 2>/dev/null || true; server=""; }

for kind in products stock; do
  t0=$(now_ms)
  "$bin" --database "$db" import "$kind" "$work/$kind.csv" $([ "$kind" = stock ] && echo --create-locations)
  echo "import $kind: $(($(now_ms) - t0)) ms"
done

echo "== first start: the server works through the import's events"
start
sleep 15
echo "after 15 s: resident $(rss), peak $(peak)"
for code in web-one web-two; do
  curl -sf -o /dev/null "http://127.0.0.1:$port/v1/channels" -H "authorization: Bearer $key" \
    -H 'content-type: application/json' -d "{\"code\": \"$code\", \"name\": \"$code\", \"market_country\": \"DE\",
      \"currency\": \"EUR\", \"warehouses\": [\"WH1\", \"WH2\", \"WH3\"]}"
done
# The feed of both channels is computed once the server goes idle (under 0.1 s of CPU in 5 s).
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
t0=$(now_ms)
before=$(cpu)
while sleep 5; do
  after=$(cpu)
  [ $((after - before)) -lt 10 ] && break
  before=$after
done
echo "two channels × $skus SKUs computed in about $(($(now_ms) - t0 - 5000)) ms: resident $(rss), peak $(peak)"
stop

echo "== restarted"
start
sleep 3
echo "idle: resident $(rss)"
"$bin" bench flash-sale --url "http://127.0.0.1:$port" --key "$key" --clients 32 --requests 20000 --stock 100000 |
  grep -E "writes|oversell"
echo "after the flash sale: resident $(rss), peak $(peak)"
