//! Turning a checkpoint path into a list of regular files with safe relative paths.

use std::fs;
use std::path::{Path, PathBuf};

use weightgate_schemas::file_names::{DEFAULT_IGNORES, GIT_IGNORES};

use super::error::CheckpointError;
use super::path_rules::{check_relative_path, component_order};

/// How to walk a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Follow symbolic links to regular files inside the root (or, for a Hugging Face cache
    /// snapshot, inside that repository's cache folder). Refused otherwise.
    pub allow_symlinks: bool,
    /// Further paths (files or folders) to leave out, besides [`DEFAULT_IGNORES`]: relative to
    /// the root, or absolute inside it (an absolute path outside it is an error).
    pub ignore: Vec<String>,
    /// Leave out by default only what OpenSSF model signing leaves out ([`GIT_IGNORES`]), so
    /// weightgate's own files count as model files: for checking a `model.sig` another tool wrote.
    pub git_ignores_only: bool,
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
    if meta.file_type().is_symlink() && !opts.allow_symlinks {
        return Err(CheckpointError::Symlink {
            path: root.display().to_string(),
            problem: "pass --allow-symlinks to follow it".into(),
        });
    }
    let real_root = fs::canonicalize(root).map_err(|e| CheckpointError::io(root, e))?;
    let real_meta = fs::metadata(&real_root).map_err(|e| CheckpointError::io(root, e))?;
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
        link_base: hf_cache_repo_folder(&real_root).unwrap_or_else(|| real_root.clone()),
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

/// For `.../models--org--name/snapshots/REV`, the `models--org--name` folder whose `blobs/`
/// the snapshot's links point into.
fn hf_cache_repo_folder(real_root: &Path) -> Option<PathBuf> {
    let snapshots = real_root.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    Some(snapshots.parent()?.to_path_buf())
}

struct Walker<'a> {
    /// `opts.ignore` made relative to the root.
    ignore: Vec<String>,
    root: PathBuf,
    link_base: PathBuf,
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
        (top_level && defaults.contains(&rel))
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
        if !self.opts.allow_symlinks {
            return Err(refuse("pass --allow-symlinks to follow links".into()));
        }
        let target = fs::canonicalize(link).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refuse("link loop".into())
            } else {
                refuse(format!("cannot resolve target: {e}"))
            }
        })?;
        if !(target.starts_with(&self.root) || target.starts_with(&self.link_base)) {
            return Err(refuse(format!(
                "target {} is outside {}",
                target.display(),
                self.link_base.display()
            )));
        }
        let meta = fs::metadata(&target).map_err(|e| refuse(format!("target: {e}")))?;
        if !meta.is_file() {
            return Err(refuse("target is not a regular file".into()));
        }
        Ok(target)
    }
}
