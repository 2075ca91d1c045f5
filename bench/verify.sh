#!/usr/bin/env bash
# Signing and verification, side by side in one run, on the 3-shard ~4 GiB checkpoint:
# weightgate attest / hash, weightgate verify (BLAKE3) and verify --full beside b3sum, and
# model_signing verify key (which re-hashes with SHA-256).
# Usage: bench/verify.sh [--quick]
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/verify-versions.txt"
DIR="$SHARDED"; FILES="$SHARD_FILES"
ATT="$DATA/sharded.att"
write_claims_and_policy
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" --quiet
"$MS" sign key "$DIR" --private_key "$KEYS/p256.pem" --signature "$DATA/sharded-model.sig" >/dev/null
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$(warm $FILES)" \
  --export-json "$RESULTS/verify-sharded.json" \
  -n "weightgate hash" "$WG hash --quiet $DIR" \
  -n "weightgate attest" "$WG attest $DIR --key $KEYS/lab.key --claims $CLAIMS --out $DATA/sharded-2.att --quiet" \
  -n "b3sum" "b3sum $FILES" \
  -n "weightgate verify" "$WG verify $DIR --attestation $ATT --policy $DATA/policy.toml --quiet" \
  -n "weightgate verify --full" "$WG verify $DIR --attestation $ATT --policy $DATA/policy.toml --full --quiet" \
  -n "model_signing verify key" "$MS verify key $DIR --signature $DATA/sharded-model.sig --public_key $KEYS/p256.pub"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/verify-sharded.json" | tee "$RESULTS/verify-summary.md"
