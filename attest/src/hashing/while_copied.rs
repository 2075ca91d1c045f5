//! Copying files while hashing them (admission): each file is read into a small ring of private,
//! aligned buffers. The reading thread hands each filled buffer to the SHA-256 thread and to a
//! writer thread, which writes it to the destination with `O_DIRECT`, then hashes it with BLAKE3
//! itself; the buffer goes back to the ring when all three are done. The bytes hashed are the
//! bytes written: nobody else can change a private buffer between the two.
//!
//! Why not copy inside the kernel and hash the written file: the kernel's copy into the page
//! cache was most of admission's CPU (a `memcpy` per byte, then writeback), and the hashers read
//! every byte back from memory. Here the one copy is the read into a buffer small enough to stay
//! in the CPU's cache while both hashers read it, and the disk takes the buffer by DMA.
//!
//! Two heavy threads for two cores: SHA-256 (the most work, [`FILES_IN_TURN`] files read taking
//! turns buffer by buffer so that it hashes two files at once on one core) and the reader with
//! BLAKE3. Each file being read has its own [`WRITERS_PER_FILE`] writers, and its destination is
//! preallocated, so its writes neither queue behind another file's nor behind each other.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::aligned::{ALIGN, Filled, Ring, preallocate, set_direct};
use super::engine::{CheckpointDigests, FileDigests, root_digest};
use super::sha256::Progress;
use super::sha256_x2::{Sha256Stream, sha256_in_pairs};
use crate::reading::CheckpointError;

/// Bytes per buffer: small enough that a buffer is still in the CPU's cache when the second
/// hasher reads it, large enough that each `O_DIRECT` write keeps the disk streaming.
const CHUNK: usize = 2 << 20;
/// Buffers in the ring (32 MiB): those being read, hashed and written.
const RING: usize = 16;
/// Writes in flight per file being read, each on its own thread: one file's `O_DIRECT` writes
/// overlap only into preallocated blocks, and a single write in flight leaves the disk idle
/// between two.
const WRITERS_PER_FILE: usize = 2;
/// Files read at once, taking turns buffer by buffer: two or more let the SHA-256 thread pair
/// buffers of different files; a few more keep pairs available when sizes differ.
const FILES_IN_TURN: usize = 4;

/// One file to copy.
pub struct FileCopy<'a> {
    /// Its path relative to the checkpoint root, for digests and errors.
    pub path: &'a str,
    /// Open for reading, positioned anywhere (reads are positional).
    pub source: &'a File,
    /// Its destination's path, for errors.
    pub dest_path: &'a Path,
    /// The destination, open for writing, empty. `O_DIRECT` is switched on where the
    /// filesystem allows it.
    pub dest: &'a File,
    /// The size it must have: a source that ends earlier is an error, bytes past it are not
    /// copied (the caller compares the source's size and identity before and after).
    pub size: u64,
}

/// Copies every file and returns the SHA-256 and BLAKE3 of the bytes copied (and the root).
/// Destinations end with exactly `size` bytes; the caller fsyncs them.
pub fn copy_and_hash(
    files: &[FileCopy],
    progress: Progress,
) -> Result<CheckpointDigests, CheckpointError> {
    for f in files {
        set_direct(f.dest, true);
        preallocate(f.dest, f.size.next_multiple_of(ALIGN as u64))
            .map_err(|e| CheckpointError::io(f.dest_path, e))?;
    }
    let n = files.len();
    let failed = AtomicBool::new(false);
    let write_error: Mutex<Option<CheckpointError>> = Mutex::new(None);
    let (sha, b3, writers, read) = std::thread::scope(|s| {
        let (sha_tx, sha_rx) = mpsc::channel::<Arc<Filled>>();
        let sha = s.spawn(move || {
            let mut states = vec![Sha256Stream::new(); n];
            let _ = sha256_in_pairs(
                sha_rx,
                &mut states,
                |p| (p.file, p.bytes()),
                |p| {
                    progress(p.len as u64);
                    Ok::<(), ()>(())
                },
            );
            states
                .into_iter()
                .map(Sha256Stream::finalize)
                .collect::<Vec<[u8; 32]>>()
        });
        // One queue per writer; the pieces of one file go to the writers of its slot.
        let (write_queues, writers): (Vec<_>, Vec<_>) = (0..FILES_IN_TURN * WRITERS_PER_FILE)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Arc<Filled>>();
                let (failed, write_error) = (&failed, &write_error);
                (
                    tx,
                    s.spawn(move || write_pieces(rx, files, failed, write_error)),
                )
            })
            .collect();
        let mut b3 = vec![blake3::Hasher::new(); n];
        let read = read_in_turns(files, sha_tx, write_queues, &mut b3, progress, &failed);
        let b3: Vec<[u8; 32]> = b3.iter().map(|h| *h.finalize().as_bytes()).collect();
        let writers = writers
            .into_iter()
            .map(|w| w.join().map_err(|_| panicked("a writing thread")))
            .collect::<Result<Vec<()>, _>>();
        let sha = sha.join().map_err(|_| panicked("the SHA-256 thread"));
        (sha, b3, writers, read)
    });
    writers?;
    read?;
    if let Some(e) = write_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let sha = sha?;
    let mut digests = Vec::with_capacity(n);
    for (i, f) in files.iter().enumerate() {
        // The last buffer was written whole (O_DIRECT writes whole blocks); cut the padding.
        f.dest
            .set_len(f.size)
            .map_err(|e| CheckpointError::io(f.dest_path, e))?;
        digests.push(FileDigests {
            path: f.path.to_string(),
            size: f.size,
            sha256: Some(sha[i]),
            blake3: Some(b3[i]),
            tensors: None,
        });
    }
    Ok(CheckpointDigests {
        files: digests,
        root_sha256: Some(root_digest(&sha)),
    })
}

