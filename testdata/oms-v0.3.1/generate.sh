#!/usr/bin/env bash
# Writes genuine model_signing 0.3.1 bundles (sign_v031.py: its signers, without the network) over ../oms-v0.2/model with ../oms-v0.2/keys, for
# cli/tests/oms_older_releases.rs: the v1.0 predicate with what 0.3.1 to 1.0.x wrote and OMS
# v1.0 §11 tells verifiers to accept (`publicKey.rawBytes` + `keyDetails` instead of `hint`,
# `keyid: null`, no `ignore_paths`, no `tlogEntries`). The output is committed; rerun only to
# regenerate (ECDSA signatures are randomised).
#
#   testdata/oms-v0.3.1/generate.sh
#
# Needs python3 (3.11) and PyPI; model-signing 0.3.1 goes into a throwaway venv under /tmp
# (it cannot share a venv with the pinned 1.1.1 of .ci/venv). Dependencies pinned as they
# resolved on 2026-11-30.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${VENV:-/tmp/weightgate-model-signing-0.3.1}"
cd "$HERE"

if [ ! -x "$VENV/bin/model_signing" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet \
    model-signing==0.3.1 sigstore==3.6.7 sigstore-protobuf-specs==0.3.2 \
    betterproto==2.0.0b6 in-toto-attestation==0.9.3 protobuf==7.36.2 \
    cryptography==46.0.7 pyOpenSSL==26.2.0 typing_extensions==4.16.0 click==8.5.1
fi
PY="$VENV/bin/python"
M=../oms-v0.2/model
K=../oms-v0.2/keys
for curve in p256 p384 p521; do
  "$PY" sign_v031.py "$M" "key-$curve.sig" key "$K/$curve.key" "$K/$curve.pub"
done
"$PY" sign_v031.py "$M/weights.bin" single-file.sig key "$K/p256.key" "$K/p256.pub"
# No certificate bundle: 0.3.1's certificate signer cannot write one (it passes `raw_byutes=`
# to the protobuf certificate and fails with a TypeError).
