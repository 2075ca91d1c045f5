//! Signing: private keys, the claims a lab signs, DSSE envelopes, issuers' grants, `model.sig`
//! bundles, and the release step that ties them together. Compiled only with the `signing`
//! feature, so a verifier links none of it.

mod attest;
mod claims;
mod envelope;
mod grant;
mod model_sig;
mod private_keys;

pub use attest::{AttestError, AttestOutcome, AttestRequest, OmsOutcome, OmsSigning, attest};
pub use claims::{Claims, ClaimsError, ExpiresBeforeSigning};
pub use envelope::{AlreadySigned, cosign, sign_envelope};
pub use grant::{GrantError, SignedGrant, grant};
pub use model_sig::{OmsCertificate, OmsSignRequest, oms_manifest, sign_model, sign_oms_bundle};
pub use private_keys::{
    EcSigningKey, generate_signing_key, load_signing_key, parse_signing_key, signing_key_pem,
    write_ec_key_pair, write_key_pair,
};
