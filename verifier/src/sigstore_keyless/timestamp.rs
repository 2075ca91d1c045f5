//! RFC 3161 timestamps (`verificationMaterial.timestampVerificationData.rfc3161Timestamps`):
//! a timestamping authority of the trusted root signed, at its `genTime`, the SHA-2 digest of
//! the bundle's signature. Checked as the Sigstore client spec and sigstore-python do: the
//! response is granted, its token is CMS `SignedData` (RFC 5652) with one signer over an
//! `id-ct-TSTInfo`, the signed attributes carry that content type and the TSTInfo's digest,
//! the signer's key is the root's TSA certificate (its chain valid at `genTime` and marked
//! timeStamping), `genTime` lies in the authority's validity window, and the message imprint
//! is the digest of the signature. Certificates the token embeds are not trusted: the root's
//! are.

use sha2::Digest as _;
use weightgate_attest::keys::{CertificatePurpose, certificate_key_verifies, verify_chain_for};

use super::der::{Tlv, alg_der, expect, read};
use crate::trust::TimestampAuthority;

const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const TST_INFO: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

/// A timestamp that checked out.
#[derive(Debug, Clone)]
pub struct VerifiedTimestamp {
    /// `genTime`, Unix seconds.
    pub time: i64,
    /// The authority's certificate subject, for messages.
    pub authority: String,
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn of(alg: &Tlv<'_>) -> Result<Self, String> {
        let mut inner = alg.content;
        let oid = expect(&mut inner, 0x06, "a hash algorithm's OID")?;
        match oid.content {
            SHA256 => Ok(Hash::Sha256),
            SHA384 => Ok(Hash::Sha384),
            SHA512 => Ok(Hash::Sha512),
            _ => Err("a hash algorithm other than SHA-256/384/512".into()),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The signature algorithm a bare key algorithm (as some TSAs write `signatureAlgorithm`)
    /// means with this digest.
    fn signature_oid(self, key: &[u8]) -> Option<&'static [u8]> {
        const ECDSA: [&[u8]; 3] = [
            &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02],
            &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03],
            &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04],
        ];
        const RSA: [&[u8]; 3] = [
            &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B],
            &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C],
            &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D],
        ];
        let i = self as usize;
        match key {
            EC_PUBLIC_KEY => Some(ECDSA[i]),
            RSA_ENCRYPTION => Some(RSA[i]),
            _ => None,
        }
    }
}

/// What a token signs, read out of a `TimeStampResp`.
struct Token<'a> {
    tst_info: &'a [u8],
    /// The signed attributes re-tagged as the `SET OF` they are signed as.
    signed_attributes: Vec<u8>,
    signature_algorithm: Vec<u8>,
    signature: &'a [u8],
}

