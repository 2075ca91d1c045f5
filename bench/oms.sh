#!/usr/bin/env bash
# OpenSSF model signing, side by side in one run, on the 3-shard ~4 GiB checkpoint:
# the cost of writing model.sig during `attest` (the SHA-256s are already computed), and
# checking that model.sig with `weightgate verify --oms-key` beside `model_signing verify key`
# (both re-hash every file with SHA-256; weightgate checks its attestation in the same pass).
# Usage: bench/oms.sh [--quick]
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/oms-versions.txt"
DIR="$SHARDED"; FILES="$SHARD_FILES"
CLAIMS="$DATA/claims.toml"
[[ -f "$CLAIMS" ]] || { echo "run bench/verify.sh first (it writes the claims)" >&2; exit 2; }
cat > "$DATA/policy.toml" <<POLICY
[policy]
name = "bench"
[[trusted_key]]
name = "bench lab"
path = "keys/lab.pub"
POLICY
ATT="$DATA/oms.att"; SIG="$DATA/oms-model.sig"
# keys/p256.pem is a SEC1 key from `openssl ecparam`: the form labs often have.
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" \
  --oms-key "$KEYS/p256.pem" --oms-out "$SIG" --quiet
"$MS" verify key "$DIR" --signature "$SIG" --public_key "$KEYS/p256.pub" >/dev/null
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --prepare "$(warm $FILES)" \
  --export-json "$RESULTS/oms-sharded.json" \
  -n "weightgate hash" "$WG hash --quiet $DIR" \
  -n "weightgate attest" "$WG attest $DIR --key $KEYS/lab.key --claims $CLAIMS --out $DATA/oms-2.att --quiet" \
  -n "weightgate attest --oms-key" "$WG attest $DIR --key $KEYS/lab.key --claims $CLAIMS --out $DATA/oms-2.att --oms-key $KEYS/p256.pem --oms-out $DATA/oms-2.sig --quiet" \
  -n "weightgate verify --oms-key" "$WG verify $DIR --attestation $ATT --policy $DATA/policy.toml --oms-key $KEYS/p256.pub --oms-bundle $SIG --quiet" \
  -n "model_signing verify key (model.sig)" "$MS verify key $DIR --signature $SIG --public_key $KEYS/p256.pub"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/oms-sharded.json" | tee "$RESULTS/oms-summary.md"
