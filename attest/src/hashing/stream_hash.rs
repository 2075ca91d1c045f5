//! Hashing files that are not in the page cache at the speed of the disk.
//!
//! Through a mapping, a cold file is read by page faults of the hasher that touches it first:
//! reading and hashing take turns (0.7-0.8 GB/s here, against 1.2-1.6 GB/s for the disk). Here
//! the files are read in order with `O_DIRECT`, eight reads in flight, into a small ring of
//! aligned buffers; the reader hands each filled buffer to the SHA-256 hasher and the BLAKE3 hasher, each on its
//! own thread; a buffer goes back to the reader when both are done with it. The next read is in
//! flight while the hashers work, memory stays at the ring's size whatever the file size, and
//! bytes read once do not push the rest of the page cache out. Where the filesystem refuses
//! `O_DIRECT` (tmpfs), the same ring is filled with ordinary reads.
//!
//! [`mostly_resident`] asks `mincore(2)` which path a file takes: a file in memory is hashed
//! through its mapping as before (both cores on SHA-256, no copy). A file that ends early while
//! it is read is an error naming it, never a digest of fewer bytes; any other change is caught
//! by the same identity, size and time check after hashing as for mapped files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use sha2::Sha256;

use super::aligned::{ALIGN, Buffer, Filled, Ring, is_direct, set_direct};
use super::engine::TensorBlake3;
use super::mapped_file::MappedFile;
use super::sha256::{Progress, sha256_feed};
use crate::reading::{Checkpoint, CheckpointError, ReadPath};

/// Bytes per read: the device splits requests at 4 MiB (`max_sectors_kb`), so a read this
/// size is one request.
const CHUNK: usize = 4 << 20;
/// Buffers in the ring: the reads in flight plus those being hashed. Also the bound on the
/// memory this path uses (64 MiB), whatever the size of the checkpoint.
const RING: usize = 16;
/// Reads in flight at once, each on its own thread: this virtual disk delivers more the more
/// requests it has queued. With 2 reads of 8 MiB, `hash` of a cold 4 GiB file took 5.4 s
/// (median of 5 interleaved rounds), with 4 of 8 MiB 4.0-4.2 s, with 8 of 4 MiB 3.7 s.
const READS_IN_FLIGHT: usize = 8;
// The reader takes a buffer for each read before it waits for the oldest: with no buffer left
// over for the hashers, it would wait forever.
const _: () = assert!(RING > READS_IN_FLIGHT);
/// A file with at least this many tenths of its pages resident is hashed through its mapping: the few
/// pages faulted in cost less than reading the cached ones again from the disk.
const RESIDENT_TENTHS: usize = 9;
/// Pages of a file asked about: one `mincore` call each, about 1 ms for a file of any size
/// (asking about every page of a 4 GiB file took 60-150 ms, a tenth of a warm BLAKE3 run).
const PROBES: usize = 1024;

impl ReadPath {
    /// Whether a file mapped as `data` is streamed from the disk. When `mincore` cannot see
    /// the file's page cache (`residency_visible` false), it keeps the mapped path: streaming
    /// with `O_DIRECT` would read a cached file from the disk again.
    pub(crate) fn streams(self, data: &[u8], residency_visible: bool) -> bool {
        match self {
            ReadPath::ByResidency => residency_visible && !mostly_resident(data),
            ReadPath::Mapped => false,
            ReadPath::Streamed => true,
        }
    }
}

/// Whether at least nine tenths of a file mapping's pages are in the page cache, judged from
/// up to [`PROBES`] pages spread evenly over it.
///
/// `mincore` reports the page cache only for files the caller owns or may write (see
/// [`MappedFile::residency_visible`]); for others it sees just the pages this process has
/// touched. When it fails, the file counts as not resident.
pub(crate) fn mostly_resident(data: &[u8]) -> bool {
    let page = page_size();
    let pages = data.len().div_ceil(page);
    let probes = pages.min(PROBES);
    let (mut resident, mut absent) = (0, 0);
    for k in 0..probes {
        let at = k * pages / probes * page;
        let mut answer = 0u8;
        // SAFETY: `data` is a mapping, so it starts on a page boundary, as does `at`, which is
        // inside it; one page asked about, one answer byte. mincore only reads the page tables
        // and the page cache: it never faults, even past a truncated end.
        let rc = unsafe {
            libc::mincore(
                data.as_ptr().add(at) as *mut libc::c_void,
                page.min(data.len() - at),
                &mut answer,
            )
        };
        if rc != 0 {
            return false;
        }
        if answer & 1 != 0 {
            resident += 1;
        } else {
            absent += 1;
        }
        // Decided either way: stop asking.
        if absent * 10 > probes * (10 - RESIDENT_TENTHS) {
            return false;
        }
        if resident * 10 >= probes * RESIDENT_TENTHS {
            return true;
        }
    }
    true
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as usize } else { 4096 }
}

