#!/usr/bin/env bash
# Schemathesis (from PyPI) against /openapi.json with an admin key: fails on any 5xx and on any response that
# breaks the document (status, content type or body not as documented).
#
#   scripts/schemathesis.sh [SECONDS]      (default 60; .ci/run uses a short run)
#
# Installs schemathesis into target/schemathesis-venv if missing, builds the binary, serves the demo data from a
# temporary SQLite database on a free port, runs a time-bounded test, and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
venv="${SCHEMATHESIS_VENV:-$PWD/target/schemathesis-venv}"
# One pinned version, so that a run is repeatable; one worker, because hypothesis describes its strategies by
# parsing source, which CPython 3.11 can get wrong when two threads parse at once ("AST constructor recursion
# depth mismatch"), failing the run for nothing the server did.
if [[ ! -x "$venv/bin/st" ]] || ! "$venv/bin/st" --version 2>/dev/null | grep -q '4.32.5'; then
  echo "== installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi

cargo build --quiet -p stockroom
tmp="$(mktemp -d)"
key="sr_schemathesis_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
STOCKROOM_ADMIN_KEY="$key" target/debug/stockroom serve --database "sqlite://$tmp/stockroom.db" \
  --listen 127.0.0.1:0 --demo --rate-limit-per-second 0 >"$tmp/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$tmp"' EXIT

base=""
for _ in $(seq 1 100); do
  base="$(grep -o 'listening on http://[0-9.:]*' "$tmp/server.log" | head -1 | sed 's/listening on //' || true)"
  [[ -n "$base" ]] && break
  sleep 0.1
done
[[ -n "$base" ]] || { echo "the server did not start:"; cat "$tmp/server.log"; exit 1; }
echo "== schemathesis against $base for ${seconds}s"

# Revoking keys is left out: the run would revoke its own key and test nothing after. Run from the temporary
# directory, where schemathesis leaves its cache.
cd "$tmp"
"$venv/bin/st" --no-color run "$base/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path-regex '/revoke$' \
  --phases examples,coverage,fuzzing \
  --max-time "$seconds" \
  --workers 1 \
  --suppress-health-check all \
  --max-failures 50
