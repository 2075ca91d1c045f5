//! Envelope CBOR, then every signature checked against the test lab key, as `verify` does. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::envelope(data));
