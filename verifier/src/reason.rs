//! Stable reason codes: one enum used by every check, the gate server's refusals and the audit
//! log. They appear as strings in `verify --json`; docs/verify.md lists them. Never rename a
//! code's string: add a new variant instead.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! reason_codes {
    ($($variant:ident = $code:literal,)*) => {
        /// Why a check failed, as a stable machine-readable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($variant,)*
        }

        impl ReasonCode {
            /// Every code, in the order of the checks.
            pub const ALL: &[ReasonCode] = &[$(ReasonCode::$variant,)*];

            /// The stable string, e.g. `subject.digest_mismatch`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $code,)*
                }
            }
        }
    };
}

reason_codes! {
    EnvelopeMalformed = "envelope.malformed",
    EnvelopeWrongPayloadType = "envelope.wrong_payload_type",
    SignatureInvalid = "signature.invalid",
    SignatureUntrustedKey = "signature.untrusted_key",
    SignatureRevokedKey = "signature.revoked_key",
    SignatureKeyNotYetValid = "signature.key_not_yet_valid",
    SignatureKeyExpired = "signature.key_expired",
    SignatureTooFew = "signature.too_few",
    AttestationRevoked = "attestation.revoked",
    StatementMalformed = "statement.malformed",
    StatementUnknownVersion = "statement.unknown_version",
    SubjectMissingFile = "subject.missing_file",
    SubjectExtraFile = "subject.extra_file",
    SubjectSizeMismatch = "subject.size_mismatch",
    SubjectDigestMismatch = "subject.digest_mismatch",
    SubjectTensorMismatch = "subject.tensor_mismatch",
    SubjectRootMismatch = "subject.root_mismatch",
    SubjectHeaderInvalid = "subject.header_invalid",
    SubjectUnsafePath = "subject.unsafe_path",
    SubjectParameterMismatch = "subject.parameter_mismatch",
    ComputeTotalMismatch = "compute.total_mismatch",
    ComputeImplausible = "compute.implausible",
    ComputeActiveExceedsTotal = "compute.active_exceeds_total",
    ComputeInconsistentInputs = "compute.inconsistent_inputs",
    ComputeInputsMissing = "compute.inputs_missing",
    TimeIssuedInFuture = "time.issued_in_future",
    TimeExpired = "time.expired",
    RegimeReferenceMissing = "regime.reference_missing",
    RegimeReferenceExpired = "regime.reference_expired",
    RegimeReferenceNotYetValid = "regime.reference_not_yet_valid",
    RegimeDestinationNotCovered = "regime.destination_not_covered",
    RegimeDestinationRequired = "regime.destination_required",
    RegimeDestinationEmbargoed = "regime.destination_embargoed",
    RegimeDestinationUnknown = "regime.destination_unknown",
    RegimeAuthorityNotAccepted = "regime.authority_not_accepted",
    RegimeGrantMissing = "regime.grant_missing",
    RegimeReferenceWrongHolder = "regime.reference_wrong_holder",
    GrantInvalid = "grant.invalid",
    GrantRevoked = "grant.revoked",
    LineageBaseInvalid = "lineage.base_invalid",
    LineageBaseMismatch = "lineage.base_mismatch",
    LineageBaseAttestationMissing = "lineage.base_attestation_missing",
    LineageBaseUnderstated = "lineage.base_understated",
    OmsMissing = "oms.missing",
    OmsMalformed = "oms.malformed",
    OmsMediaType = "oms.media_type",
    OmsPayloadType = "oms.payload_type",
    OmsUnsupported = "oms.unsupported",
    OmsKeyMismatch = "oms.key_mismatch",
    OmsSignatureNotDer = "oms.signature_not_der",
    OmsSignatureInvalid = "oms.signature_invalid",
    OmsSubjects = "oms.subjects",
    OmsRootMismatch = "oms.root_mismatch",
    OmsUnsafePath = "oms.unsafe_path",
    OmsMissingFile = "oms.missing_file",
    OmsExtraFile = "oms.extra_file",
    OmsDigestMismatch = "oms.digest_mismatch",
    OmsWrongMethod = "oms.wrong_method",
    OmsCertificateUntrusted = "oms.certificate_untrusted",
    OmsCertificateValidity = "oms.certificate_validity",
    OmsCertificateUsage = "oms.certificate_usage",
    OmsCertificateIdentity = "oms.certificate_identity",
    StoreBlobChanged = "store.blob_changed",
}

impl ReasonCode {
    /// The check family, the part before the dot (`regime`, `subject`, ...).
    pub fn family(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or_default()
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ReasonCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    /// docs/verify.md is the reference for `--json` consumers: every code is listed there, and
    /// every code the reference table lists exists.
    #[test]
    fn codes_and_docs_agree_both_ways() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify.md"))
                .unwrap();
        let missing: Vec<&str> = ReasonCode::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !doc.contains(&format!("`{c}`")))
            .collect();
        assert!(missing.is_empty(), "not in docs/verify.md: {missing:?}");
        let families: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.family()).collect();
        let mut unknown = Vec::new();
        for piece in doc.split('`').skip(1).step_by(2) {
            let Some((family, rest)) = piece.split_once('.') else {
                continue;
            };
            let looks_like_code = families.contains(&family)
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
            if looks_like_code && !ReasonCode::ALL.iter().any(|c| c.as_str() == piece) {
                unknown.push(piece);
            }
        }
        assert!(
            unknown.is_empty(),
            "docs/verify.md names codes that do not exist: {unknown:?}"
        );
        let mut strings: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        strings.sort_unstable();
        strings.dedup();
        assert_eq!(
            strings.len(),
            ReasonCode::ALL.len(),
            "a code is listed twice"
        );
    }
}
