//! Hashing files while they are being written: the writer hands over each range right after
//! writing it, and one SHA-256 thread and one BLAKE3 thread hash it from a mapping of the
//! written file, while the writer goes on with the next range. A writer that takes turns
//! between files lets the SHA-256 thread hash two files at once on its core. Hashing overlaps writing, the
//! bytes are read back while still in the page cache, and the bytes hashed are the bytes in
//! the written file (not the buffers they were written from).

use std::cell::RefCell;
use std::fs::File;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::engine::{CheckpointDigests, FileDigests, root_digest};
use super::mapped_file::MappedRange;
use super::sha256::Progress;
use super::sha256_x2::{Sha256Stream, update_two};
use crate::reading::CheckpointError;

/// Ranges handed over but not yet hashed, per hasher, before the writer waits: enough to keep
/// both busy, few enough that the hashers read what the writer has just written.
const QUEUE: usize = 4;

/// One file to be written: its path relative to the checkpoint root (for digests and errors)
/// and the size it must end with.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
}

struct Piece {
    file: usize,
    range: Arc<MappedRange>,
}

/// What a writer hands written ranges to; see [`hash_while_written`].
pub struct WrittenRanges<'a> {
    files: &'a [PlannedFile],
    /// Bytes handed over so far, per file: ranges must follow each other.
    next: RefCell<Vec<u64>>,
    queues: [SyncSender<Piece>; 2],
}

