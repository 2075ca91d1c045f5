//! What a check found, as values: a [`Finding`] for a check that passed or was skipped, a
//! [`Problem`] (with its [`ReasonCode`]) for one that failed. The stages record these; the
//! sentences are written in one place, [`crate::render`].

use weightgate_schemas::estimate::ComputeProblem;
use weightgate_schemas::{EstimationMethod, Ops};

use crate::policy::{Comparator, Factor, ReferenceLabel, RegimeDenial};
use crate::reason::ReasonCode;

/// A regime's threshold: the comparison and the operation count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub comparator: Comparator,
    pub ops: Ops,
}

/// Which digest of a file differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashName {
    Sha256,
    Blake3,
}

/// How the subject's bytes were bound to the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Hashed now, with these digests (`blake3`, `sha256`, `sha256+blake3`).
    Hashed { bytes: u64, digests: &'static str },
    /// Both digests of the bytes in the store: computed while they were written there, or, for
    /// `reused_files` files already stored, when those were admitted (unchanged since).
    HashedWhileStored { bytes: u64, reused_files: usize },
    /// Bound when the revision was admitted (content-addressed store).
    Admitted,
}

/// What a check that passed (or was skipped) established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The envelope decoded canonically.
    Envelope { bytes: usize, signatures: usize },
    /// Enough distinct trusted keys signed; `names` are the keys' names.
    Signatures {
        valid: usize,
        required: usize,
        names: Vec<String>,
    },
    /// A signature that does not count and does not matter (enough others hold).
    Ignored(Problem),
    /// The statement was not decoded because the signatures do not hold.
    StatementNotRead,
    /// The attestation, by its payload digest, is not revoked.
    NotRevoked { attestation: String },
    /// Who released what.
    Statement {
        model: String,
        version: String,
        entity: String,
        lei: Option<String>,
    },
    /// Every attested file matches.
    Subject {
        files: usize,
        binding: Binding,
        root_sha256: String,
    },
    /// The `model.sig` bundle verified; `notes` are its own findings (no key hint, ...).
    ModelSig {
        files: usize,
        signer: Option<String>,
        root_sha256: String,
        same_root: bool,
        notes: Vec<String>,
    },
    /// The `model.sig` was checked when the revision was admitted.
    ModelSigAtAdmission,
    /// The compute claim adds up and agrees with the estimates from its own inputs.
    Compute {
        total: Ops,
        method: EstimationMethod,
        tolerance_percent: u32,
        estimates: Vec<(EstimationMethod, u128)>,
    },
    /// Issued in the past, not expired.
    Time {
        issued_at: i64,
        expires_at: Option<i64>,
    },
    /// The statement names no base model.
    NotDerived,
    /// The base model is one the policy knows, with the compute counted as the policy records.
    KnownBase { name: String, ops: Ops },
    /// No base envelope given, and the policy does not require one.
    BaseCountedAsClaimed { name: String },
    /// The base envelope's signature, root and operations agree with the statement.
    BaseVerified { name: String },
    /// A grant countersigned by a trusted issuer.
    Grant {
        reference: ReferenceLabel,
        issuer: String,
    },
    /// The policy activates no regime.
    NoRegimes,
    /// Provenance only was asked for: no regime was judged.
    RegimesNotJudged,
    /// A regime that does not apply here and now; `why` is the regime's own explanation.
    RegimeSkipped { why: String, notes: Vec<String> },
    /// A regime that applies, in its transitional period.
    RegimeTransitional { why: String, notes: Vec<String> },
    /// The compute the regime counts (times the policy's margin) is not above its threshold.
    RegimeBelow {
        effective_ops: u128,
        margin: Factor,
        threshold: Threshold,
        notes: Vec<String>,
    },
    /// Above the threshold, with what satisfies the regime.
    RegimeSatisfied {
        threshold: Threshold,
        satisfied: String,
        notes: Vec<String>,
    },
}

