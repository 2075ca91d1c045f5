//! Whether an issuer's key signed a certificate: the signature algorithms certificate
//! authorities use. ECDSA on P-256/P-384/P-521 with SHA-256/384/512, and RSA with 2048- to
//! 4096-bit moduli, PKCS#1 v1.5 or PSS (RFC 8017, parameters as RFC 4055 encodes them) with
//! SHA-256/384/512.

use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::Encode as _;
use x509_cert::der::oid::ObjectIdentifier;

use super::EcVerifyingKey;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// RSA moduli accepted from certificate authorities, in bits.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A certificate's public key, as an issuer of other certificates.
#[derive(Debug, Clone)]
pub(crate) enum IssuerKey {
    Ec(EcVerifyingKey),
    Rsa(rsa::PublicKey),
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn of_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            SHA256 => Some(Hash::Sha256),
            SHA384 => Some(Hash::Sha384),
            SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl IssuerKey {
    /// The subject key of `cert`; an error names what is not supported.
    pub(crate) fn of(cert: &Certificate) -> Result<Self, String> {
        let spki = cert.tbs_certificate().subject_public_key_info();
        let der = spki.to_der().map_err(|e| e.to_string())?;
        match spki.algorithm.oid {
            EC_PUBLIC_KEY => EcVerifyingKey::from_spki_der(&der, "issuer")
                .map(IssuerKey::Ec)
                .map_err(|e| e.to_string()),
            RSA_ENCRYPTION => {
                let key = rsa::PublicKey::from_public_key_der(&der)
                    .map_err(|e| format!("RSA key: {e}"))?;
                let bits = key.n().bit_width() as usize;
                if !RSA_BITS.contains(&bits) {
                    return Err(format!(
                        "RSA key of {bits} bits (weightgate accepts {} to {})",
                        RSA_BITS.start(),
                        RSA_BITS.end()
                    ));
                }
                Ok(IssuerKey::Rsa(key))
            }
            other => Err(format!(
                "key algorithm {other} (weightgate checks ECDSA and RSA issuers)"
            )),
        }
    }

    /// Whether this key signed `cert`: `Ok(false)` for a signature that does not verify, an
    /// error for an algorithm (or parameters) this key cannot have signed with.
    pub(crate) fn signed(&self, cert: &Certificate) -> Result<bool, String> {
        let tbs = cert.tbs_certificate().to_der().map_err(|e| e.to_string())?;
        let sig = cert.signature().as_bytes().unwrap_or_default();
        self.verifies(cert.signature_algorithm(), &tbs, sig)
    }

    /// Whether `sig` is this key's signature over `tbs` with algorithm `alg`: `Ok(false)` for a
    /// signature that does not verify, an error for an algorithm this key cannot sign with.
    pub(crate) fn verifies(
        &self,
        alg: &x509_cert::spki::AlgorithmIdentifierOwned,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        let null_or_absent = || {
            alg.parameters.as_ref().is_none_or(|p| {
                x509_cert::der::Tagged::tag(p) == x509_cert::der::Tag::Null && p.value().is_empty()
            })
        };
        match (self, alg.oid) {
            (IssuerKey::Ec(key), oid @ (ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512)) => {
                let hash = match oid {
                    ECDSA_SHA256 => Hash::Sha256,
                    ECDSA_SHA384 => Hash::Sha384,
                    _ => Hash::Sha512,
                };
                Ok(key.verify_prehash_der(&hash.digest(tbs), sig).is_ok())
            }
            (IssuerKey::Rsa(key), oid @ (RSA_SHA256 | RSA_SHA384 | RSA_SHA512)) => {
                if !null_or_absent() {
                    return Err("RSA PKCS#1 v1.5 signature with parameters".into());
                }
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
                    return Ok(false);
                };
                let key = key.clone();
                let ok = match oid {
                    RSA_SHA256 => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                        .verify(tbs, &sig)
                        .is_ok(),
                    RSA_SHA384 => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key)
                        .verify(tbs, &sig)
                        .is_ok(),
                    _ => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key)
                        .verify(tbs, &sig)
                        .is_ok(),
                };
                Ok(ok)
            }
            (IssuerKey::Rsa(key), RSA_PSS) => {
                let (hash, salt_len) = pss_parameters(alg.parameters.as_ref())?;
                let Ok(sig) = rsa::pss::Signature::try_from(sig) else {
                    return Ok(false);
                };
                let key = key.clone();
                let ok = match hash {
                    Hash::Sha256 => {
                        rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(key, salt_len)
                            .verify(tbs, &sig)
                            .is_ok()
                    }
                    Hash::Sha384 => {
                        rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(key, salt_len)
                            .verify(tbs, &sig)
                            .is_ok()
                    }
                    Hash::Sha512 => {
                        rsa::pss::VerifyingKey::<Sha512>::new_with_salt_len(key, salt_len)
                            .verify(tbs, &sig)
                            .is_ok()
                    }
                };
                Ok(ok)
            }
            (IssuerKey::Ec(_), oid) => Err(format!(
                "signature algorithm {oid} with an ECDSA issuer key (weightgate checks ECDSA with SHA-256/384/512)"
            )),
            (IssuerKey::Rsa(_), oid) => Err(format!(
                "signature algorithm {oid} with an RSA issuer key (weightgate checks PKCS#1 v1.5 and PSS with SHA-256/384/512)"
            )),
        }
    }
}

/// The hash and salt length of RSASSA-PSS parameters; MGF1 must use the same hash, as every
/// profile in use (RFC 4055 section 3.1, CA/Browser Forum) requires.
fn pss_parameters(params: Option<&x509_cert::der::Any>) -> Result<(Hash, usize), String> {
    let params = params.ok_or("RSA-PSS signature without parameters")?;
    let p = params
        .decode_as::<RsaPssParams<x509_cert::der::Any>>()
        .map_err(|e| format!("RSA-PSS parameters: {e}"))?;
    let (hash_oid, mask_oid) = (p.hash.oid, p.mask_gen.oid);
    let mgf_hash = p.mask_gen.parameters.as_ref().map(|h| h.oid);
    let salt_len = usize::from(p.salt_len);
    let hash = Hash::of_oid(hash_oid).ok_or_else(|| {
        format!("RSA-PSS with hash {hash_oid} (weightgate checks SHA-256/384/512)")
    })?;
    if mask_oid != MGF1 || mgf_hash != Some(hash_oid) {
        return Err("RSA-PSS whose mask generation is not MGF1 with the signature's hash".into());
    }
    Ok((hash, salt_len))
}

/// Whether the subject key of the certificate `cert_der` made `signature` over `message` with
/// the signature algorithm `algorithm` (DER `AlgorithmIdentifier`, as CMS and X.509 name it).
pub fn certificate_key_verifies(
    cert_der: &[u8],
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, String> {
    use x509_cert::der::Decode as _;
    let cert = Certificate::from_der(cert_der).map_err(|e| format!("certificate: {e}"))?;
    let alg = x509_cert::spki::AlgorithmIdentifierOwned::from_der(algorithm)
        .map_err(|e| format!("signature algorithm: {e}"))?;
    IssuerKey::of(&cert)?.verifies(&alg, message, signature)
}
