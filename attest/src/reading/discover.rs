//! Turning a checkpoint path into a list of regular files with safe relative paths.

use std::fs;
use std::path::{Path, PathBuf};

use weightgate_schemas::file_names::{DEFAULT_IGNORES, GIT_IGNORES, HF_LOCAL_DIR_METADATA};

use super::error::CheckpointError;
use super::hf_cache::{describe_snapshots, is_repo_folder, odd_snapshot_name, snapshot_blobs};
use super::path_rules::{check_relative_path, component_order};

/// How to walk a checkpoint, and how its files are read when they are hashed.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Follow symbolic links to regular files inside the root. Refused otherwise, except in a
    /// Hugging Face cache snapshot, whose links into its own repository's `blobs/` are always
    /// followed (`hf_cache`).
    pub allow_symlinks: bool,
    /// Further paths (files or folders) to leave out, besides [`DEFAULT_IGNORES`]: relative to
    /// the root, or absolute inside it (an absolute path outside it is an error).
    pub ignore: Vec<String>,
    /// Leave out by default only what OpenSSF model signing leaves out ([`GIT_IGNORES`]), so
    /// weightgate's own files (and `.cache/huggingface`) count as model files: for checking a
    /// `model.sig` another tool wrote.
    pub git_ignores_only: bool,
    /// How the files are read when the checkpoint is hashed.
    pub read: ReadPath,
}

/// How files are read for hashing: through their memory mappings, or streamed from the disk
/// with `O_DIRECT` past the page cache (see `hashing::stream_hash`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadPath {
    /// Mapped if mostly in the page cache, streamed from the disk otherwise.
    #[default]
    ByResidency,
    /// Every file through its mapping.
    Mapped,
    /// Every file from the disk.
    Streamed,
}

/// A regular file found under the root.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// Relative POSIX path; for a single-file checkpoint, the file name.
    pub path: String,
    /// Where to open it (the link target for an allowed symbolic link).
    pub fs_path: PathBuf,
}

/// Lists the files of `root` (a directory or one file), sorted by path components.
pub fn discover(root: &Path, opts: &OpenOptions) -> Result<Vec<FoundFile>, CheckpointError> {
    let meta = fs::symlink_metadata(root).map_err(|e| CheckpointError::io(root, e))?;
    let real_root = fs::canonicalize(root).map_err(|e| CheckpointError::io(root, e))?;
    if meta.file_type().is_symlink()
        && !opts.allow_symlinks
        && !single_cached_file(root, &real_root)
    {
        return Err(CheckpointError::Symlink {
            path: root.display().to_string(),
            problem: "pass --allow-symlinks to follow it".into(),
        });
    }
    let real_meta = fs::metadata(&real_root).map_err(|e| CheckpointError::io(root, e))?;
    refuse_hf_cache_repository(root)?;
    let snapshot_folder = if real_meta.is_dir() {
        Some(real_root.clone())
    } else {
        root.parent().and_then(|p| fs::canonicalize(p).ok())
    };
    if let Some(problem) = snapshot_folder.as_deref().and_then(odd_snapshot_name) {
        return Err(CheckpointError::UnsafePath {
            path: root.display().to_string(),
            problem,
        });
    }
    if real_meta.is_file() {
        let name = real_name(root)?;
        check_relative_path(&name).map_err(|problem| CheckpointError::UnsafePath {
            path: name.clone(),
            problem: problem.to_string(),
        })?;
        return Ok(vec![FoundFile {
            path: name,
            fs_path: real_root,
        }]);
    }
    if !real_meta.is_dir() {
        return Err(CheckpointError::NotRegularFile {
            path: root.display().to_string(),
        });
    }
    let walker = Walker {
        ignore: super::ignore_paths::resolve_ignore_paths(root, &opts.ignore)?,
        root: real_root.clone(),
        hf_blobs: snapshot_blobs(&real_root),
        opts,
    };
    let mut out = Vec::new();
    walker.walk(&real_root, "", &mut out)?;
    out.sort_by(|a, b| component_order(&a.path, &b.path));
    refuse_case_only_duplicates(&out)?;
    Ok(out)
}

/// Two paths that differ only by letter case are one file on a case-insensitive file system
/// (macOS, Windows, many hubs' storage): which one a consumer gets would be up to chance.
fn refuse_case_only_duplicates(files: &[FoundFile]) -> Result<(), CheckpointError> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for f in files {
        if let Some(other) = seen.insert(f.path.to_lowercase(), &f.path) {
            return Err(CheckpointError::UnsafePath {
                path: f.path.clone(),
                problem: format!(
                    "differs from `{other}` only by letter case (one file on case-insensitive file systems)"
                ),
            });
        }
    }
    Ok(())
}

fn real_name(path: &Path) -> Result<String, CheckpointError> {
    let name = path
        .file_name()
        .ok_or_else(|| CheckpointError::UnsafePath {
            path: path.display().to_string(),
            problem: "no file name".into(),
        })?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| CheckpointError::UnsafePath {
            path: path.display().to_string(),
            problem: "file name is not valid UTF-8".into(),
        })
}

