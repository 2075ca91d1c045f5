//! Reconstructed files go to the upload area ([`Uploads`]): hashed while written, kept only if
//! they are the SHA-256 and size the shard declares, found there by the commit.

use axum::http::StatusCode;

use super::cas::{FileSink, Refusal};
use super::reconstruct::FileBody;
use crate::gate::upload::{UploadError, Uploads};

fn refusal(e: UploadError) -> Refusal {
    Refusal::new(e.status(), e.to_string())
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
        let holdings = self.holdings(namespace).await.map_err(refusal)?;
        self.has_object(namespace, &hex::encode(sha256), size, &holdings, now)
            .await
            .map_err(refusal)
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
            Err(UploadError::Object(crate::gate::store::PendingError::Connection(e))) => {
                Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reconstruction: {e}"),
                ))
            }
            Err(e) => Err(refusal(e)),
        }
    }
}