fn parse_response(der: &[u8]) -> Result<Token<'_>, String> {
    let mut input = der;
    let resp = expect(&mut input, 0x30, "TimeStampResp")?;
    if !input.is_empty() {
        return Err("bytes after the TimeStampResp".into());
    }
    let mut resp = resp.content;
    let mut status = expect(&mut resp, 0x30, "PKIStatusInfo")?.content;
    let code = expect(&mut status, 0x02, "PKIStatus")?;
    // granted (0) or grantedWithMods (1).
    if !matches!(code.content, [0] | [1]) {
        return Err("the response's status is not granted".into());
    }
    let mut content_info = expect(&mut resp, 0x30, "timeStampToken")?.content;
    if expect(&mut content_info, 0x06, "the token's content type")?.content != SIGNED_DATA {
        return Err("the token is not CMS SignedData".into());
    }
    let mut explicit = expect(&mut content_info, 0xA0, "the token's content")?.content;
    let mut signed_data = expect(&mut explicit, 0x30, "SignedData")?.content;
    expect(&mut signed_data, 0x02, "SignedData version")?;
    expect(&mut signed_data, 0x31, "SignedData digestAlgorithms")?;
    let mut encap = expect(&mut signed_data, 0x30, "encapContentInfo")?.content;
    if expect(&mut encap, 0x06, "eContentType")?.content != TST_INFO {
        return Err("the token's content is not a TSTInfo".into());
    }
    let mut econtent = expect(&mut encap, 0xA0, "eContent")?.content;
    let tst_info = expect(&mut econtent, 0x04, "eContent OCTET STRING")?.content;
    // certificates [0] and crls [1] are optional; then signerInfos.
    let mut next = read(&mut signed_data)?;
    while matches!(next.tag, 0xA0 | 0xA1) {
        next = read(&mut signed_data)?;
    }
    if next.tag != 0x31 {
        return Err("SignedData has no signerInfos".into());
    }
    let mut signer_infos = next.content;
    let mut signer = expect(&mut signer_infos, 0x30, "SignerInfo")?.content;
    if !signer_infos.is_empty() {
        return Err("the token has more than one signer".into());
    }
    expect(&mut signer, 0x02, "SignerInfo version")?;
    read(&mut signer)?; // sid: the key is the root's TSA certificate, whatever it names
    let digest = Hash::of(&expect(&mut signer, 0x30, "SignerInfo digestAlgorithm")?)?;
    let attributes = expect(&mut signer, 0xA0, "signedAttrs")?;
    let mut signed_attributes = attributes.raw.to_vec();
    signed_attributes[0] = 0x31;
    let sig_alg = expect(&mut signer, 0x30, "SignerInfo signatureAlgorithm")?;
    let signature = expect(&mut signer, 0x04, "SignerInfo signature")?.content;
    let signature_algorithm = {
        let mut inner = sig_alg.content;
        let oid = expect(&mut inner, 0x06, "signatureAlgorithm OID")?;
        match digest.signature_oid(oid.content) {
            Some(full) => alg_der(full, oid.content == RSA_ENCRYPTION),
            None => sig_alg.raw.to_vec(),
        }
    };
    // The signed attributes must bind the content: its type and its digest.
    let mut attrs = attributes.content;
    let (mut content_type, mut message_digest) = (None, None);
    while !attrs.is_empty() {
        let mut attr = expect(&mut attrs, 0x30, "an Attribute")?.content;
        let oid = expect(&mut attr, 0x06, "an Attribute's type")?.content;
        let mut values = expect(&mut attr, 0x31, "an Attribute's values")?.content;
        let value = read(&mut values)?;
        let slot = match oid {
            CONTENT_TYPE => &mut content_type,
            MESSAGE_DIGEST => &mut message_digest,
            _ => continue,
        };
        if slot.is_some() || !values.is_empty() {
            return Err("a content-type or message-digest attribute appears twice".into());
        }
        *slot = Some(value);
    }
    match content_type {
        Some(t) if t.tag == 0x06 && t.content == TST_INFO => {}
        _ => return Err("the signed attributes do not name the TSTInfo content type".into()),
    }
    match message_digest {
        Some(d) if d.tag == 0x04 && d.content == digest.digest(tst_info).as_slice() => {}
        _ => return Err("the signed message digest is not the TSTInfo's".into()),
    }
    Ok(Token {
        tst_info,
        signed_attributes,
        signature_algorithm,
        signature,
    })
}

/// `genTime` and the message imprint of a TSTInfo.
fn parse_tst_info(der: &[u8]) -> Result<(i64, Hash, &[u8]), String> {
    let mut input = der;
    let mut info = expect(&mut input, 0x30, "TSTInfo")?.content;
    expect(&mut info, 0x02, "TSTInfo version")?;
    expect(&mut info, 0x06, "TSTInfo policy")?;
    let mut imprint = expect(&mut info, 0x30, "messageImprint")?.content;
    let hash = Hash::of(&expect(&mut imprint, 0x30, "messageImprint hashAlgorithm")?)?;
    let hashed = expect(&mut imprint, 0x04, "messageImprint hashedMessage")?.content;
    expect(&mut info, 0x02, "TSTInfo serialNumber")?;
    let gen_time = expect(&mut info, 0x18, "TSTInfo genTime")?.content;
    Ok((generalized_time(gen_time)?, hash, hashed))
}

