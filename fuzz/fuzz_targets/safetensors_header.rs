//! A whole safetensors file: 8-byte length, header, data. Errors are fine; panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weightgate_attest::SafetensorsHeader;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap());
    let rest = &data[8..];
    let header = &rest[..(len.min(rest.len() as u64) as usize)];
    if let Ok(h) = SafetensorsHeader::parse(header, data.len() as u64, "fuzz.safetensors") {
        // Accepted headers tile the data exactly.
        let end = h
            .tensors
            .iter()
            .map(|t| t.data_offsets[1])
            .max()
            .unwrap_or(0);
        assert_eq!(end, data.len() as u64 - 8 - header.len() as u64);
    }
});
