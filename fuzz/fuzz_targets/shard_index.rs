//! `*.safetensors.index.json` bytes, checked against the tiny checkpoint's headers. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::shard_index(data));