#[derive(Clone)]
enum Piece {
    Bytes(Arc<Filled>),
    /// All bytes of this file were sent.
    End(usize),
}

/// Digests of streamed files, by index into the checkpoint's files.
pub(crate) struct StreamedDigests {
    pub sha256: Vec<(usize, [u8; 32])>,
    pub blake3: Vec<(usize, [u8; 32])>,
    pub tensors: Vec<(usize, Vec<TensorBlake3>)>,
}

/// Hashes the files `which` of `checkpoint` (mapped as `maps`, used only for their open
/// handles) by reading them in order through the ring.
pub(crate) fn hash_streamed(
    checkpoint: &Checkpoint,
    maps: &[MappedFile],
    which: &[usize],
    sha256: bool,
    blake3: bool,
    per_tensor: bool,
    progress: Progress,
) -> Result<StreamedDigests, CheckpointError> {
    let mut ring = Ring::new(RING, CHUNK);
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        let sha_worker = sha256.then(|| {
            let (tx, rx) = mpsc::channel();
            senders.push(tx);
            s.spawn(move || sha256_consume(rx, progress))
        });
        let blake3_worker = (blake3 || per_tensor).then(|| {
            let (tx, rx) = mpsc::channel();
            senders.push(tx);
            s.spawn(move || blake3_consume(rx, checkpoint, blake3, per_tensor, progress))
        });
        let readers: Vec<Sender<ReadJob>> = (0..READS_IN_FLIGHT)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<ReadJob>();
                s.spawn(move || {
                    for mut job in rx {
                        let got = read_at_most(job.file, &mut job.buffer, job.offset, job.want);
                        // The reader is gone only after an error; the buffer is freed.
                        let _ = job.done.send((job.buffer, got));
                    }
                });
                tx
            })
            .collect();
        let send = |piece: Piece| senders.iter().all(|tx| tx.send(piece.clone()).is_ok());
        let mut read = Ok(());
        for &i in which {
            let result = read_file(
                &readers,
                maps[i].file(),
                checkpoint,
                i,
                &mut ring,
                &mut |piece| send(Piece::Bytes(piece)),
            );
            match result {
                Ok(true) if send(Piece::End(i)) => {}
                // A hasher stopped (it can only panic): its join below reports it.
                Ok(_) => break,
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        // Closing the channels ends the hashers' and the read threads' loops.
        drop(senders);
        drop(readers);
        let sha = sha_worker.map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        let b3 = blake3_worker.map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        read?;
        let (blake3_digests, tensors) = b3.unwrap_or_default();
        Ok(StreamedDigests {
            sha256: sha.unwrap_or_default(),
            blake3: blake3_digests,
            tensors,
        })
    })
}

/// One read for a read thread: up to `want` bytes of `file` at `offset` into `buffer`.
struct ReadJob<'f> {
    file: &'f File,
    offset: u64,
    want: usize,
    buffer: Buffer,
    done: Sender<(Buffer, std::io::Result<usize>)>,
}

