//! The bucket store's Xet objects: `PREFIX/xet/<namespace>/{xorbs,shards}/<hash>`, each checked
//! before it is put (a single PUT: visible whole or not at all), never replaced.

use object_store::{ObjectStoreExt as _, PutPayload};

use super::folder_xet::MAX_XET_OBJECT_LEN;
use super::{BucketStore, StoreError, XetObjectKind, xet_object_name};

impl BucketStore {
    pub(super) async fn put_xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let key = self.key(&xet_object_name(namespace, kind, hash)?);
        match self.client().head(&key).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage(&key, e)),
        }
        self.client()
            .put(&key, PutPayload::from(bytes.to_vec()))
            .await
            .map_err(|e| self.storage(&key, e))?;
        Ok(true)
    }

    pub(super) async fn xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(&xet_object_name(namespace, kind, hash)?);
        self.read_capped(&key, MAX_XET_OBJECT_LEN).await
    }
}
