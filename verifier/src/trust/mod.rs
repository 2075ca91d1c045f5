//! What the verifier trusts, one kind per file: Ed25519 keys for weightgate envelopes (labs'
//! attestations, issuers' grants), and for OpenSSF `model.sig` bundles ECDSA keys and X.509
//! trust anchors. The policy builds them from its TOML (and the CLI from its flags); the stages
//! and the `model.sig` check verify with them. This module depends on no other module of the
//! crate, so both sides can depend on it.
//!
//! A new kind of root is a new file here and a field of the set it belongs to, such as
//! [`ModelSigningTrust`].

mod certificate_roots;
mod envelope_keys;
mod model_signing_keys;
mod sigstore_root;

pub use certificate_roots::CertificateTrust;
pub use envelope_keys::{Issuer, TrustedKey};
pub use model_signing_keys::ModelSigningKey;
pub use sigstore_root::{
    FulcioCa, LogKey, LogVerifyingKey, PUBLIC_GOOD_DATE, SigstoreIdentity, SigstoreRoot,
    SigstoreTrust, TimestampAuthority,
};

/// Everything a `model.sig` bundle may be signed with: any one of these will do.
#[derive(Debug, Clone, Default)]
pub struct ModelSigningTrust {
    /// Keys for the `key` method.
    pub keys: Vec<ModelSigningKey>,
    /// Trust anchors for the `certificate` method.
    pub certificates: Vec<CertificateTrust>,
    /// Sigstore trusted roots and identities for keyless bundles.
    pub sigstore: Vec<SigstoreTrust>,
}

impl ModelSigningTrust {
    /// Nothing is trusted, so no bundle can verify.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.certificates.is_empty() && self.sigstore.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_empty_only_without_keys_and_anchors() {
        let mut trust = ModelSigningTrust::default();
        assert!(trust.is_empty());
        trust.certificates.push(CertificateTrust {
            name: "ca".into(),
            anchors: Vec::new(),
            identities: Vec::new(),
        });
        assert!(!trust.is_empty());
    }
}
