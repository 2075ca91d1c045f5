//! X.509 trust anchors for OpenSSF model-signing bundles signed with the `certificate` method,
//! and the identities each may vouch for.

/// Trust anchors for certificate-signed bundles, and whom they may vouch for.
#[derive(Debug, Clone)]
pub struct CertificateTrust {
    pub name: String,
    /// DER certificates.
    pub anchors: Vec<Vec<u8>>,
    /// When not empty, the signing certificate must name one of these (an alternative name,
    /// or its common name when it has exactly one).
    pub identities: Vec<String>,
}