/// Reads file number `index` of `checkpoint` (open as `file`) through the ring, [`READS_IN_FLIGHT`] reads ahead on the `readers`
/// threads, calling `deliver` with each filled buffer in order. Returns false when `deliver` did
/// (a hasher is gone).
fn read_file<'f>(
    readers: &[Sender<ReadJob<'f>>],
    file: &'f File,
    checkpoint: &Checkpoint,
    index: usize,
    ring: &mut Ring,
    deliver: &mut dyn FnMut(Arc<Filled>) -> bool,
) -> Result<bool, CheckpointError> {
    let entry = &checkpoint.files[index];
    let (fs_path, rel_path, size) = (&entry.fs_path, &entry.path, entry.size);
    set_direct(file, true);
    let mut pending = std::collections::VecDeque::new();
    let (mut next_offset, mut jobs) = (0u64, 0usize);
    loop {
        while pending.len() < readers.len() && next_offset < size {
            let expect = (size - next_offset).min(CHUNK as u64) as usize;
            let (done, result) = mpsc::channel();
            let job = ReadJob {
                file,
                offset: next_offset,
                // Whole blocks even at the end: `O_DIRECT` returns the bytes up to the end.
                want: expect.next_multiple_of(ALIGN),
                buffer: ring.next(),
                done,
            };
            if readers[jobs % readers.len()].send(job).is_err() {
                return Ok(false);
            }
            pending.push_back((next_offset, expect, result));
            next_offset += expect as u64;
            jobs += 1;
        }
        let Some((offset, expect, result)) = pending.pop_front() else {
            return Ok(true);
        };
        let Ok((buffer, got)) = result.recv() else {
            return Ok(false); // a read thread panicked; the scope reports it
        };
        let got = got.map_err(|e| CheckpointError::io(fs_path, e))?;
        if got < expect {
            return Err(CheckpointError::ChangedWhileHashing {
                path: rel_path.to_string(),
                what: format!(
                    "truncated while read: it ended after {} of {size} bytes",
                    offset + got as u64
                ),
            });
        }
        // Bytes past `size` (the file grew) are left out; the check after hashing reports it.
        if !deliver(ring.filled(buffer, expect, index, offset)) {
            return Ok(false);
        }
    }
}

