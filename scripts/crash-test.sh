#!/usr/bin/env bash
# Crash safety: runs the `catalog` load against a server, kills the server with SIGKILL at random moments several
# times (restarting it each time), and then checks that
#   * every order the load generator saw acknowledged exists, with all its lines,
#   * no order exists partially (every stored order has exactly the lines that were sent for its number),
#   * `stockroom verify` is clean (on the live database, and again after a clean stop).
#
#   scripts/crash-test.sh [sqlite|postgres|both] [KILLS]     (default: both, 5 kills)
#
# PostgreSQL: STOCKROOM_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) names a server where a
# scratch database is made and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."

which="${1:-both}"
kills="${2:-5}"
pg_admin="${STOCKROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --quiet -p stockroom
bin="$PWD/target/debug/stockroom"
key="sr_crash_test_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() {
  local backend="$1" tmp db port server bench_pid
  tmp="$(mktemp -d)"
  if [[ "$backend" == sqlite ]]; then
    db="sqlite://$tmp/stockroom.db"
  else
    local name="stockroom_crash_$$"
    PGOPTIONS="--client-min-messages=warning" psql "$pg_admin" -q -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    db="${pg_admin%/*}/$name"
  fi
  port="$(free_port)"
  local base="http://127.0.0.1:$port"
  start() {
    STOCKROOM_ADMIN_KEY="$key" "$bin" serve --database "$db" --listen "127.0.0.1:$port" \
      --rate-limit-per-second 0 >>"$tmp/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 200); do
      curl -fs "$base/healthz" >/dev/null 2>&1 && return 0
      sleep 0.05
    done
    echo "the server did not come up"; tail -20 "$tmp/server.log"; return 1
  }
  echo "== $backend: catalog load with $kills SIGKILLs ($db)"
  start
  "$bin" bench catalog --url "$base" --key "$key" --clients 16 --requests 4000 --skus 40 --stock 1000000 \
    --acked-file "$tmp/orders.log" >"$tmp/bench.log" 2>&1 &
  bench_pid=$!
  # Kill only once orders flow, at random moments.
  for _ in $(seq 1 300); do [[ -s "$tmp/orders.log" ]] && break; sleep 0.05; done
  for i in $(seq 1 "$kills"); do
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 1.5), 2))')"
    kill -9 "$server"; wait "$server" 2>/dev/null || true
    echo "   kill $i: SIGKILL after $(grep -c '^ack' "$tmp/orders.log" || true) acknowledged orders"
    sleep 0.2
    start
  done
  wait "$bench_pid" || echo "   (the load generator saw failed requests while the server was down, as expected)"
  grep -E '^(writes|accepted|oversell)' "$tmp/bench.log" | sed 's/^/   /' || true

  # Every acknowledged order is there, whole; nothing is there in part.
  python3 - "$base" "$key" "$tmp/orders.log" <<'PY'
import json, sys, urllib.request
base, key, log = sys.argv[1:4]
sent, acked = {}, set()
for line in open(log):
    parts = line.rstrip("\n").split("\t")
    if parts[0] == "sent" and len(parts) == 3:
        sent[parts[1]] = sorted((s.split(":")[0], int(s.split(":")[1])) for s in parts[2].split(",") if s)
    elif parts[0] == "ack" and len(parts) == 3:
        acked.add(parts[1])
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + key})
    return json.load(urllib.request.urlopen(req))
stored, after = {}, ""
while True:
    page = get("/v1/orders?source=bench&limit=500" + ("&after=" + after if after else ""))
    for o in page["items"]:
        stored[o["external_number"]] = sorted((l["sku"], l["quantity"]) for l in o["lines"])
    after = page.get("next_cursor")
    if not after:
        break
missing = sorted(acked - stored.keys())
partial = sorted(n for n, lines in stored.items() if sent.get(n) != lines)
unacked = len(stored.keys() - acked)
print(f"   orders: {len(sent)} sent, {len(acked)} acknowledged, {len(stored)} stored "
      f"({unacked} stored whose answer was lost in a kill)")
if missing:
    sys.exit(f"   FAIL: {len(missing)} acknowledged orders are missing, e.g. {missing[:5]}")
if partial:
    sys.exit(f"   FAIL: {len(partial)} stored orders differ from what was sent, e.g. {partial[:5]}")
print("   every acknowledged order exists whole; no partial order")
PY
  "$bin" --database "$db" verify | sed 's/^/   live verify: /'
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
  "$bin" --database "$db" verify | sed 's/^/   verify after stop: /'
  if [[ "$backend" == postgres ]]; then
    psql "$pg_admin" -q -c "DROP DATABASE IF EXISTS stockroom_crash_$$" >/dev/null
  fi
  rm -rf "$tmp"
}

case "$which" in
  sqlite) run_one sqlite ;;
  postgres) run_one postgres ;;
  both) run_one sqlite; run_one postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both] [KILLS]"; exit 2 ;;
esac
echo "== crash test passed"
