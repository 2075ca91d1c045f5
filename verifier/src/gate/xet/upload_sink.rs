//! Reconstructed files go to the upload area ([`Uploads`]): hashed while written, kept only if
//! they are the SHA-256 and size the shard declares, found there by the commit.

use axum::http::StatusCode;

use super::cas::{FileSink, Refusal, store_refusal};
use super::reconstruct::FileBody;
use crate::gate::store::PendingError;
use crate::gate::upload::{UploadError, Uploads};

/// The refusal of `e`, met while trying to do `failed` (named for a store error).
fn refusal(failed: &'static str) -> impl FnOnce(UploadError) -> Refusal {
    move |e| match e {
        UploadError::Store(e) | UploadError::Object(PendingError::Store(e)) => {
            store_refusal(failed)(e)
        }
        e => Refusal::new(e.status(), e.to_string()),
    }
}

#[async_trait::async_trait]
impl FileSink for Uploads {
    async fn has_file(
        &self,
        namespace: &str,
        sha256: &[u8; 32],
        size: u64,
        now: i64,
    ) -> Result<bool, Refusal> {
        let holdings = self
            .holdings(namespace)
            .await
            .map_err(refusal("read the namespace's revisions"))?;
        self.has_object(namespace, &hex::encode(sha256), size, &holdings, now)
            .await
            .map_err(refusal("read the namespace's uploads"))
    }

    async fn check_room(&self, namespace: &str, size: u64) -> Result<(), Refusal> {
        Uploads::check_room(self, namespace, size)
            .await
            .map_err(refusal("count the namespace's staged bytes"))
    }

    async fn put_file(
        &self,
        namespace: &str,
        sha256: [u8; 32],
        size: u64,
        body: FileBody,
        now: i64,
    ) -> Result<(), Refusal> {
        match self.put_object(namespace, sha256, size, body, now).await {
            Ok(_) => Ok(()),
            // The stream failed on our side (a stored xorb changed or could not be read).
            Err(UploadError::Object(PendingError::Connection(e))) => Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reconstruction: {e}"),
            )),
            Err(e) => Err(refusal("keep a file rebuilt from its xorbs")(e)),
        }
    }
}
