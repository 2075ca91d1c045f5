//! Single-stream SHA-256 over a mapping, the progress callback, and how often it is called.

use sha2::{Digest as _, Sha256};

use super::mapped_file::prefetch;

/// Called with the number of bytes just hashed (summed over algorithms).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

const SHA_STEP: usize = 1024;
const PREFETCH_AHEAD: usize = 2048;
/// Bytes between progress reports.
pub(crate) const REPORT_EVERY: usize = 32 << 20;

pub(crate) fn sha256_mapped(data: &[u8], progress: Progress) -> [u8; 32] {
    let mut h = Sha256::new();
    for report in data.chunks(REPORT_EVERY) {
        sha256_feed(&mut h, report);
        progress(report.len() as u64);
    }
    h.finalize().into()
}

/// Feeds `data` to `h` in small steps, prefetching ahead of each.
pub(crate) fn sha256_feed(h: &mut Sha256, data: &[u8]) {
    for (j, step) in data.chunks(SHA_STEP).enumerate() {
        prefetch(data, j * SHA_STEP + PREFETCH_AHEAD, SHA_STEP);
        h.update(step);
    }
}
