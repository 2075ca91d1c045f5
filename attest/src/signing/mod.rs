//! Signing: signers, the claims a lab signs, DSSE envelopes, issuers' grants, `model.sig`
//! bundles, and the release step that ties them together. Compiled only with the `signing`
//! feature, so a verifier links none of it.
//!
//! Everything signs through a [`Signer`] and never sees a private key; the key files
//! `weightgate keygen` writes are [`Ed25519FileSigner`] and [`EcdsaFileSigner`], and
//! [`load_signer`] opens one for a [`SigningPurpose`]. With the `pkcs11` feature,
//! [`Pkcs11Signer`] signs with a key held in a PKCS#11 token, named by a [`Pkcs11Uri`].

mod attest;
mod claims;
mod ecdsa_file_signer;
mod ed25519_file_signer;
mod envelope;
mod grant;
mod key_pair_files;
mod model_sig;
#[cfg(feature = "pkcs11")]
mod pkcs11_signer;
#[cfg(feature = "pkcs11")]
mod pkcs11_token;
#[cfg(feature = "pkcs11")]
mod pkcs11_uri;
mod signer;

pub use attest::{AttestError, AttestOutcome, AttestRequest, OmsOutcome, OmsSigning, attest};
pub use claims::{Claims, ClaimsError, ExpiresBeforeSigning};
pub use ecdsa_file_signer::EcdsaFileSigner;
pub use ed25519_file_signer::Ed25519FileSigner;
pub use envelope::{CosignError, cosign, sign_envelope};
pub use grant::{GrantError, SignedGrant, grant};
pub use model_sig::{OmsCertificate, OmsSignRequest, sign_model};
#[cfg(feature = "pkcs11")]
pub use pkcs11_signer::{GeneratedTokenKey, Pkcs11Signer, generate_token_key};
#[cfg(feature = "pkcs11")]
pub use pkcs11_token::{Pkcs11Error, Pkcs11Options, TokenKeyType};
#[cfg(feature = "pkcs11")]
pub use pkcs11_uri::{ObjectType, Pkcs11Uri, Pkcs11UriError};
pub use signer::{SignError, SignatureAlgorithm, Signer, SigningPurpose, load_signer};
