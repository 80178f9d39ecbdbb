#!/usr/bin/env bash
# The gateway against Debian's nginx over loopback, all to the same upstream (an nginx worker
# answering a small JSON document), the proxy under test pinned to one core and wrk plus the
# upstream to the other:
#   1. the upstream alone (the baseline for added latency)
#   2. nginx `proxy_pass` (one worker)
#   3. the MAOS gateway with the full pipeline (firewall, limits, bearer authentication,
#      verification context, authorization, security headers), detection off
#   4. the same with intrusion detection blocking
#   5. nginx with ModSecurity and the OWASP CRS (Debian's libnginx-mod-http-modsecurity and
#      modsecurity-crs), when installable
# Then testssl.sh against the gateway's TLS listener, when installed. Writes the "Gateway"
# section of docs/benchmarks.md. A benchmark, not a test.
#
#   scripts/bench-gateway.sh               # 10 s per run
#   DURATION=30s scripts/bench-gateway.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

need() { command -v "$1" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
need wrk wrk
need nginx nginx
modsec=yes
if [ ! -e /usr/share/modsecurity-crs/rules ] || [ ! -e /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-modsecurity modsecurity-crs \
    >/dev/null 2>&1 || modsec=no
fi
command -v testssl >/dev/null || command -v testssl.sh >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null 2>&1 || true

echo "== building the release server"
cargo build --release -q -p maos-cli
maos="$CARGO_TARGET_DIR/release/maos"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

UPSTREAM=127.0.0.1:19000
NGINX=127.0.0.1:19001
MODSEC=127.0.0.1:19002
ADMIN=127.0.0.1:19080
GW_PLAIN=127.0.0.1:19100
GW_DETECT=127.0.0.1:19101
GW_TLS=127.0.0.1:19443

nginx_conf() { # name cpu server-block
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<CONF
worker_processes 1;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
$( [ "$1" = modsec ] && echo "load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;" )
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/$1/body;
  proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fastcgi;
  uwsgi_temp_path $work/$1/uwsgi;
  scgi_temp_path $work/$1/scgi;
  upstream app { server $UPSTREAM; keepalive 32; }
  $3
}
CONF
  taskset -c "$2" nginx -c "$work/$1/nginx.conf" -g 'daemon off;' &
  pids+=($!)
}

echo "== upstream on CPU $LOAD_CPU"
nginx_conf upstream "$LOAD_CPU" "server { listen $UPSTREAM; location / { default_type application/json; return 200 '{\"ok\":true}'; } }"

echo "== nginx proxy_pass on CPU $PROXY_CPU"
proxy_location="location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
nginx_conf proxy "$PROXY_CPU" "server { listen $NGINX; $proxy_location }"

if [ "$modsec" = yes ]; then
  echo "== nginx + ModSecurity + OWASP CRS on CPU $PROXY_CPU"
  cat >"$work/modsec.conf" <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecResponseBodyAccess Off
SecAuditEngine Off
SecTmpDir $work
SecDataDir $work
Include /etc/modsecurity/crs/crs-setup.conf
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include /usr/share/modsecurity-crs/rules/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
CONF
  nginx_conf modsec "$PROXY_CPU" "server { listen $MODSEC; modsecurity on; modsecurity_rules_file $work/modsec.conf; $proxy_location }"
fi

echo "== TLS certificate for the gateway"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/gw.key" -out "$work/gw.pem" 2>/dev/null

route() { # name listen detection extra
  cat <<TOML

[[gateway.routes]]
name = "$1"
listen = "$2"
upstream = "http://$UPSTREAM"
allow = ["127.0.0.0/8"]
deny = ["192.0.2.0/24"]
limits = { per_client = { requests = 1000000, per_seconds = 1 }, per_principal = { requests = 1000000, per_seconds = 1 } }
detection = { mode = "$3" }
$4
[[gateway.routes.rules]]
method = "GET"
path = "/items/{id}"
resource = "item:{id}"
action = "read"
TOML
}
token=bench-admin-token-0123456789abcdef
{
  cat <<TOML
[server]
listen = "$ADMIN"
data_dir = "$work/data"
[log]
level = "warn"
[gateway]
zones = { internal = ["127.0.0.0/8"] }
TOML
  route full "$GW_PLAIN" off ""
  route detect "$GW_DETECT" block ""
  route tls "$GW_TLS" off "tls = { cert = \"$work/gw.pem\", key = \"$work/gw.key\" }"
} >"$work/maos.toml"
"$maos" config check "$work/maos.toml" >/dev/null

echo "== maos serve on CPU $PROXY_CPU"
MAOS_ADMIN_TOKEN=$token TOKIO_WORKER_THREADS=1 taskset -c "$PROXY_CPU" \
  "$maos" serve --config "$work/maos.toml" >"$work/maos.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://$ADMIN/readyz" >/dev/null && curl -sf "http://$UPSTREAM/" >/dev/null && break
  sleep 0.1
done
cat >"$work/bundle.yaml" <<'YAML'
version: 1
roles:
  - name: reader
    permissions: [{ resource: "item:*", actions: ["read"] }]
bindings:
  - { subject: "user:bench", roles: ["reader"] }
policies:
  - id: step-up-when-risky
    effect: deny
    target:
      environment: [{ attribute: context.risk.score, operator: exists }]
    condition: { attribute: context.risk.score, operator: gte, value: 50 }
    obligations: [{ id: step_up, on: deny }]
YAML
curl -sS --fail-with-body -H "Authorization: Bearer $token" --data-binary @"$work/bundle.yaml" \
  "http://$ADMIN/v1/policy/versions" >/dev/null
user=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"principal":"user:bench"}' "http://$ADMIN/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -sf -H "Authorization: Bearer $user" "http://$GW_PLAIN/items/42" | grep -q ok
curl -sf -H "Authorization: Bearer $user" "http://$GW_DETECT/items/42" | grep -q ok

