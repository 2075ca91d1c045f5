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
use crate::gate::upstream_body::{STALL, UpstreamBody};

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
        if !head && len > 0 {
            let url = self
                .client
                .signed_url(axum::http::Method::GET, key, SIGNED_FOR)
                .await
                .map_err(|e| unavailable(key, e.to_string()))?;
            // Plain HTTP: the body can go socket to socket. TLS needs the bytes in user space.
            if url.scheme() == "http" {
                return spliceable_get(url.as_str(), key, etag, size, start, len).await;
            }
        }
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

/// How long the URL of the gate's own spliced GET stays valid: it is used at once.
const SIGNED_FOR: Duration = Duration::from_secs(60);

/// A response head larger than this is not object storage's.
const MAX_HEAD: usize = 32 << 10;

fn unavailable(key: &Key, message: String) -> OpenRefusal {
    OpenRefusal::Unavailable(StoreError::Unavailable {
        key: key.to_string(),
        message,
    })
}

/// GETs bytes `start..start + len` of the `size`-byte object `key` at the presigned plain-HTTP
/// `url` on a connection of its own, checks the response head, and hands over the socket with
/// the body still in it, so the listener can splice it to the client.
async fn spliceable_get(
    url: &str,
    key: &Key,
    etag: Option<&str>,
    size: u64,
    start: u64,
    len: u64,
) -> Result<ByteSource, OpenRefusal> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| unavailable(key, format!("presigned URL: {e}")))?;
    let (Some(authority), Some(target)) = (uri.authority(), uri.path_and_query()) else {
        return Err(unavailable(
            key,
            "presigned URL without host or path".into(),
        ));
    };
    let port = authority.port_u16().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((authority.host(), port));
    let mut socket = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(unavailable(
                key,
                format!("cannot connect to {authority}: {e}"),
            ));
        }
        Err(_) => {
            return Err(unavailable(
                key,
                format!("no connection to {authority} within 5 s"),
            ));
        }
    };
    let _ = socket.set_nodelay(true);
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nRange: bytes={start}-{}\r\nConnection: close\r\n",
        start + len - 1
    );
    if let Some(etag) = etag {
        // An ETag the store recorded from the storage's own answer: no line breaks, or it is
        // not sent (the length and range checks below still hold).
        if !etag.contains(['\r', '\n']) {
            request.push_str(&format!("If-Match: {etag}\r\n"));
        }
    }
    request.push_str("\r\n");
    let exchange = async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        socket.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(4096);
        loop {
            if head.len() >= MAX_HEAD {
                return Err(std::io::Error::other("a response head over 32 KiB"));
            }
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed before the response head ended",
                ));
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(head);
            }
        }
    };
    let head = match tokio::time::timeout(STALL, exchange).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return Err(unavailable(key, format!("GET from {authority}: {e}"))),
        Err(_) => {
            return Err(unavailable(
                key,
                format!(
                    "{authority} sent no response head within {} s",
                    STALL.as_secs()
                ),
            ));
        }
    };
    let checked = check_response_head(&head, etag, size, start, len)
        .map_err(|problem| problem.refusal(key))?;
    let already_read = Bytes::copy_from_slice(&head[checked.head_len..]);
    if already_read.len() as u64 > len {
        return Err(unavailable(
            key,
            "object storage sent more bytes than asked".into(),
        ));
    }
    Ok(ByteSource::Socket(UpstreamBody {
        socket,
        already_read,
        len,
        key: key.to_string(),
    }))
}