impl WrittenRanges<'_> {
    /// Hands over `len` bytes of planned file number `file`, just written at `offset` of
    /// `written` (open for reading). Ranges of a file must be handed over in order, without
    /// gaps. Waits while the hashers are [`QUEUE`] ranges behind.
    pub fn hash(
        &self,
        file: usize,
        written: &File,
        offset: u64,
        len: u64,
    ) -> Result<(), CheckpointError> {
        let planned = self
            .files
            .get(file)
            .ok_or_else(|| misuse("?", "no such file"))?;
        let mut next = self.next.borrow_mut();
        if offset != next[file] || offset.saturating_add(len) > planned.size {
            return Err(misuse(
                &planned.path,
                &format!(
                    "range {offset}+{len} does not follow {} of {} bytes",
                    next[file], planned.size
                ),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let map_len = usize::try_from(len).map_err(|_| misuse(&planned.path, "range too large"))?;
        let range = Arc::new(
            MappedRange::map(written, offset, map_len)
                .map_err(|e| CheckpointError::io(&planned.path, e))?,
        );
        next[file] += len;
        for queue in &self.queues {
            let piece = Piece {
                file,
                range: Arc::clone(&range),
            };
            // A hasher only stops early on a truncated range, which `hash_while_written`
            // reports; the writer just stops handing over.
            if queue.send(piece).is_err() {
                return Err(changed(&planned.path));
            }
        }
        Ok(())
    }
}

fn misuse(path: &str, what: &str) -> CheckpointError {
    CheckpointError::ChangedWhileHashing {
        path: path.to_string(),
        what: format!("written ranges out of order: {what}"),
    }
}

fn changed(path: &str) -> CheckpointError {
    CheckpointError::ChangedWhileHashing {
        path: path.to_string(),
        what: "truncated while it was being written; bytes past the new end read as zeros".into(),
    }
}

/// Runs `write`, which writes the planned files and hands every written range to
/// [`WrittenRanges::hash`], and returns SHA-256 and BLAKE3 of each planned file (and the
/// root), computed from the written files while `write` goes on. Fails if `write` fails, if a
/// file was not handed over to its planned size, or if a file shrank under its mapping.
pub fn hash_while_written<E: From<CheckpointError>>(
    files: &[PlannedFile],
    progress: Progress,
    write: impl FnOnce(&WrittenRanges) -> Result<(), E>,
) -> Result<CheckpointDigests, E> {
    let (sha_tx, sha_rx) = sync_channel(QUEUE);
    let (b3_tx, b3_rx) = sync_channel(QUEUE);
    let n = files.len();
    let (written, sha, b3) = std::thread::scope(|s| {
        let sha = s.spawn(move || {
            let mut states = vec![Sha256Stream::new(); n];
            sha256_pieces(sha_rx, files, &mut states, progress).map(|()| {
                states
                    .into_iter()
                    .map(Sha256Stream::finalize)
                    .collect::<Vec<[u8; 32]>>()
            })
        });
        let b3 = s.spawn(move || {
            let mut states = vec![blake3::Hasher::new(); n];
            hash_pieces(b3_rx, files, progress, |file, bytes| {
                states[file].update(bytes);
            })
            .map(|()| {
                states
                    .iter()
                    .map(|h| *h.finalize().as_bytes())
                    .collect::<Vec<[u8; 32]>>()
            })
        });
        let ranges = WrittenRanges {
            files,
            next: RefCell::new(vec![0; n]),
            queues: [sha_tx, b3_tx],
        };
        let written = write(&ranges);
        // Closing the queues lets the hashers finish.
        let WrittenRanges { next, queues, .. } = ranges;
        drop(queues);
        let written = written.map(|()| next.into_inner());
        let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
            h.join().unwrap_or_else(|_| {
                Err(CheckpointError::ChangedWhileHashing {
                    path: String::new(),
                    what: "a hashing thread panicked".into(),
                })
            })
        };
        (written, join(sha), join(b3))
    });
    let written = written?;
    let (sha, b3) = (sha?, b3?);
    let mut digests = Vec::with_capacity(n);
    for (i, f) in files.iter().enumerate() {
        if written[i] != f.size {
            return Err(CheckpointError::ChangedWhileHashing {
                path: f.path.clone(),
                what: format!("{} of {} bytes written", written[i], f.size),
            }
            .into());
        }
        digests.push(FileDigests {
            path: f.path.clone(),
            size: f.size,
            sha256: Some(sha[i]),
            blake3: Some(b3[i]),
            tensors: None,
        });
    }
    let root_sha256 = Some(root_digest(&sha));
    Ok(CheckpointDigests {
        files: digests,
        root_sha256,
    })
}

/// Feeds the pieces to the SHA-256 streams of their files, two pieces of different files at
/// once where they come one after the other (a writer taking turns between files), so one core
/// runs two streams; stops at the first truncated piece.
fn sha256_pieces(
    pieces: Receiver<Piece>,
    files: &[PlannedFile],
    states: &mut [Sha256Stream],
    progress: Progress,
) -> Result<(), CheckpointError> {
    let hashed = |piece: &Piece| {
        if piece.range.truncated() {
            return Err(changed(&files[piece.file].path));
        }
        progress(piece.range.bytes().len() as u64);
        Ok(())
    };
    let mut held: Option<Piece> = None;
    for piece in pieces {
        match held.take() {
            None => held = Some(piece),
            Some(first) => match states.get_disjoint_mut([first.file, piece.file]) {
                Ok([a, b]) => {
                    update_two(a, first.range.bytes(), b, piece.range.bytes(), &|_| {});
                    hashed(&first)?;
                    hashed(&piece)?;
                }
                // Two ranges of the same file follow each other: the first goes alone.
                Err(_) => {
                    states[first.file].update(first.range.bytes(), &|_| {});
                    hashed(&first)?;
                    held = Some(piece);
                }
            },
        }
    }
    if let Some(last) = held {
        states[last.file].update(last.range.bytes(), &|_| {});
        hashed(&last)?;
    }
    Ok(())
}

/// Feeds every piece to `update` in order; stops at the first truncated one.
fn hash_pieces(
    pieces: Receiver<Piece>,
    files: &[PlannedFile],
    progress: Progress,
    mut update: impl FnMut(usize, &[u8]),
) -> Result<(), CheckpointError> {
    for piece in pieces {
        let bytes = piece.range.bytes();
        update(piece.file, bytes);
        if piece.range.truncated() {
            return Err(changed(&files[piece.file].path));
        }
        progress(bytes.len() as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};
    use std::io::Write;

    fn planned(path: &str, size: u64) -> PlannedFile {
        PlannedFile {
            path: path.into(),
            size,
        }
    }

    #[test]
    fn digests_are_those_of_the_written_files() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let b = b"short".to_vec();
        let files = [
            planned("a.bin", a.len() as u64),
            planned("b.bin", 5),
            planned("e", 0),
        ];
        let digests = hash_while_written::<CheckpointError>(&files, &|_| {}, |ranges| {
            let mut out = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(dir.path().join("a.bin"))
                .unwrap();
            // Ranges at offsets that are not page-aligned map from the page below.
            let mut offset = 0;
            for piece in a.chunks(70_001) {
                out.write_all(piece).unwrap();
                ranges.hash(0, &out, offset, piece.len() as u64)?;
                offset += piece.len() as u64;
            }
            let mut out = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(dir.path().join("b.bin"))
                .unwrap();
            out.write_all(&b).unwrap();
            ranges.hash(1, &out, 0, 5)
        })
        .unwrap();
        let want = |data: &[u8]| -> ([u8; 32], [u8; 32]) {
            (Sha256::digest(data).into(), *blake3::hash(data).as_bytes())
        };
        for (got, data) in digests.files.iter().zip([&a[..], &b[..], &[][..]]) {
            assert_eq!((got.sha256.unwrap(), got.blake3.unwrap()), want(data));
        }
        let shas: Vec<[u8; 32]> = [&a[..], &b[..], &[][..]]
            .iter()
            .map(|d| Sha256::digest(d).into())
            .collect();
        assert_eq!(digests.root_sha256, Some(root_digest(&shas)));
    }

    #[test]
    fn files_written_in_turns_hash_as_each_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<Vec<u8>> = [(250_001u32, 3u32), (190_000, 11), (4_097, 5)]
            .iter()
            .map(|&(len, k)| (0..len).map(|i| (i.wrapping_mul(k) >> 2) as u8).collect())
            .collect();
        let files: Vec<PlannedFile> = data
            .iter()
            .enumerate()
            .map(|(i, d)| planned(&format!("f{i}"), d.len() as u64))
            .collect();
        let digests = hash_while_written::<CheckpointError>(&files, &|_| {}, |ranges| {
            let mut outs: Vec<File> = (0..data.len())
                .map(|i| {
                    File::options()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(dir.path().join(format!("f{i}")))
                        .unwrap()
                })
                .collect();
            let mut at = vec![0usize; data.len()];
            // Turns of uneven sizes: pairs of different files, and runs of one file alone.
            let turns = [
                (0, 70_000),
                (1, 64),
                (2, 4_097),
                (0, 1),
                (1, 100_000),
                (1, 33),
            ];
            let mut k = 0;
            while at.iter().zip(&data).any(|(a, d)| *a < d.len()) {
                let (f, len) = turns[k % turns.len()];
                k += 1;
                let len = len.min(data[f].len() - at[f]);
                if len == 0 {
                    continue;
                }
                outs[f].write_all(&data[f][at[f]..at[f] + len]).unwrap();
                ranges.hash(f, &outs[f], at[f] as u64, len as u64)?;
                at[f] += len;
            }
            Ok(())
        })
        .unwrap();
        for (got, d) in digests.files.iter().zip(&data) {
            let sha: [u8; 32] = Sha256::digest(d).into();
            assert_eq!(got.sha256, Some(sha), "{}", got.path);
            assert_eq!(
                got.blake3,
                Some(*blake3::hash(d).as_bytes()),
                "{}",
                got.path
            );
        }
    }

    #[test]
    fn a_file_not_written_to_its_planned_size_or_out_of_order_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, vec![1u8; 8192]).unwrap();
        let file = File::open(&p).unwrap();
        let files = [planned("a.bin", 8192)];
        let short =
            hash_while_written::<CheckpointError>(&files, &|_| {}, |r| r.hash(0, &file, 0, 4096));
        let err = short.unwrap_err().to_string();
        assert!(
            err.contains("a.bin") && err.contains("4096 of 8192 bytes written"),
            "{err}"
        );
        let gap = hash_while_written::<CheckpointError>(&files, &|_| {}, |r| {
            r.hash(0, &file, 4096, 4096)
        });
        let err = gap.unwrap_err().to_string();
        assert!(err.contains("out of order"), "{err}");
    }

    #[test]
    fn a_written_file_truncated_before_it_is_hashed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, vec![1u8; 3 * 4096]).unwrap();
        let file = File::open(&p).unwrap();
        let files = [planned("a.bin", 3 * 4096)];
        let result = hash_while_written::<CheckpointError>(&files, &|_| {}, |r| {
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(0)
                .unwrap();
            r.hash(0, &file, 0, 3 * 4096)
        });
        let err = result.unwrap_err().to_string();
        assert!(err.contains("a.bin") && err.contains("truncated"), "{err}");
    }
}
