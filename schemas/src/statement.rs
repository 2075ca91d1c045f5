//! Statement v1: what a lab signs about a checkpoint.

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::compute::Compute;
use crate::digest::Digest;
use crate::entity::Entity;
use crate::error::StatementError;
use crate::reference::Reference;

/// The only statement version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest statement accepted. Per-tensor digests cost ~100 bytes a tensor, and a large
/// mixture-of-experts checkpoint has ~10^5 tensors.
pub const MAX_STATEMENT_LEN: usize = 16 << 20;
/// Longest name, version, entity field, reference number or authority (bytes).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest file path or tensor name (bytes); Linux allows 4096 for a path.
pub const MAX_PATH_LEN: usize = 4096;

/// The signed claims about one checkpoint: its bytes, its training compute, who is responsible,
/// and the licences or notifications that go with it.
///
/// Fields of every type here are declared in RFC 8949 core-deterministic key order (shorter key
/// first, then bytewise), the order ciborium writes them in, so the encoding is canonical.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub model: Model,
    pub entity: Entity,
    pub compute: Compute,
    pub subject: Subject,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; absent means the attestation does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub references: Vec<Reference>,
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
}

/// Which model and release this is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    pub version: String,
    /// Whether the weights are (to be) published openly.
    pub open_weights: bool,
    /// Unix seconds: when the model was first placed on the EU market (EU AI Act Art. 111(3)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_on_market: Option<i64>,
}

/// The attested bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Sorted by path components, as for the root digest.
    pub files: Vec<FileEntry>,
    /// OpenSSF model-signing root: SHA-256 over the concatenated raw file SHA-256 digests.
    pub root_sha256: Digest,
}

/// One file of the checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative POSIX path inside the checkpoint.
    pub path: String,
    /// Bytes.
    pub size: u64,
    pub blake3: Digest,
    /// Equals the Hugging Face LFS oid.
    pub sha256: Digest,
    /// Per-tensor BLAKE3 digests of a safetensors file, in header order, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorDigest>>,
}

/// BLAKE3 of one tensor's data bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TensorDigest {
    pub name: String,
    pub blake3: Digest,
}

impl Statement {
    /// Strict decode (see [`crate::cbor`]). A statement of another `schema_version` is refused
    /// as [`StatementError::UnknownSchemaVersion`], even if its fields differ from v1's.
    pub fn decode_strict(bytes: &[u8]) -> Result<Self, StatementError> {
        match cbor::from_slice_strict::<Statement>(bytes, MAX_STATEMENT_LEN) {
            Ok(s) if s.schema_version == SCHEMA_VERSION => {
                s.check_lengths()?;
                s.subject.check_distinct_paths()?;
                Ok(s)
            }
            Ok(s) => Err(unsupported(s.schema_version.into())),
            Err(e) => {
                // Unknown fields are ignored here: only the version is wanted.
                #[derive(Deserialize)]
                struct Version {
                    schema_version: u64,
                }
                match cbor::from_slice_lenient::<Version>(bytes, MAX_STATEMENT_LEN) {
                    Some(v) if v.schema_version != u64::from(SCHEMA_VERSION) => {
                        Err(unsupported(v.schema_version))
                    }
                    _ => Err(e.into()),
                }
            }
        }
    }

    /// Every text field within [`MAX_TEXT_LEN`] (paths and tensor names within
    /// [`MAX_PATH_LEN`]): the per-tensor list may be long, but no single string is.
    pub fn check_lengths(&self) -> Result<(), StatementError> {
        let check = |field: &'static str, v: &str, max: usize| {
            if v.len() > max {
                Err(StatementError::FieldTooLong {
                    field,
                    len: v.len(),
                    max,
                })
            } else {
                Ok(())
            }
        };
        check("model.name", &self.model.name, MAX_TEXT_LEN)?;
        check("model.version", &self.model.version, MAX_TEXT_LEN)?;
        let e = &self.entity;
        if let Some(lei) = &e.lei {
            check("entity.lei", lei, MAX_TEXT_LEN)?;
        }
        for (f, v) in [
            ("entity.legal_name", &e.legal_name),
            ("entity.country", &e.country),
            ("entity.parent_country", &e.parent_country),
            ("entity.contact", &e.contact),
        ] {
            check(f, v, MAX_TEXT_LEN)?;
        }
        if let Some(a) = &self.compute.inputs.accelerator {
            check("compute.inputs.accelerator", a, MAX_TEXT_LEN)?;
        }
        if let Some(s) = &self.compute.inputs.source {
            check("compute.inputs.source", s, MAX_TEXT_LEN)?;
        }
        if let Some(b) = &self.compute.components.base_model {
            check("compute.components.base_model.name", &b.name, MAX_TEXT_LEN)?;
        }
        for r in &self.references {
            check("references.number", &r.number, MAX_TEXT_LEN)?;
            check("references.authority", &r.authority, MAX_TEXT_LEN)?;
            if let Some(h) = &r.holder {
                check("references.holder", h, MAX_TEXT_LEN)?;
            }
            for d in &r.destinations {
                check("references.destinations", d, MAX_TEXT_LEN)?;
            }
        }
        for f in &self.subject.files {
            check("subject.files.path", &f.path, MAX_PATH_LEN)?;
            for t in f.tensors.iter().flatten() {
                check("subject.files.tensors.name", &t.name, MAX_PATH_LEN)?;
            }
        }
        Ok(())
    }

    /// Canonical CBOR: the payload to sign.
    pub fn encode(&self) -> Vec<u8> {
        // Strings, integers, booleans, byte strings and arrays of known length always encode.
        cbor::to_vec(self).expect("a statement always encodes")
    }
}

impl Subject {
    /// Every file is listed once. Paths equal after Unicode normalization and case folding
    /// are the same file on case-insensitive or normalizing filesystems and to people reading
    /// a listing; a statement that lists one file twice could bind one entry and serve the
    /// other, so it is refused outright rather than resolved by a "first" or "last" rule.
    pub fn check_distinct_paths(&self) -> Result<(), StatementError> {
        let mut seen: std::collections::HashMap<String, &str> =
            std::collections::HashMap::with_capacity(self.files.len());
        for f in &self.files {
            if let Some(first) = seen.insert(equivalence_key(&f.path), &f.path) {
                return Err(StatementError::DuplicatePath {
                    first: first.escape_debug().to_string(),
                    second: f.path.escape_debug().to_string(),
                });
            }
        }
        Ok(())
    }
}

/// One key for all spellings of a path that may name the same file: Unicode's canonical
/// caseless match (D145: NFD, full case folding, NFD again), so case, `ſ`/`s`, `ς`/`σ`, `ß`/`ss`
/// and precomposed/decomposed forms all give one key.
pub fn equivalence_key(path: &str) -> String {
    use caseless::Caseless;
    use unicode_normalization::UnicodeNormalization;
    path.nfd().default_case_fold().nfd().collect()
}

fn unsupported(found: u64) -> StatementError {
    StatementError::UnknownSchemaVersion {
        found,
        supported: SCHEMA_VERSION,
    }
}
