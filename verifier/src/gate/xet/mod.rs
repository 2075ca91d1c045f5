//! Xet uploads: the content-addressed storage (CAS) that the unchanged `hf_xet` client uploads
//! to (Xet Protocol Specification 1.1), by job: hashes, the xorb and shard formats, the CAS
//! routes with their access tokens, the per-namespace xorb storage and what of it counts against
//! the namespace's staging cap, and reconstruction of each uploaded file into the upload area,
//! where the commit finds it by SHA-256.

pub mod access;
mod authority;
mod buffers;
pub mod cas;
pub mod hash;
pub mod reconstruct;
pub mod shard;
pub mod staging;
mod upload_sink;
pub mod xorb;

#[cfg(test)]
mod client_fixture_tests {
    //! A xorb and shard `hf_xet` 1.8 uploaded for a 99,390-byte file (testdata/xet): the hashes
    //! computed here must be the client's.
    use super::hash::XetHash;
    use super::{shard, xorb};

    const XORB: &[u8] = include_bytes!("../../../../testdata/xet/client-xorb.bin");
    const SHARD: &[u8] = include_bytes!("../../../../testdata/xet/client-shard.bin");
    const XORB_HASH: &str = "284e02ad9983b727af91752ac01367da75fba6d913ec215383daede095";
    const FILE_HASH: &str = "4ce8062a0286ddca209aa3086e5c371b8fa041d99f69f9ae45deeedde1ba6eb9";
    const SHA256: &str = "0155de73b921466f6e009f5e289f39a78c43b736e23ca985705ffc7a60b5d938";

    #[test]
    fn the_clients_xorb_and_shard_check_out() {
        let (chunks, hash) = xorb::parse(XORB).unwrap();
        assert!(hash.to_hex().starts_with(XORB_HASH), "{hash}");
        let s = shard::parse(SHARD).unwrap();
        assert_eq!(s.files.len(), 1);
        let file = &s.files[0];
        assert_eq!(file.hash, XetHash::from_hex(FILE_HASH).unwrap());
        assert_eq!(file.size(), 99_390);
        assert_eq!(hex::encode(file.sha256.unwrap()), SHA256);
        assert_eq!(s.xorbs.len(), 1);
        s.check(|h| (*h == hash).then(|| chunks.clone())).unwrap();
    }

    #[test]
    fn a_shard_naming_a_missing_or_different_xorb_is_refused() {
        let (chunks, hash) = xorb::parse(XORB).unwrap();
        let s = shard::parse(SHARD).unwrap();
        let e = s.check(|_| None).unwrap_err().to_string();
        assert!(
            e.contains("never uploaded") && e.contains(&hash.to_hex()),
            "{e}"
        );

        let mut other = chunks.clone();
        other[0].len -= 1;
        let e = s.check(|_| Some(other.clone())).unwrap_err().to_string();
        assert!(e.contains("bytes, they are"), "{e}");

        let mut lying = s.clone();
        lying.files[0].terms[0].end += 1;
        let e = lying
            .check(|_| Some(chunks.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("names chunks 0..2") && e.contains("which has 1"),
            "{e}"
        );

        let mut lying = s.clone();
        lying.files[0].hash.0[0] ^= 1;
        let e = lying
            .check(|_| Some(chunks.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("its chunks hash to"), "{e}");

        let mut lying = s.clone();
        lying.xorbs[0].chunks[0].0.0[3] ^= 1;
        let e = lying
            .check(|_| Some(chunks.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("chunks the xorb does not have"), "{e}");
    }

    #[test]
    fn malformed_shards_name_what_is_wrong() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not a shard".to_vec(), "header tag"),
            (SHARD[..200].to_vec(), "inside a file's metadata extension"),
            (
                {
                    let mut v = SHARD.to_vec();
                    v[32] = 3;
                    v
                },
                "header version 3",
            ),
            (
                {
                    let mut v = SHARD.to_vec();
                    v[48 + 36] = 0xff;
                    v[48 + 37] = 0xff;
                    v
                },
                "more than the shard holds",
            ),
            (
                {
                    let mut v = SHARD.to_vec();
                    v[48 + 32] = 1;
                    v
                },
                "unknown flags",
            ),
        ];
        for (bytes, want) in cases {
            let e = shard::parse(&bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn a_shard_of_too_many_files_is_refused() {
        let s = shard::parse(SHARD).unwrap();
        let many = vec![s.files[0].clone(); shard::MAX_SHARD_FILES + 1];
        let e = shard::parse(&shard::build(&many, &s.xorbs))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 10000 files"), "{e}");
    }

    #[test]
    fn a_built_shard_parses_back() {
        let s = shard::parse(SHARD).unwrap();
        assert_eq!(shard::parse(&shard::build(&s.files, &s.xorbs)).unwrap(), s);
    }
}

#[cfg(test)]
mod cas_tests;
