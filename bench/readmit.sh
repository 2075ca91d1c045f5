#!/usr/bin/env bash
# Re-admission, side by side in one run, on the 3-shard ~4.1 GB checkpoint already admitted: a
# new revision in which one shard changed, admitted into the store that holds the first one,
# beside admitting that one changed shard alone into an empty store (the floor: copying and
# hashing the bytes that are new). For the folder store and for a bucket (SeaweedFS on
# loopback). Commands take turns round by round (bench/interleaved.py); each run starts from the
# store as the first revision left it, the changed shard's blob removed, and a warm source.
# Before timing, one admission of the revision is checked to reuse every unchanged file.
# Usage: bench/readmit.sh [--quick] [folder|bucket|both]
source "$(dirname "$0")/common.sh"
KINDS="${2:-${1:-both}}"; [[ "$KINDS" == --quick ]] && KINDS=both
versions | tee "$RESULTS/readmit-versions.txt"
write_claims_and_policy
POLICY="$DATA/policy.toml"

# The first revision (the benchmark checkpoint, hard-linked), the second (one shard rewritten
# with one byte changed), and that shard alone; each attested by the bench lab.
REV1="$DATA/readmit-rev1"; REV2="$DATA/readmit-rev2"; ONE="$DATA/readmit-one"
rm -rf "$REV1" "$REV2" "$ONE"
cp -al "$SHARDED" "$REV1"; rm -f "$REV1/weightgate.att"
cp -al "$REV1" "$REV2"
LAST="$(cd "$REV2" && ls *.safetensors | tail -1)"
cp --remove-destination "$REV1/$LAST" "$REV2/$LAST"
python3 - "$REV2/$LAST" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(os.path.getsize(sys.argv[1]) - 1)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x5A]))
PY
mkdir -p "$ONE"; ln "$REV2/$LAST" "$ONE/$LAST"
"$WG" attest "$REV1" --key "$KEYS/lab.key" --claims "$CLAIMS" --quiet
"$WG" attest "$REV2" --key "$KEYS/lab.key" --claims "$CLAIMS" --quiet
# Claims for the one shard: its own parameters, compute consistent with them.
ONE_PARAMS=$("$WG" inspect --json "$ONE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameters"]["total"])')
ONE_OPS=$(python3 -c "print(6 * $ONE_PARAMS * 10**12)")
sed -e "s/^params_active = .*/params_active = $ONE_PARAMS/" -e "s/^total = .*/total = \"$ONE_OPS\"/" \
  -e "s/^pre_training = .*/pre_training = \"$ONE_OPS\"/" -e "s/^post_training = .*/post_training = \"0\"/" \
  "$CLAIMS" > "$DATA/claims-one.toml"
"$WG" attest "$ONE" --key "$KEYS/lab.key" --claims "$DATA/claims-one.toml" --quiet
NEW_SHA=$(sha256sum "$REV2/$LAST" | cut -d' ' -f1)
NFILES=$(ls "$REV2" | grep -vc '^weightgate.att$')
WARM="cat $REV2/* > /dev/null"

# Admits the first revision into store $1 (not timed) and prints its revision id.
admit_first() {
  "$WG" admit "$REV1" --repo lab/bench --store "$1" --policy "$POLICY" --quiet \
    | sed -n 's/.*(revision \([0-9a-f]\{40\}\).*/\1/p'
}

# Fails unless admitting the second revision into store $1 reuses every unchanged file.
check_reuse() {
  local out
  out=$("$WG" admit "$REV2" --repo lab/bench --store "$1" --policy "$POLICY" --quiet)
  echo "check: $out"
  grep -q "$((NFILES - 1)) already stored)" <<<"$out" \
    || { echo "readmit.sh: the revision did not reuse the $((NFILES - 1)) unchanged files" >&2; exit 1; }
}

run_folder() {
  local store="$DATA/readmit-store" one="$DATA/readmit-one-store" rev1
  rm -rf "$store" "$one"
  rev1=$(admit_first "$store")
  local reset="rm -f $store/blobs/$NEW_SHA; printf '%s\n' $rev1 > $store/repos/lab/bench/refs/main; \
find $store/repos/lab/bench/revisions -name '*.json' ! -name $rev1.json -delete; sync"
  sh -c "$reset"; check_reuse "$store"
  python3 "$BENCH_DIR/interleaved.py" --warmup 1 --runs "$RUNS" \
    --export-json "$RESULTS/readmit-folder.json" \
    --prepare "rm -rf $one; sync; $WARM" \
    -n "admit the changed shard alone (folder)" "$WG admit $ONE --repo lab/one --store $one --policy $POLICY --quiet" \
    --prepare "$reset; $WARM" \
    -n "admit the revision (folder)" "$WG admit $REV2 --repo lab/bench --store $store --policy $POLICY --quiet"
  rm -rf "$store" "$one"
  BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/readmit-folder.json" | tee "$RESULTS/readmit-folder.md"
}

run_bucket() {
  command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone; }
  source "$BENCH_DIR/seaweed.sh"
  start_seaweed_cluster
  local store="s3://$BUCKET/readmit" one="s3://$BUCKET/one" rev1
  rev1=$(admit_first "$store")
  local vacuum="echo 'volume.vacuum -garbageThreshold 0.0001' | $SHELL_CMD >/dev/null 2>&1"
  local reset="rclone deletefile sw:$BUCKET/readmit/blobs/$NEW_SHA >/dev/null 2>&1; \
printf '%s\n' $rev1 | rclone rcat sw:$BUCKET/readmit/repos/lab/bench/refs/main; $vacuum; sync"
  sh -c "$reset"; check_reuse "$store"
  python3 "$BENCH_DIR/interleaved.py" --warmup 1 --runs "$RUNS" \
    --export-json "$RESULTS/readmit-bucket.json" \
    --prepare "rclone purge sw:$BUCKET/one >/dev/null 2>&1; $vacuum; sync; $WARM" \
    -n "admit the changed shard alone (bucket)" "$WG admit $ONE --repo lab/one --store $one --policy $POLICY --quiet" \
    --prepare "$reset; $WARM" \
    -n "admit the revision (bucket)" "$WG admit $REV2 --repo lab/bench --store $store --policy $POLICY --quiet"
  BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/readmit-bucket.json" | tee "$RESULTS/readmit-bucket.md"
}

case "$KINDS" in
  folder) run_folder ;;
  bucket) run_bucket ;;
  both) run_folder; run_bucket ;;
  *) echo "usage: bench/readmit.sh [--quick] [folder|bucket|both]" >&2; exit 2 ;;
esac
rm -rf "$REV1" "$REV2" "$ONE"
