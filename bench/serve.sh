#!/usr/bin/env bash
# Gate server under load, beside nginx (sendfile) serving the same 1 GiB file, in one run:
#   1. downloads alone, alternating weightgate and nginx (sendfile), twice each: 64 connections
#      downloading the 1 GiB admitted blob for DURATION; the ratio is of the summed throughputs;
#   2. weightgate: the same 64-connection download while 8 more connections ask for a refused
#      model (451) the whole time (refusal latency under a download load);
#   3. refusals alone: weightgate (decision + audit) against nginx answering a constant 451.
# Records requests/s, latency percentiles, throughput and the server's peak RSS; reads every
# audit file of the run, rotated ones included (bench/audit_check.py), and checks that it holds
# a record per request wrk made, no 5xx and no byte of the refused model served; prints `uptime`
# before and after (other engineers share the machine).
# Usage: bench/serve.sh [--quick]   (quick: 5 s phases)
source "$(dirname "$0")/common.sh"
DURATION=30s
[[ "${BENCH_QUICK:-}" == 1 ]] && DURATION=5s
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light; }

S="$DATA/serve"
[[ -f "$S/nginx/nginx.pid" ]] && kill "$(cat "$S/nginx/nginx.pid")" 2>/dev/null || true
rm -rf "$S" && mkdir -p "$S/big" "$S/refused"
python3 -c "
import sys; sys.path.insert(0, '$BENCH_DIR')
import gen_checkpoint as g
g.write_safetensors('$S/big/model.safetensors', [('w.%d' % i, 'BF16', [4096, 4096]) for i in range(31)] + [('tail', 'U8', [(1 << 25) - 4096])], pad_to=1 << 30)
"
cp -r "$REPO/testdata/checkpoints/tiny/." "$S/refused/"
PARAMS=$("$WG" inspect --json "$S/big" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameters"]["total"])')
sed -e "s/params_active = 352/params_active = $PARAMS/" -e 's/tokens = "1e9"/tokens = "1"/' "$REPO/testdata/claims/tiny-below.toml" > "$S/below.toml"
sed -n '1,/\[\[reference\]\]/p' "$REPO/testdata/claims/tiny-above.toml" | grep -v '^\[\[reference\]\]' > "$S/norefs.toml"
cat > "$S/policy.toml" <<POLICY
[policy]
name = "serve bench"
regimes = ["eu-ai-act-gpai", "us-ca-sb53"]
[[trusted_key]]
name = "bench lab"
path = "$KEYS/lab.pub"
POLICY
"$WG" attest "$S/big" --key "$KEYS/lab.key" --claims "$S/below.toml" --quiet >/dev/null
"$WG" attest "$S/refused" --key "$KEYS/lab.key" --claims "$S/norefs.toml" --quiet >/dev/null
"$WG" admit "$S/big" --repo lab/big --store "$S/store" --policy "$S/policy.toml" >/dev/null
"$WG" admit "$S/refused" --repo lab/refused --store "$S/store" --policy "$S/policy.toml" >/dev/null
BLOB=$(ls -S "$S/store/blobs" | head -1)

# Millions of records rotate the log (256 MiB a file): keep every file the run writes.
AUDIT_KEEP=1000
"$WG" serve --store "$S/store" --policy "$S/policy.toml" --listen 127.0.0.1:18181 --audit-keep $AUDIT_KEEP 2>"$S/serve.log" &
WG_PID=$!
trap 'kill $WG_PID 2>/dev/null || true; [[ -f "$S/nginx/nginx.pid" ]] && kill "$(cat "$S/nginx/nginx.pid")" 2>/dev/null || true' EXIT
mkdir -p "$S/nginx"
cat > "$S/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $S/nginx/nginx.pid;
error_log $S/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:18182;
    location /blob { alias $S/store/blobs/$BLOB; default_type application/octet-stream; }
    # The floor for refusal latency on this harness: a constant 451 with no decision at all.
    location /refused { default_type application/json; return 451 '{"error":"refused"}'; }
  }
}
NGINX
nginx -c "$S/nginx/nginx.conf"
sleep 1
cat "$S/store/blobs/$BLOB" > /dev/null

