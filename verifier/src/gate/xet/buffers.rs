//! Buffers of Xet uploads that come back to be used again: a fresh buffer of a xorb's size
//! (up to 64 MiB) or of a reconstructed piece (4 MiB) is fresh memory each time, zeroed and
//! faulted in page by page, which on a VM that hands free memory back to its host costs more
//! than receiving the bytes.
//!
//! [`XorbBuffers`]: the page-aligned buffers xorbs are received into and read back into. One
//! is lent for one request (or one file's reconstruction) and comes back when the [`Lease`] is
//! dropped; at most `keep` idle ones stay. None is made ahead of a request, so there are never
//! more than requests in flight, each no larger than the body it read: never more memory than
//! a `Vec` per request. [`PieceBuffers`]: the buffers of one file's reconstructed pieces.

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

/// The piece buffers of one file's reconstruction. The folder store's receiver copies a piece
/// and drops it before it asks for the next, so one buffer serves the whole file; a receiver
/// that keeps pieces longer (a bucket's part payloads) gets new ones, and at most
/// [`IDLE_PIECES`] wait to be reused.
#[derive(Clone, Default)]
pub(super) struct PieceBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

const IDLE_PIECES: usize = 2;

impl PieceBuffers {
    /// An empty buffer, with the memory of a piece given back if there is one.
    pub(super) fn take(&self) -> Vec<u8> {
        let idle = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_default()
    }

    /// `buf` as a piece that gives its buffer back when dropped.
    pub(super) fn lend(&self, buf: Vec<u8>) -> axum::body::Bytes {
        axum::body::Bytes::from_owner(Piece {
            buf,
            home: self.clone(),
        })
    }
}

struct Piece {
    buf: Vec<u8>,
    home: PieceBuffers,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut idle = self.home.0.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_PIECES {
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

    #[test]
    fn a_dropped_piece_gives_its_buffer_back_and_no_more_than_two_wait() {
        let pieces = PieceBuffers::default();
        let lent: Vec<_> = (0..3)
            .map(|i| pieces.lend(vec![i as u8; 1000 + i]))
            .collect();
        assert_eq!(&lent[2][..], &[2u8; 1002][..]);
        drop(lent);
        assert_eq!(pieces.0.lock().unwrap().len(), IDLE_PIECES);
        let again = pieces.take();
        assert!(again.is_empty() && again.capacity() >= 1000);
    }
}
