//! Envelope CBOR, then every signature checked against a fixed key, as `verify` does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_schemas::{Envelope, pae};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode_strict(data) else {
        return;
    };
    // Strict decoding means canonical: re-encoding gives the same bytes.
    assert_eq!(env.encode(), data);
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let message = pae(&env.payload_type, &env.payload);
    for s in &env.signatures {
        if let Ok(sig) = ed25519_dalek::Signature::from_slice(&s.sig) {
            let _ = key.verify_strict(&message, &sig);
        }
    }
});
