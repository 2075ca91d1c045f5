#!/usr/bin/env bash
# Bounded coverage-guided fuzzing, run by .ci/run: every target for FUZZ_SECONDS (default 60),
# two at a time on the two cores, seeded from testdata/. A crash fails the run and leaves its
# input in fuzz/artifacts/TARGET/; with its fix, it goes in testdata/fuzz/TARGET/ (replayed here as a
# seed and by cli/tests/fuzz_properties.rs on every `cargo test`).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
# cargo fuzz passes nightly-only flags (-Z sanitizer); this machine has one stable toolchain,
# which accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the targets are safe Rust parsers, so panics and failed assertions are what a
# run can find; without AddressSanitizer the build takes half the time and each target runs
# two to three times as many inputs in its budget. Debug assertions make integer overflow panic
# instead of wrapping unseen.
BUILD=(-O -s none --debug-assertions)
cargo fuzz build "${BUILD[@]}"

TD=../testdata
seed() { # target, then seed files
  local t="$1"; shift
  mkdir -p "corpus/$t"
  for f in "$@"; do [[ -f "$f" ]] && cp "$f" "corpus/$t/" || true; done
}
seed safetensors_header "$TD"/headers/*.safetensors "$TD"/checkpoints/single.safetensors "$TD"/checkpoints/tiny/*.safetensors
seed shard_index "$TD"/checkpoints/tiny/model.safetensors.index.json "$TD"/checkpoints/fail_*/model.safetensors.index.json
seed envelope "$TD"/envelopes/*.att "$TD"/hostile/statements/*.att
# The envelope vectors' payloads (cli/tests/fuzz_properties.rs holds them byte-exact).
seed statement seeds/statement/*
seed claims_toml "$TD"/claims/*.toml ../docs/claims.example.toml
seed policy_toml "$TD"/policy/*.toml "$TD"/hostile/policy.toml
seed server_path seeds/server_path/*
seed server_range seeds/server_range/*
seed server_destination seeds/server_destination/*
# Genuine model_signing 0.2.0 (its deprecated predicate) and 0.3.1 bundles.
seed oms_bundle "$TD"/oms-v0.2/*.sig "$TD"/oms-v0.3.1/*.sig
# A model.sig for the tiny checkpoint, and the statement in it, if the CLI is built.
if [[ -x ../target/debug/weightgate ]]; then
  oms=$(mktemp -d) && cp -r "$TD"/checkpoints/tiny "$oms/tiny"
  ../target/debug/weightgate keygen --out "$oms/k" --type p256 >/dev/null 2>&1
  ../target/debug/weightgate attest "$oms/tiny" --key "$TD"/keys/test-lab.key \
    --claims "$TD"/claims/tiny-below.toml --oms-key "$oms/k.key" --quiet >/dev/null
  seed oms_bundle "$oms/tiny/model.sig"
  rm -rf "$oms"
fi
# Inputs that once failed a target, kept as regression cases.
for d in "$TD"/fuzz/*/; do [[ -d $d ]] && seed "$(basename "$d")" "$d"*; done

TARGETS=(safetensors_header shard_index envelope statement claims_toml policy_toml oms_bundle server_path server_range server_destination)
status=0
run_one() {
  cargo fuzz run "${BUILD[@]}" "$1" "corpus/$1" -- -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 > "logs/$1.log" 2>&1
}
mkdir -p logs
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
  pids=()
  for t in "${TARGETS[@]:i:2}"; do run_one "$t" & pids+=($!); done
  for j in "${!pids[@]}"; do
    t="${TARGETS[i + j]}"
    if wait "${pids[j]}"; then
      echo "fuzz $t: clean for ${SECONDS_PER_TARGET}s ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$') runs)"
    else
      echo "fuzz $t: FAILED, see fuzz/logs/$t.log and fuzz/artifacts/$t/"; tail -30 "logs/$t.log"; status=1
    fi
  done
done
exit $status
