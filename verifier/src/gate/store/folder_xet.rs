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
use super::{
    FolderStore, StoreError, StoredXetObject, XetObjectKind, io_at as io, is_sha256_hex,
    xet_object_name,
};

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

    pub(super) fn xet_objects_now(
        &self,
        namespace: &str,
    ) -> Result<Vec<StoredXetObject>, StoreError> {
        super::folder_pending::check_namespace(namespace)?;
        let mut out = Vec::new();
        for kind in XetObjectKind::ALL {
            let dir = self.root.join("xet").join(namespace).join(kind.dir());
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io(&dir))?;
                // Gone since listed (a gc removed it): it no longer counts.
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                out.push(StoredXetObject {
                    name: is_sha256_hex(&name).then_some((kind, name)),
                    size: meta.len(),
                });
            }
        }
        Ok(out)
    }
}
