//! Stable reason codes. They appear in `verify --json`, the gate server's refusals and the audit
//! log; docs/verify.md lists them. Never rename one: add a new code instead.

pub const ENVELOPE_MALFORMED: &str = "envelope.malformed";
pub const ENVELOPE_WRONG_PAYLOAD_TYPE: &str = "envelope.wrong_payload_type";
pub const SIGNATURE_INVALID: &str = "signature.invalid";
pub const SIGNATURE_UNTRUSTED_KEY: &str = "signature.untrusted_key";
pub const SIGNATURE_REVOKED_KEY: &str = "signature.revoked_key";
pub const SIGNATURE_KEY_NOT_YET_VALID: &str = "signature.key_not_yet_valid";
pub const SIGNATURE_KEY_EXPIRED: &str = "signature.key_expired";
pub const SIGNATURE_TOO_FEW: &str = "signature.too_few";
pub const ATTESTATION_REVOKED: &str = "attestation.revoked";
pub const STATEMENT_MALFORMED: &str = "statement.malformed";
pub const STATEMENT_UNKNOWN_VERSION: &str = "statement.unknown_version";
pub const SUBJECT_MISSING_FILE: &str = "subject.missing_file";
pub const SUBJECT_EXTRA_FILE: &str = "subject.extra_file";
pub const SUBJECT_SIZE_MISMATCH: &str = "subject.size_mismatch";
pub const SUBJECT_DIGEST_MISMATCH: &str = "subject.digest_mismatch";
pub const SUBJECT_TENSOR_MISMATCH: &str = "subject.tensor_mismatch";
pub const SUBJECT_ROOT_MISMATCH: &str = "subject.root_mismatch";
pub const SUBJECT_HEADER_INVALID: &str = "subject.header_invalid";
pub const SUBJECT_UNSAFE_PATH: &str = "subject.unsafe_path";
pub const SUBJECT_PARAMETER_MISMATCH: &str = "subject.parameter_mismatch";
pub const COMPUTE_TOTAL_MISMATCH: &str = "compute.total_mismatch";
pub const COMPUTE_IMPLAUSIBLE: &str = "compute.implausible";
pub const COMPUTE_ACTIVE_EXCEEDS_TOTAL: &str = "compute.active_exceeds_total";
pub const TIME_ISSUED_IN_FUTURE: &str = "time.issued_in_future";
pub const TIME_EXPIRED: &str = "time.expired";
pub const REGIME_REFERENCE_MISSING: &str = "regime.reference_missing";
pub const REGIME_REFERENCE_EXPIRED: &str = "regime.reference_expired";
pub const REGIME_REFERENCE_NOT_YET_VALID: &str = "regime.reference_not_yet_valid";
pub const REGIME_DESTINATION_NOT_COVERED: &str = "regime.destination_not_covered";
pub const REGIME_DESTINATION_REQUIRED: &str = "regime.destination_required";
pub const REGIME_DESTINATION_EMBARGOED: &str = "regime.destination_embargoed";
pub const REGIME_AUTHORITY_NOT_ACCEPTED: &str = "regime.authority_not_accepted";
pub const REGIME_GRANT_MISSING: &str = "regime.grant_missing";
pub const GRANT_INVALID: &str = "grant.invalid";
pub const LINEAGE_BASE_INVALID: &str = "lineage.base_invalid";
pub const LINEAGE_BASE_MISMATCH: &str = "lineage.base_mismatch";

// OpenSSF model signing (`model.sig`).
pub const OMS_MISSING: &str = "oms.missing";
pub const OMS_MALFORMED: &str = "oms.malformed";
pub const OMS_MEDIA_TYPE: &str = "oms.media_type";
pub const OMS_PAYLOAD_TYPE: &str = "oms.payload_type";
pub const OMS_UNSUPPORTED: &str = "oms.unsupported";
pub const OMS_KEY_MISMATCH: &str = "oms.key_mismatch";
pub const OMS_SIGNATURE_NOT_DER: &str = "oms.signature_not_der";
pub const OMS_SIGNATURE_INVALID: &str = "oms.signature_invalid";
pub const OMS_SUBJECTS: &str = "oms.subjects";
pub const OMS_ROOT_MISMATCH: &str = "oms.root_mismatch";
pub const OMS_UNSAFE_PATH: &str = "oms.unsafe_path";
pub const OMS_MISSING_FILE: &str = "oms.missing_file";
pub const OMS_EXTRA_FILE: &str = "oms.extra_file";
pub const OMS_DIGEST_MISMATCH: &str = "oms.digest_mismatch";

/// Every code, for documentation tests.
pub const ALL: &[&str] = &[
    ENVELOPE_MALFORMED,
    ENVELOPE_WRONG_PAYLOAD_TYPE,
    SIGNATURE_INVALID,
    SIGNATURE_UNTRUSTED_KEY,
    SIGNATURE_REVOKED_KEY,
    SIGNATURE_KEY_NOT_YET_VALID,
    SIGNATURE_KEY_EXPIRED,
    SIGNATURE_TOO_FEW,
    ATTESTATION_REVOKED,
    STATEMENT_MALFORMED,
    STATEMENT_UNKNOWN_VERSION,
    SUBJECT_MISSING_FILE,
    SUBJECT_EXTRA_FILE,
    SUBJECT_SIZE_MISMATCH,
    SUBJECT_DIGEST_MISMATCH,
    SUBJECT_TENSOR_MISMATCH,
    SUBJECT_ROOT_MISMATCH,
    SUBJECT_HEADER_INVALID,
    SUBJECT_UNSAFE_PATH,
    SUBJECT_PARAMETER_MISMATCH,
    COMPUTE_TOTAL_MISMATCH,
    COMPUTE_IMPLAUSIBLE,
    COMPUTE_ACTIVE_EXCEEDS_TOTAL,
    TIME_ISSUED_IN_FUTURE,
    TIME_EXPIRED,
    REGIME_REFERENCE_MISSING,
    REGIME_REFERENCE_EXPIRED,
    REGIME_REFERENCE_NOT_YET_VALID,
    REGIME_DESTINATION_NOT_COVERED,
    REGIME_DESTINATION_REQUIRED,
    REGIME_DESTINATION_EMBARGOED,
    REGIME_AUTHORITY_NOT_ACCEPTED,
    REGIME_GRANT_MISSING,
    GRANT_INVALID,
    LINEAGE_BASE_INVALID,
    LINEAGE_BASE_MISMATCH,
    OMS_MISSING,
    OMS_MALFORMED,
    OMS_MEDIA_TYPE,
    OMS_PAYLOAD_TYPE,
    OMS_UNSUPPORTED,
    OMS_KEY_MISMATCH,
    OMS_SIGNATURE_NOT_DER,
    OMS_SIGNATURE_INVALID,
    OMS_SUBJECTS,
    OMS_ROOT_MISMATCH,
    OMS_UNSAFE_PATH,
    OMS_MISSING_FILE,
    OMS_EXTRA_FILE,
    OMS_DIGEST_MISMATCH,
];

#[cfg(test)]
mod tests {
    /// docs/verify.md is the reference for `--json` consumers: every code must be listed there.
    #[test]
    fn every_code_is_documented_once_defined() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/verify.md"))
                .unwrap();
        let missing: Vec<&str> = super::ALL
            .iter()
            .copied()
            .filter(|c| !doc.contains(&format!("`{c}`")))
            .collect();
        assert!(missing.is_empty(), "not in docs/verify.md: {missing:?}");
        let mut sorted = super::ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), super::ALL.len(), "a code is listed twice");
    }
}
