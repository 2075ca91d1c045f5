#!/usr/bin/env bash
# Hashing from the disk, side by side in one run: the page cache is dropped before every timed
# run, and the commands take turns round by round (bench/interleaved.py) because this disk's
# speed drifts over minutes. weightgate hash (SHA-256 + BLAKE3), hash --blake3-only and verify beside b3sum and
# openssl dgst -sha256, with hash through the mappings as before issue 17
# (--hash-read mapped) and hash on a warm cache for the targets; on the 4 GiB single
# file and the 3-shard checkpoint. Then a checkpoint larger than memory: LARGE_SHARDS shards of
# LARGE_MB MB (default 40 x 800 MB = 32 GB, more than this machine's RAM; generated, and deleted
# afterwards unless KEEP_LARGE=1), or, where the disk cannot hold that, a smaller one hashed in
# a memory cgroup capped at LARGE_MEMORY_MB (page cache included): LARGE_SHARDS=16
# LARGE_MEMORY_MB=4096 is 12.8 GB through 4 GiB; LARGE_SHARDS=0 LARGE_MEMORY_MB=1024 takes the
# 3-shard checkpoint (4.1 GB) through 1 GiB and writes nothing. It shows throughput, peak memory
# beyond mapped pages, and the progress bar on a terminal.
# Needs root (it writes /proc/sys/vm/drop_caches, and the cgroup).
# Usage: bench/cold.sh [--quick] [--no-large | --only-large]
if [[ $EUID -ne 0 || ! -w /proc/sys/vm/drop_caches ]]; then
  echo "bench/cold.sh needs root: it drops the page cache (echo 3 > /proc/sys/vm/drop_caches) before every run" >&2
  exit 1
fi
LARGE=1; TABLE=1
args=()
for a in "$@"; do
  case "$a" in --no-large) LARGE=0 ;; --only-large) TABLE=0 ;; *) args+=("$a") ;; esac
done
set -- "${args[@]}"
source "$(dirname "$0")/common.sh"
versions | tee "$RESULTS/cold-versions.txt"
dev=$(basename "$(df --output=source "$DATA" | tail -1)")
echo "kernel: $(uname -r); $dev read-ahead: $(cat "/sys/block/$dev/queue/read_ahead_kb" 2>/dev/null) KiB" | tee -a "$RESULTS/cold-versions.txt"

DROP="sync; echo 3 > /proc/sys/vm/drop_caches"
for layout in single sharded; do
  [[ $TABLE == 1 ]] || break
  if [[ $layout == single ]]; then DIR="$SINGLE"; FILES="$SINGLE_FILES"; else DIR="$SHARDED"; FILES="$SHARD_FILES"; fi
  ATT="$DATA/$layout.att"
  write_claims_and_policy
  "$WG" attest "$DIR" --key "$KEYS/lab.key" --claims "$CLAIMS" --out "$ATT" --quiet
  VERIFY="$WG verify $DIR --attestation $ATT --policy $DATA/policy.toml --quiet"
  echo "load before the $layout run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/cold-versions.txt"
  # Interleaved rounds, not hyperfine: the disk's speed drifts over minutes (bench/interleaved.py).
  python3 "$BENCH_DIR/interleaved.py" --runs "$RUNS" \
    --export-json "$RESULTS/cold-$layout.json" \
    --prepare "$DROP" -n "weightgate hash" "$WG hash --quiet $DIR" \
    -n "weightgate hash --blake3-only" "$WG hash --quiet --blake3-only $DIR" \
    -n "b3sum" "b3sum $FILES" \
    -n "openssl dgst -sha256" "openssl dgst -sha256 $FILES" \
    -n "weightgate verify" "$VERIFY" \
    -n "weightgate hash, mapped (before)" "$WG hash --quiet --hash-read mapped $DIR" \
    --prepare "cat $FILES > /dev/null" -n "weightgate hash, warm" "$WG hash --quiet $DIR"
done
[[ $TABLE == 1 ]] && BENCH_DATA_DIR="$DATA" python3 "$BENCH_DIR/summarize.py" "$RESULTS/cold-single.json" "$RESULTS/cold-sharded.json" | tee "$RESULTS/cold-summary.md"

