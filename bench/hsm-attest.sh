#!/usr/bin/env bash
# Signing with a key in a PKCS#11 token (SoftHSM2) beside the same command with a key file, in
# interleaved rounds of one run, on the 3-shard ~4 GiB checkpoint: `attest` (Ed25519 envelope),
# `attest --oms-key` (and ECDSA P-256 model.sig), and `cosign` of a small envelope, where the
# signature is nearly all the work: the cosign difference is what one token signature costs
# (loading the module, finding the token, logging in, C_Sign).
# Usage: bench/hsm-attest.sh [--quick]
source "$(dirname "$0")/common.sh"
command -v softhsm2-util >/dev/null || { apt-get update -qq && apt-get install -y -qq softhsm2; }
versions | tee "$RESULTS/hsm-attest-versions.txt"
echo "softhsm2: $(softhsm2-util --version)" | tee -a "$RESULTS/hsm-attest-versions.txt"
DIR="$SHARDED"; FILES="$SHARD_FILES"
write_claims_and_policy

# A fresh SoftHSM2 token for this run, holding an Ed25519 and a P-256 key made in it.
HSM="$DATA/softhsm"
rm -rf "$HSM"; mkdir -p "$HSM/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$HSM/tokens" >"$HSM/softhsm2.conf"
export SOFTHSM2_CONF="$HSM/softhsm2.conf"
for module in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so; do
  [[ -f "$module" ]] && { export WEIGHTGATE_PKCS11_MODULE="$module"; break; }
done
[[ -n "${WEIGHTGATE_PKCS11_MODULE:-}" ]] || { echo "libsofthsm2.so not found" >&2; exit 2; }
export WEIGHTGATE_PKCS11_PIN=246810
softhsm2-util --init-token --free --label bench --so-pin 13579111 --pin "$WEIGHTGATE_PKCS11_PIN" >/dev/null
"$WG" keygen --pkcs11 "pkcs11:token=bench;object=lab" >"$HSM/lab.pub" 2>/dev/null
"$WG" keygen --pkcs11 "pkcs11:token=bench;object=oms" --type p256 >"$HSM/oms.pub" 2>/dev/null
LAB_URI="pkcs11:token=bench;object=lab"
OMS_URI="pkcs11:token=bench;object=oms"

# Each signs what its public key verifies (checked once, untimed).
"$WG" attest "$DIR" --key "$LAB_URI" --claims "$CLAIMS" --out "$DATA/hsm-token.att" \
  --oms-key "$OMS_URI" --oms-out "$DATA/hsm-token.sig" --quiet
"$WG" verify "$DIR" --attestation "$DATA/hsm-token.att" --trust "$HSM/lab.pub" >/dev/null
"$WG" verify-oms "$DIR" --signature "$DATA/hsm-token.sig" --key "$HSM/oms.pub" >/dev/null
"$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$DATA/hsm-file.att" --quiet

# cosign replaces its envelope: each run cosigns a fresh copy of the file-key attestation, with
# an auditor's key file or the token's key.
[[ -f "$KEYS/auditor.key" ]] || "$WG" keygen --out "$KEYS/auditor" >/dev/null 2>&1
COSIGN_SRC="$DATA/hsm-file.att"; COSIGNED="$DATA/hsm-cosigned.att"
python3 "$BENCH_DIR/interleaved.py" --warmup 1 --runs "$RUNS" \
  --export-json "$RESULTS/hsm-attest.json" \
  --prepare "cat $FILES" \
  -n "attest (key file)" "$WG attest $DIR --key $KEYS/lab.key --claims $CLAIMS --out $DATA/hsm-file.att --quiet" \
  -n "attest (SoftHSM2 key)" "$WG attest $DIR --key '$LAB_URI' --claims $CLAIMS --out $DATA/hsm-token.att --quiet" \
  -n "attest --oms-key (key files)" "$WG attest $DIR --key $KEYS/lab.key --claims $CLAIMS --out $DATA/hsm-file.att --oms-key $KEYS/p256.pem --oms-out $DATA/hsm-file.sig --quiet" \
  -n "attest --oms-key (SoftHSM2 keys)" "$WG attest $DIR --key '$LAB_URI' --claims $CLAIMS --out $DATA/hsm-token.att --oms-key '$OMS_URI' --oms-out $DATA/hsm-token.sig --quiet" \
  --prepare "cp $COSIGN_SRC $COSIGNED" \
  -n "cosign (key file)" "$WG cosign $COSIGNED --key $KEYS/auditor.key" \
  -n "cosign (SoftHSM2 key)" "$WG cosign $COSIGNED --key '$LAB_URI'"
BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/hsm-attest.json" | tee "$RESULTS/hsm-attest-summary.md"
