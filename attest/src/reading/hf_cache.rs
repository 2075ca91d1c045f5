//! The Hugging Face Hub cache layout, as `huggingface_hub` writes it:
//!
//! ```text
//! HF_HUB_CACHE/models--ORG--NAME/
//!   blobs/<etag>                  file contents (the SHA-256 for LFS files, the git SHA-1 else)
//!   refs/main                     the commit id `main` resolved to (no newline; read as is)
//!   snapshots/<commit>/<path>     symbolic links to ../../blobs/<etag> (deeper paths: more `..`)
//! ```
//!
//! A snapshot's links point outside the snapshot by design, so the walker lets them through, but
//! only from a folder whose two parents really are `snapshots/` and `models--…`, and only into
//! that same repository's `blobs/`. A folder merely named `snapshots` widens nothing.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// What can go wrong finding a snapshot in the local cache.
#[derive(Debug, thiserror::Error)]
pub enum HfCacheError {
    #[error("`{repo_id}` is not a Hugging Face repository id: {problem}")]
    BadRepoId { repo_id: String, problem: String },
    #[error("`{revision}` is not a usable revision: {problem}")]
    BadRevision { revision: String, problem: String },
    #[error(
        "{repo_id} is not in the Hugging Face cache {} (download it first, e.g. `hf download {repo_id}`, or set HF_HUB_CACHE / HF_HOME)",
        cache.display()
    )]
    NotCached { repo_id: String, cache: PathBuf },
    #[error("{repo_id}: revision `{revision}` is not in the cache at {}; cached snapshots: {}", folder.display(), list_or_none(available))]
    RevisionNotCached {
        repo_id: String,
        revision: String,
        folder: PathBuf,
        available: Vec<String>,
    },
    #[error("{}: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The cache folder `huggingface_hub` uses: `HF_HUB_CACHE`, else the legacy
/// `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, with `HF_HOME` defaulting to
/// `XDG_CACHE_HOME/huggingface` and that to `~/.cache/huggingface`. `~` is expanded as the
/// client does. `var` reads one environment variable (the caller passes `std::env::var_os`).
pub fn hub_cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let home = || set("HOME").map(PathBuf::from);
    let expand = |v: OsString| -> Option<PathBuf> {
        let s = v.to_string_lossy();
        if s == "~" {
            return home();
        }
        match s.strip_prefix("~/") {
            Some(rest) => Some(home()?.join(rest)),
            None => Some(PathBuf::from(v)),
        }
    };
    if let Some(v) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
        return expand(v);
    }
    let hf_home = match set("HF_HOME") {
        Some(v) => expand(v)?,
        None => match set("XDG_CACHE_HOME") {
            Some(v) => expand(v)?.join("huggingface"),
            None => home()?.join(".cache/huggingface"),
        },
    };
    Some(hf_home.join("hub"))
}

/// The cache folder name of a model repository, as `repo_folder_name` in `huggingface_hub`:
/// `models--ORG--NAME` (or `models--NAME`). Checks the id as the client's `validate_repo_id` does.
pub(crate) fn repo_folder_name(repo_id: &str) -> Result<String, HfCacheError> {
    let bad = |problem: &str| HfCacheError::BadRepoId {
        repo_id: repo_id.to_string(),
        problem: problem.to_string(),
    };
    let parts: Vec<&str> = repo_id.split('/').collect();
    if parts.len() > 2 {
        return Err(bad("at most one `/` (ORG/NAME)"));
    }
    if repo_id.len() > 96 {
        return Err(bad("longer than 96 characters"));
    }
    if repo_id.contains("--") || repo_id.contains("..") {
        return Err(bad("`--` and `..` are not allowed"));
    }
    for p in &parts {
        if p.is_empty() {
            return Err(bad("empty organisation or name"));
        }
        if !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad("only letters, digits, `-`, `_` and `.` are allowed"));
        }
        if p.starts_with(['-', '.']) || p.ends_with(['-', '.']) {
            return Err(bad("a part cannot start or end with `-` or `.`"));
        }
    }
    Ok(format!("models--{}", parts.join("--")))
}

fn is_commit_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_repo_folder_name(name: &str) -> bool {
    name.strip_prefix("models--")
        .is_some_and(|rest| !rest.is_empty() && rest.split("--").all(|p| !p.is_empty()))
}

