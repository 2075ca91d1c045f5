//! What both stores compute of an uploaded object as it arrives: SHA-256, BLAKE3, its length
//! and its first 8 bytes (where a safetensors header declares its length), checked once
//! against what the uploader declared when the last byte is in.

use sha2::{Digest as _, Sha256};
use weightgate_attest::reading::SafetensorsHeader;

use super::{ExpectedObject, PendingError, PendingObject};

pub(super) struct ReceivedDigest {
    sha256: Sha256,
    blake3: blake3::Hasher,
    first: Vec<u8>,
    len: u64,
}

impl ReceivedDigest {
    pub(super) fn new() -> Self {
        ReceivedDigest {
            sha256: Sha256::new(),
            blake3: blake3::Hasher::new(),
            first: Vec::with_capacity(8),
            len: 0,
        }
    }

    /// Adds the next `bytes`, on the calling thread only (a bulk pool thread: the pool's other
    /// threads serve other uploads).
    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.blake3.update(bytes);
        let need = 8 - self.first.len().min(8);
        self.first
            .extend_from_slice(&bytes[..need.min(bytes.len())]);
        self.len += bytes.len() as u64;
    }

    /// The bytes received so far.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// The object as its pending record names it, once its SHA-256 is the declared one.
    pub(super) fn finish(
        &self,
        expected: &ExpectedObject,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        let sha256: [u8; 32] = self.sha256.clone().finalize().into();
        if sha256 != expected.sha256 {
            return Err(PendingError::DigestMismatch {
                declared: hex::encode(expected.sha256),
                got: hex::encode(sha256),
            });
        }
        let header_len = <[u8; 8]>::try_from(self.first.as_slice())
            .ok()
            .and_then(|b| SafetensorsHeader::declared_len(b, self.len, "upload").ok())
            .map_or(0, |n| 8 + n as u64);
        Ok(PendingObject {
            sha256: hex::encode(sha256),
            blake3: self.blake3.finalize().to_hex().to_string(),
            size: self.len,
            header_len,
            received_at: now,
        })
    }
}
