//! The hashing engine: SHA-256 and BLAKE3 of whole files.
//!
//! SHA-256 is serial within a file and bound by memory latency over a mapping, so it is fed in
//! 1 KiB steps with a software prefetch ahead of it. Work is a queue of (file, algorithm) jobs,
//! biggest cost first, served by one worker per core: on one big file SHA-256 runs on one core
//! while BLAKE3 runs on the other; on many shards the SHA-256 jobs spread over both.
//! BLAKE3-only mode hashes files in turn, each with BLAKE3's own parallelism, as `b3sum` does.
//! That is for files in the page cache; files that are not are streamed from the disk with reads
//! kept in flight ahead of both hashers (`stream_hash`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::mapped_file::MappedFile;
use super::sha256::{Progress, REPORT_EVERY, sha256_mapped};
use crate::reading::{Checkpoint, CheckpointError, ReadPath};

/// Which digests to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithms {
    /// SHA-256 and BLAKE3 (what signing needs).
    #[default]
    Both,
    Blake3Only,
    Sha256Only,
}

impl Algorithms {
    fn sha256(self) -> bool {
        self != Algorithms::Blake3Only
    }
    fn blake3(self) -> bool {
        self != Algorithms::Sha256Only
    }
}

/// How to hash.
#[derive(Debug, Clone, Copy)]
pub struct HashOptions {
    pub algorithms: Algorithms,
    /// Also a BLAKE3 digest of each tensor's bytes in safetensors files.
    pub per_tensor: bool,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            algorithms: Algorithms::Both,
            per_tensor: false,
            threads: 0,
        }
    }
}

/// BLAKE3 of one tensor's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorBlake3 {
    pub name: String,
    #[serde(serialize_with = "hex_digest")]
    pub blake3: [u8; 32],
}

/// Digests of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigests {
    pub path: String,
    pub size: u64,
    #[serde(serialize_with = "hex_opt", skip_serializing_if = "Option::is_none")]
    pub sha256: Option<[u8; 32]>,
    #[serde(serialize_with = "hex_opt", skip_serializing_if = "Option::is_none")]
    pub blake3: Option<[u8; 32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorBlake3>>,
}

/// Digests of every file of a checkpoint, in signing order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointDigests {
    pub files: Vec<FileDigests>,
    /// SHA-256 over the concatenated raw SHA-256 file digests (the OpenSSF model-signing root);
    /// absent when SHA-256 was not computed.
    #[serde(serialize_with = "hex_opt", skip_serializing_if = "Option::is_none")]
    pub root_sha256: Option<[u8; 32]>,
}

fn hex_digest<S: serde::Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(d))
}

fn hex_opt<S: serde::Serializer>(d: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => hex_digest(d, s),
        None => s.serialize_none(),
    }
}

/// The OpenSSF model-signing root over file SHA-256 digests given in path order.
pub fn root_digest<'a>(file_sha256: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in file_sha256 {
        h.update(d);
    }
    h.finalize().into()
}

/// Bytes of work `hash_checkpoint` will report through its progress callback.
pub fn work_bytes(checkpoint: &Checkpoint, opts: &HashOptions) -> u64 {
    let per_file = opts.algorithms.sha256() as u64 + opts.algorithms.blake3() as u64;
    checkpoint.total_bytes() * per_file
}

fn blake3_mapped(data: &[u8], parallel: bool, progress: Progress) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    // Big pieces: each `update_rayon` call forks and joins its whole tree.
    for chunk in data.chunks(if parallel { 1 << 30 } else { REPORT_EVERY }) {
        if parallel {
            h.update_rayon(chunk);
        } else {
            h.update(chunk);
        }
        progress(chunk.len() as u64);
    }
    *h.finalize().as_bytes()
}

fn tensor_digests(
    file: &MappedFile,
    checkpoint: &Checkpoint,
    idx: usize,
) -> Option<Vec<TensorBlake3>> {
    let header = checkpoint.files[idx].header.as_ref()?;
    let data = file.bytes();
    let start = header.data_start() as usize;
    Some(
        header
            .tensors
            .iter()
            .map(|t| {
                let range = start + t.data_offsets[0] as usize..start + t.data_offsets[1] as usize;
                TensorBlake3 {
                    name: t.name.clone(),
                    blake3: *blake3::hash(&data[range]).as_bytes(),
                }
            })
            .collect(),
    )
}

#[derive(Clone, Copy)]
enum Job {
    Sha256(usize),
    /// SHA-256 of two files interleaved on one core (see `sha256_x2`).
    Sha256Pair(usize, usize),
    Blake3(usize),
}

/// Hashes every file of `checkpoint`. Files in the page cache are hashed through their
/// mappings, without copying; the others are streamed from the disk (see `stream_hash`), unless
/// the checkpoint was opened with a [`ReadPath`] that says `Mapped` or `Streamed` for all.
pub fn hash_checkpoint(
    checkpoint: &Checkpoint,
    opts: &HashOptions,
    progress: Progress,
) -> Result<CheckpointDigests, CheckpointError> {
    hash_checkpoint_reading(checkpoint, opts, progress, checkpoint.read)
}