/// Reads up to `want` bytes at `offset` into `buffer`'s aligned window; fewer only at the end
/// of the file.
fn read_at_most(
    file: &File,
    buffer: &mut Buffer,
    offset: u64,
    want: usize,
) -> std::io::Result<usize> {
    let mut direct = is_direct(file);
    let window = buffer.window(want);
    let mut got = 0;
    while got < want {
        match file.read_at(&mut window[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                // A short direct read ends mid-block only at the end of the file, and the
                // next offset would not be aligned.
                if direct && got % ALIGN != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Some filesystems accept the flag but refuse the read: read through the cache.
            Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                set_direct(file, false);
                direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn sha256_consume(pieces: Receiver<Piece>, progress: Progress) -> Vec<(usize, [u8; 32])> {
    use sha2::Digest as _;
    let mut h = Sha256::new();
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Bytes(filled) => {
                sha256_feed(&mut h, filled.bytes());
                progress(filled.len as u64);
            }
            Piece::End(i) => out.push((i, std::mem::take(&mut h).finalize().into())),
        }
    }
    out
}

type Blake3Results = (Vec<(usize, [u8; 32])>, Vec<(usize, Vec<TensorBlake3>)>);

fn blake3_consume(
    pieces: Receiver<Piece>,
    checkpoint: &Checkpoint,
    whole: bool,
    per_tensor: bool,
    progress: Progress,
) -> Blake3Results {
    let mut h = blake3::Hasher::new();
    let mut tensors: Option<TensorCursor> = None;
    let mut out = (Vec::new(), Vec::new());
    for piece in pieces {
        match piece {
            Piece::Bytes(filled) => {
                let data = filled.bytes();
                if whole {
                    h.update(data);
                    progress(filled.len as u64);
                }
                if per_tensor {
                    tensors
                        .get_or_insert_with(|| TensorCursor::new(checkpoint, filled.file))
                        .feed(filled.offset, data);
                }
            }
            Piece::End(i) => {
                if whole {
                    out.0.push((i, *h.finalize().as_bytes()));
                    h.reset();
                }
                if per_tensor && checkpoint.files[i].header.is_some() {
                    let cursor = tensors
                        .take()
                        .unwrap_or_else(|| TensorCursor::new(checkpoint, i));
                    out.1.push((i, cursor.finish(checkpoint, i)));
                }
                tensors = None;
            }
        }
    }
    out
}

/// BLAKE3 of each tensor's bytes of one safetensors file, fed in file order. The header was
/// checked to tile the data section exactly, so one tensor is open at a time.
struct TensorCursor {
    /// (start, end, index in header order), by start.
    ranges: Vec<(u64, u64, usize)>,
    next: usize,
    hasher: blake3::Hasher,
    digests: Vec<Option<[u8; 32]>>,
}

impl TensorCursor {
    fn new(checkpoint: &Checkpoint, file: usize) -> Self {
        let mut ranges = Vec::new();
        if let Some(header) = &checkpoint.files[file].header {
            let start = header.data_start();
            for (k, t) in header.tensors.iter().enumerate() {
                ranges.push((start + t.data_offsets[0], start + t.data_offsets[1], k));
            }
        }
        ranges.sort_unstable();
        let digests = vec![None; ranges.len()];
        TensorCursor {
            ranges,
            next: 0,
            hasher: blake3::Hasher::new(),
            digests,
        }
    }

    fn feed(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        while let Some(&(from, to, k)) = self.ranges.get(self.next) {
            let (a, b) = (from.max(offset), to.min(end));
            if a < b {
                self.hasher
                    .update(&data[(a - offset) as usize..(b - offset) as usize]);
            }
            if to > end {
                break;
            }
            self.digests[k] = Some(*self.hasher.finalize().as_bytes());
            self.hasher.reset();
            self.next += 1;
        }
    }

    /// Digests in header order. Tensors the bytes never reached (none, in a file of the checked
    /// size) get the digest of what was fed.
    fn finish(mut self, checkpoint: &Checkpoint, file: usize) -> Vec<TensorBlake3> {
        while let Some(&(_, _, k)) = self.ranges.get(self.next) {
            self.digests[k] = Some(*self.hasher.finalize().as_bytes());
            self.hasher.reset();
            self.next += 1;
        }
        let Some(header) = &checkpoint.files[file].header else {
            return Vec::new();
        };
        header
            .tensors
            .iter()
            .zip(self.digests)
            .map(|(t, d)| TensorBlake3 {
                name: t.name.clone(),
                blake3: d.unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::engine::{
        Algorithms, CheckpointDigests, HashOptions, hash_checkpoint_reading,
    };
    use crate::reading::OpenOptions;
    use sha2::Digest as _;

    /// Bytes that differ at every offset, so a chunk misplaced by any amount changes a digest.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0; len];
        blake3::Hasher::new()
            .update(&seed.to_le_bytes())
            .finalize_xof()
            .fill(&mut out);
        out
    }

    fn hash(
        ck: &Checkpoint,
        algorithms: Algorithms,
        per_tensor: bool,
        read: ReadPath,
    ) -> CheckpointDigests {
        let opts = HashOptions {
            algorithms,
            per_tensor,
            threads: 2,
        };
        hash_checkpoint_reading(ck, &opts, &|_| {}, read).unwrap()
    }

    #[test]
    fn streamed_digests_equal_mapped_and_reference_on_awkward_sizes() {
        let sizes = [
            0,
            1,
            4095,
            4096,
            4097,
            CHUNK - 1,
            CHUNK + 1,
            2 * CHUNK + 12_345,
            // Longer than the whole ring, so buffers are reused within one file.
            RING * CHUNK + CHUNK / 2 + 7,
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut contents = Vec::new();
        for (k, &size) in sizes.iter().enumerate() {
            let bytes = noise(size, k as u64 + 1);
            std::fs::write(dir.path().join(format!("f{k}.bin")), &bytes).unwrap();
            contents.push((format!("f{k}.bin"), bytes));
        }
        let ck = Checkpoint::open(dir.path(), &OpenOptions::default()).unwrap();
        for algorithms in [
            Algorithms::Both,
            Algorithms::Blake3Only,
            Algorithms::Sha256Only,
        ] {
            let streamed = hash(&ck, algorithms, false, ReadPath::Streamed);
            assert_eq!(
                streamed,
                hash(&ck, algorithms, false, ReadPath::Mapped),
                "{algorithms:?}"
            );
            for (name, bytes) in &contents {
                let f = streamed.files.iter().find(|f| &f.path == name).unwrap();
                assert_eq!(f.size, bytes.len() as u64);
                if algorithms != Algorithms::Blake3Only {
                    assert_eq!(f.sha256, Some(sha2::Sha256::digest(bytes).into()), "{name}");
                }
                if algorithms != Algorithms::Sha256Only {
                    assert_eq!(f.blake3, Some(*blake3::hash(bytes).as_bytes()), "{name}");
                }
            }
        }
    }

    #[test]
    fn streamed_per_tensor_digests_equal_mapped_across_chunk_edges() {
        let dir = tempfile::tempdir().unwrap();
        let big = (CHUNK * 2 + 3) as u64;
        let mut file = crate::reading::build_safetensors(
            &[
                ("a", "U8", &[(CHUNK - 100) as u64]),
                ("b_empty", "U8", &[0]),
                ("c", "U8", &[big]),
                ("d", "U8", &[5]),
                ("e_empty", "U8", &[0]),
            ],
            0,
        );
        let header_end = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let data = noise(file.len() - header_end, 9);
        file[header_end..].copy_from_slice(&data);
        std::fs::write(dir.path().join("model.safetensors"), &file).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not a tensor file").unwrap();
        let ck = Checkpoint::open(dir.path(), &OpenOptions::default()).unwrap();
        for algorithms in [
            Algorithms::Both,
            Algorithms::Blake3Only,
            Algorithms::Sha256Only,
        ] {
            let streamed = hash(&ck, algorithms, true, ReadPath::Streamed);
            assert_eq!(streamed, hash(&ck, algorithms, true, ReadPath::Mapped));
            let tensors = streamed.files[0].tensors.as_ref().unwrap();
            assert_eq!(tensors.len(), 5);
            let c = tensors.iter().find(|t| t.name == "c").unwrap();
            let from = header_end + CHUNK - 100;
            assert_eq!(
                c.blake3,
                *blake3::hash(&file[from..from + big as usize]).as_bytes()
            );
            assert!(
                streamed.files[1].tensors.is_none(),
                "not a safetensors file"
            );
        }
    }

    #[test]
    fn a_file_truncated_while_streamed_is_the_file_changed_error() {
        for algorithms in [
            Algorithms::Both,
            Algorithms::Blake3Only,
            Algorithms::Sha256Only,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("big.bin");
            std::fs::write(&p, noise(RING * CHUNK + 2 * CHUNK, 3)).unwrap();
            let ck = Checkpoint::open(dir.path(), &OpenOptions::default()).unwrap();
            // The first progress report comes from a hasher that still holds the first buffer,
            // so the reader is at most the ring ahead: it reads the last two chunks after this.
            let truncate = std::sync::Once::new();
            let progress = |_| {
                truncate.call_once(|| {
                    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                    f.set_len(4096).unwrap();
                })
            };
            let opts = HashOptions {
                algorithms,
                ..Default::default()
            };
            let err = hash_checkpoint_reading(&ck, &opts, &progress, ReadPath::Streamed)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "big.bin: file changed while it was being hashed (truncated while read: \
                     it ended after "
                ),
                "{algorithms:?}: {err}"
            );
        }
    }

    #[test]
    fn by_residency_a_cold_file_is_streamed_past_the_page_cache() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cold.bin");
        let bytes = noise(3 << 20, 5);
        std::fs::write(&p, &bytes).unwrap();
        let written = MappedFile::open(&p, "cold.bin", bytes.len() as u64).unwrap();
        assert!(mostly_resident(written.bytes()), "just written, so cached");
        let sparse = dir.path().join("sparse.bin");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let holes = MappedFile::open(&sparse, "sparse.bin", 64 << 20).unwrap();
        assert!(!mostly_resident(holes.bytes()), "holes are not cached");
        drop((written, holes));
        std::fs::remove_file(&sparse).unwrap();

        let f = std::fs::File::open(&p).unwrap();
        f.sync_all().unwrap();
        // SAFETY: an advisory call on a descriptor this test owns.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        let ck = Checkpoint::open(dir.path(), &OpenOptions::default()).unwrap();
        let map = MappedFile::open(&p, "cold.bin", bytes.len() as u64).unwrap();
        let m = hash(&ck, Algorithms::Both, false, ReadPath::ByResidency);
        assert_eq!(m.files[0].sha256, Some(sha2::Sha256::digest(&bytes).into()));
        assert_eq!(m.files[0].blake3, Some(*blake3::hash(&bytes).as_bytes()));
        // Where the filesystem lets the pages go (not tmpfs), the file was read with O_DIRECT:
        // still not cached. Through the mapping, it is cached afterwards.
        if !mostly_resident(map.bytes()) {
            hash(&ck, Algorithms::Blake3Only, false, ReadPath::ByResidency);
            assert!(
                !mostly_resident(map.bytes()),
                "streamed reads bypass the cache"
            );
        }
        hash(&ck, Algorithms::Blake3Only, false, ReadPath::Mapped);
        assert!(mostly_resident(map.bytes()));
    }
}
