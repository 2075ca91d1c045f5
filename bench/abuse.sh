#!/usr/bin/env bash
# Gate under abuse (issue 12), in one run: /healthz latency with no abuse, then during an
# abuse run (200 silent sockets, 50 half-open HTTP/2 prefaces, 50 slowloris heads, 4 clients
# sending 60 KB paths back to back; every abuser reconnects when cut off), against the same
# server. Records /healthz p50/p99/max, the audit log's growth per logged request and its
# longest line (over every audit file, rotated ones included: bench/audit_check.py), the
# server's peak RSS and open descriptors. Then floods the metadata routes of a repository of
# FILES files (issue 24: paths-info with 1,000 paths, commits and /v1/decision by a shortened
# id) and checks that /healthz p99 stays under 50 ms (exit 1 otherwise). Timings vary by host:
# run it on a quiet machine.
# Usage: bench/abuse.sh [SECONDS] [FILES]   (defaults 20, 6000)
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
SECS="${1:-20}"
FILES="${2:-6000}"
DATA="${WEIGHTGATE_BENCH_DATA:-/work/benchdata}/abuse"
WG="${WEIGHTGATE:-$REPO/target/release/weightgate}"
if [[ -z "${WEIGHTGATE:-}" ]]; then (cd "$REPO" && cargo build --release -q -p weightgate); fi
TD="$REPO/testdata"
PORT=18191

rm -rf "$DATA" && mkdir -p "$DATA"
cp -r "$TD/checkpoints/tiny" "$DATA/tiny"
cat > "$DATA/policy.toml" <<POLICY
[policy]
name = "abuse bench"
[[trusted_key]]
name = "lab"
path = "$TD/keys/test-lab.pub"
POLICY
"$WG" attest "$DATA/tiny" --key "$TD/keys/test-lab.key" --claims "$TD/claims/tiny-below.toml" --quiet
"$WG" admit "$DATA/tiny" --repo lab/tiny --store "$DATA/store" --policy "$DATA/policy.toml" >/dev/null

# A wide repository: FILES small files (metadata routes scale with it, not with bytes).
mkdir -p "$DATA/wide"
cp -r "$TD/checkpoints/tiny/." "$DATA/wide/"
python3 - "$DATA/wide" "$FILES" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], f"f{2 * i:05}"), "wb") as f:
        f.write(i.to_bytes(4, "big"))
PY
"$WG" attest "$DATA/wide" --key "$TD/keys/test-lab.key" --claims "$TD/claims/tiny-below.toml" --quiet
WIDE_REV=$("$WG" admit "$DATA/wide" --repo lab/wide --store "$DATA/store" --policy "$DATA/policy.toml" | sed -n 's/.*(revision \([0-9a-f]\{40\}\).*/\1/p')

AUDIT_KEEP=1000
"$WG" serve --store "$DATA/store" --policy "$DATA/policy.toml" --listen "127.0.0.1:$PORT" --audit-keep $AUDIT_KEEP 2>"$DATA/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 1
LOG="$DATA/store/audit.log"
# Records, bytes and the longest line over every audit file.
audit_size() { python3 "$BENCH_DIR/audit_check.py" "$LOG" --keep $AUDIT_KEEP --size; }
echo "machine: $(nproc) cores; weightgate: $("$WG" --version); $(python3 --version)"
echo "== /healthz alone, 5 s"
python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" 5 probe
read -r BEFORE_LINES BEFORE_BYTES _ < <(audit_size)
echo "== /healthz during the abuse run, ${SECS} s"
python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" "$SECS" abuse &
ABUSER=$!
sleep 1
python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" $((SECS - 2)) probe &
PROBE=$!
sleep $((SECS / 2))
FDS=$(ls /proc/$PID/fd | wc -l)
wait $PROBE
wait $ABUSER
sleep 0.5
read -r AFTER_LINES AFTER_BYTES LONGEST < <(audit_size)
LINES=$((AFTER_LINES - BEFORE_LINES)); GROWTH=$((AFTER_BYTES - BEFORE_BYTES))
echo "server open descriptors mid-run: $FDS; peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status)"
echo "audit log: +$GROWTH bytes for $LINES records ($(( LINES > 0 ? GROWTH / LINES : 0 )) bytes/record), longest line $LONGEST bytes"
echo "== /healthz after the abuse, 5 s"
python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" 5 probe
echo "== /healthz during paths-info, commits and decision floods on $FILES files, ${SECS} s"
python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" "$SECS" listing lab/wide "${WIDE_REV:0:7}" "$FILES" &
FLOOD=$!
sleep 1
PROBED=$(python3 "$BENCH_DIR/abuse.py" 127.0.0.1 "$PORT" $((SECS - 2)) probe)
wait $FLOOD
echo "$PROBED"
python3 - "$PROBED" <<'PY'
import json, sys
p = json.loads(sys.argv[1])
ok = p["p99_ms"] is not None and p["p99_ms"] < 50 and p["probe_failures"] == 0
print(f"/healthz p99 {p['p99_ms']} ms during the metadata floods: {'ok (< 50 ms)' if ok else 'OVER 50 ms'}")
sys.exit(0 if ok else 1)
PY