/// What a response head says about the asked range, or why it is not served.
#[derive(Debug, PartialEq, Eq)]
struct CheckedHead {
    head_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum HeadProblem {
    /// The object is not the one admitted.
    Changed(String),
    /// The storage did not answer as object storage does.
    Unexpected(String),
}

impl HeadProblem {
    fn refusal(self, key: &Key) -> OpenRefusal {
        match self {
            HeadProblem::Changed(why) => OpenRefusal::Changed(format!("object {key} {why}")),
            HeadProblem::Unexpected(why) => unavailable(key, why),
        }
    }
}

/// Checks the head of the answer to `Range: bytes=start-(start+len-1)` of an object admitted
/// with `size` bytes and ETag `etag`: a 206 for exactly that range of exactly that size (or a
/// 200 of the whole object when the whole was asked), with a plain `Content-Length` body.
fn check_response_head(
    head: &[u8],
    etag: Option<&str>,
    size: u64,
    start: u64,
    len: u64,
) -> Result<CheckedHead, HeadProblem> {
    let unexpected = |why: String| HeadProblem::Unexpected(why);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(unexpected("an incomplete response head".into()));
        }
        Err(e) => return Err(unexpected(format!("a malformed response head: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    match status {
        206 | 200 => {}
        412 => {
            return Err(HeadProblem::Changed(format!(
                "no longer has the admitted ETag {}",
                etag.unwrap_or("")
            )));
        }
        404 => return Err(HeadProblem::Changed("is missing".into())),
        416 => {
            return Err(HeadProblem::Changed(format!(
                "is shorter than the {size} bytes admitted"
            )));
        }
        other => return Err(unexpected(format!("object storage answered HTTP {other}"))),
    }
    if header("transfer-encoding").is_some() {
        return Err(unexpected(
            "object storage sent a body with Transfer-Encoding".into(),
        ));
    }
    if let (Some(want), Some(have)) = (etag, header("etag"))
        && want != have
    {
        return Err(HeadProblem::Changed(format!(
            "has ETag {have}, admitted {want}"
        )));
    }
    let total = if status == 206 {
        let range = header("content-range").unwrap_or_default();
        let want = format!("bytes {start}-{}/", start + len - 1);
        let Some(total) = range.strip_prefix(&want) else {
            return Err(unexpected(format!(
                "asked bytes {start}-{}, object storage sent `{range}`",
                start + len - 1
            )));
        };
        total
            .parse::<u64>()
            .map_err(|_| unexpected(format!("a Content-Range of `{range}`")))?
    } else if start == 0 && len == size {
        header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| unexpected("a 200 without a Content-Length".into()))?
    } else {
        return Err(unexpected("object storage ignored the Range asked".into()));
    };
    if total != size {
        return Err(HeadProblem::Changed(format!(
            "is {total} bytes, admitted {size}"
        )));
    }
    match header("content-length").map(|v| v.parse::<u64>()) {
        Some(Ok(n)) if n == len => Ok(CheckedHead { head_len }),
        other => Err(unexpected(format!(
            "a body of {} bytes for {len} asked",
            other.map_or("unstated".to_string(), |v| v
                .map_or("unparseable".to_string(), |n| n.to_string()))
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lines: &[&str]) -> Vec<u8> {
        let mut h = lines.join("\r\n").into_bytes();
        h.extend_from_slice(b"\r\n\r\nBODY");
        h
    }

    #[test]
    fn a_response_head_is_served_only_for_exactly_the_range_asked() {
        let ok = head(&[
            "HTTP/1.1 206 Partial Content",
            "Content-Range: bytes 10-19/100",
            "Content-Length: 10",
            "ETag: \"e1\"",
        ]);
        let checked = check_response_head(&ok, Some("\"e1\""), 100, 10, 10).unwrap();
        assert_eq!(&ok[checked.head_len..], b"BODY");
        let whole = head(&["HTTP/1.1 200 OK", "Content-Length: 100"]);
        assert!(check_response_head(&whole, None, 100, 0, 100).is_ok());

        let changed = |h: &[u8], etag, size, start, len| {
            matches!(
                check_response_head(h, etag, size, start, len),
                Err(HeadProblem::Changed(_))
            )
        };
        let unexpected = |h: &[u8], size, start, len| {
            matches!(
                check_response_head(h, None, size, start, len),
                Err(HeadProblem::Unexpected(_))
            )
        };
        assert!(changed(&ok, Some("\"e2\""), 100, 10, 10), "another ETag");
        assert!(changed(&ok, None, 101, 10, 10), "another size");
        assert!(changed(
            &head(&["HTTP/1.1 412 Precondition Failed"]),
            Some("\"e1\""),
            100,
            10,
            10
        ));
        assert!(changed(
            &head(&["HTTP/1.1 404 Not Found"]),
            None,
            100,
            10,
            10
        ));
        assert!(unexpected(&ok, 100, 11, 10), "another range");
        assert!(unexpected(&whole, 100, 10, 10), "Range ignored");
        assert!(unexpected(&head(&["HTTP/1.1 503 Slow Down"]), 100, 10, 10));
        assert!(unexpected(&head(&["HTTP/1.1 403 Forbidden"]), 100, 10, 10));
        assert!(unexpected(
            &head(&[
                "HTTP/1.1 206 Partial Content",
                "Content-Range: bytes 10-19/100",
                "Content-Length: 11"
            ]),
            100,
            10,
            10
        ));
        assert!(unexpected(
            &head(&[
                "HTTP/1.1 206 Partial Content",
                "Content-Range: bytes 10-19/100",
                "Transfer-Encoding: chunked"
            ]),
            100,
            10,
            10
        ));
        assert!(unexpected(
            b"HTTP/1.1 206 Partial\r\nContent-Len",
            100,
            10,
            10
        ));
        assert!(unexpected(b"\x00garbage\r\n\r\n", 100, 10, 10));
    }
}