fn panicked(who: &str) -> CheckpointError {
    CheckpointError::Internal {
        what: format!("{who} panicked while copying"),
    }
}

/// Reads the files, up to [`FILES_IN_TURN`] at once taking turns, into buffers from the ring,
/// hands each to the SHA-256 thread and to a writer of its file's slot, and hashes it with
/// BLAKE3. Stops early when a writer failed.
fn read_in_turns(
    files: &[FileCopy],
    sha: Sender<Arc<Filled>>,
    writers: Vec<Sender<Arc<Filled>>>,
    blake3: &mut [blake3::Hasher],
    progress: Progress,
    failed: &AtomicBool,
) -> Result<(), CheckpointError> {
    let mut ring = Ring::new(RING, CHUNK);
    let mut waiting = 0..files.len();
    let mut reading: Vec<Turn> = Vec::with_capacity(FILES_IN_TURN);
    loop {
        while reading.len() < FILES_IN_TURN {
            let Some(file) = waiting.next() else { break };
            // Fewer than FILES_IN_TURN files are being read, so a slot is free.
            let slot = (0..FILES_IN_TURN)
                .find(|s| reading.iter().all(|t| t.slot != *s))
                .unwrap_or(0);
            reading.push(Turn {
                file,
                slot,
                offset: 0,
                pieces: 0,
            });
        }
        if reading.is_empty() {
            return Ok(());
        }
        let mut k = 0;
        while k < reading.len() {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Turn {
                file: i,
                slot,
                offset,
                pieces,
            } = reading[k];
            let f = &files[i];
            if offset == f.size {
                reading.remove(k);
                continue;
            }
            let len = (f.size - offset).min(CHUNK as u64) as usize;
            let mut buffer = ring.next();
            let padded = len.next_multiple_of(ALIGN);
            let window = buffer.window(padded);
            read_exactly(f, &mut window[..len], offset)?;
            // The last block of a file is written whole and cut afterwards: zeros, not the
            // bytes of another file, go to the disk past its end.
            window[len..].fill(0);
            let piece = ring.filled(buffer, len, i, offset);
            let writer = &writers[slot * WRITERS_PER_FILE + pieces % WRITERS_PER_FILE];
            if sha.send(Arc::clone(&piece)).is_err() || writer.send(Arc::clone(&piece)).is_err() {
                // The SHA-256 thread or a writer is gone (they only stop early by panicking):
                // their joins report it.
                return Ok(());
            }
            // Here, while the buffer is still in this core's cache: one thread fewer to feed.
            blake3[i].update(piece.bytes());
            progress(len as u64);
            drop(piece);
            reading[k].offset += len as u64;
            reading[k].pieces += 1;
            k += 1;
        }
    }
}

/// A file being read: which writers take its pieces, and how far it is.
#[derive(Clone, Copy)]
struct Turn {
    file: usize,
    slot: usize,
    offset: u64,
    pieces: usize,
}