[[ $LARGE == 1 ]] || exit 0
SHARDS="${LARGE_SHARDS:-40}"; MB="${LARGE_MB:-800}"
[[ -n "${BENCH_QUICK:-}" ]] && { SHARDS=4; MB=200; }
if (( SHARDS > 0 )); then
  need=$((SHARDS * MB + 1000))
  free=$(df -Pm "$DATA" | awk 'NR==2 {print $4}')
  if (( free < need + 10000 )); then
    echo "not enough disk for $SHARDS x $MB MB (free ${free} MB, want ${need} MB + 10 GB spare for others):" \
      "set LARGE_SHARDS (0: the 3-shard checkpoint) and LARGE_MEMORY_MB to keep it larger than the memory it may use" >&2
    exit 1
  fi
fi
# Runs "$@" in a memory cgroup capped at LARGE_MEMORY_MB (page cache included) when that is set.
CGROUP=""
if [[ -n "${LARGE_MEMORY_MB:-}" ]]; then
  if [[ -d /sys/fs/cgroup/memory ]]; then  # cgroup v1
    CGROUP=/sys/fs/cgroup/memory/weightgate-cold
    mkdir -p "$CGROUP"; echo $((LARGE_MEMORY_MB << 20)) > "$CGROUP/memory.limit_in_bytes"
  else
    CGROUP=/sys/fs/cgroup/weightgate-cold
    echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir -p "$CGROUP"; echo $((LARGE_MEMORY_MB << 20)) > "$CGROUP/memory.max"
  fi
  trap 'rmdir "$CGROUP" 2>/dev/null || true' EXIT
fi
capped() {
  if [[ -z "$CGROUP" ]]; then exec "$@"; fi
  echo $BASHPID > "$CGROUP/cgroup.procs"
  exec "$@"
}
if (( SHARDS > 0 )); then
  python3 "$BENCH_DIR/gen_checkpoint.py" "$DATA" --large "$SHARDS" "$MB"
  LARGE_DIR="$DATA/large"
else
  LARGE_DIR="$SHARDED"; KEEP_LARGE=1
fi
LARGE_FILES="$(ls "$LARGE_DIR"/*.safetensors | tr '\n' ' ')"
BYTES=$(python3 -c 'import os, sys; print(sum(os.path.getsize(f) for f in sys.argv[1:]))' $LARGE_FILES)
echo "large: $LARGE_DIR, $BYTES bytes; memory $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)${LARGE_MEMORY_MB:+, capped at $LARGE_MEMORY_MB MiB (cgroup, page cache included)}" | tee "$RESULTS/cold-large.txt"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/cold-large.txt"

# Runs $2... after dropping the cache; samples the process's resident memory (anonymous and
# file-mapped, from /proc) every 0.2 s; prints wall time, GB/s and the peaks.
measure() {
  local label="$1"; shift
  sync; echo 3 > /proc/sys/vm/drop_caches
  local start end pid anon=0 file=0 a f
  start=$(date +%s.%N)
  (capped "$@" >/dev/null) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    f=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    (( ${a:-0} > anon )) && anon=${a:-0}
    (( ${f:-0} > file )) && file=${f:-0}
    sleep 0.2
  done
  wait "$pid"
  end=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'| {sys.argv[3]} | {s:.1f} | {int(sys.argv[4])/s/1e9:.2f} | {int(sys.argv[5])/1024:.0f} | {int(sys.argv[6])/1024:.0f} |')" \
    "$start" "$end" "$label" "$BYTES" "$anon" "$file"
}
{
  echo "| command (cold, $((BYTES / 1000000)) MB${LARGE_MEMORY_MB:+ through $LARGE_MEMORY_MB MiB}) | s | GB/s | peak RssAnon MiB | peak RssFile MiB |"
  echo "|---|---|---|---|---|"
  measure "\`weightgate hash\`" "$WG" hash --quiet "$LARGE_DIR"
  measure "\`weightgate hash --blake3-only\`" "$WG" hash --quiet --blake3-only "$LARGE_DIR"
  measure "\`b3sum\`" b3sum $LARGE_FILES
  measure "\`weightgate hash\`, mapped (before)" "$WG" hash --quiet --hash-read mapped "$LARGE_DIR"
} | tee -a "$RESULTS/cold-large.txt"

# The progress bar as a terminal shows it (script(1) gives the command a pty): one line every
# few seconds, with indicatif's rate and ETA (work counts each byte once per digest).
sync; echo 3 > /proc/sys/vm/drop_caches
(capped script -q -c "$WG hash $LARGE_DIR > /dev/null" /dev/null) | tr '\r' '\n' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' \
  | grep -E 'hashing' | awk 'NR % 40 == 1' | tee -a "$RESULTS/cold-large.txt"

if [[ "${KEEP_LARGE:-0}" != 1 ]]; then rm -rf "$LARGE_DIR"; fi
