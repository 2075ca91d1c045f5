//! Just enough DER (X.690) to walk a CMS timestamp token: definite lengths, one-byte tags, each
//! element's content and its whole encoding (signed attributes are verified as encoded).

/// One element: its tag byte, its content, and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads the next element off `input`.
pub fn read<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, String> {
    let all = *input;
    let (&tag, rest) = all.split_first().ok_or("truncated DER")?;
    if tag & 0x1F == 0x1F {
        return Err("a multi-byte DER tag".into());
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("a DER length that is indefinite or too long".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER".into());
    }
    let header = all.len() - rest.len();
    *input = &rest[len..];
    Ok(Tlv {
        tag,
        content: &rest[..len],
        raw: &all[..header + len],
    })
}

/// Reads the next element, which must carry `tag`; `what` names it in the error.
pub fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, String> {
    let tlv = read(input).map_err(|e| format!("{what}: {e}"))?;
    if tlv.tag != tag {
        return Err(format!("{what} is missing"));
    }
    Ok(tlv)
}

/// The DER `AlgorithmIdentifier` of the OID content `oid`, with NULL parameters if `null`.
pub fn alg_der(oid: &[u8], null: bool) -> Vec<u8> {
    let mut inner = vec![0x06, oid.len() as u8];
    inner.extend_from_slice(oid);
    if null {
        inner.extend_from_slice(&[0x05, 0x00]);
    }
    let mut out = vec![0x30, inner.len() as u8];
    out.extend(inner);
    out
}
