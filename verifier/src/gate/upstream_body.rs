//! A response body that is still in the socket it arrives on: the body of an object storage
//! GET whose head has been read and checked. On a zero-copy connection its bytes go from that
//! socket to the client's with `splice(2)` (`zero_copy.rs`) and never enter user space;
//! otherwise (the router called directly) they are read into buffers.
//!
//! Either way the body is exactly `len` bytes: a socket that ends early or sends nothing for
//! [`STALL`] ends the response with an error, and hyper, with `Content-Length` set, then closes
//! the connection, so the client sees a truncated transfer.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;

use super::zero_copy::{FRAME, Segment, ZeroCopy, placeholder};

/// A read waits at most this long for the next bytes from the storage (on a zero-copy
/// connection, the connection's write timeout plays this part).
pub const STALL: Duration = Duration::from_secs(20);

/// Bytes per buffered read when the body is not spliced.
const READ: usize = 256 << 10;

/// The next `len` bytes of a response on `socket`, of which `already_read` came with its head.
pub struct UpstreamBody {
    pub socket: TcpStream,
    pub already_read: Bytes,
    pub len: u64,
    /// Named in errors and logs.
    pub key: String,
}

impl UpstreamBody {
    /// The response body: spliced when the connection is zero-copy.
    pub fn into_body(self, zero_copy: Option<ZeroCopy>) -> Body {
        let already_read = self
            .already_read
            .slice(..self.already_read.len().min(self.len as usize));
        Body::new(SocketBody {
            remaining: self.len,
            socket: Arc::new(self.socket),
            already_read,
            zero_copy,
            stall: None,
            key: self.key,
        })
    }
}

struct SocketBody {
    socket: Arc<TcpStream>,
    already_read: Bytes,
    remaining: u64,
    zero_copy: Option<ZeroCopy>,
    /// Running while a buffered read waits for the storage.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    key: String,
}

impl SocketBody {
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Bytes>> {
        let want = self.remaining.min(READ as u64) as usize;
        let mut buf = vec![0u8; want];
        loop {
            match self.socket.poll_read_ready(cx) {
                Poll::Ready(ready) => {
                    self.stall = None;
                    ready?;
                }
                Poll::Pending => {
                    let stall = self
                        .stall
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL)));
                    ready!(stall.as_mut().poll(cx));
                    tracing::error!(key = %self.key, "object storage sent nothing for {} s: download cut off", STALL.as_secs());
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "object storage sent nothing for {} s while streaming {}",
                            STALL.as_secs(),
                            self.key
                        ),
                    )));
                }
            }
            match self.socket.try_read(&mut buf) {
                Ok(0) => {
                    tracing::error!(key = %self.key, missing = self.remaining, "object storage ended the body early: download cut off");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("object storage ended {} early", self.key),
                    )));
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Poll::Ready(Ok(Bytes::from(buf)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl http_body::Body for SocketBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if !self.already_read.is_empty() {
            let bytes = std::mem::take(&mut self.already_read);
            self.remaining -= bytes.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        if let Some(zero_copy) = &self.zero_copy {
            let chunk = self.remaining.min(FRAME as u64);
            zero_copy.push(Segment::Socket {
                upstream: self.socket.clone(),
                len: chunk,
            });
            self.remaining -= chunk;
            return Poll::Ready(Some(Ok(Frame::data(placeholder(chunk as usize)))));
        }
        let bytes = ready!(self.poll_read(cx))?;
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
