//! A checkpoint: its files in signing order, their kinds, strict headers and parameter counts.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::discover::{OpenOptions, ReadPath, discover};
use super::error::CheckpointError;
use super::safetensors_header::SafetensorsHeader;
use super::shard_index::{MAX_INDEX_LEN, ShardIndex};

/// What a file is, judged by its name and then checked by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Safetensors,
    SafetensorsIndex,
    Other,
}

impl FileKind {
    fn of(path: &str) -> Self {
        if path.ends_with(".safetensors.index.json") {
            FileKind::SafetensorsIndex
        } else if path.ends_with(".safetensors") {
            FileKind::Safetensors
        } else {
            FileKind::Other
        }
    }
}

/// One file of a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointFile {
    /// Relative POSIX path (the name that is attested).
    pub path: String,
    /// Where it is read from.
    #[serde(skip)]
    pub fs_path: PathBuf,
    pub size: u64,
    pub kind: FileKind,
    /// For safetensors files, the checked header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<SafetensorsHeader>,
    /// The file the header was read from: hashing maps the file and refuses it unless it is
    /// still this one (same device, inode, size and modification time), so the bytes hashed
    /// are the bytes whose header was checked, whatever is renamed in between.
    #[serde(skip)]
    pub identity: Option<FileIdentity>,
}

/// Which file, in which state: device, inode, size, modification time and status-change time.
/// The owner of a file can set its modification time back after writing it, but not its
/// status-change time, which every write and every `utimensat` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
}

impl FileIdentity {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
}

/// Parameter (element) counts read from the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParameterCount {
    pub total: u64,
    pub tensors: u64,
    pub by_dtype: BTreeMap<String, u64>,
}

/// A checked checkpoint. Building one reads only headers and index files, never tensor data.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    #[serde(skip)]
    pub root: PathBuf,
    /// True when the checkpoint is one file rather than a folder.
    pub single_file: bool,
    /// Files sorted by path components (the OpenSSF model-signing order).
    pub files: Vec<CheckpointFile>,
    pub indexes: Vec<ShardIndex>,
    /// Oddities that do not make the checkpoint invalid (e.g. an index `total_size` mismatch).
    pub warnings: Vec<String>,
    /// How its files are read when it is hashed ([`OpenOptions::read`]).
    #[serde(skip)]
    pub read: ReadPath,
}

/// Most tensors all files of one checkpoint may hold together: eight files at the per-file cap.
/// Real checkpoints hold hundreds to about a hundred thousand (a large mixture-of-experts
/// model); about 200 bytes of memory each while the checkpoint is open.
pub(crate) const MAX_TENSORS_PER_CHECKPOINT: usize =
    8 * super::safetensors_header::MAX_TENSORS_PER_FILE;