/// Reads `buf.len()` bytes of the source at `offset`; a source that ends earlier changed.
fn read_exactly(f: &FileCopy, buf: &mut [u8], offset: u64) -> Result<(), CheckpointError> {
    let mut got = 0;
    while got < buf.len() {
        match f.source.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => {
                return Err(CheckpointError::ChangedWhileHashing {
                    path: f.path.to_string(),
                    what: format!(
                        "truncated while copied: it ended after {} of {} bytes",
                        offset + got as u64,
                        f.size
                    ),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CheckpointError::io(f.path, e)),
        }
    }
    Ok(())
}

/// A writer thread: writes pieces until the channel closes. After the first error it records
/// it, tells the reader to stop, and only drains (so the buffers go back to the ring).
fn write_pieces(
    pieces: Receiver<Arc<Filled>>,
    files: &[FileCopy],
    failed: &AtomicBool,
    error: &Mutex<Option<CheckpointError>>,
) {
    for piece in pieces {
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        let f = &files[piece.file];
        let padded = piece.len.next_multiple_of(ALIGN);
        let bytes = &piece.buffer.bytes[piece.buffer.start..piece.buffer.start + padded];
        if let Err(e) = write_all_at(f.dest, bytes, piece.offset) {
            failed.store(true, Ordering::Relaxed);
            let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(CheckpointError::io(f.dest_path, e));
        }
    }
}

/// Writes all of `bytes` at `offset`; where the filesystem refuses an `O_DIRECT` write (some
/// accept the flag, then refuse), turns it off for the file and writes through the page cache.
fn write_all_at(dest: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    let mut retried = false;
    while done < bytes.len() {
        match dest.write_at(&bytes[done..], offset + done as u64) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !retried => {
                retried = true;
                set_direct(dest, false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn noise(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 11) as u8)
            .collect()
    }

    /// Copies `sources` (written under `dir`) to `dir/out-N` and checks bytes and digests.
    fn copies_exactly(dir: &Path, sources: &[Vec<u8>]) {
        let paths: Vec<String> = (0..sources.len()).map(|i| format!("f{i}")).collect();
        let mut handles = Vec::new();
        for (i, data) in sources.iter().enumerate() {
            std::fs::write(dir.join(&paths[i]), data).unwrap();
            let source = File::open(dir.join(&paths[i])).unwrap();
            let dest_path = dir.join(format!("out-{i}"));
            let dest = File::options()
                .write(true)
                .create_new(true)
                .open(&dest_path)
                .unwrap();
            handles.push((source, dest_path, dest));
        }
        let files: Vec<FileCopy> = handles
            .iter()
            .zip(&paths)
            .zip(sources)
            .map(|(((source, dest_path, dest), path), data)| FileCopy {
                path,
                source,
                dest_path,
                dest,
                size: data.len() as u64,
            })
            .collect();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let digests = copy_and_hash(&files, &|n| {
            seen.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        let total: usize = sources.iter().map(Vec::len).sum();
        assert_eq!(
            seen.into_inner(),
            2 * total as u64,
            "progress counts both hashes"
        );
        for (i, (got, data)) in digests.files.iter().zip(sources).enumerate() {
            let sha: [u8; 32] = Sha256::digest(data).into();
            assert_eq!(got.sha256, Some(sha), "{}", got.path);
            assert_eq!(
                got.blake3,
                Some(*blake3::hash(data).as_bytes()),
                "{}",
                got.path
            );
            let written = std::fs::read(dir.join(format!("out-{i}"))).unwrap();
            assert!(&written == data, "{}: copy differs", got.path);
        }
        let shas: Vec<[u8; 32]> = sources.iter().map(|d| Sha256::digest(d).into()).collect();
        assert_eq!(digests.root_sha256, Some(root_digest(&shas)));
    }

    fn awkward_sources() -> Vec<Vec<u8>> {
        // More files than are read at once, sizes around blocks and buffers, and empty ones.
        [
            0,
            1,
            4095,
            4097,
            CHUNK + 1,
            2 * CHUNK,
            3 * CHUNK - 7,
            0,
            65,
            100_000,
        ]
        .iter()
        .enumerate()
        .map(|(i, &len)| noise(len, i as u32))
        .collect()
    }

    #[test]
    fn copies_and_hashes_files_of_awkward_sizes_taken_in_turns() {
        let dir = tempfile::tempdir().unwrap();
        copies_exactly(dir.path(), &awkward_sources());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn copies_onto_tmpfs() {
        // tmpfs refuses O_DIRECT before Linux 6.6 (then the copy goes through the page cache)
        // and accepts it since.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        copies_exactly(dir.path(), &awkward_sources());
    }

    #[test]
    fn a_source_shorter_than_its_size_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short"), noise(5000, 1)).unwrap();
        let source = File::open(dir.path().join("short")).unwrap();
        let dest_path = dir.path().join("out");
        let dest = File::create(&dest_path).unwrap();
        let files = [FileCopy {
            path: "short",
            source: &source,
            dest_path: &dest_path,
            dest: &dest,
            size: CHUNK as u64 + 10,
        }];
        let err = copy_and_hash(&files, &|_| {}).unwrap_err().to_string();
        assert!(
            err.contains("short") && err.contains("ended after 5000 of"),
            "{err}"
        );
    }

    /// Copies `data` from a file under `dir` to `dest`, opened by the caller.
    fn copy_to(
        dir: &Path,
        data: &[u8],
        dest_path: &Path,
        dest: &File,
        progress: Progress,
    ) -> Result<(), CheckpointError> {
        std::fs::write(dir.join("s"), data).unwrap();
        let source = File::open(dir.join("s")).unwrap();
        let files = [FileCopy {
            path: "s",
            source: &source,
            dest_path,
            dest,
            size: data.len() as u64,
        }];
        copy_and_hash(&files, progress).map(|_| ())
    }

    #[test]
    fn a_destination_that_cannot_be_written_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let data = noise(40 * CHUNK + 123, 3);
        let full = Path::new("/dev/full");
        let dest = File::options().write(true).open(full).unwrap();
        let err = copy_to(dir.path(), &data, full, &dest, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/full"), "{err}");
        // A handle open for reading only.
        let read_only_path = dir.path().join("r");
        std::fs::write(&read_only_path, b"").unwrap();
        let read_only = File::open(&read_only_path).unwrap();
        assert!(copy_to(dir.path(), &data, &read_only_path, &read_only, &|_| {}).is_err());
    }

    #[test]
    fn a_hashing_thread_that_panics_is_an_internal_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let data = noise(40 * CHUNK + 123, 3);
        let dest_path = dir.path().join("d");
        let dest = File::create(&dest_path).unwrap();
        let calls = std::sync::atomic::AtomicU64::new(0);
        let caller = std::thread::current().id();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            copy_to(dir.path(), &data, &dest_path, &dest, &|_| {
                // Only on the SHA-256 thread: on the caller's own thread a panic is the
                // caller's, and goes on unwinding there.
                if std::thread::current().id() != caller
                    && calls.fetch_add(1, Ordering::Relaxed) == 5
                {
                    panic!("progress callback fails on purpose");
                }
            })
        }));
        let err = got
            .expect("the panic stays inside copy_and_hash")
            .unwrap_err();
        assert!(matches!(err, CheckpointError::Internal { .. }), "{err}");
    }

    #[test]
    fn a_source_changed_during_the_copy_never_yields_digests_of_other_bytes_than_stored() {
        let dir = tempfile::tempdir().unwrap();
        let size = 24 * CHUNK + 777;
        for round in 0..6u32 {
            let source_path = dir.path().join(format!("s{round}"));
            std::fs::write(&source_path, noise(size, round)).unwrap();
            let source = File::open(&source_path).unwrap();
            let dest_path = dir.path().join(format!("d{round}"));
            let dest = File::create(&dest_path).unwrap();
            let stop = AtomicBool::new(false);
            let copied = std::thread::scope(|s| {
                s.spawn(|| {
                    let w = File::options().write(true).open(&source_path).unwrap();
                    let mut at = u64::from(round) * 7919;
                    while !stop.load(Ordering::Relaxed) {
                        at = at
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407)
                            % (size as u64 + 10_000);
                        match round % 3 {
                            0 => drop(w.write_at(&[0xAA; 4096], at)),
                            1 => drop((w.set_len(at), w.set_len(size as u64))),
                            _ => drop((w.set_len(size as u64 + 5000), w.set_len(size as u64))),
                        }
                    }
                });
                let files = [FileCopy {
                    path: "s",
                    source: &source,
                    dest_path: &dest_path,
                    dest: &dest,
                    size: size as u64,
                }];
                let copied = copy_and_hash(&files, &|_| {});
                stop.store(true, Ordering::Relaxed);
                copied
            });
            // Either an error (it ended early), or the digests of exactly what was stored.
            if let Ok(d) = copied {
                let stored = std::fs::read(&dest_path).unwrap();
                assert_eq!(stored.len(), size);
                assert_eq!(d.files[0].sha256, Some(Sha256::digest(&stored).into()));
                assert_eq!(d.files[0].blake3, Some(*blake3::hash(&stored).as_bytes()));
            }
        }
    }
}
