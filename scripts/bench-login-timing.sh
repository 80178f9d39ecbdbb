#!/usr/bin/env bash
# Login timing: does `POST /v1/login` answer an unknown user name as slowly as a known name with
# a wrong password? Both must cost one Argon2id computation, so that response times do not tell
# which names exist. Prints the median and mean of each path and their difference (the target is
# under 10%). A benchmark, not a test; docs/benchmarks.md records runs.
#
#   scripts/bench-login-timing.sh               # 200 attempts per path, release build
#   SAMPLES=50 PROFILE=debug scripts/bench-login-timing.sh
#
# Lockout would end the measurement early (5 failures per name, 20 per client address), so the
# known names rotate over SAMPLES/4 users and the requests come from rotating loopback addresses
# (127.0.x.y; Linux routes all of 127/8 to lo).
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-200}
PORT=${PORT:-18081}
PROFILE=${PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

if [ "$PROFILE" = release ]; then
  echo "== building the release server"
  cargo build --release -q -p maos-cli
else
  echo "== building the debug server"
  cargo build -q -p maos-cli
fi
maos="$CARGO_TARGET_DIR/$PROFILE/maos"

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

token=bench-admin-token-0123456789abcdef
MAOS_ADMIN_TOKEN=$token MAOS_LOG_LEVEL=warn \
  "$maos" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:$PORT"

users=$(( SAMPLES / 4 + 1 ))
echo "== creating $users users"
for i in $(seq 1 "$users"); do
  curl -sf -o /dev/null -X POST "$base/v1/principals" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d "{\"id\":\"user:bench$i\",\"password\":\"the right passphrase $i\"}"
done

# One attempt: prints "status seconds"; the source address changes every 8 attempts.
attempt() {
  local n=$1 name=$2
  local ip="127.0.$(( n / 8 / 250 + 1 )).$(( n / 8 % 250 + 1 ))"
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --interface "$ip" \
    -X POST "$base/v1/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$name\",\"password\":\"a wrong guess\"}"
}

echo "== $SAMPLES attempts per path, interleaved"
: >"$work/unknown" ; : >"$work/wrong"
n=0
for i in $(seq 1 "$SAMPLES"); do
  attempt $n "ghost$i" >>"$work/unknown"; n=$((n + 1))
  attempt $n "bench$(( (i - 1) % users + 1 ))" >>"$work/wrong"; n=$((n + 1))
done

summary() {
  # status seconds -> "count median_ms mean_ms refused" (refused: answers other than 401)
  awk '{ if ($1 != 401) bad++; print $2 }' "$1" >"$1.t"
  local refused
  refused=$(awk '$1 != 401' "$1" | wc -l)
  sort -n "$1.t" | awk -v refused="$refused" '
    { v[NR] = $1; sum += $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%d %.2f %.2f %d\n", NR, m * 1000, sum / NR * 1000, refused
    }'
}
read -r un_n un_med un_mean un_bad < <(summary "$work/unknown")
read -r wr_n wr_med wr_mean wr_bad < <(summary "$work/wrong")

printf '%-16s %8s %12s %10s %8s\n' path attempts "median ms" "mean ms" "not 401"
printf '%-16s %8d %12.2f %10.2f %8d\n' "unknown user" "$un_n" "$un_med" "$un_mean" "$un_bad"
printf '%-16s %8d %12.2f %10.2f %8d\n' "wrong password" "$wr_n" "$wr_med" "$wr_mean" "$wr_bad"
awk -v a="$un_med" -v b="$wr_med" -v c="$un_mean" -v d="$wr_mean" 'BEGIN {
  dm = (a > b ? a - b : b - a) / (a > b ? b : a) * 100
  da = (c > d ? c - d : d - c) / (c > d ? d : c) * 100
  printf "difference: median %.1f%%, mean %.1f%% (target: under 10%%)\n", dm, da
}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
