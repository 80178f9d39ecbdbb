#!/usr/bin/env bash
# Key service throughput over loopback: the release `maos serve` pinned to one core, Debian's wrk
# pinned to the other, every request authenticated, authorized and audited. Measures
# encrypt and decrypt requests/s (4 KiB is the in-process bench; here 64-byte plaintexts, the
# size of a card number or a data key) and batch items/s, then writes them into the
# "Key service over HTTP" section of docs/benchmarks.md. A benchmark, not a test.
#
#   scripts/bench-keys.sh              # 10 s per run
#   DURATION=30s BATCH=1000 scripts/bench-keys.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-500}
PORT=${PORT:-18081}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

# MAOS_BIN: a binary built elsewhere (only figures of a release build mean anything).
if [ -n "${MAOS_BIN:-}" ]; then
  maos=$MAOS_BIN
  build="\`maos serve\` binary \`$MAOS_BIN\` (not a release build: figures are not comparable)"
else
  build="release \`maos serve\`"
  echo "== building the release server"
  cargo build --release -q -p maos-cli
  maos="$CARGO_TARGET_DIR/release/maos"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

token=bench-admin-token-0123456789abcdef
echo "== starting maos serve on CPU $SERVER_CPU"
MAOS_ADMIN_TOKEN=$token MAOS_LOG_LEVEL=warn TOKIO_WORKER_THREADS=1 MAOS_SERVER_MAX_BATCH=$BATCH \
  taskset -c "$SERVER_CPU" "$maos" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:$PORT"
api() { # path body
  curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "$2" "$base$1"
}

api /v1/keys '{"name":"bench"}' >/dev/null
plaintext=$(head -c 64 /dev/urandom | base64 -w0)
aad=$(printf 'tenant=42' | base64 -w0)
encrypt="{\"plaintext\":\"$plaintext\",\"aad\":\"$aad\"}"
ciphertext=$(api /v1/keys/bench/encrypt "$encrypt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ciphertext"])')
decrypt="{\"ciphertext\":\"$ciphertext\",\"aad\":\"$aad\"}"
api /v1/keys/bench/decrypt "$decrypt" | grep -qF "$plaintext"

items() { # item count
  python3 -c 'import sys; print("{\"items\":[" + ",".join([sys.argv[1]] * int(sys.argv[2])) + "]}")' "$1" "$2"
}
items "$encrypt" "$BATCH" >"$work/encrypt-batch.json"
items "$decrypt" "$BATCH" >"$work/decrypt-batch.json"

lua() { # body-file
  cat <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
local f = io.open("$1", "r")
wrk.body = f:read("*a")
f:close()
LUA
}
echo "$encrypt" >"$work/encrypt.json"
echo "$decrypt" >"$work/decrypt.json"
for name in encrypt decrypt encrypt-batch decrypt-batch; do
  lua "$work/$name.json" >"$work/$name.lua"
done

run() { # name path script
  echo "== $1: wrk on CPU $LOAD_CPU, $CONNECTIONS connections, $DURATION" >&2
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "$base$2"
}
out_encrypt=$(run encrypt /v1/keys/bench/encrypt "$work/encrypt.lua"); echo "$out_encrypt"
out_decrypt=$(run decrypt /v1/keys/bench/decrypt "$work/decrypt.lua"); echo "$out_decrypt"
out_bencrypt=$(run encrypt-batch /v1/keys/bench/encrypt/batch "$work/encrypt-batch.lua"); echo "$out_bencrypt"
out_bdecrypt=$(run decrypt-batch /v1/keys/bench/decrypt/batch "$work/decrypt-batch.lua"); echo "$out_bdecrypt"

rps() { echo "$1" | awk '/Requests\/sec/ { printf "%.0f", $2 }'; }
field() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
times() { awk -v r="$1" -v n="$2" 'BEGIN { printf "%.0f", r * n }'; }
errors=$(echo "$out_encrypt$out_decrypt$out_bencrypt$out_bdecrypt" | grep -E 'Non-2xx|Socket errors' || true)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
load=$(cut -d' ' -f1-3 /proc/loadavg)
section=$(cat <<MD
## Key service over HTTP

\`scripts/bench-keys.sh\` on $(date -u +%Y-%m-%d\ %H:%M) UTC, $cpu (load average at the end: $load):
the $build (SQLite, one tokio worker) pinned to CPU $SERVER_CPU, \`wrk -t1
-c$CONNECTIONS -d$DURATION\` pinned to CPU $LOAD_CPU, over loopback. Every request is authenticated
(bearer token), authorized by the policy engine against \`maos:keys/bench\` and audited through
\`AppState::audit\` before it is answered. 64-byte plaintexts, 9 bytes of associated data,
AES-256-GCM. Batches of $BATCH items.

| call | requests/s | items/s | p50 | p99 |
|---|---|---|---|---|
| \`POST /v1/keys/bench/encrypt\` | $(rps "$out_encrypt") | $(rps "$out_encrypt") | $(field "$out_encrypt" 50%) | $(field "$out_encrypt" 99%) |
| \`POST /v1/keys/bench/decrypt\` | $(rps "$out_decrypt") | $(rps "$out_decrypt") | $(field "$out_decrypt" 50%) | $(field "$out_decrypt" 99%) |
| \`POST /v1/keys/bench/encrypt/batch\` | $(rps "$out_bencrypt") | $(times "$(rps "$out_bencrypt")" "$BATCH") | $(field "$out_bencrypt" 50%) | $(field "$out_bencrypt" 99%) |
| \`POST /v1/keys/bench/decrypt/batch\` | $(rps "$out_bdecrypt") | $(times "$(rps "$out_bdecrypt")" "$BATCH") | $(field "$out_bdecrypt" 50%) | $(field "$out_bdecrypt" 99%) |

Targets of issue 5: at least 10,000 encrypt or decrypt requests/s on 2 cores, at least 100,000
batch items/s (a published Vault Transit sample is about 1,800 ops/s on one machine).
${errors:+
wrk reported: $errors}
MD
)

doc=docs/benchmarks.md
[ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
python3 - "$doc" "$section" <<'PY'
import sys, re
path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
text = open(path).read()
pattern = re.compile(r"^## Key service over HTTP\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
echo "== written to $doc"
