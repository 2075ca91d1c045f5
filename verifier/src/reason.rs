//! Stable reason codes: one enum used by every check, the gate server's refusals and the audit
//! log. They appear as strings in `verify --json`; docs/verify.md lists them. Never rename a
//! code's string: add a new variant instead.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! reason_codes {
    ($($family:ident = $family_str:literal { $($variant:ident = $code:literal,)* })*) => {
        /// The check family a code belongs to: the part of its string before the dot.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Family {
            $($family,)*
        }

        impl Family {
            /// Every family, in the order of the checks.
            pub const ALL: &[Family] = &[$(Family::$family,)*];

            /// The stable string, e.g. `subject`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Family::$family => $family_str,)*
                }
            }
        }

        /// Why a check failed, as a stable machine-readable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($($variant,)*)*
        }

        impl ReasonCode {
            /// Every code, in the order of the checks.
            pub const ALL: &[ReasonCode] = &[$($(ReasonCode::$variant,)*)*];

            /// The stable string, e.g. `subject.digest_mismatch`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($(ReasonCode::$variant => concat!($family_str, ".", $code),)*)*
                }
            }

            /// The check family (`regime`, `subject`, ...).
            pub fn family(self) -> Family {
                match self {
                    $($(ReasonCode::$variant => Family::$family,)*)*
                }
            }
        }
    };
}

reason_codes! {
    Envelope = "envelope" {
        EnvelopeMalformed = "malformed",
        EnvelopeWrongPayloadType = "wrong_payload_type",
    }
    Signature = "signature" {
        SignatureInvalid = "invalid",
        SignatureUntrustedKey = "untrusted_key",
        SignatureRevokedKey = "revoked_key",
        SignatureKeyNotYetValid = "key_not_yet_valid",
        SignatureKeyExpired = "key_expired",
        SignatureTooFew = "too_few",
        SignatureWrongNamespace = "wrong_namespace",
    }
    Attestation = "attestation" {
        AttestationRevoked = "revoked",
    }
    Statement = "statement" {
        StatementMalformed = "malformed",
        StatementUnknownVersion = "unknown_version",
    }
    Subject = "subject" {
        SubjectMissingFile = "missing_file",
        SubjectExtraFile = "extra_file",
        SubjectSizeMismatch = "size_mismatch",
        SubjectDigestMismatch = "digest_mismatch",
        SubjectTensorMismatch = "tensor_mismatch",
        SubjectRootMismatch = "root_mismatch",
        SubjectHeaderInvalid = "header_invalid",
        SubjectUnsafePath = "unsafe_path",
        SubjectParameterMismatch = "parameter_mismatch",
    }
    Compute = "compute" {
        ComputeTotalMismatch = "total_mismatch",
        ComputeImplausible = "implausible",
        ComputeActiveExceedsTotal = "active_exceeds_total",
        ComputeInconsistentInputs = "inconsistent_inputs",
        ComputeInputsMissing = "inputs_missing",
        ComputePeakBelowDatasheet = "peak_below_datasheet",
        ComputeUtilisationUnjustified = "utilisation_unjustified",
    }
    Entity = "entity" {
        EntityLeiMissing = "lei_missing",
    }
    Time = "time" {
        TimeIssuedInFuture = "issued_in_future",
        TimeExpired = "expired",
    }
    Regime = "regime" {
        RegimeReferenceMissing = "reference_missing",
        RegimeReferenceExpired = "reference_expired",
        RegimeReferenceNotYetValid = "reference_not_yet_valid",
        RegimeDestinationNotCovered = "destination_not_covered",
        RegimeDestinationRequired = "destination_required",
        RegimeDestinationEmbargoed = "destination_embargoed",
        RegimeDestinationUnknown = "destination_unknown",
        RegimeAuthorityNotAccepted = "authority_not_accepted",
        RegimeGrantMissing = "grant_missing",
        RegimeReferenceWrongHolder = "reference_wrong_holder",
        RegimeNoDestinationServed = "no_destination_served",
    }
    Grant = "grant" {
        GrantInvalid = "invalid",
        GrantRevoked = "revoked",
    }
    Lineage = "lineage" {
        LineageBaseInvalid = "base_invalid",
        LineageBaseMismatch = "base_mismatch",
        LineageBaseAttestationMissing = "base_attestation_missing",
        LineageBaseUnderstated = "base_understated",
    }
    Oms = "oms" {
        OmsMissing = "missing",
        OmsMalformed = "malformed",
        OmsMediaType = "media_type",
        OmsPayloadType = "payload_type",
        OmsUnsupported = "unsupported",
        OmsKeyMismatch = "key_mismatch",
        OmsSignatureNotDer = "signature_not_der",
        OmsSignatureInvalid = "signature_invalid",
        OmsSubjects = "subjects",
        OmsRootMismatch = "root_mismatch",
        OmsUnsafePath = "unsafe_path",
        OmsMissingFile = "missing_file",
        OmsExtraFile = "extra_file",
        OmsDigestMismatch = "digest_mismatch",
        OmsWrongMethod = "wrong_method",
        OmsCertificateUntrusted = "certificate_untrusted",
        OmsCertificateValidity = "certificate_validity",
        OmsCertificateUsage = "certificate_usage",
        OmsCertificateIdentity = "certificate_identity",
        OmsCertificateCodeSigning = "certificate_code_signing",
        OmsCertificateNotCa = "certificate_not_ca",
        OmsCertificateIssuerUsage = "certificate_issuer_usage",
        OmsCertificatePathLength = "certificate_path_length",
        OmsCertificateAlgorithm = "certificate_algorithm",
        OmsCertificateCriticalExtension = "certificate_critical_extension",
        OmsCertificateTooMany = "certificate_too_many",
        OmsSigstoreTlog = "sigstore_tlog",
        OmsSigstoreSct = "sigstore_sct",
        OmsSigstoreIdentity = "sigstore_identity",
        OmsSigstoreIssuer = "sigstore_issuer",
        OmsSigstoreInclusionProof = "sigstore_inclusion_proof",
        OmsSigstoreCheckpoint = "sigstore_checkpoint",
        OmsSigstoreTimestamp = "sigstore_timestamp",
    }
    Store = "store" {
        StoreBlobChanged = "blob_changed",
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

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Family {
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
    use super::{Family, ReasonCode};

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
        let families: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
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

    /// A code's string is its family's string, a dot and a lowercase name; every family has a
    /// code and is named in docs/verify.md.
    #[test]
    fn every_code_belongs_to_its_family() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify.md"))
                .unwrap();
        for code in ReasonCode::ALL {
            let (family, name) = code.as_str().split_once('.').unwrap();
            assert_eq!(family, code.family().as_str(), "{code}");
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        for family in Family::ALL {
            assert!(
                ReasonCode::ALL.iter().any(|c| c.family() == *family),
                "{family} has no code"
            );
            assert!(doc.contains(&format!("`{family}.")), "{family} not in docs");
        }
    }
}