/// A Hugging Face cache repository folder (`models--ORG--NAME`) is not a checkpoint: the error
/// lists its snapshots, which are.
pub fn refuse_hf_cache_repository(root: &Path) -> Result<(), CheckpointError> {
    match fs::canonicalize(root) {
        Ok(real) if is_repo_folder(&real) => Err(CheckpointError::HfCacheRepository {
            path: root.to_path_buf(),
            snapshots: describe_snapshots(root),
        }),
        _ => Ok(()),
    }
}

/// One file of a Hugging Face cache snapshot given as the checkpoint: a link from
/// `.../snapshots/REV/` into that repository's `blobs/`.
fn single_cached_file(root: &Path, real_root: &Path) -> bool {
    let Some(parent) = root.parent().and_then(|p| fs::canonicalize(p).ok()) else {
        return false;
    };
    snapshot_blobs(&parent).is_some_and(|blobs| real_root.parent() == Some(blobs.as_path()))
}

struct Walker<'a> {
    /// `opts.ignore` made relative to the root.
    ignore: Vec<String>,
    root: PathBuf,
    /// The repository's `blobs/` when the root is a Hugging Face cache snapshot.
    hf_blobs: Option<PathBuf>,
    opts: &'a OpenOptions,
}

impl Walker<'_> {
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<FoundFile>,
    ) -> Result<(), CheckpointError> {
        let entries = fs::read_dir(dir).map_err(|e| CheckpointError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CheckpointError::io(dir, e))?;
            let fs_path = entry.path();
            let name = real_name(&fs_path)?;
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if self.ignored(&rel) {
                continue;
            }
            // Our own temp files (a write killed midway can leave one) are skipped, but only
            // regular files with exactly that name: a folder or link named like one is
            // attested like anything else, not hidden.
            if self.own_temp(&rel)
                && fs::symlink_metadata(&fs_path).is_ok_and(|m| m.file_type().is_file())
            {
                continue;
            }
            check_relative_path(&rel).map_err(|problem| CheckpointError::UnsafePath {
                path: rel.clone(),
                problem: problem.to_string(),
            })?;
            let file_type = entry
                .file_type()
                .map_err(|e| CheckpointError::io(&fs_path, e))?;
            if file_type.is_dir() {
                self.walk(&fs_path, &rel, out)?;
            } else if file_type.is_file() {
                out.push(FoundFile { path: rel, fs_path });
            } else if file_type.is_symlink() {
                let target = self.follow(&fs_path, &rel)?;
                out.push(FoundFile {
                    path: rel,
                    fs_path: target,
                });
            } else {
                return Err(CheckpointError::NotRegularFile { path: rel });
            }
        }
        Ok(())
    }

    fn ignored(&self, rel: &str) -> bool {
        let top_level = !rel.contains('/');
        let defaults = if self.opts.git_ignores_only {
            GIT_IGNORES
        } else {
            DEFAULT_IGNORES
        };
        let hf_metadata = !self.opts.git_ignores_only
            && rel
                .strip_prefix(HF_LOCAL_DIR_METADATA)
                .is_some_and(|r| r.is_empty() || r.starts_with('/'));
        hf_metadata
            || (top_level && defaults.contains(&rel))
            || self.ignore.iter().any(|p| {
                rel == p
                    || rel
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
    }

    /// Whether `rel` is named exactly like a temp file of our own atomic writes, at the top.
    fn own_temp(&self, rel: &str) -> bool {
        !rel.contains('/')
            && [
                weightgate_schemas::file_names::ATTESTATION_FILE_NAME,
                weightgate_schemas::file_names::OMS_SIGNATURE_FILE_NAME,
            ]
            .iter()
            .any(|t| crate::io::is_temp_for(rel, t))
    }

    fn follow(&self, link: &Path, rel: &str) -> Result<PathBuf, CheckpointError> {
        let refuse = |problem: String| CheckpointError::Symlink {
            path: rel.to_string(),
            problem,
        };
        if !self.opts.allow_symlinks && self.hf_blobs.is_none() {
            return Err(refuse("pass --allow-symlinks to follow links".into()));
        }
        let target = fs::canonicalize(link).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refuse("link loop".into())
            } else {
                refuse(format!("cannot resolve target: {e}"))
            }
        })?;
        // A cache snapshot's links lead to files directly in its own repository's blobs/.
        let cached_blob = self
            .hf_blobs
            .as_ref()
            .is_some_and(|blobs| target.parent() == Some(blobs.as_path()));
        if !cached_blob {
            if !self.opts.allow_symlinks {
                return Err(refuse(format!(
                    "target {} is not in this Hugging Face cache repository's blobs/; pass --allow-symlinks to follow links inside the checkpoint",
                    target.display()
                )));
            }
            if !target.starts_with(&self.root) {
                return Err(refuse(format!(
                    "target {} is outside {}",
                    target.display(),
                    self.root.display()
                )));
            }
        }
        let meta = fs::metadata(&target).map_err(|e| refuse(format!("target: {e}")))?;
        if !meta.is_file() {
            return Err(refuse("target is not a regular file".into()));
        }
        Ok(target)
    }
}