/// What a failed check found. Each problem has exactly one [`ReasonCode`] ([`Problem::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    EnvelopeMalformed {
        error: String,
    },
    EnvelopeWrongPayloadType {
        payload_type: String,
    },
    SignedByRevokedKey {
        keyid: String,
    },
    KeyNotYetValid {
        keyid: String,
        name: String,
    },
    KeyExpired {
        keyid: String,
        name: String,
    },
    SignatureInvalid {
        keyid: String,
    },
    SignedByUntrustedKey {
        keyid: String,
    },
    TooFewSignatures {
        valid: usize,
        required: usize,
    },
    /// Admission under an organisation whose `[[namespace]]` binds other keys.
    WrongNamespace {
        why: String,
    },
    AttestationRevoked {
        attestation: String,
    },
    StatementMalformed {
        error: String,
    },
    StatementUnknownVersion {
        error: String,
    },
    /// The policy requires an LEI and the entity states none.
    LeiMissing {
        entity: String,
    },
    /// The checkpoint could not be opened as one (an unsafe path, a bad header or index).
    CheckpointUnreadable {
        code: ReasonCode,
        error: String,
    },
    /// The attested root is not the digest of the attested file digests.
    RootNotFromDigests {
        attested: String,
        computed: String,
    },
    FilesOutOfOrder,
    MissingFile {
        path: String,
    },
    /// `renamed_from`: an attested file of the same size that is missing.
    ExtraFile {
        path: String,
        renamed_from: Option<String>,
    },
    SizeMismatch {
        path: String,
        size: u64,
        attested: u64,
    },
    ParameterMismatch {
        claimed: u64,
        headers: u64,
    },
    DigestMismatch {
        path: String,
        digest: HashName,
    },
    /// The files on disk hash to another root than the attested one.
    RootMismatch {
        on_disk: String,
    },
    /// The tensors of a file that changed (empty: only the header or padding differs).
    TensorsChanged {
        path: String,
        tensors: Vec<String>,
    },
    /// A problem the `model.sig` check found, in its own words.
    ModelSig {
        code: ReasonCode,
        message: String,
    },
    ModelSigMissing,
    TotalNotSum {
        total: Ops,
        sum: Ops,
    },
    ComponentsOverflow,
    ActiveExceedsHeaders {
        active: u64,
        headers: u64,
    },
    Estimate(ComputeProblem),
    /// Near a regime's threshold, both estimates are needed.
    CrossCheckMissing {
        total: Ops,
        near: CrossCheckBand,
    },
    /// Near a regime's threshold, the estimates disagree by more than the factor.
    CrossCheckDisagrees {
        total: Ops,
        near: CrossCheckBand,
        estimates: Vec<(EstimationMethod, u128)>,
        factor: Factor,
    },
    IssuedInFuture {
        issued_at: i64,
        now: i64,
        skew: i64,
    },
    Expired {
        expires_at: i64,
    },
    BaseEnvelopeWithoutBase,
    /// The statement's base model count disagrees with the policy's record of that model.
    KnownBaseDisagrees {
        code: ReasonCode,
        name: String,
        root_sha256: String,
        recorded: Ops,
        claimed: Option<Ops>,
    },
    BaseAttestationRequired {
        name: String,
    },
    BaseEnvelopeNotNamed,
    BaseEnvelopeMalformed {
        error: String,
    },
    BaseNotAttestation,
    BaseRevoked {
        attestation: String,
    },
    BaseNotSignedByTrustedKey,
    BaseStatementMalformed {
        error: String,
    },
    BaseRootDiffers {
        attested: String,
        named: String,
    },
    BaseOpsDiffer {
        attested: Ops,
        claimed: Option<Ops>,
    },
    GrantMalformed {
        index: usize,
        error: String,
    },
    GrantWrongPayloadType {
        index: usize,
        payload_type: String,
    },
    GrantRevoked {
        index: usize,
        reference: ReferenceLabel,
        grant: String,
    },
    GrantUntrustedIssuer {
        index: usize,
        reference: ReferenceLabel,
    },
    /// At admission: the regimes refuse every destination a download request can carry
    /// (`judged` of them), for these reasons, so no request could be served.
    NoDestinationServed {
        judged: usize,
        codes: Vec<ReasonCode>,
    },
    /// A regime refuses, above its threshold.
    RegimeDenied {
        threshold: Threshold,
        margin: Factor,
        denial: RegimeDenial,
        notes: Vec<String>,
    },
}

/// The regime whose threshold a total lies near, and the band around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossCheckBand {
    pub band: Factor,
    pub regime: String,
    pub threshold: Ops,
}

