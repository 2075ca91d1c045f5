//! Why a statement or grant payload was refused.

use crate::cbor::CborError;

/// Why [`crate::Statement::decode_strict`] or [`crate::Grant::decode_strict`] refused bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Checked before the shape, so a newer statement is named as such, not as "unknown field".
    #[error("unknown schema version {found} (this build reads version {supported})")]
    UnknownSchemaVersion { found: u64, supported: u32 },
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Text fields have sane lengths: a 16 MiB model name is an attack, not a name.
    #[error("`{field}` is {len} bytes, over the {max}-byte limit")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// Two subject entries for one file: exactly the same path, or paths that differ only in
    /// case or Unicode normalization (one file on macOS, Windows and many hubs).
    #[error("subject lists `{first}` and `{second}`, which name the same file")]
    DuplicatePath { first: String, second: String },
}