pub(crate) fn hash_checkpoint_reading(
    checkpoint: &Checkpoint,
    opts: &HashOptions,
    progress: Progress,
    read: ReadPath,
) -> Result<CheckpointDigests, CheckpointError> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let maps = checkpoint
        .files
        .iter()
        .map(|f| {
            let m = MappedFile::open(&f.fs_path, &f.path, f.size)?;
            m.check_is(f.identity.as_ref())?;
            Ok(m)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = maps.len();
    let mut sha = vec![None; n];
    let mut b3 = vec![None; n];
    let is_streamed: Vec<bool> = maps
        .iter()
        .map(|m| read.streams(m.bytes(), m.residency_visible()))
        .collect();
    let (streamed, mapped): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| is_streamed[i]);

    if opts.algorithms == Algorithms::Blake3Only {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CheckpointError::io(&checkpoint.root, std::io::Error::other(e)))?;
        pool.install(|| {
            for &i in &mapped {
                b3[i] = Some(blake3_mapped(maps[i].bytes(), true, progress));
            }
        });
    } else {
        let mut jobs: Vec<(u64, Job)> = Vec::new();
        let len = |i: usize| maps[i].bytes().len() as u64;
        if opts.algorithms.sha256() {
            // SHA-256 costs ~3.3x BLAKE3 per byte on one core here; two files interleaved on one
            // core cost ~0.7x as much per byte as one alone. Pair the largest with the next.
            let mut by_size = mapped.clone();
            by_size.sort_by_key(|&i| std::cmp::Reverse(len(i)));
            for pair in by_size.chunks(2) {
                match *pair {
                    [i, j] => {
                        jobs.push(((len(i) + len(j)).saturating_mul(7), Job::Sha256Pair(i, j)))
                    }
                    [i] => jobs.push((len(i).saturating_mul(10), Job::Sha256(i))),
                    _ => {}
                }
            }
        }
        if opts.algorithms.blake3() {
            for &i in &mapped {
                jobs.push((len(i).saturating_mul(3), Job::Blake3(i)));
            }
        }
        jobs.sort_by_key(|j| std::cmp::Reverse(j.0));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(Job, [u8; 32])>> = Mutex::new(Vec::with_capacity(jobs.len()));
        // SHA-256 cannot be split within a file, so a queue of equal shards on fewer cores leaves
        // a core idle at the end (3 shards, 2 cores: two rounds). Starting every large SHA-256
        // job at once lets the scheduler share the cores evenly: SHA-256 of the 3-shard bench
        // checkpoint went from 1.60 s to 1.24 s (docs/benchmarks.md).
        let largest = jobs.first().map_or(0, |j| j.0);
        let large_sha = jobs
            .iter()
            .filter(|(cost, job)| {
                matches!(job, Job::Sha256(_) | Job::Sha256Pair(..))
                    && *cost > 0
                    && *cost >= largest / 2
            })
            .count();
        let workers = threads
            .max(large_sha)
            .min(threads * 4)
            .min(jobs.len())
            .max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(_, job)) = jobs.get(k) else { break };
                        let done = match job {
                            Job::Sha256(i) => vec![(job, sha256_mapped(maps[i].bytes(), progress))],
                            Job::Sha256Pair(i, j) => {
                                let (a, b) = super::sha256_x2::sha256_two(
                                    maps[i].bytes(),
                                    maps[j].bytes(),
                                    progress,
                                );
                                vec![(Job::Sha256(i), a), (Job::Sha256(j), b)]
                            }
                            Job::Blake3(i) => {
                                vec![(job, blake3_mapped(maps[i].bytes(), false, progress))]
                            }
                        };
                        results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend(done);
                    }
                });
            }
        });
        for (job, digest) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match job {
                Job::Sha256(i) => sha[i] = Some(digest),
                Job::Blake3(i) => b3[i] = Some(digest),
                Job::Sha256Pair(..) => {}
            }
        }
    }

    let mut tensors_streamed = vec![None; n];
    if !streamed.is_empty() {
        let digests = super::stream_hash::hash_streamed(
            checkpoint,
            &maps,
            &streamed,
            opts.algorithms.sha256(),
            opts.algorithms.blake3(),
            opts.per_tensor,
            progress,
        )?;
        for (i, d) in digests.sha256 {
            sha[i] = Some(d);
        }
        for (i, d) in digests.blake3 {
            b3[i] = Some(d);
        }
        for (i, t) in digests.tensors {
            tensors_streamed[i] = Some(t);
        }
    }

    let mut files = Vec::with_capacity(n);
    for (i, m) in maps.iter().enumerate() {
        let tensors = if !opts.per_tensor {
            None
        } else if is_streamed[i] {
            tensors_streamed[i].take()
        } else {
            tensor_digests(m, checkpoint, i)
        };
        m.check_unchanged()?;
        files.push(FileDigests {
            path: checkpoint.files[i].path.clone(),
            size: checkpoint.files[i].size,
            sha256: sha[i],
            blake3: b3[i],
            tensors,
        });
    }
    let root_sha256 = if opts.algorithms.sha256() {
        Some(root_digest(files.iter().filter_map(|f| f.sha256.as_ref())))
    } else {
        None
    };
    Ok(CheckpointDigests { files, root_sha256 })
}