/// `YYYYMMDDHHMMSS[.f*]Z` (RFC 3161 2.4.2 requires UTC with `Z`) as Unix seconds.
fn generalized_time(text: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(text).map_err(|_| "genTime is not ASCII".to_string())?;
    let bad = || format!("genTime `{text}` is not YYYYMMDDHHMMSS[.f]Z");
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let whole = body.split('.').next().unwrap_or_default();
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<i16>().map_err(|_| bad());
    // Every field is at most two digits but the year, so the narrowing casts are exact.
    let civil = jiff::civil::DateTime::new(
        n(0..4)?,
        n(4..6)? as i8,
        n(6..8)? as i8,
        n(8..10)? as i8,
        n(10..12)? as i8,
        n(12..14)? as i8,
        0,
    )
    .map_err(|_| bad())?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .map_err(|_| bad())
}

/// Checks the DER `TimeStampResp` `response` over `signature` against each authority.
pub fn verify_timestamp(
    response: &[u8],
    signature: &[u8],
    authorities: &[TimestampAuthority],
) -> Result<VerifiedTimestamp, String> {
    let token = parse_response(response).map_err(|e| format!("malformed timestamp: {e}"))?;
    let (time, imprint_hash, imprint) =
        parse_tst_info(token.tst_info).map_err(|e| format!("malformed timestamp: {e}"))?;
    if imprint != imprint_hash.digest(signature).as_slice() {
        return Err("the timestamp is over another signature than the bundle's".into());
    }
    let mut problems = Vec::new();
    for authority in authorities {
        let Some(tsa_cert) = authority.chain.first() else {
            continue;
        };
        match certificate_key_verifies(
            tsa_cert,
            &token.signature_algorithm,
            &token.signed_attributes,
            token.signature,
        ) {
            Ok(true) => {}
            Ok(false) => {
                problems.push(format!("not signed by {}", authority.name));
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: {e}", authority.name));
                continue;
            }
        }
        if !authority.valid_at(time) {
            problems.push(format!(
                "signed by {} outside its validity window in the trusted root",
                authority.name
            ));
            continue;
        }
        let (anchor, below) = authority.chain.split_last().expect("chain is not empty");
        let chain: Vec<Vec<u8>> = if below.is_empty() {
            vec![anchor.clone()]
        } else {
            below.to_vec()
        };
        if let Err(e) = verify_chain_for(
            &chain,
            std::slice::from_ref(anchor),
            time,
            CertificatePurpose::TimeStamping,
        ) {
            problems.push(format!("{}: {e}", authority.name));
            continue;
        }
        return Ok(VerifiedTimestamp {
            time,
            authority: authority.name.clone(),
        });
    }
    Err(if problems.is_empty() {
        "the trusted root lists no timestamp authority".into()
    } else {
        format!("the timestamp is {}", problems.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_times_parse_strictly() {
        assert_eq!(generalized_time(b"20260513192333Z"), Ok(1_778_700_213));
        assert_eq!(generalized_time(b"20260513192333.25Z"), Ok(1_778_700_213));
        for bad in [
            &b"20261313192333Z"[..],
            b"20260230000000Z",
            b"20260513192333",
            b"2026051319233Z",
            b"2026-5-13192333Z",
            b"\xff",
        ] {
            assert!(generalized_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_responses_are_errors_not_panics() {
        let real = [0x30, 0x03, 0x02, 0x01, 0x00];
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x1F, 0x01, 0x00],
            &real,
        ] {
            assert!(verify_timestamp(input, b"sig", &[]).is_err());
        }
    }
}