# Throughput in bytes/s from wrk's "Transfer/sec" line.
rate() { awk '/^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v = substr(v, 1, length(v) - 2);
  m = (u == "GB") ? 2^30 : (u == "MB") ? 2^20 : (u == "KB") ? 2^10 : 1; printf "%.0f", v * m }' "$1"; }
download() { # NAME URL OUT
  echo "== $1: 64 connections downloading the 1 GiB blob, $DURATION ($(uptime | sed 's/.*load/load/'))" | tee -a "$RESULTS/serve.txt"
  wrk -t2 -c64 -d"$DURATION" --timeout 60s --latency "$2" > "$3"
  grep -E "Requests/sec|Transfer/sec" "$3" | tee -a "$RESULTS/serve.txt"
}
: > "$RESULTS/serve.txt"
echo "uptime before: $(uptime)" | tee -a "$RESULTS/serve.txt"
GATE_URL=http://127.0.0.1:18181/lab/big/resolve/main/model.safetensors
NGINX_URL=http://127.0.0.1:18182/blob
download weightgate "$GATE_URL" "$RESULTS/serve-gate-1.txt"
download "nginx (sendfile)" "$NGINX_URL" "$RESULTS/serve-nginx-1.txt"
download weightgate "$GATE_URL" "$RESULTS/serve-gate-2.txt"
download "nginx (sendfile)" "$NGINX_URL" "$RESULTS/serve-nginx-2.txt"
G=$(( $(rate "$RESULTS/serve-gate-1.txt") + $(rate "$RESULTS/serve-gate-2.txt") ))
N=$(( $(rate "$RESULTS/serve-nginx-1.txt") + $(rate "$RESULTS/serve-nginx-2.txt") ))
python3 -c "print(f'downloads: weightgate {$G/2e9:.2f} GB/s, nginx {$N/2e9:.2f} GB/s, ratio {$G/$N:.2f} x nginx')" | tee -a "$RESULTS/serve.txt"

echo "== weightgate: 64 connections downloading 1 GiB + 8 connections refused, $DURATION" | tee -a "$RESULTS/serve.txt"
wrk -t1 -c8 -d"$DURATION" --latency http://127.0.0.1:18181/lab/refused/resolve/main/config.json > "$RESULTS/serve-refused.txt" &
REFUSED=$!
wrk -t2 -c64 -d"$DURATION" --timeout 60s --latency "$GATE_URL" > "$RESULTS/serve-gate-mixed.txt"
tee -a "$RESULTS/serve.txt" < "$RESULTS/serve-gate-mixed.txt"
wait $REFUSED
echo "-- refused requests during the download load:" | tee -a "$RESULTS/serve.txt"
tee -a "$RESULTS/serve.txt" < "$RESULTS/serve-refused.txt"
echo "== weightgate: 64 connections asking only for the refused model, $DURATION" | tee -a "$RESULTS/serve.txt"
wrk -t2 -c64 -d"$DURATION" --latency http://127.0.0.1:18181/lab/refused/resolve/main/config.json > "$RESULTS/serve-refused-alone.txt"
tee -a "$RESULTS/serve.txt" < "$RESULTS/serve-refused-alone.txt"
echo "weightgate peak RSS: $(grep VmHWM /proc/$WG_PID/status)" | tee -a "$RESULTS/serve.txt"
echo "== nginx: 64 connections getting a constant 451 (no decision, no audit), $DURATION" | tee -a "$RESULTS/serve.txt"
wrk -t2 -c64 -d"$DURATION" --latency http://127.0.0.1:18182/refused | tee -a "$RESULTS/serve.txt"
echo "uptime after: $(uptime)" | tee -a "$RESULTS/serve.txt"
kill $WG_PID; wait $WG_PID 2>/dev/null || true
# Every gate request of the run came from these wrk runs.
python3 "$BENCH_DIR/audit_check.py" "$S/store/audit.log" --keep $AUDIT_KEEP --refused lab/refused \
  --wrk "$RESULTS"/serve-gate-{1,2,mixed}.txt "$RESULTS"/serve-refused{,-alone}.txt | tee -a "$RESULTS/serve.txt"
