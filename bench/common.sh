# Shared set-up for the benchmark scripts (sourced).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
DATA="${WEIGHTGATE_BENCH_DATA:-/work/benchdata}"
RESULTS="${WEIGHTGATE_BENCH_RESULTS:-$DATA/results}"
RUNS="${BENCH_RUNS:-5}"
if [[ "${1:-}" == "--quick" ]]; then
  export BENCH_QUICK=1
  DATA="$DATA-quick"
  RESULTS="$DATA/results"
  RUNS=3
fi
mkdir -p "$DATA" "$RESULTS"

# Tools: weightgate (release), b3sum, hyperfine, model_signing in a pinned venv.
WG="${WEIGHTGATE:-$REPO/target/release/weightgate}"
if [[ -z "${WEIGHTGATE:-}" ]]; then (cd "$REPO" && cargo build --release -q -p weightgate); fi
command -v b3sum >/dev/null || cargo install b3sum --locked --version 1.8.7
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
VENV="$BENCH_DIR/.venv"
if [[ ! -x "$VENV/bin/model_signing" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$BENCH_DIR/requirements.lock"
fi
MS="$VENV/bin/model_signing"

python3 "$BENCH_DIR/gen_checkpoint.py" "$DATA"
KEYS="$DATA/keys"
mkdir -p "$KEYS"
[[ -f "$KEYS/p256.pem" ]] || openssl ecparam -name prime256v1 -genkey -noout -out "$KEYS/p256.pem"
[[ -f "$KEYS/p256.pub" ]] || openssl ec -in "$KEYS/p256.pem" -pubout -out "$KEYS/p256.pub" 2>/dev/null
[[ -f "$KEYS/lab.key" ]] || "$WG" keygen --out "$KEYS/lab" >/dev/null 2>&1

SINGLE="$DATA/single"
SHARDED="$DATA/sharded"
SINGLE_FILES="$SINGLE/model.safetensors"
SHARD_FILES="$(ls "$SHARDED"/*.safetensors | tr '\n' ' ')"
# The VM drops the page cache after ~30 s idle: warm the files before every timed run.
warm() { echo "cat $*"; }  # hyperfine -N runs it without a shell and discards its output

versions() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "weightgate: $("$WG" --version)"
  echo "b3sum: $(b3sum --version)"
  echo "openssl: $(openssl version)"
  echo "sha256sum: $(sha256sum --version | head -1)"
  echo "model_signing: $("$VENV/bin/pip" show model-signing | awk '/^Version/ {print $2}') (Python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
  echo "hyperfine: $(hyperfine --version)"
}

# Below-threshold claims for the 3-shard checkpoint and a policy trusting the bench lab key:
# $CLAIMS and $DATA/policy.toml.
write_claims_and_policy() {
  CLAIMS="$DATA/claims.toml"
  local params
  params=$("$WG" inspect --json "$SHARDED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameters"]["total"])')
  cat > "$CLAIMS" <<CLAIMS
[model]
name = "bench"
version = "1"
open_weights = true
[compute]
method = "6nd"
total = "6e22"
pre_training = "5e22"
post_training = "1e22"
[compute.inputs]
params_active = $params
tokens = "1e12"
[entity]
legal_name = "Bench Lab"
lei = "549300WGTGATETEST087"
country = "DE"
parent_country = "DE"
contact = "bench@example.invalid"
CLAIMS
  cat > "$DATA/policy.toml" <<POLICY
[policy]
name = "bench"
[[trusted_key]]
name = "bench lab"
path = "keys/lab.pub"
POLICY
}
