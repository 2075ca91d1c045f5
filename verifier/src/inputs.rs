//! Reading the files a verification is given besides the checkpoint (the attestation, a base
//! model's attestation, grants, any envelope to show) with the cap the format sets for each, so
//! a sparse 2 GiB "attestation" or `/dev/zero` costs at most the cap. Errors name the path, what
//! it was read as, and the cap.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use weightgate_attest::hashing::MappedFile;
use weightgate_attest::reading::CheckpointError;
use weightgate_schemas::{MAX_ENVELOPE_LEN, MAX_GRANT_LEN};

/// What a file is read as; sets its cap and names it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Attestation,
    BaseAttestation,
    Grant,
    /// An envelope of either kind (attestation or grant), e.g. to show or cosign it.
    Envelope,
}

impl InputKind {
    /// The largest file read as this kind.
    pub fn cap(self) -> u64 {
        match self {
            InputKind::Attestation | InputKind::BaseAttestation | InputKind::Envelope => {
                MAX_ENVELOPE_LEN as u64
            }
            InputKind::Grant => MAX_GRANT_LEN as u64,
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Attestation => "attestation",
            InputKind::BaseAttestation => "base attestation",
            InputKind::Grant => "grant",
            InputKind::Envelope => "envelope",
        })
    }
}

/// Why an input file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Larger than the cap: `size` is what the file system reported, `None` for a stream
    /// (pipe, device) that went on past the cap.
    #[error(
        "{}: cannot read the {kind}: {} is over the limit of {cap} bytes for this kind of file",
        path.display(),
        size.map_or_else(|| "the content".to_string(), |s| format!("{s} bytes"))
    )]
    TooLarge {
        path: PathBuf,
        kind: InputKind,
        size: Option<u64>,
        cap: u64,
    },
    // The I/O error is shown inline, not as a source, so it is not printed twice.
    #[error("{}: cannot read the {kind}: {error}", path.display())]
    Io {
        path: PathBuf,
        kind: InputKind,
        error: io::Error,
    },
    #[error("{}: the {kind} changed while it was read ({what})", path.display())]
    Changed {
        path: PathBuf,
        kind: InputKind,
        what: String,
    },
}

/// Reads `path` whole as `kind`, refusing it unread if it is over the cap.
pub fn read_input(path: &Path, kind: InputKind) -> Result<Vec<u8>, InputError> {
    let cap = kind.cap();
    let io_error = |error| InputError::Io {
        path: path.to_path_buf(),
        kind,
        error,
    };
    let too_large = |size| InputError::TooLarge {
        path: path.to_path_buf(),
        kind,
        size,
        cap,
    };
    let size = std::fs::metadata(path).map_err(io_error)?.len();
    if size > cap {
        return Err(too_large(Some(size)));
    }
    weightgate_attest::io::read_capped(path, cap).map_err(|e| {
        // Over the cap here means a stream, or a file that grew since the size check.
        if e.kind() == io::ErrorKind::InvalidData {
            too_large(None)
        } else {
            io_error(e)
        }
    })
}

/// A grant envelope (`weightgate grant`), capped at [`MAX_GRANT_LEN`].
pub fn read_grant(path: &Path) -> Result<Vec<u8>, InputError> {
    read_input(path, InputKind::Grant)
}

/// An attestation's bytes: a regular file is mapped rather than copied into the heap, so a
/// maximum-size envelope costs its size once, not twice (docs/threat-model.md); anything else
/// is read up to the cap.
pub struct Attestation {
    path: PathBuf,
    bytes: AttestationBytes,
}

enum AttestationBytes {
    Mapped(MappedFile),
    Read(Vec<u8>),
}

impl Attestation {
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            AttestationBytes::Mapped(m) => m.bytes(),
            AttestationBytes::Read(v) => v,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails if a mapped file changed since it was mapped: call it after the bytes were used,
    /// so a decision never rests on bytes that were rewritten underneath.
    pub fn check_unchanged(&self) -> Result<(), InputError> {
        match &self.bytes {
            AttestationBytes::Mapped(m) => m.check_unchanged().map_err(|e| InputError::Changed {
                path: self.path.clone(),
                kind: InputKind::Attestation,
                what: match e {
                    CheckpointError::ChangedWhileHashing { what, .. } => what,
                    other => other.to_string(),
                },
            }),
            AttestationBytes::Read(_) => Ok(()),
        }
    }
}

impl std::ops::Deref for Attestation {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

/// The attestation envelope at `path`, capped at [`MAX_ENVELOPE_LEN`].
pub fn read_attestation(path: &Path) -> Result<Attestation, InputError> {
    let cap = InputKind::Attestation.cap();
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() > 0 && m.len() <= cap => AttestationBytes::Mapped(
            MappedFile::open(path, &path.display().to_string(), m.len()).map_err(|e| {
                InputError::Io {
                    path: path.to_path_buf(),
                    kind: InputKind::Attestation,
                    error: match e {
                        CheckpointError::Io { error, .. } => error,
                        other => io::Error::other(other.to_string()),
                    },
                }
            })?,
        ),
        _ => AttestationBytes::Read(read_input(path, InputKind::Attestation)?),
    };
    Ok(Attestation {
        path: path.to_path_buf(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_inputs_are_refused_unread_naming_path_kind_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.att");
        std::fs::File::create(&p).unwrap().set_len(2 << 30).unwrap();
        let e = read_attestation(&p).err().unwrap();
        assert!(matches!(
            e,
            InputError::TooLarge {
                size: Some(2147483648),
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            format!(
                "{}: cannot read the attestation: 2147483648 bytes is over the limit of {} bytes for this kind of file",
                p.display(),
                MAX_ENVELOPE_LEN
            )
        );
        let e = read_grant(&p).unwrap_err().to_string();
        assert!(e.ends_with("cannot read the grant: 2147483648 bytes is over the limit of 65536 bytes for this kind of file"), "{e}");
        let e = read_grant(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, InputError::TooLarge { size: None, .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "/dev/zero: cannot read the grant: the content is over the limit of 65536 bytes for this kind of file"
        );
    }

    #[test]
    fn attestations_are_mapped_and_changes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.att");
        std::fs::write(&p, b"envelope bytes").unwrap();
        let a = read_attestation(&p).unwrap();
        assert_eq!(&*a, b"envelope bytes");
        a.check_unchanged().unwrap();
        std::fs::write(&p, b"other, longer envelope bytes").unwrap();
        let e = a.check_unchanged().unwrap_err().to_string();
        assert!(
            e.contains("a.att: the attestation changed while it was read"),
            "{e}"
        );
        let e = read_attestation(&dir.path().join("missing.att"))
            .err()
            .unwrap();
        assert!(matches!(e, InputError::Io { .. }));
        assert!(
            e.to_string()
                .contains("missing.att: cannot read the attestation: "),
            "{e}"
        );
    }
}