# A 1 KiB request: a query and headers a browser might send, no attack.
cat >"$work/request.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $user"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-GB,en;q=0.5"
wrk.headers["Referer"] = "https://shop.example.com/catalogue/garden/tools?sort=price&page=3"
wrk.headers["Cookie"] = "session=$(head -c 160 /dev/zero | tr '\0' 'a'); theme=dark; consent=analytics-no"
wrk.headers["X-Request-Note"] = "$(head -c 300 /dev/zero | tr '\0' 'n')"
wrk.path = "/items/42?colour=green&size=large&q=garden+hose+with+brass+fittings&page=3&per_page=50"
LUA

run() { # name base connections
  taskset -c "$LOAD_CPU" wrk -t1 -c"$3" -d"$DURATION" --latency -s "$work/request.lua" "$2"
}
rps() { echo "$1" | awk '/Requests\/sec/ { print $2 }'; }
p50() { echo "$1" | awk '$1 == "50%" { print $2 }'; }
non2xx() { echo "$1" | awk '/Non-2xx/ { print $NF }'; }
us() { # wrk latency ("85.00us", "1.20ms") in microseconds
  echo "$1" | awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else { sub(/s$/, "", v); print v * 1000000 } }'
}

declare -A R P L N
measure() { # label url
  echo "== $1: throughput ($CONNECTIONS connections) and latency (1 connection)" >&2
  local out lat
  out=$(run "$1" "$2" "$CONNECTIONS")
  lat=$(run "$1" "$2" 1)
  R[$1]=$(rps "$out")
  N[$1]=$(non2xx "$out")
  P[$1]=$(p50 "$lat")
  L[$1]=$(us "$(p50 "$lat")")
  echo "$1: ${R[$1]} req/s, p50 at one connection ${P[$1]}${N[$1]:+, non-2xx ${N[$1]}}" >&2
}
measure upstream "http://$UPSTREAM"
measure nginx "http://$NGINX"
measure gateway "http://$GW_PLAIN"
measure detection "http://$GW_DETECT"
if [ "$modsec" = yes ]; then
  measure crs "http://$MODSEC"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f µs", a - b }'; }

