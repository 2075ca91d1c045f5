//! Ignore paths as users give them (absolute, or relative to the model root) turned into the
//! relative POSIX paths OpenSSF model signing records and matches: nothing from the signer's
//! machine outside the model ever reaches a signed file.

use std::path::{Component, Path, PathBuf};

use super::error::CheckpointError;
use super::path_rules::check_relative_path;

fn refuse(given: &str, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::IgnorePath {
        path: given.to_string(),
        problem: problem.into(),
    }
}

/// `path` with `.` dropped and `..` applied, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The longest existing ancestor of `path` resolved through links, with the rest appended.
fn resolve_existing_prefix(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(real) = cur.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(cur.file_name()?.to_owned());
        cur = cur.parent()?.to_path_buf();
    }
}

/// One ignore path made relative to the model folder `root`. Relative paths are taken from
/// the root (`./a//b/` is `a/b`); absolute ones must lie inside it. Glob characters, `..`,
/// the root itself and paths outside it are refused.
pub(crate) fn resolve_ignore_path(root: &Path, given: &str) -> Result<String, CheckpointError> {
    if given.is_empty() {
        return Err(refuse(given, "empty"));
    }
    if let Some(c) = given.chars().find(|c| matches!(c, '*' | '?' | '[')) {
        return Err(refuse(
            given,
            format!("`{c}`: ignore paths are literal paths, not patterns (OMS v1.0 6.2.1)"),
        ));
    }
    let path = Path::new(given);
    let rel: PathBuf = if path.is_absolute() {
        let cwd = std::env::current_dir().unwrap_or_default();
        let root_abs = lexical(&cwd.join(root));
        let target = lexical(path);
        match target.strip_prefix(&root_abs) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                let real_root = root
                    .canonicalize()
                    .map_err(|e| refuse(given, e.to_string()))?;
                let real = resolve_existing_prefix(&target)
                    .ok_or_else(|| refuse(given, "cannot be resolved"))?;
                real.strip_prefix(&real_root)
                    .map_err(|_| {
                        refuse(
                            given,
                            format!("is outside the model folder {}", real_root.display()),
                        )
                    })?
                    .to_path_buf()
            }
        }
    } else {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::CurDir => {}
                Component::Normal(n) => out.push(n),
                _ => return Err(refuse(given, "`..` would leave the model folder")),
            }
        }
        out
    };
    let rel = rel
        .to_str()
        .ok_or_else(|| refuse(given, "not valid UTF-8"))?
        .to_string();
    if rel.is_empty() {
        return Err(refuse(given, "is the model folder itself"));
    }
    check_relative_path(&rel).map_err(|problem| refuse(given, problem.to_string()))?;
    Ok(rel)
}

/// Every ignore path made relative to `root`, sorted and without repeats. A single-file model
/// has nothing to leave out, as in `model_signing`: the list is returned empty.
pub fn resolve_ignore_paths(root: &Path, given: &[String]) -> Result<Vec<String>, CheckpointError> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = given
        .iter()
        .map(|g| resolve_ignore_path(root, g))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_paths_become_relative_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("model");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let abs = |p: &str| root.join(p).to_str().unwrap().to_string();
        assert_eq!(
            resolve_ignore_path(&root, &abs("ignore-me")).unwrap(),
            "ignore-me"
        );
        assert_eq!(resolve_ignore_path(&root, &abs("sub/x")).unwrap(), "sub/x");
        assert_eq!(resolve_ignore_path(&root, &abs("sub/../y")).unwrap(), "y");
        assert_eq!(resolve_ignore_path(&root, "./a//b/").unwrap(), "a/b");
        // Through a link to the root.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        let via = link.join("sub/z");
        assert_eq!(
            resolve_ignore_path(&root, via.to_str().unwrap()).unwrap(),
            "sub/z"
        );
        for bad in [
            dir.path().join("elsewhere").to_str().unwrap().to_string(),
            "/etc/passwd".to_string(),
            abs(""),
            "../x".into(),
            "a/../../x".into(),
            "*.bin".into(),
            String::new(),
            ".".into(),
        ] {
            let e = resolve_ignore_path(&root, &bad).unwrap_err();
            assert!(
                matches!(e, CheckpointError::IgnorePath { .. }),
                "{bad}: {e}"
            );
        }
    }
}
