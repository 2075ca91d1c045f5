//! OpenSSF model-signing resources of a checkpoint for any serialization the spec defines:
//! whole files or `shard_size` byte ranges, hashed with SHA-256, BLAKE2b or BLAKE3.
//!
//! Byte ranges of one file hash independently, so shards are what spreads a single huge file
//! over the cores. SHA-256 ranges are paired and hashed two at a time on one core
//! (`sha256_x2`), which fills the gaps a single SHA-256 stream leaves.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use blake2::Digest as _;
use weightgate_schemas::oms::{OmsHashType, OmsMethod, OmsResource, shard_ranges};

use super::mapped_file::MappedFile;
use super::sha256::{Progress, REPORT_EVERY, sha256_mapped};
use crate::reading::{Checkpoint, CheckpointError};

/// How to turn files into resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OmsSerialization {
    pub method: OmsMethod,
    pub hash_type: OmsHashType,
}

impl Default for OmsSerialization {
    /// What `model_signing` writes by default: whole files, SHA-256.
    fn default() -> Self {
        OmsSerialization {
            method: OmsMethod::Files,
            hash_type: OmsHashType::Sha256,
        }
    }
}

/// One piece of work: bytes `start..end` of file `file`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    file: usize,
    start: usize,
    end: usize,
}

impl Piece {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// The resource name of a file (`.` for a single-file model, as `model_signing` writes it).
fn file_name(checkpoint: &Checkpoint, i: usize) -> &str {
    if checkpoint.single_file {
        "."
    } else {
        &checkpoint.files[i].path
    }
}

/// The resources of `checkpoint`, in its file order (path components) and, within a file, by
/// offset. A zero-byte file gives no shard, as the spec says.
pub fn oms_resources(
    checkpoint: &Checkpoint,
    how: &OmsSerialization,
    threads: usize,
    progress: Progress,
) -> Result<Vec<OmsResource>, CheckpointError> {
    let maps = checkpoint
        .files
        .iter()
        .map(|f| MappedFile::open(&f.fs_path, &f.path, f.size))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pieces = Vec::new();
    let mut names = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let len = m.bytes().len();
        match how.method {
            OmsMethod::Files => {
                pieces.push(Piece {
                    file: i,
                    start: 0,
                    end: len,
                });
                names.push(file_name(checkpoint, i).to_string());
            }
            OmsMethod::Shards { shard_size } => {
                for (start, end) in shard_ranges(len as u64, shard_size) {
                    pieces.push(Piece {
                        file: i,
                        start: start as usize,
                        end: end as usize,
                    });
                    names.push(format!("{}:{start}:{end}", file_name(checkpoint, i)));
                }
            }
        }
    }
    let digests = hash_pieces(&maps, &pieces, how.hash_type, threads, progress);
    for m in &maps {
        m.check_unchanged()?;
    }
    Ok(names
        .into_iter()
        .zip(digests)
        .map(|(name, digest)| OmsResource { name, digest })
        .collect())
}

fn hash_one(data: &[u8], hash_type: OmsHashType, parallel: bool, progress: Progress) -> Vec<u8> {
    match hash_type {
        OmsHashType::Sha256 => sha256_mapped(data, progress).to_vec(),
        OmsHashType::Blake2b => {
            let mut h = blake2::Blake2b512::new();
            for chunk in data.chunks(REPORT_EVERY) {
                h.update(chunk);
                progress(chunk.len() as u64);
            }
            h.finalize().to_vec()
        }
        OmsHashType::Blake3 => {
            let mut h = blake3::Hasher::new();
            for chunk in data.chunks(if parallel { 1 << 30 } else { REPORT_EVERY }) {
                if parallel {
                    h.update_rayon(chunk);
                } else {
                    h.update(chunk);
                }
                progress(chunk.len() as u64);
            }
            h.finalize().as_bytes().to_vec()
        }
    }
}

/// Digests of every piece, in order. Biggest work first on one worker per core; SHA-256
/// pieces go two at a time.
fn hash_pieces(
    maps: &[MappedFile],
    pieces: &[Piece],
    hash_type: OmsHashType,
    threads: usize,
    progress: Progress,
) -> Vec<Vec<u8>> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    };
    let bytes = |p: &Piece| &maps[p.file].bytes()[p.start..p.end];
    let mut by_size: Vec<usize> = (0..pieces.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(pieces[i].len()));
    let jobs: Vec<&[usize]> = if hash_type == OmsHashType::Sha256 {
        by_size.chunks(2).collect()
    } else {
        by_size.chunks(1).collect()
    };
    // BLAKE3 is parallel within a piece: with fewer pieces than cores, give each all cores.
    let blake3_parallel = hash_type == OmsHashType::Blake3 && jobs.len() < threads;
    // One worker per job up to four per core, as the engine does for large SHA-256 jobs: the
    // five shards of a 4 GiB file on two cores then share the cores evenly instead of leaving
    // one idle for the last shard, and a busy machine's scheduler gives each job its share.
    let workers = if blake3_parallel {
        1
    } else {
        jobs.len().min(threads * 4).max(1)
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<u8>)>> = Mutex::new(Vec::with_capacity(pieces.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(k) else { break };
                    let done = match **job {
                        [a, b] if hash_type == OmsHashType::Sha256 => {
                            let (da, db) = super::sha256_x2::sha256_two(
                                bytes(&pieces[a]),
                                bytes(&pieces[b]),
                                progress,
                            );
                            vec![(a, da.to_vec()), (b, db.to_vec())]
                        }
                        _ => job
                            .iter()
                            .map(|&i| {
                                (
                                    i,
                                    hash_one(
                                        bytes(&pieces[i]),
                                        hash_type,
                                        blake3_parallel,
                                        progress,
                                    ),
                                )
                            })
                            .collect(),
                    };
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(done);
                }
            });
        }
    });
    let mut out = vec![Vec::new(); pieces.len()];
    for (i, d) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        out[i] = d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::OpenOptions;
    use sha2::Sha256;

    #[test]
    fn shards_files_and_hashes_match_reference_digests() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(dir.path().join("w.bin"), &data).unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let ck = Checkpoint::open_files(dir.path(), &OpenOptions::default()).unwrap();
        let how = OmsSerialization {
            method: OmsMethod::Shards { shard_size: 1000 },
            hash_type: OmsHashType::Sha256,
        };
        let r = oms_resources(&ck, &how, 2, &|_| {}).unwrap();
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["w.bin:0:1000", "w.bin:1000:2000", "w.bin:2000:2500"]
        );
        for (res, range) in r.iter().zip([0..1000, 1000..2000, 2000..2500]) {
            assert_eq!(res.digest, Sha256::digest(&data[range]).to_vec());
        }
        let how = OmsSerialization {
            method: OmsMethod::Files,
            hash_type: OmsHashType::Blake2b,
        };
        let r = oms_resources(&ck, &how, 2, &|_| {}).unwrap();
        assert_eq!(r[0].name, "empty");
        assert_eq!(r[1].digest, blake2::Blake2b512::digest(&data).to_vec());
        let how = OmsSerialization {
            method: OmsMethod::Files,
            hash_type: OmsHashType::Blake3,
        };
        let r = oms_resources(&ck, &how, 2, &|_| {}).unwrap();
        assert_eq!(r[1].digest, blake3::hash(&data).as_bytes().to_vec());
    }
}
