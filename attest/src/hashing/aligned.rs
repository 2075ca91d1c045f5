//! Buffers aligned for `O_DIRECT`, shared by the threads that hash (and write) them and returned
//! to their ring when the last lets go, and switching `O_DIRECT` on a handle.

use std::fs::File;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

/// `O_DIRECT` needs the buffer, the offset and the length aligned to the device's logical block
/// (512 or 4096 bytes); the chunk size is a multiple of this.
pub(crate) const ALIGN: usize = 4096;

/// Room for one aligned chunk.
pub(crate) struct Buffer {
    pub(crate) bytes: Box<[u8]>,
    /// Where the aligned window starts in `bytes`.
    pub(crate) start: usize,
}

impl Buffer {
    pub(crate) fn new(capacity: usize) -> Self {
        let bytes = vec![0u8; capacity + ALIGN].into_boxed_slice();
        let start = (ALIGN - bytes.as_ptr() as usize % ALIGN) % ALIGN;
        Buffer { bytes, start }
    }

    pub(crate) fn window(&mut self, len: usize) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + len]
    }
}

/// A filled buffer: `len` bytes of file number `file` from `offset`, shared by the threads that
/// use it; back to the ring when the last lets go.
pub(crate) struct Filled {
    pub(crate) buffer: Buffer,
    pub(crate) len: usize,
    pub(crate) file: usize,
    pub(crate) offset: u64,
    pub(crate) ring: Sender<Buffer>,
}

impl Filled {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buffer.bytes[self.buffer.start..self.buffer.start + self.len]
    }
}

impl Drop for Filled {
    fn drop(&mut self) {
        let buffer = std::mem::replace(
            &mut self.buffer,
            Buffer {
                bytes: Box::default(),
                start: 0,
            },
        );
        // The reader may be gone already (an error ended it); then the buffer is freed.
        let _ = self.ring.send(buffer);
    }
}

/// The buffers of one copy or hash: at most `capacity` of `chunk` bytes each, allocated as
/// they are first needed and reused once every user of a filled one has let it go.
pub(crate) struct Ring {
    home: Sender<Buffer>,
    returned: Receiver<Buffer>,
    allocated: usize,
    capacity: usize,
    chunk: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize, chunk: usize) -> Self {
        let (home, returned) = mpsc::channel();
        Ring {
            home,
            returned,
            allocated: 0,
            capacity,
            chunk,
        }
    }

    /// A free buffer: one that came back, else a new one while the ring is not full, else the
    /// next to come back.
    pub(crate) fn next(&mut self) -> Buffer {
        match self.returned.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < self.capacity => {
                self.allocated += 1;
                Buffer::new(self.chunk)
            }
            // Cannot fail: every buffer handed out comes back here, and `home` lives here.
            Err(_) => self
                .returned
                .recv()
                .unwrap_or_else(|_| Buffer::new(self.chunk)),
        }
    }

    /// `buffer` holding `len` bytes of file number `file` from `offset`, to share; it comes
    /// back to this ring when the last user lets go.
    pub(crate) fn filled(
        &self,
        buffer: Buffer,
        len: usize,
        file: usize,
        offset: u64,
    ) -> Arc<Filled> {
        Arc::new(Filled {
            buffer,
            len,
            file,
            offset,
            ring: self.home.clone(),
        })
    }
}

/// Whether reads and writes through `file` bypass the page cache.
pub(crate) fn is_direct(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: fcntl F_GETFL on a descriptor this handle owns.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_DIRECT != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// Turns `O_DIRECT` on or off for reads and writes through `file` (its open file description,
/// shared with its clones); whether it is on afterwards. The flag does not affect mappings.
pub(crate) fn set_direct(file: &File, on: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a file descriptor this handle owns, with integer arguments.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 {
                return false;
            }
            let wanted = if on {
                flags | libc::O_DIRECT
            } else {
                flags & !libc::O_DIRECT
            };
            libc::fcntl(fd, libc::F_SETFL, wanted) == 0 && on
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, on);
        false
    }
}

/// Reserves `len` bytes of disk for `file` (its size becomes `len`), so that writes into it are
/// overwrites of reserved blocks within the file: ext4 then lets several `O_DIRECT` writes to
/// one file proceed at once, where writes that extend a file wait for each other. A disk or quota
/// without the room is an error here rather than halfway through a copy. Any other refusal (a
/// filesystem without preallocation, a handle that is not a writable file) is not: the writes
/// then allocate as they go and report their own errors.
pub(crate) fn preallocate(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let Ok(len) = libc::off_t::try_from(len) else {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        };
        if len == 0 {
            return Ok(());
        }
        // SAFETY: fallocate on a descriptor this handle owns, with integer arguments.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Err(e),
            _ => Ok(()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn preallocating_sets_the_size_and_refuses_only_what_cannot_fit() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        preallocate(&file, 0).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
        preallocate(&file, 3 * ALIGN as u64).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 * ALIGN as u64);
        // Larger than any file can be: refused by the kernel, or before asking it.
        let too_large = preallocate(&file, i64::MAX as u64).unwrap_err();
        assert_eq!(too_large.raw_os_error(), Some(libc::EFBIG), "{too_large}");
        assert!(preallocate(&file, u64::MAX).is_err());
        assert_eq!(file.metadata().unwrap().len(), 3 * ALIGN as u64);
        // A device cannot be preallocated: left to its writes (whose errors the copy reports).
        let device = File::options().write(true).open("/dev/null").unwrap();
        preallocate(&device, ALIGN as u64).unwrap();
    }
}
