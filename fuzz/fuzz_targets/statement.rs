//! Statement and grant CBOR: whatever decodes strictly re-encodes to the same bytes. Properties in fuzz/src/oracles.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weightgate_fuzz::oracles::statement(data));
