#!/usr/bin/env bash
# Admission, side by side in one run, on the 3-shard ~4 GiB checkpoint: `weightgate admit` into
# a fresh store (copy, SHA-256 + BLAKE3 from the same read, judge, publish, fsync) beside
# `cp -r SRC DST && sync` of the same folder to the same disk. Warm source, cold destination.
# The commands take turns round by round (bench/interleaved.py).
# With WEIGHTGATE_BASELINE=BINARY (another build of weightgate, e.g. of an earlier commit), its
# admission takes its turn in the same rounds as "weightgate admit (baseline)".
# Usage: bench/admit.sh [--quick]
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/admit-versions.txt"
DIR="$SHARDED"; FILES="$SHARD_FILES"
ATT="$DIR/weightgate.att"
write_claims_and_policy
rm -f "$ATT"
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" --quiet
DST="$DATA/admit-dst"
# Each run starts from an empty destination, nothing dirty, and the source freshly read into the
# page cache (dropped first where this runs as root).
PREPARE="rm -rf $DST; sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; cat $FILES > /dev/null"
# `cp` fills 4 GB of page cache: on this VM that memory is slow to touch once the host has taken
# it back (bench/back_memory.py), so `cp` gets memory the host has just backed, and is timed at
# its best. Admission writes with O_DIRECT from a 32 MiB ring and needs no such help.
CP_PREPARE="$PREPARE; python3 $BENCH_DIR/back_memory.py 8"
# Interleaved rounds: the disk's write speed drifts over minutes (bench/interleaved.py).
python3 "$BENCH_DIR/interleaved.py" --warmup 1 --runs "$RUNS" \
  --export-json "$RESULTS/admit-sharded.json" \
  --prepare "$CP_PREPARE" \
  -n "cp -r SRC DST && sync" "sh -c 'cp -r $DIR $DST && sync'" \
  --prepare "$PREPARE" \
  -n "weightgate admit" "$WG admit $DIR --repo lab/bench --store $DST --policy $DATA/policy.toml --quiet" \
  -n "weightgate hash" "$WG hash --quiet $DIR" \
  ${WEIGHTGATE_BASELINE:+-n "weightgate admit (baseline)" "$WEIGHTGATE_BASELINE admit $DIR --repo lab/bench --store $DST --policy $DATA/policy.toml --quiet"}
rm -rf "$DST" "$ATT"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/admit-sharded.json" | tee "$RESULTS/admit-summary.md"
