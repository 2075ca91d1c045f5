#!/usr/bin/env bash
# Gate under abuse (issue 12), in one run: /healthz latency with no abuse, then during an
# abuse run (200 silent sockets, 50 half-open HTTP/2 prefaces, 50 slowloris heads, 4 clients
# sending 60 KB paths back to back; every abuser reconnects when cut off), against the same
# server. Records /healthz p50/p99/max, the audit log's growth per logged request and its
# longest line (over every audit file, rotated ones included: bench/audit_check.py), the
# server's peak RSS and open descriptors. Not a test: timings vary by host.
# Usage: bench/abuse.sh [SECONDS]   (default 20)
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
SECS="${1:-20}"
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