tls_result="testssl.sh not installed"
if command -v testssl >/dev/null || command -v testssl.sh >/dev/null; then
  testssl=$(command -v testssl || command -v testssl.sh)
  echo "== testssl against the gateway's TLS listener" >&2
  "$testssl" --quiet --color 0 --severity HIGH --jsonfile "$work/testssl.json" "https://$GW_TLS" \
    >"$work/testssl.txt" 2>&1 || true
  high=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for f in d if f.get("severity") in ("HIGH","CRITICAL")))' "$work/testssl.json" 2>/dev/null || echo "?")
  version=$("$testssl" --version 2>/dev/null | grep -m1 -o '[0-9]\+\.[0-9][0-9.]*' || true)
  tls_result="testssl.sh $version: $high findings of severity HIGH or CRITICAL"
  echo "$tls_result" >&2
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
crs_row=""
crs_target=""
if [ "$modsec" = yes ]; then
  crs_row="| nginx + ModSecurity 3 + OWASP CRS $(dpkg-query -W -f '${Version}' modsecurity-crs 2>/dev/null) | ${R[crs]} | ${P[crs]} | $(added "${L[crs]}" "${L[upstream]}") |"
  crs_target="- with detection on, at least 10x nginx + CRS: **$(ratio "${R[detection]}" "${R[crs]}")x**"
fi
section=$(cat <<MD
## Gateway

\`scripts/bench-gateway.sh\` on $(date -u +%Y-%m-%d), $cpu, load average at the end
$(cut -d' ' -f1-3 /proc/loadavg): the proxy under test (one nginx worker, or \`maos serve\` with one
tokio worker) pinned to CPU $PROXY_CPU; wrk (\`-t1 -c$CONNECTIONS -d$DURATION\` for throughput, \`-c1\`
for latency) and the upstream (one nginx worker returning 11 bytes of JSON) pinned to CPU
$LOAD_CPU. Every request is about 1 KiB: a bearer token, browser-like headers and a cookie, a query
of six parameters. The gateway's full pipeline: firewall (allow and deny lists, blocklist), rate
limits per client and per principal, bearer authentication, verification context, authorization
by the engine with a context policy, identity headers, security headers.

| proxy | requests/s | p50 at one connection | added p50 over the upstream alone |
|---|---|---|---|
| none (upstream alone) | ${R[upstream]} | ${P[upstream]} | |
| nginx \`proxy_pass\` | ${R[nginx]} | ${P[nginx]} | $(added "${L[nginx]}" "${L[upstream]}") |
| MAOS gateway, full pipeline | ${R[gateway]} | ${P[gateway]} | $(added "${L[gateway]}" "${L[upstream]}") |
| MAOS gateway, full pipeline + detection (block) | ${R[detection]} | ${P[detection]} | $(added "${L[detection]}" "${L[upstream]}") |
$crs_row

Against the targets of issue 6:
- full pipeline at least 0.8x nginx's requests/s: **$(ratio "${R[gateway]}" "${R[nginx]}")x**
- added median latency under 100 µs: **$(added "${L[gateway]}" "${L[upstream]}")** (nginx adds $(added "${L[nginx]}" "${L[upstream]}"))
$crs_target
- detection cost per 1 KiB request (p50 with detection minus without): **$(added "${L[detection]}" "${L[gateway]}")**

TLS: $tls_result.
MD
)

doc=docs/benchmarks.md
[ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
python3 - "$doc" "$section" <<'PY'
import sys, re
path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
text = open(path).read()
pattern = re.compile(r"^## Gateway\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
echo "$section"
echo "== written to $doc"
