//! Downloads from a bucket store, after the decision: `proxy` streams the object through the
//! gate (Range passed through, the admitted ETag required with `If-Match`), `redirect` answers
//! 302 to a presigned URL of short expiry, as the Hub does.
//!
//! Faults never look like success: storage that cannot be reached or does not answer in time is
//! a [`StoreError::Unavailable`] (the server answers 503 with `Retry-After`); once a proxied body
//! has started, a stream that fails, stalls or ends early is an error of the response body, and
//! with `Content-Length` set hyper then closes the connection, so the client sees a truncated
//! transfer.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::Stream;
use http_body::Frame;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::signer::Signer as _;
use object_store::{ClientConfigKey, GetOptions, GetRange, ObjectStore as _, RetryConfig};

use super::{BucketStore, ByteRange, ByteSource, DownloadMode, OpenRefusal, StoreError};

/// A proxied body waits at most this long for the next bytes from the storage (time spent
/// waiting for the client to read does not count).
const STALL: Duration = Duration::from_secs(20);

/// The bucket client for object bodies. The store's own client has a 60 s deadline per
/// request, right for records and metadata but not for a multi-gigabyte body that a slow
/// client reads for an hour: this one has no overall deadline, and stalls are caught per read
/// ([`STALL`]).
#[derive(Debug)]
pub(super) struct BucketDownloads {
    client: Arc<AmazonS3>,
    mode: DownloadMode,
}

impl BucketDownloads {
    pub(super) fn new(store: &BucketStore, mode: DownloadMode) -> Result<Self, StoreError> {
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        let client = AmazonS3Builder::from_env()
            .with_bucket_name(store.bucket())
            .with_retry(retry)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                "604800s",
            )
            .build()
            .map_err(|e| StoreError::Config(format!("{}: {e}", store.url())))?;
        Ok(BucketDownloads {
            client: Arc::new(client),
            mode,
        })
    }

    /// The bytes `range` of object `key` (`size` bytes, admitted with ETag `etag` if known).
    pub(super) async fn open(
        &self,
        key: &Key,
        etag: Option<&str>,
        size: u64,
        range: ByteRange,
    ) -> Result<ByteSource, OpenRefusal> {
        match self.mode {
            DownloadMode::Redirect { expiry } => {
                let url = self
                    .client
                    .signed_url(axum::http::Method::GET, key, expiry)
                    .await
                    .map_err(|e| {
                        OpenRefusal::Unavailable(StoreError::Unavailable {
                            key: key.to_string(),
                            message: e.to_string(),
                        })
                    })?;
                Ok(ByteSource::Redirect(url.to_string()))
            }
            DownloadMode::Through => self.proxy(key, etag, size, range).await,
        }
    }

    async fn proxy(
        &self,
        key: &Key,
        etag: Option<&str>,
        size: u64,
        range: ByteRange,
    ) -> Result<ByteSource, OpenRefusal> {
        let ByteRange { start, len, head } = range;
        // Asked of the storage even for HEAD and empty objects: the object must still be the
        // admitted one (If-Match) and the storage must answer.
        let options = GetOptions {
            if_match: etag.map(str::to_string),
            range: (len > 0 && !head).then_some(GetRange::Bounded(start..start + len)),
            head: head || len == 0,
            ..GetOptions::default()
        };
        let got = match self.client.get_opts(key, options).await {
            Ok(g) => g,
            Err(object_store::Error::Precondition { .. }) => {
                return Err(OpenRefusal::Changed(format!(
                    "object {key} no longer has the admitted ETag {}",
                    etag.unwrap_or("")
                )));
            }
            Err(object_store::Error::NotFound { .. }) => {
                return Err(OpenRefusal::Changed(format!("object {key} is missing")));
            }
            Err(e) => {
                return Err(OpenRefusal::Unavailable(StoreError::Unavailable {
                    key: key.to_string(),
                    message: e.to_string(),
                }));
            }
        };
        if got.meta.size != size {
            return Err(OpenRefusal::Changed(format!(
                "object {key} is {} bytes, admitted {size}",
                got.meta.size
            )));
        }
        if let (Some(want), Some(have)) = (etag, got.meta.e_tag.as_deref())
            && want != have
        {
            return Err(OpenRefusal::Changed(format!(
                "object {key} has ETag {have}, admitted {want}"
            )));
        }
        Ok(ByteSource::Stream(if head || len == 0 {
            Body::empty()
        } else {
            Body::new(ProxiedBody {
                stream: got.into_stream(),
                remaining: len,
                stall: None,
                key: key.to_string(),
            })
        }))
    }
}

type ObjectStream =
    Pin<Box<dyn Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static>>;

/// An object's bytes on their way to the client: exactly `remaining` bytes, or an error.
struct ProxiedBody {
    stream: ObjectStream,
    remaining: u64,
    /// Running while the storage owes us bytes.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    key: String,
}

impl http_body::Body for ProxiedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let polled = self.stream.as_mut().poll_next(cx);
        let next = match polled {
            Poll::Ready(next) => {
                self.stall = None;
                next
            }
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL)));
                ready!(stall.as_mut().poll(cx));
                let message = format!(
                    "object storage sent nothing for {} s while streaming {}",
                    STALL.as_secs(),
                    self.key
                );
                tracing::error!("{message}: download cut off");
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    message,
                ))));
            }
        };
        match next {
            Some(Ok(bytes)) if bytes.len() as u64 <= self.remaining => {
                self.remaining -= bytes.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Some(Ok(_)) => Poll::Ready(Some(Err(std::io::Error::other(format!(
                "object storage sent more bytes than asked for {}",
                self.key
            ))))),
            Some(Err(e)) => {
                tracing::error!(key = %self.key, error = %e, "object storage failed mid-download: download cut off");
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            None => {
                tracing::error!(key = %self.key, missing = self.remaining, "object storage ended the body early: download cut off");
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("object storage ended {} early", self.key),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}