impl Problem {
    /// The stable reason code.
    pub fn code(&self) -> ReasonCode {
        use ReasonCode as C;
        match self {
            Problem::EnvelopeMalformed { .. } => C::EnvelopeMalformed,
            Problem::EnvelopeWrongPayloadType { .. } => C::EnvelopeWrongPayloadType,
            Problem::SignedByRevokedKey { .. } => C::SignatureRevokedKey,
            Problem::KeyNotYetValid { .. } => C::SignatureKeyNotYetValid,
            Problem::KeyExpired { .. } => C::SignatureKeyExpired,
            Problem::SignatureInvalid { .. } => C::SignatureInvalid,
            Problem::SignedByUntrustedKey { .. } => C::SignatureUntrustedKey,
            Problem::TooFewSignatures { .. } => C::SignatureTooFew,
            Problem::WrongNamespace { .. } => C::SignatureWrongNamespace,
            Problem::AttestationRevoked { .. } => C::AttestationRevoked,
            Problem::StatementMalformed { .. } => C::StatementMalformed,
            Problem::StatementUnknownVersion { .. } => C::StatementUnknownVersion,
            Problem::LeiMissing { .. } => C::EntityLeiMissing,
            Problem::CheckpointUnreadable { code, .. }
            | Problem::ModelSig { code, .. }
            | Problem::KnownBaseDisagrees { code, .. } => *code,
            Problem::RootNotFromDigests { .. }
            | Problem::FilesOutOfOrder
            | Problem::RootMismatch { .. } => C::SubjectRootMismatch,
            Problem::MissingFile { .. } => C::SubjectMissingFile,
            Problem::ExtraFile { .. } => C::SubjectExtraFile,
            Problem::SizeMismatch { .. } => C::SubjectSizeMismatch,
            Problem::ParameterMismatch { .. } => C::SubjectParameterMismatch,
            Problem::DigestMismatch { .. } => C::SubjectDigestMismatch,
            Problem::TensorsChanged { .. } => C::SubjectTensorMismatch,
            Problem::ModelSigMissing => C::OmsMissing,
            Problem::TotalNotSum { .. } | Problem::ComponentsOverflow => C::ComputeTotalMismatch,
            Problem::ActiveExceedsHeaders { .. } => C::ComputeActiveExceedsTotal,
            Problem::Estimate(ComputeProblem::MissingInputs(_)) => C::ComputeInputsMissing,
            Problem::Estimate(ComputeProblem::BelowEstimate(_)) => C::ComputeInconsistentInputs,
            Problem::Estimate(ComputeProblem::PeakBelowDatasheet(_)) => {
                C::ComputePeakBelowDatasheet
            }
            Problem::Estimate(ComputeProblem::UtilisationUnjustified(_)) => {
                C::ComputeUtilisationUnjustified
            }
            Problem::CrossCheckMissing { .. } => C::ComputeInputsMissing,
            Problem::CrossCheckDisagrees { .. } => C::ComputeImplausible,
            Problem::IssuedInFuture { .. } => C::TimeIssuedInFuture,
            Problem::Expired { .. } => C::TimeExpired,
            Problem::BaseEnvelopeWithoutBase
            | Problem::BaseEnvelopeNotNamed
            | Problem::BaseRootDiffers { .. }
            | Problem::BaseOpsDiffer { .. } => C::LineageBaseMismatch,
            Problem::BaseAttestationRequired { .. } => C::LineageBaseAttestationMissing,
            Problem::BaseEnvelopeMalformed { .. }
            | Problem::BaseNotAttestation
            | Problem::BaseRevoked { .. }
            | Problem::BaseNotSignedByTrustedKey
            | Problem::BaseStatementMalformed { .. } => C::LineageBaseInvalid,
            Problem::GrantMalformed { .. }
            | Problem::GrantWrongPayloadType { .. }
            | Problem::GrantUntrustedIssuer { .. } => C::GrantInvalid,
            Problem::GrantRevoked { .. } => C::GrantRevoked,
            Problem::RegimeDenied { denial, .. } => denial.code(),
            Problem::NoDestinationServed { .. } => C::RegimeNoDestinationServed,
        }
    }
}
