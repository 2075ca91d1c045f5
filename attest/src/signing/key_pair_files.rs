//! The two files of a key pair: `BASE.key` (private, 0600) and `BASE.pub` (public, 0644).

use std::path::{Path, PathBuf};

use crate::io::{Replace, write_atomically};
use crate::keys::KeyError;

/// Writes `BASE.key` (0600) and `BASE.pub` (0644), each atomically; refuses to overwrite either.
pub(crate) fn write_pem_pair(
    base: &Path,
    private_pem: &str,
    public_pem: &str,
) -> Result<(), KeyError> {
    let with_ext = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (private, public) = (with_ext(".key"), with_ext(".pub"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(KeyError::Write {
                path: p.clone(),
                error: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists; refusing to overwrite it",
                ),
            });
        }
    }
    write_atomically(&private, private_pem.as_bytes(), 0o600, Replace::Never).map_err(|error| {
        KeyError::Write {
            path: private.clone(),
            error,
        }
    })?;
    write_atomically(&public, public_pem.as_bytes(), 0o644, Replace::Never).map_err(|error| {
        KeyError::Write {
            path: public,
            error,
        }
    })
}
