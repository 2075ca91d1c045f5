#!/usr/bin/env bash
# Writes the vectors verifier/tests/ reads beside testdata/envelopes/golden_tiny.att: the tiny
# checkpoint attested with frontier-scale claims, and the export licence in those claims
# countersigned by the test issuer. Ed25519 is deterministic and the times are fixed, so a rerun
# writes the same bytes unless the formats changed.
#
#   cargo build -p weightgate && testdata/verifier/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
weightgate="${WEIGHTGATE:-../../target/debug/weightgate}"
"$weightgate" attest ../checkpoints/tiny --key ../keys/test-lab.key --claims tiny-above.toml \
  --issued-at 2026-11-01T00:00:00Z --out tiny_above.att --quiet
"$weightgate" grant tiny_above.att --reference D1234567 --key ../keys/test-issuer.key \
  --issued-at 2026-11-02T00:00:00Z --out tiny_above_D1234567.grant
