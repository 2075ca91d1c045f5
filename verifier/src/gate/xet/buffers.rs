//! The page-aligned buffers xorbs are received into and read back into, kept for the next
//! request: a fresh buffer of a xorb's size (up to 64 MiB) is fresh memory each time, zeroed
//! and faulted in page by page, which on a VM that hands free memory back to its host costs
//! more than receiving the bytes. A buffer is lent for one request (or one file's
//! reconstruction) and comes back when the lease is dropped; at most `keep` idle buffers are
//! kept. No buffer is made ahead of a request, so there are never more than requests in
//! flight, and each holds no more than the body it read: never more memory than a `Vec` per
//! request.

use std::sync::{Arc, Mutex};

use crate::gate::store::AlignedBuf;

/// The idle buffers of one CAS.
#[derive(Clone)]
pub(crate) struct XorbBuffers {
    idle: Arc<Mutex<Vec<AlignedBuf>>>,
    keep: usize,
}

impl XorbBuffers {
    /// A pool that keeps at most `keep` idle buffers.
    pub(crate) fn new(keep: usize) -> XorbBuffers {
        XorbBuffers {
            idle: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
        }
    }

    /// An empty buffer: the last one given back, or a new one without memory yet.
    pub(crate) fn take(&self) -> Lease {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Lease {
            buf: Some(kept.unwrap_or_else(|| AlignedBuf::with_capacity(0))),
            pool: self.clone(),
        }
    }
}

/// A buffer lent by [`XorbBuffers`]; dropping it gives it back (kept only if the pool has room).
pub(crate) struct Lease {
    buf: Option<AlignedBuf>,
    pool: XorbBuffers,
}

impl std::ops::Deref for Lease {
    type Target = AlignedBuf;

    fn deref(&self) -> &AlignedBuf {
        self.buf
            .as_ref()
            .expect("a lease holds its buffer until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut AlignedBuf {
        self.buf
            .as_mut()
            .expect("a lease holds its buffer until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut buf) = self.buf.take() else {
            return;
        };
        buf.clear();
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.pool.keep {
            idle.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_emptied_and_no_more_than_keep_stay_idle() {
        let pool = XorbBuffers::new(2);
        let mut leases: Vec<Lease> = (0..3).map(|_| pool.take()).collect();
        for (i, lease) in leases.iter_mut().enumerate() {
            lease.extend_from_slice(&vec![i as u8; 10_000 * (i + 1)]);
        }
        let addresses: Vec<usize> = leases.iter().map(|l| l.as_ptr() as usize).collect();
        drop(leases);
        assert_eq!(
            pool.idle.lock().unwrap().len(),
            2,
            "kept more idle buffers than keep"
        );

        // The ones kept are reused, empty but with their memory; then new ones are made.
        let again: Vec<Lease> = (0..3).map(|_| pool.take()).collect();
        assert!(again.iter().all(|l| l.is_empty()));
        let reused = again
            .iter()
            .filter(|l| addresses.contains(&(l.as_ptr() as usize)) && l.capacity() >= 10_000)
            .count();
        assert_eq!(reused, 2);
        assert_eq!(pool.idle.lock().unwrap().len(), 0);
    }
}
