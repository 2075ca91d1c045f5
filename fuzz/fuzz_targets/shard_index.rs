//! `*.safetensors.index.json` bytes, checked against no shards.
#![no_main]
use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use weightgate_attest::ShardIndex;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = ShardIndex::parse(data, "sub/model.safetensors.index.json", 4096) {
        assert!(index.weight_map.len() <= 4096);
        let _ = index.check_against(&HashMap::new());
    }
});