impl Checkpoint {
    /// Discovers and checks the checkpoint at `root`.
    pub fn open(root: &Path, opts: &OpenOptions) -> Result<Self, CheckpointError> {
        let found = discover(root, opts)?;
        if found.is_empty() {
            return Err(CheckpointError::Empty {
                path: root.to_path_buf(),
            });
        }
        let single_file = found.len() == 1 && !root.is_dir();
        let mut files = Vec::with_capacity(found.len());
        let mut index_bytes = Vec::new();
        let mut tensors_total = 0usize;
        for f in found {
            let file = File::open(&f.fs_path).map_err(|e| CheckpointError::io(&f.fs_path, e))?;
            let meta = file
                .metadata()
                .map_err(|e| CheckpointError::io(&f.fs_path, e))?;
            if !meta.is_file() {
                return Err(CheckpointError::NotRegularFile { path: f.path });
            }
            let size = meta.len();
            let kind = FileKind::of(&f.path);
            let header = match kind {
                FileKind::Safetensors => {
                    let header = SafetensorsHeader::read(&file, size, &f.path)?;
                    // Bounds the memory of all headers together, not just one: many files (or
                    // hard links to one) each just under the per-file cap add up.
                    tensors_total += header.tensors.len();
                    if tensors_total > MAX_TENSORS_PER_CHECKPOINT {
                        return Err(CheckpointError::Header {
                            path: f.path,
                            problem: format!(
                                "more than {MAX_TENSORS_PER_CHECKPOINT} tensors in the checkpoint's files together"
                            ),
                        });
                    }
                    Some(header)
                }
                FileKind::SafetensorsIndex => {
                    if size > MAX_INDEX_LEN {
                        return Err(CheckpointError::index(
                            &f.path,
                            format!("{size} bytes exceeds the cap of {MAX_INDEX_LEN}"),
                        ));
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    (&file)
                        .take(MAX_INDEX_LEN + 1)
                        .read_to_end(&mut bytes)
                        .map_err(|e| CheckpointError::io(&f.fs_path, e))?;
                    index_bytes.push((f.path.clone(), bytes));
                    None
                }
                FileKind::Other => None,
            };
            // The header was read from this handle; the file must not have changed meanwhile.
            let identity = FileIdentity::of(&meta);
            let after = file
                .metadata()
                .map_err(|e| CheckpointError::io(&f.fs_path, e))?;
            if FileIdentity::of(&after) != identity {
                return Err(CheckpointError::ChangedWhileHashing {
                    path: f.path,
                    what: "changed while its header was read".into(),
                });
            }
            files.push(CheckpointFile {
                path: f.path,
                fs_path: f.fs_path,
                size,
                kind,
                header,
                identity: Some(identity),
            });
        }
        let headers: HashMap<&str, &SafetensorsHeader> = files
            .iter()
            .filter_map(|f| f.header.as_ref().map(|h| (f.path.as_str(), h)))
            .collect();
        let mut indexes = Vec::new();
        let mut warnings = Vec::new();
        // Room for a few stray names, so they are reported by name rather than by count.
        let tensors: usize = headers.values().map(|h| h.tensors.len()).sum::<usize>() + 1024;
        for (path, bytes) in &index_bytes {
            let index = ShardIndex::parse(bytes, path, tensors)?;
            warnings.extend(index.check_against(&headers)?);
            indexes.push(index);
        }
        Ok(Checkpoint {
            root: root.to_path_buf(),
            single_file,
            files,
            indexes,
            warnings,
            read: opts.read,
        })
    }

    /// Every file as opaque bytes, the way OpenSSF model signing sees a model: discovered
    /// with the same path rules, but no header or index is read or checked.
    pub fn open_files(root: &Path, opts: &OpenOptions) -> Result<Self, CheckpointError> {
        let found = discover(root, opts)?;
        if found.is_empty() {
            return Err(CheckpointError::Empty {
                path: root.to_path_buf(),
            });
        }
        let single_file = found.len() == 1 && !root.is_dir();
        let mut files = Vec::with_capacity(found.len());
        for f in found {
            let meta =
                std::fs::metadata(&f.fs_path).map_err(|e| CheckpointError::io(&f.fs_path, e))?;
            if !meta.is_file() {
                return Err(CheckpointError::NotRegularFile { path: f.path });
            }
            files.push(CheckpointFile {
                path: f.path,
                fs_path: f.fs_path,
                size: meta.len(),
                kind: FileKind::Other,
                header: None,
                identity: Some(FileIdentity::of(&meta)),
            });
        }
        Ok(Checkpoint {
            root: root.to_path_buf(),
            single_file,
            files,
            indexes: Vec::new(),
            warnings: Vec::new(),
            read: opts.read,
        })
    }

    /// Parameters over all safetensors files.
    pub fn parameters(&self) -> ParameterCount {
        let mut count = ParameterCount::default();
        for h in self.files.iter().filter_map(|f| f.header.as_ref()) {
            for t in &h.tensors {
                count.total += t.parameters;
                count.tensors += 1;
                *count.by_dtype.entry(t.dtype.clone()).or_default() += t.parameters;
            }
        }
        count
    }

    /// Total bytes over all files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The file with relative path `path`.
    pub fn file(&self, path: &str) -> Option<&CheckpointFile> {
        self.files.iter().find(|f| f.path == path)
    }
}