/// For a canonical folder `.../models--ORG--NAME/snapshots/REV`, the canonical `blobs/` folder
/// of that repository: the only place its links may lead.
pub(crate) fn snapshot_blobs(real_root: &Path) -> Option<PathBuf> {
    let snapshots = real_root.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo = snapshots.parent()?;
    if !is_repo_folder_name(repo.file_name()?.to_str()?) {
        return None;
    }
    let blobs = repo.join("blobs");
    let meta = fs::symlink_metadata(&blobs).ok()?;
    meta.is_dir().then_some(blobs)
}

/// For a folder `.../models--ORG--NAME/snapshots/NAME` whose NAME is not a 40-hex commit id,
/// why it is refused: the client names snapshots by commit, so such a folder is either debris
/// or was reached through a ref that does not hold a commit id.
pub(crate) fn odd_snapshot_name(real_root: &Path) -> Option<String> {
    let name = real_root.file_name()?.to_string_lossy().into_owned();
    let snapshots = real_root.parent()?;
    let in_cache = snapshots.file_name()? == "snapshots"
        && is_repo_folder_name(snapshots.parent()?.file_name()?.to_str()?);
    (in_cache && !is_commit_id(&name)).then(|| {
        format!(
            "a Hugging Face cache snapshot folder is named by its 40-hex commit id, and {name:?} is not one"
        )
    })
}

/// How a Hugging Face client laid out a downloaded folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HfDownload {
    /// `.../models--ORG--NAME/snapshots/<commit>` in the cache.
    CacheSnapshot { repo_id: String, commit: String },
    /// An `hf download --local-dir` folder (it holds `.cache/huggingface/`).
    LocalDir,
}

/// Whether `folder` is a Hugging Face download, and which layout: such a folder holds what the
/// client fetched, which may be fewer files than the repository has.
pub fn hf_download_layout(folder: &Path) -> Option<HfDownload> {
    let real = fs::canonicalize(folder).ok()?;
    if !real.is_dir() {
        return None;
    }
    if snapshot_blobs(&real).is_some() {
        let commit = real.file_name()?.to_str()?.to_string();
        let repo = real.parent()?.parent()?.file_name()?.to_str()?;
        let repo_id = repo.strip_prefix("models--")?.replace("--", "/");
        return Some(HfDownload::CacheSnapshot { repo_id, commit });
    }
    let metadata = real.join(weightgate_schemas::file_names::HF_LOCAL_DIR_METADATA);
    fs::symlink_metadata(metadata)
        .is_ok_and(|m| m.is_dir())
        .then_some(HfDownload::LocalDir)
}

/// True for a folder that is itself a cached repository (`models--ORG--NAME` with `snapshots/`).
pub(crate) fn is_repo_folder(real: &Path) -> bool {
    real.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_repo_folder_name)
        && real.join("snapshots").is_dir()
        && (real.join("blobs").is_dir() || real.join("refs").is_dir())
}

/// The snapshots of a cached repository as paths to pass, each with the refs pointing at it
/// (`…/snapshots/abc… (main)`), sorted.
pub(crate) fn describe_snapshots(repo: &Path) -> Vec<String> {
    let refs = read_refs(repo);
    let mut out: Vec<String> = match fs::read_dir(repo.join("snapshots")) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let commit = e.file_name().to_string_lossy().into_owned();
                let names: Vec<&str> = refs
                    .iter()
                    .filter(|(_, c)| *c == commit)
                    .map(|(r, _)| r.as_str())
                    .collect();
                let shown = e.path().display().to_string();
                if names.is_empty() {
                    shown
                } else {
                    format!("{shown} ({})", names.join(", "))
                }
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// (ref name, commit) for every file under `refs/`, e.g. ("main", "abc…"), ("refs/pr/1", …).
fn read_refs(repo: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&e.path(), &rel, out);
            } else if ft.is_file()
                && let Ok(text) = crate::io::read_capped_to_string(&e.path(), 1024)
            {
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo.join("refs"), "", &mut out);
    out.sort();
    out
}

