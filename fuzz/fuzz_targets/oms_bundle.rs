//! OpenSSF model-signing bundle JSON and the in-toto statement inside it. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::oms_bundle(data));
