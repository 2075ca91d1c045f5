//! Policy TOML text; key paths resolve under testdata/policy. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::policy_toml(data));
