//! Policy TOML text; key paths resolve under a folder that does not exist.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_verifier::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text, "policy.toml", std::path::Path::new("/nonexistent")) {
        let _ = p.effective();
    }
});
