//! Repository ids, ref names and revision ids as the store accepts them: every name that
//! becomes part of a path or an object key is checked here first.

/// A repository id or ref name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// `org/name` as the Hub spells repository ids: two components of `[A-Za-z0-9._-]`, not
/// starting with `.` or `-`, at most 96 characters each.
pub fn check_repo_id(repo: &str) -> Result<(), InvalidName> {
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 {
        return Err(InvalidName(format!("repository `{repo}` must be ORG/NAME")));
    }
    for p in parts {
        if p.is_empty()
            || p.len() > 96
            || p.starts_with(['.', '-'])
            || p.contains("..")
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(InvalidName(format!(
                "repository `{repo}`: `{p}` is not a valid name ([A-Za-z0-9._-], max 96)"
            )));
        }
    }
    Ok(())
}

/// A ref name (`main`, `v1.0`): one component of `[A-Za-z0-9._-]`.
pub fn check_ref(name: &str) -> Result<(), InvalidName> {
    if name.is_empty()
        || name.len() > 128
        || name.starts_with(['.', '-'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(InvalidName(format!(
            "revision `{name}` is not a valid ref name ([A-Za-z0-9._-])"
        )));
    }
    Ok(())
}

pub(crate) fn is_revision_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 7 or more lowercase hex digits: a commit id shortened as git shortens them.
pub(crate) fn is_short_revision_id(s: &str) -> bool {
    s.len() >= 7
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A 64-hex SHA-256 as blobs are named: anything else never becomes a path or key.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_refs_are_validated() {
        for good in ["lab/tiny", "Org-1/model.v2_x"] {
            check_repo_id(good).unwrap();
        }
        for bad in [
            "lab",
            "lab/tiny/x",
            "../x",
            "lab/..",
            "lab/.hidden",
            "lab/a b",
            "lab/%2e",
            "/x",
            "lab/",
        ] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
        check_ref("main").unwrap();
        for bad in ["", "..", "refs/pr/1", ".x", "a b", "a\\b"] {
            assert!(check_ref(bad).is_err(), "{bad}");
        }
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex("../x"));
    }
}