/// Finds the snapshot of `repo_id` at `revision` (default `main`) in the cache folder `cache`,
/// as `huggingface_hub.try_to_load_from_cache` does: `refs/<revision>` when that file exists,
/// its text taken as it is (no trimming: the client opens `snapshots/<text>`), else a full
/// commit id directly; a unique commit-id prefix of at least 7 hex digits is accepted too.
/// A ref that does not hold exactly a 40-hex commit id is refused, and so is a commit-id
/// revision whose ref file names another commit (`snapshot_download` would take the id, the
/// file lookup the ref: the two clients would load different bytes).
pub fn find_snapshot(
    cache: &Path,
    repo_id: &str,
    revision: Option<&str>,
) -> Result<PathBuf, HfCacheError> {
    let repo = cache.join(repo_folder_name(repo_id)?);
    if !repo.is_dir() {
        return Err(HfCacheError::NotCached {
            repo_id: repo_id.to_string(),
            cache: cache.to_path_buf(),
        });
    }
    let revision = revision.unwrap_or("main");
    super::path_rules::check_relative_path(revision).map_err(|problem| {
        HfCacheError::BadRevision {
            revision: revision.to_string(),
            problem: problem.to_string(),
        }
    })?;
    let snapshots = repo.join("snapshots");
    let not_cached = || HfCacheError::RevisionNotCached {
        repo_id: repo_id.to_string(),
        revision: revision.to_string(),
        folder: repo.clone(),
        available: describe_snapshots(&repo),
    };
    let ref_file = repo.join("refs").join(revision);
    let commit = match read_ref(&ref_file) {
        Ok(Some(commit)) => {
            if is_commit_id(revision) && commit != revision {
                return Err(HfCacheError::Corrupt {
                    path: ref_file,
                    problem: format!(
                        "names commit {commit}, not the commit id it is named after: the Hugging Face client would load one or the other depending on the call"
                    ),
                });
            }
            commit
        }
        Ok(None) if is_commit_id(revision) => revision.to_string(),
        Ok(None) => unique_prefix(&snapshots, revision).ok_or_else(not_cached)?,
        Err(e) => return Err(e),
    };
    let snapshot = snapshots.join(&commit);
    if !snapshot.is_dir() {
        return Err(not_cached());
    }
    Ok(snapshot)
}

/// The commit a ref file names, read as the client reads it: the whole text is the snapshot
/// folder name, so anything but exactly 40 lowercase hex digits (a trailing newline included)
/// is refused rather than trimmed into a different folder than the client opens.
/// `None` when there is no such file.
fn read_ref(ref_file: &Path) -> Result<Option<String>, HfCacheError> {
    match fs::symlink_metadata(ref_file) {
        Ok(m) if m.is_dir() => return Ok(None),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(HfCacheError::Io {
                path: ref_file.to_path_buf(),
                error,
            });
        }
    }
    let text =
        crate::io::read_capped_to_string(ref_file, 1024).map_err(|error| HfCacheError::Io {
            path: ref_file.to_path_buf(),
            error,
        })?;
    if !is_commit_id(&text) {
        return Err(HfCacheError::Corrupt {
            path: ref_file.to_path_buf(),
            problem: format!(
                "holds {text:?}, not exactly a 40-hex commit id (the Hugging Face client takes the text as it is, so it would open snapshots/{text:?})"
            ),
        });
    }
    Ok(Some(text))
}

/// The one cached commit starting with `prefix` (7 to 39 lowercase hex digits), if exactly one.
fn unique_prefix(snapshots: &Path, prefix: &str) -> Option<String> {
    if !(7..40).contains(&prefix.len())
        || !prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut found = fs::read_dir(snapshots)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| is_commit_id(n) && n.starts_with(prefix));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |k| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.into())
    }

    #[test]
    fn cache_dir_follows_the_clients_precedence() {
        let home = [("HOME", "/home/u")];
        assert_eq!(
            hub_cache_dir(env(&home)).unwrap(),
            Path::new("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(
            hub_cache_dir(env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")])).unwrap(),
            Path::new("/x/huggingface/hub")
        );
        assert_eq!(
            hub_cache_dir(env(&[("HOME", "/h"), ("HF_HOME", "~/hf")])).unwrap(),
            Path::new("/h/hf/hub")
        );
        assert_eq!(
            hub_cache_dir(env(&[
                ("HF_HOME", "/hf"),
                ("HUGGINGFACE_HUB_CACHE", "/legacy")
            ]))
            .unwrap(),
            Path::new("/legacy")
        );
        assert_eq!(
            hub_cache_dir(env(&[
                ("HF_HOME", "/hf"),
                ("HUGGINGFACE_HUB_CACHE", "/legacy"),
                ("HF_HUB_CACHE", "/new")
            ]))
            .unwrap(),
            Path::new("/new")
        );
        assert_eq!(hub_cache_dir(env(&[])), None);
    }

    #[test]
    fn repo_ids_are_checked_like_the_client() {
        assert_eq!(repo_folder_name("org/name").unwrap(), "models--org--name");
        assert_eq!(repo_folder_name("gpt2").unwrap(), "models--gpt2");
        for bad in [
            "a/b/c", "a--b/c", "../x", "a/..", "", "/x", "a b/c", "-a/b", "a/b.",
        ] {
            assert!(repo_folder_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
