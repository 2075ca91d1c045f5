//! Claims TOML text, checked against a fixed parameter count.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_attest::{Claims, ParameterCount};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = ParameterCount {
        total: 352,
        ..ParameterCount::default()
    };
    if let Ok(c) = Claims::parse(text, "claims.toml", &params) {
        let _ = c.check_times(1_800_000_000);
    }
});
