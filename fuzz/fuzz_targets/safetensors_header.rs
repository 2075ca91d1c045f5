//! A whole safetensors file: 8-byte length, header, data. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::safetensors_header(data));
