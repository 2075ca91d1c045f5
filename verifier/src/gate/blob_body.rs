//! Serving a stored blob: `Range` (one range of bytes), `HEAD`, and a body that goes from the
//! page cache to the socket with `sendfile(2)` on a zero-copy connection (`zero_copy.rs`).
//!
//! Without the zero-copy stream (the router called directly, as the fuzz oracles do) the same
//! response carries a body read with `pread` into a buffer.

use std::fs::File;
use std::future::Future as _;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use super::zero_copy::{FRAME, Segment, ZeroCopy, placeholder};

/// The body of a blob range: placeholder frames with queued file ranges on a zero-copy
/// connection, otherwise bytes read with `pread`.
struct BlobBody {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    zero_copy: Option<ZeroCopy>,
    reading: Option<tokio::task::JoinHandle<io::Result<Bytes>>>,
}

impl http_body::Body for BlobBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = self.remaining.min(FRAME as u64);
        if let Some(zero_copy) = &self.zero_copy {
            zero_copy.push(Segment::File {
                file: self.file.clone(),
                offset: self.offset,
                len: chunk,
            });
            self.offset += chunk;
            self.remaining -= chunk;
            return Poll::Ready(Some(Ok(Frame::data(placeholder(chunk as usize)))));
        }
        // Off the async runtime: a read may wait for the disk.
        let (file, offset) = (self.file.clone(), self.offset);
        let reading = self.reading.get_or_insert_with(|| {
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; chunk as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read_at(&mut buf[filled..], offset + filled as u64) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the stored blob is shorter than admitted",
                            ));
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Bytes::from(buf))
            })
        });
        let read = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        let bytes = read.map_err(io::Error::other)??;
        self.offset += bytes.len() as u64;
        self.remaining -= bytes.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or a unit other than bytes (RFC 9110 14.2: ignored).
    Whole,
    /// The inclusive byte range `start..=end`.
    Part { start: u64, end: u64 },
    /// Malformed, several ranges, or outside the file: 416.
    Unsatisfiable,
}

pub fn parse_range(headers: &HeaderMap, size: u64) -> RangeRequest {
    let Some(value) = headers.get(header::RANGE) else {
        return RangeRequest::Whole;
    };
    let Some(spec) = value.as_bytes().strip_prefix(b"bytes=") else {
        return RangeRequest::Whole;
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return RangeRequest::Unsatisfiable;
    };
    let spec = spec.trim();
    // Several ranges would need multipart/byteranges, which no client of the gate asks for.
    let Some((first, last)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return RangeRequest::Unsatisfiable;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => RangeRequest::Part {
            start: size - n.min(size),
            end: size - 1,
        },
        // bytes=A- and bytes=A-B.
        (false, Some(start), end) if start < size => match (last.is_empty(), end) {
            (true, _) => RangeRequest::Part {
                start,
                end: size - 1,
            },
            (false, Some(end)) if end >= start => RangeRequest::Part {
                start,
                end: end.min(size - 1),
            },
            _ => RangeRequest::Unsatisfiable,
        },
        _ => RangeRequest::Unsatisfiable,
    }
}

/// The response for `file` (`size` bytes) to a request with `headers`: 200, 206 with
/// `Content-Range`, or 416; no body for `HEAD`. Returns it with the number of body bytes.
pub fn blob_response(
    file: File,
    size: u64,
    headers: &HeaderMap,
    is_head: bool,
    zero_copy: Option<ZeroCopy>,
) -> (Response, u64) {
    let (status, start, len) = match parse_range(headers, size) {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeRequest::Unsatisfiable => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return (r, 0);
        }
    };
    let body = if is_head || len == 0 {
        Body::empty()
    } else {
        Body::new(BlobBody {
            file: Arc::new(file),
            offset: start,
            remaining: len,
            zero_copy,
            reading: None,
        })
    };
    (
        bytes_response(body, status, start, len, size),
        if is_head { 0 } else { len },
    )
}

/// The response carrying `len` bytes of a `size`-byte blob from `start` (a range when `status`
/// is 206), whoever produces the body: a file here, an object in a bucket elsewhere.
pub(crate) fn bytes_response(
    body: Body,
    status: StatusCode,
    start: u64,
    len: u64,
    size: u64,
) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> RangeRequest {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h, size)
    }

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        use RangeRequest::*;
        assert_eq!(parse_range(&HeaderMap::new(), 10), Whole);
        assert_eq!(range("pages=1-2", 10), Whole);
        assert_eq!(range("bytes=0-3", 10), Part { start: 0, end: 3 });
        assert_eq!(range("bytes=4-", 10), Part { start: 4, end: 9 });
        assert_eq!(range("bytes=5-100", 10), Part { start: 5, end: 9 });
        assert_eq!(range("bytes=-3", 10), Part { start: 7, end: 9 });
        assert_eq!(range("bytes=-30", 10), Part { start: 0, end: 9 });
        assert_eq!(range("bytes=9-9", 10), Part { start: 9, end: 9 });
        for bad in [
            "bytes=10-",
            "bytes=10-12",
            "bytes=5-4",
            "bytes=0-1,5-6",
            "bytes=-0",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(range(bad, 10), Unsatisfiable, "{bad}");
        }
        assert_eq!(range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), Unsatisfiable);
    }
}
