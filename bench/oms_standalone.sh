#!/usr/bin/env bash
# OpenSSF model signing on its own (`sign-oms`, `verify-oms`), side by side in one run:
# 1. signing the single 4 GiB file: `sign-oms --shards` (1,000,000,000-byte ranges hashed
#    independently, two SHA-256 streams per core) beside `openssl dgst -sha256` of the same
#    file, `sign-oms` with the files method and `model_signing sign key`;
# 2. checking a model.sig on the 3-shard checkpoint: `verify-oms` beside `model_signing
#    verify key` (both re-hash every file with SHA-256).
# Usage: bench/oms_standalone.sh [--quick]
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/oms-standalone-versions.txt"
OUT="$DATA/oms-standalone"; mkdir -p "$OUT"
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$(warm $SINGLE_FILES)" \
  --export-json "$RESULTS/oms-sign-single.json" \
  -n "openssl dgst -sha256" "openssl dgst -sha256 $SINGLE_FILES" \
  -n "weightgate sign-oms --shards" "$WG sign-oms $SINGLE --key $KEYS/p256.pem --signature $OUT/single-shards.sig --shards --quiet" \
  -n "weightgate sign-oms" "$WG sign-oms $SINGLE --key $KEYS/p256.pem --signature $OUT/single-files.sig --quiet" \
  -n "model_signing sign key" "$MS sign key $SINGLE --private_key $KEYS/p256.pem --signature $OUT/single-ms.sig"
# Every bundle just written checks out with its own verifier.
"$WG" verify-oms "$SINGLE" --key "$KEYS/p256.pub" --signature "$OUT/single-shards.sig" --quiet >/dev/null
"$MS" verify key "$SINGLE" --signature "$OUT/single-files.sig" --public_key "$KEYS/p256.pub" >/dev/null

SIG="$OUT/sharded.sig"
"$MS" sign key "$SHARDED" --private_key "$KEYS/p256.pem" --signature "$SIG" >/dev/null
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$(warm $SHARD_FILES)" \
  --export-json "$RESULTS/oms-verify-sharded.json" \
  -n "weightgate verify-oms" "$WG verify-oms $SHARDED --key $KEYS/p256.pub --signature $SIG --quiet" \
  -n "model_signing verify key (model.sig)" "$MS verify key $SHARDED --signature $SIG --public_key $KEYS/p256.pub"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" \
  "$RESULTS/oms-sign-single.json" "$RESULTS/oms-verify-sharded.json" | tee "$RESULTS/oms-standalone-summary.md"
