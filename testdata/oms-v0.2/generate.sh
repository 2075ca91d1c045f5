#!/usr/bin/env bash
# Writes genuine model_signing 0.2.0 bundles (the deprecated `Digests/v0.1` predicate and
# that release's DSSE PAE) over the small model in model/, for cli/tests/oms_older_releases.rs.
# The output is committed; rerun only to regenerate (ECDSA signatures are randomised, so
# the bundles change; the keys and certificates are kept when present).
#
#   testdata/oms-v0.2/generate.sh
#
# Needs python3 (3.11), openssl and PyPI. model-signing 0.2.0 goes into a throwaway venv
# under /tmp: it cannot share a venv with the pinned 1.1.1 of .ci/venv. Its dependencies
# are pinned as they resolved on 2026-11-30 (sigstore 3.x still ships
# sigstore-protobuf-specs, which 0.2.0 imports).
# The certificates are valid for 20 years from generation; the tests check them at
# 2030-01-01.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${VENV:-/tmp/weightgate-model-signing-0.2.0}"
cd "$HERE"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet \
    model-signing==0.2.0 sigstore==3.6.7 sigstore-protobuf-specs==0.3.2 \
    betterproto==2.0.0b6 in-toto-attestation==0.9.3 protobuf==7.36.2 \
    cryptography==46.0.7 pyOpenSSL==26.2.0 typing_extensions==4.16.0
fi

# The model: names that exercise the escaping of 0.2.0's PAE (a quote, a space,
# parentheses, non-ASCII), a binary file, a nested folder and a zero-byte file.
rm -rf model
mkdir -p "model/sub dir"
printf '{"architectures": ["TinyModel"], "hidden_size": 8}\n' > model/config.json
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 37 + 11) & 0xFF for i in range(4096)))' > model/weights.bin
printf "the signer's notes\n" > "model/sub dir/it's (v2).txt"
printf 'tokens\n' > "model/模型.txt"
: > model/empty

# Keys (0.2.0 signed with SHA-256 on every curve) and a two-level PKI (root P-384 -> intermediate P-256 -> leaf P-256), made once.
mkdir -p keys
cd keys
for k in p256:prime256v1 p384:secp384r1 p521:secp521r1 root:secp384r1 int:prime256v1 leaf:prime256v1; do
  name="${k%%:*}" curve="${k#*:}"
  if [ ! -f "$name.key" ]; then
    openssl ecparam -name "$curve" -genkey -noout -out "$name.sec1"
    openssl pkcs8 -topk8 -nocrypt -in "$name.sec1" -out "$name.key"
    rm "$name.sec1"
  fi
  openssl ec -in "$name.key" -pubout -out "$name.pub" 2>/dev/null
done
cat > ext.cnf <<'CNF'
[v3ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
[v3leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectAltName=email:signer@lab.example
CNF
if [ ! -f leaf.pem ]; then
  openssl req -new -x509 -key root.key -subj "/CN=v0.2 Test Root" -days 7300 \
    -extensions v3ca -config <(cat /etc/ssl/openssl.cnf ext.cnf) -out root.pem
  openssl req -new -key int.key -subj "/CN=v0.2 Test Intermediate" -out int.csr
  openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -set_serial 2 -days 7300 \
    -extfile ext.cnf -extensions v3ca -out int.pem
  openssl req -new -key leaf.key -subj "/CN=v0.2 Test Signer" -out leaf.csr
  openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -set_serial 3 -days 7300 \
    -extfile ext.cnf -extensions v3leaf -out leaf.pem
  rm -f int.csr leaf.csr
fi
cd ..

PY="$VENV/bin/python"
"$PY" sign_v02.py model key-p256.sig private-key keys/p256.key
"$PY" sign_v02.py model key-p384.sig private-key keys/p384.key
"$PY" sign_v02.py model key-p521.sig private-key keys/p521.key
"$PY" sign_v02.py model/weights.bin single-file.sig private-key keys/p256.key
"$PY" sign_v02.py model certificate.sig pki keys/leaf.key keys/leaf.pem keys/int.pem
openssl verify -x509_strict -CAfile keys/root.pem -untrusted keys/int.pem -purpose any keys/leaf.pem
