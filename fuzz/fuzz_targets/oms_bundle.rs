//! OpenSSF model-signing bundle JSON and the in-toto statement inside it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_schemas::oms::{decode_bundle, decode_statement};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = decode_bundle(data) {
        let _ = decode_statement(&b.payload);
    }
    if let Ok(m) = decode_statement(data) {
        // What decodes re-encodes to a statement that decodes to the same manifest.
        assert_eq!(decode_statement(&m.statement_json()).unwrap(), m);
    }
});
