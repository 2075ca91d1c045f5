//! Statement v1: what a lab attests about a release. Field order in every struct is the
//! RFC 8949 core-deterministic order of its key names (shorter first, then bytewise), so the
//! encoding is canonical; a test checks it. Absent options are omitted, never `null`.

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};
use crate::digest::Digest;
use crate::ops::Ops;

/// The only statement version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Largest statement payload accepted.
pub const MAX_STATEMENT_LEN: usize = 16 << 20;

/// Why a statement or grant payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("unknown schema version {0} (this build reads version {SCHEMA_VERSION})")]
    UnknownVersion(u64),
    #[error(transparent)]
    Cbor(#[from] CborError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub model: Model,
    pub entity: Entity,
    pub compute: Compute,
    pub subject: Subject,
    /// Unix seconds.
    pub issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub references: Vec<Reference>,
    pub schema_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    pub version: String,
    pub open_weights: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub files: Vec<FileEntry>,
    /// SHA-256 over the concatenated raw file SHA-256s in path-component order (OpenSSF root).
    pub root_sha256: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub blake3: Digest,
    pub sha256: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorDigest>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorDigest {
    pub name: String,
    pub blake3: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// Cumulative operations: the sum of the components.
    pub total: Ops,
    pub inputs: EstimationInputs,
    pub method: EstimationMethod,
    pub components: Components,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<BaseModel>,
    pub pre_training: Ops,
    pub post_training: Ops,
    /// Generating non-public synthetic training data.
    pub synthetic_data: Ops,
}

impl Components {
    /// Sum of all components, `None` on overflow.
    pub fn sum(&self) -> Option<Ops> {
        let base = self.base_model.as_ref().map_or(Ops(0), |b| b.ops);
        self.pre_training
            .checked_add(self.post_training)?
            .checked_add(self.synthetic_data)?
            .checked_add(base)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseModel {
    pub ops: Ops,
    pub name: String,
    pub root_sha256: Digest,
    /// SHA-256 of the base model's own envelope bytes, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_sha256: Option<Digest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EstimationMethod {
    /// 6 x active parameters x training tokens.
    #[serde(rename = "6nd")]
    SixNd,
    /// accelerators x hours x peak FLOP/s x utilisation.
    #[serde(rename = "hardware")]
    Hardware,
    #[serde(rename = "measured")]
    Measured,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimationInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Ops>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_active: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_hours: Option<u64>,
    /// Average utilisation of peak, in per mille (no floats in signed data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation_permille: Option<u32>,
    /// Peak FLOP/s of one accelerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_per_accelerator: Option<Ops>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// ISO 17442 Legal Entity Identifier.
    pub lei: String,
    pub contact: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub legal_name: String,
    /// ISO 3166-1 alpha-2 country of the ultimate parent.
    pub parent_country: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceKind {
    ExportLicence,
    Notification,
    SafetyFramework,
    TransparencyReport,
}

impl ReferenceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReferenceKind::ExportLicence => "export-licence",
            ReferenceKind::Notification => "notification",
            ReferenceKind::SafetyFramework => "safety-framework",
            ReferenceKind::TransparencyReport => "transparency-report",
        }
    }
}

/// A licence, notification, framework or report the release relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub kind: ReferenceKind,
    pub number: String,
    pub authority: String,
    pub valid_from: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    /// ISO 3166-1 alpha-2 codes; empty means every destination.
    pub destinations: Vec<String>,
}

/// An issuer's countersignature of a reference for one model (payload of a grant envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub issued_at: i64,
    pub reference: Reference,
    pub root_sha256: Digest,
}

#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

impl Statement {
    pub fn encode(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    /// Strict decode; an unknown `schema_version` is reported as such before any other check.
    pub fn decode_strict(bytes: &[u8]) -> Result<Self, StatementError> {
        if bytes.len() <= MAX_STATEMENT_LEN
            && let Ok(probe) = ciborium::de::from_reader_with_recursion_limit::<VersionProbe, _>(
                bytes,
                cbor::RECURSION_LIMIT,
            )
            && probe.schema_version != u64::from(SCHEMA_VERSION)
        {
            return Err(StatementError::UnknownVersion(probe.schema_version));
        }
        Ok(cbor::from_slice_strict(bytes, MAX_STATEMENT_LEN)?)
    }
}

impl Grant {
    pub fn encode(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    pub fn decode_strict(bytes: &[u8]) -> Result<Self, StatementError> {
        Ok(cbor::from_slice_strict(bytes, 1 << 20)?)
    }
}
