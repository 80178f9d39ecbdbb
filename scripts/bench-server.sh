#!/usr/bin/env bash
# Decision API throughput over loopback: the release `maos serve` pinned to one core, Debian's
# wrk pinned to the other. Prints decisions/s and latency percentiles and writes them into the
# "Decision API over HTTP" section of docs/benchmarks.md. A benchmark, not a test.
#
#   scripts/bench-server.sh            # 10 s per run
#   DURATION=30s scripts/bench-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

echo "== building the release server"
cargo build --release -q -p maos-cli
maos="$CARGO_TARGET_DIR/release/maos"

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

token=bench-admin-token-0123456789abcdef
echo "== starting maos serve on CPU $SERVER_CPU"
MAOS_ADMIN_TOKEN=$token MAOS_LOG_LEVEL=warn TOKIO_WORKER_THREADS=1 \
  taskset -c "$SERVER_CPU" "$maos" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:$PORT"

# A bundle with a role hierarchy, an ACL-free RBAC grant with a condition, and an ABAC policy.
cat >"$work/bundle.yaml" <<'YAML'
version: 1
roles:
  - name: maos-admin
    permissions: [{ resource: "maos:**", actions: ["*"] }]
  - name: reader
    permissions: [{ resource: "document:**", actions: ["read"] }]
  - name: editor
    inherits: [reader]
    permissions:
      - resource: "document:**"
        actions: ["write"]
        conditions: [{ attribute: subject.properties.department, operator: eq, value: engineering }]
bindings:
  - { subject: "user:admin", roles: ["maos-admin"] }
  - { subject: "user:alice", roles: ["editor"] }
policies:
  - id: deny-external-writes
    effect: deny
    target:
      action: [{ attribute: action.name, operator: eq, value: write }]
      environment: [{ attribute: context.network, operator: exists }]
    condition: { attribute: context.network, operator: eq, value: external }
YAML
curl -sS --fail-with-body -H "Authorization: Bearer $token" --data-binary @"$work/bundle.yaml" \
  "$base/v1/policy/versions" >/dev/null

request='{"subject":{"type":"user","id":"alice","properties":{"department":"engineering"}},"resource":{"type":"document","id":"design/api"},"action":{"name":"write"},"context":{"network":"internal"}}'
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "$request" "$base/v1/authorize" | grep -q '"decision":true'

batch="{\"requests\":[$(printf "$request,%.0s" $(seq 1 99))$request]}"
lua() {
  cat <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = [[$1]]
LUA
}
lua "$request" >"$work/single.lua"
lua "$batch" >"$work/batch.lua"

run() { # name path script
  echo "== $1: wrk on CPU $LOAD_CPU, $CONNECTIONS connections, $DURATION" >&2
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "$base$2"
}
single=$(run single /v1/authorize "$work/single.lua")
echo "$single"
batched=$(run batch /v1/authorize/batch "$work/batch.lua")
echo "$batched"

field() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
rps=$(echo "$single" | awk '/Requests\/sec/ { print $2 }')
p50=$(field "$single" "50%")
p99=$(field "$single" "99%")
brps=$(echo "$batched" | awk '/Requests\/sec/ { print $2 }')
bp50=$(field "$batched" "50%")
bp99=$(field "$batched" "99%")
bdecisions=$(awk -v r="$brps" 'BEGIN { printf "%.0f", r * 100 }')
errors=$(echo "$single$batched" | grep -E 'Non-2xx|Socket errors' || true)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
section=$(cat <<MD
## Decision API over HTTP

\`scripts/bench-server.sh\` on $(date -u +%Y-%m-%d), $cpu: the release \`maos serve\` (SQLite, one
tokio worker) pinned to CPU $SERVER_CPU, \`wrk -t1 -c$CONNECTIONS -d$DURATION\` pinned to CPU $LOAD_CPU, over
loopback, with the bundle in the script (role inheritance, a conditional permission, an ABAC deny
policy) and bearer-token authentication and the caller's own authorization on every call.

| call | requests/s | decisions/s | p50 | p99 |
|---|---|---|---|---|
| \`POST /v1/authorize\` (one decision) | $rps | $rps | $p50 | $p99 |
| \`POST /v1/authorize/batch\` (100 decisions) | $brps | $bdecisions | $bp50 | $bp99 |

Target: at least 50,000 decisions/s on 2 cores with p99 under 1 ms. The in-process engine's
figures are in the policy engine's section of this file.
${errors:+
wrk reported: $errors}
MD
)

doc=docs/benchmarks.md
[ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
# Replace this section if present (up to the next "## "), else append it.
python3 - "$doc" "$section" <<'PY'
import sys, re
path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
text = open(path).read()
pattern = re.compile(r"^## Decision API over HTTP\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
echo "== written to $doc"
