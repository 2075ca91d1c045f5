//! The folder store's Xet objects: `STORE/xet/<namespace>/{xorbs,shards}/<hash>`, each checked
//! before it is written, read-only, never replaced. An object is written whole or not at all
//! (temp file, fsync, rename) around the page cache ([`write_file_atomically`]): a xorb's
//! bytes are read again only to rebuild its files, once, and that read goes around the cache
//! too ([`read_file_into`]). Writing one that is already stored refreshes its modification
//! time instead: the upload relies on it now, so `store gc` keeps it for another grace period
//! ([`super::xet_gc`]). Both happen under `gc.lock` held shared, so no gc runs between the
//! check and the write or refresh.

use weightgate_attest::io::read_capped;

use super::direct_file::{AlignedBuf, read_file_into, write_file_atomically};
use super::{FolderStore, StoreError, XetObjectKind, io_at as io, xet_object_name};

/// Largest Xet object read back (a xorb is at most 64 MiB of chunks plus headers).
pub(crate) const MAX_XET_OBJECT_LEN: u64 = 80 << 20;

impl FolderStore {
    pub(super) fn put_xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let path = self.root.join(xet_object_name(namespace, kind, hash)?);
        let _no_gc = self.lock(false)?;
        if path.exists() {
            let now = std::fs::FileTimes::new().set_modified(std::time::SystemTime::now());
            std::fs::File::open(&path)
                .and_then(|f| f.set_times(now))
                .map_err(io(&path))?;
            return Ok(false);
        }
        let dir = path.parent().expect("a parent folder");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_file_atomically(&path, bytes, 0o444).map_err(io(&path))?;
        Ok(true)
    }

    pub(super) fn xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.root.join(xet_object_name(namespace, kind, hash)?);
        match read_capped(&path, MAX_XET_OBJECT_LEN) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub(super) fn read_xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        into: &mut AlignedBuf,
    ) -> Result<bool, StoreError> {
        let path = self.root.join(xet_object_name(namespace, kind, hash)?);
        match read_file_into(&path, MAX_XET_OBJECT_LEN, into) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }
}
