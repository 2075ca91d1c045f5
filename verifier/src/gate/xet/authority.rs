//! The Hub token check of the write routes, for the `xet-write-token` route: the same 401, 403
//! and failure limit as every other write.

use axum::http::HeaderMap;
use axum::response::Response;

use super::cas::WriteAuthority;
use crate::gate::admission::namespace_of;
use crate::gate::upload::routes::UploadApi;

#[async_trait::async_trait]
impl WriteAuthority for UploadApi {
    async fn authorize_write(
        &self,
        headers: &HeaderMap,
        peer: Option<std::net::IpAddr>,
        repo: &str,
    ) -> Result<String, Response> {
        self.writer_for(headers, peer, repo).await?;
        Ok(namespace_of(repo).to_string())
    }
}
