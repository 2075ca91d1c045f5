//! Statement CBOR: whatever decodes strictly re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_schemas::Statement;

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = Statement::decode_strict(data) {
        assert_eq!(st.encode(), data);
        let _ = weightgate_schemas::json_view::statement_to_json(&st);
    }
});
