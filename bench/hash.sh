#!/usr/bin/env bash
# Hashing, side by side in one run: weightgate hash (SHA-256 + BLAKE3), weightgate hash
# --blake3-only, b3sum, openssl dgst -sha256, sha256sum and model_signing sign key, on a 4 GiB
# single-file checkpoint and a 3-shard ~4 GiB checkpoint. Warm page cache.
# Usage: bench/hash.sh [--quick]     (results in $WEIGHTGATE_BENCH_DATA/results, default /work/benchdata)
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/hash-versions.txt"

for layout in single sharded; do
  if [[ $layout == single ]]; then DIR="$SINGLE"; FILES="$SINGLE_FILES"; else DIR="$SHARDED"; FILES="$SHARD_FILES"; fi
  hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$(warm $FILES)" \
    --export-json "$RESULTS/hash-$layout.json" \
    -n "weightgate hash" "$WG hash --quiet $DIR" \
    -n "weightgate hash --blake3-only" "$WG hash --quiet --blake3-only $DIR" \
    -n "b3sum" "b3sum $FILES" \
    -n "openssl dgst -sha256" "openssl dgst -sha256 $FILES" \
    -n "sha256sum" "sha256sum $FILES" \
    -n "model_signing sign key" "$MS sign key $DIR --private_key $KEYS/p256.pem --signature $RESULTS/model-$layout.sig"
done
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/hash-single.json" "$RESULTS/hash-sharded.json" | tee "$RESULTS/hash-summary.md"
