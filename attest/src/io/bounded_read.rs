//! Reading whole files whose size an attacker chooses (envelopes, grants, keys, policies,
//! claims, bundles) with a cap, so a sparse 2 GiB "attestation" or `/dev/zero` as a key path
//! costs at most the cap, not all of memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Largest key file read (PEM keys are under 1 KiB; a few certificates' worth of comments fit).
pub const MAX_KEY_FILE_LEN: u64 = 64 << 10;
/// Largest policy or claims file read (real ones are a few KiB).
pub const MAX_CONFIG_FILE_LEN: u64 = 4 << 20;

/// Reads `path` whole if it holds at most `cap` bytes; otherwise an `InvalidData` error that
/// names the cap. Files that report no size (pipes, devices) are read only up to the cap.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let too_large = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} is over the limit of {cap} bytes for this kind of file"),
        )
    };
    let file = File::open(path)?;
    let declared = file.metadata()?.len();
    if declared > cap {
        return Err(too_large(format!("{declared} bytes")));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large("the content".into()));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_to_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_cap_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sparse");
        File::create(&p).unwrap().set_len(2 << 30).unwrap();
        let err = read_capped(&p, 1024).unwrap_err().to_string();
        assert_eq!(
            err,
            "2147483648 bytes is over the limit of 1024 bytes for this kind of file"
        );
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_capped(&p, 5).unwrap(), b"12345");
        assert!(read_capped(&p, 4).is_err());
    }

    #[test]
    fn endless_devices_are_read_only_up_to_the_cap() {
        let err = read_capped(Path::new("/dev/zero"), 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("over the limit of 4096 bytes"), "{err}");
    }
}
