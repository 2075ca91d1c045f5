//! Path safety and the file order shared with OpenSSF model signing.

use std::cmp::Ordering;

/// Checks one relative POSIX path as it appears in a checkpoint or an index file.
/// Refuses absolute paths, `..`, `.`, empty components, NUL, control characters and backslashes
/// (a backslash is a separator on Windows, so `a\..\b` must not slip through).
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!("control character U+{:04X} in path", c as u32));
    }
    if path.contains('\\') {
        return Err("backslash in path".into());
    }
    for component in path.split('/') {
        match component {
            "" => return Err("empty path component".into()),
            "." => return Err("`.` path component".into()),
            ".." => return Err("`..` path component".into()),
            _ => {}
        }
    }
    Ok(())
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
