#!/usr/bin/env bash
# Model pages under load (issue 28), in one run against one server:
#   1. the page of a 163-shard, 91,000-tensor checkpoint (tiny tensors: the page's cost is its
#      file list and claims, not the bytes), 2,000 sequential requests each rendered anew from
#      the cached decisions and claims (target: p99 < 50 ms on loopback), then 2,000 answered
#      from the per-second page cache;
#   2. /healthz p99 (a new connection every 20 ms) and one connection's download throughput of
#      a 256 MiB admitted blob (32 MiB with --quick), first alone, then while 1,000 page requests a second run:
#      target both within 10 %.
# Not a test: timings vary by host; run it on a quiet machine.
# Usage: bench/pages.sh [--quick]   (quick: 12 shards x 100 tensors, 5 s phases)
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
DATA="${WEIGHTGATE_BENCH_DATA:-/work/benchdata}/pages"
WG="${WEIGHTGATE:-$REPO/target/release/weightgate}"
if [[ -z "${WEIGHTGATE:-}" ]]; then (cd "$REPO" && cargo build --release -q -p weightgate); fi
TD="$REPO/testdata"
SHARDS=163 TENSORS=91000 SECS=20 N=2000 BLOB_MIB=256 PORT=18291
if [[ "${1:-}" == "--quick" ]]; then SHARDS=12 TENSORS=1200 SECS=5 N=300 BLOB_MIB=32; DATA="$DATA-quick"; fi

rm -rf "$DATA" && mkdir -p "$DATA/big" "$DATA/blob"
python3 -c "
import json, sys
sys.path.insert(0, '$BENCH_DIR')
import gen_checkpoint as g
data, shards, tensors = '$DATA', $SHARDS, $TENSORS
weight_map, total = {}, 0
per = -(-tensors // shards)
for s in range(shards):
    name = 'model-%05d-of-%05d.safetensors' % (s + 1, shards)
    shard = [('model.layers.%d.t%d.weight' % (s, i), 'BF16', [4]) for i in range(min(per, tensors - s * per))]
    total += g.write_safetensors(data + '/big/' + name, shard)
    weight_map.update({t: name for t, _, _ in shard})
json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, open(data + '/big/model.safetensors.index.json', 'w'))
json.dump({'model_type': 'bench'}, open(data + '/big/config.json', 'w'))
g.write_safetensors(data + '/blob/model.safetensors', [('w', 'U8', [$BLOB_MIB << 20])])
"
inspect_params() { "$WG" inspect --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameters"]["total"])'; }
for ck in big blob; do
  sed -e "s/params_active = 352/params_active = $(inspect_params "$DATA/$ck")/" -e 's/tokens = "1e9"/tokens = "1"/' \
    "$TD/claims/tiny-below.toml" > "$DATA/$ck.toml"
  "$WG" attest "$DATA/$ck" --key "$TD/keys/test-lab.key" --claims "$DATA/$ck.toml" --quiet >/dev/null
done
cat > "$DATA/policy.toml" <<POLICY
[policy]
name = "pages bench"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
destination_header = "CF-IPCountry"
[[trusted_key]]
name = "lab"
path = "$TD/keys/test-lab.pub"
POLICY
"$WG" admit "$DATA/big" --repo lab/big --store "$DATA/store" --policy "$DATA/policy.toml" >/dev/null
"$WG" admit "$DATA/blob" --repo lab/blob --store "$DATA/store" --policy "$DATA/policy.toml" >/dev/null
"$WG" serve --store "$DATA/store" --policy "$DATA/policy.toml" --listen "127.0.0.1:$PORT" 2>"$DATA/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 1
URL="http://127.0.0.1:$PORT"
P() { python3 "$BENCH_DIR/pages.py" "$@"; }
echo "machine: $(nproc) cores; $(uptime); weightgate: $("$WG" --version)"
echo "checkpoint: $SHARDS shards, $TENSORS tensors"
echo "== 1. page latency, $N sequential requests"
P latency "$URL/lab/big" 20 >/dev/null  # warm the claim cache
P latency "$URL/lab/big" "$N" render
P latency "$URL/lab/big" "$N"
echo "== 2a. /healthz and a download alone, ${SECS} s"
P probe "$URL" "$SECS" & PROBE=$!
P download "$URL/lab/blob/resolve/main/model.safetensors" "$SECS"
wait $PROBE
echo "== 2b. the same while 1,000 page requests a second run"
P load "$URL/lab/big" 1000 $((SECS + 2)) & LOAD=$!
sleep 1
P probe "$URL" "$SECS" & PROBE=$!
P download "$URL/lab/blob/resolve/main/model.safetensors" "$SECS"
wait $PROBE
wait $LOAD
echo "server peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status); $(uptime)"
