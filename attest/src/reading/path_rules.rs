//! Path safety and the file order shared with OpenSSF model signing.

use std::cmp::Ordering;

/// Checks one relative POSIX path as it appears in a checkpoint or an index file.
/// Refuses absolute paths, `..`, `.`, empty components, NUL, control characters and backslashes
/// (a backslash is a separator on Windows, so `a\..\b` must not slip through).
pub fn check_relative_path(path: &str) -> Result<(), UnsafePath> {
    if path.is_empty() {
        return Err(UnsafePath::Empty);
    }
    if path.starts_with('/') {
        return Err(UnsafePath::Absolute);
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(UnsafePath::ControlCharacter(c as u32));
    }
    if path.contains('\\') {
        return Err(UnsafePath::Backslash);
    }
    for component in path.split('/') {
        match component {
            "" => return Err(UnsafePath::EmptyComponent),
            "." => return Err(UnsafePath::DotComponent),
            ".." => return Err(UnsafePath::DotDotComponent),
            _ => {}
        }
    }
    Ok(())
}

/// Why a relative path is not safe to use inside a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("control character U+{0:04X} in path")]
    ControlCharacter(u32),
    #[error("backslash in path")]
    Backslash,
    #[error("empty path component")]
    EmptyComponent,
    #[error("`.` path component")]
    DotComponent,
    #[error("`..` path component")]
    DotDotComponent,
}

/// Orders paths by their components, as Python's `sorted()` of `PurePosixPath` does in
/// `model_signing` (so `a/b` < `a-b` < `a.txt`). Rust `str` order is code-point order, as in Python.
pub fn component_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_components_not_bytes() {
        let mut v = vec!["a.txt", "a-b", "B", "a/b", ".cache/meta"];
        v.sort_by(|a, b| component_order(a, b));
        assert_eq!(v, [".cache/meta", "B", "a/b", "a-b", "a.txt"]);
    }

    #[test]
    fn refuses_unsafe_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "model.safetensors",
            "unet/diffusion_pytorch_model.safetensors",
            ".cache/x",
        ] {
            check_relative_path(good).unwrap();
        }
    }
}
