//! Claims TOML text, checked against the tiny checkpoint's parameter count. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::claims_toml(data));
