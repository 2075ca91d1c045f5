//! A connection whose response bodies can skip user space: a stored file goes from the page
//! cache to the client's socket with `sendfile(2)`, and an object's body still in the socket
//! it arrives on from object storage goes to the client's socket with `splice(2)` through a
//! pipe, or, when the client is on this machine, through a small buffer ([`SocketRelay`]).
//!
//! hyper owns the connection and writes only byte slices it was given, so the zero-copy path
//! works through the connection's I/O object, which this server owns ([`ZeroCopyStream`]): a
//! body yields frames that point into one static buffer of zeros ([`ZEROS`]) and, for each
//! frame, queues the source range it stands for on the connection. When hyper writes a slice
//! that points into [`ZEROS`], the stream sends the queued range instead of those bytes.
//! Frames are written in the order they were produced, so the queue and the slices line up;
//! hyper counts the bytes against `Content-Length` as usual. A source that turns out shorter
//! than promised makes the write fail, which ends the connection: the client sees a truncated
//! transfer, never a complete-looking one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes per body frame: per frame, one `sendfile(2)` call at least (fewer, larger calls are
/// cheaper; the kernel returns early when the socket buffer is full).
pub(crate) const FRAME: usize = 4 << 20;

/// What every zero-copy frame points into. Its contents are never sent: the address marks the
/// slice as "the next queued range".
static ZEROS: [u8; FRAME] = [0; FRAME];

/// A frame of `len` (at most [`FRAME`]) placeholder bytes.
pub(crate) fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&ZEROS[..len])
}

fn is_placeholder(slice: &[u8]) -> bool {
    let start = ZEROS.as_ptr() as usize;
    let p = slice.as_ptr() as usize;
    !slice.is_empty() && p >= start && p + slice.len() <= start + FRAME
}

/// Where the bytes of a placeholder frame come from.
pub(crate) enum Segment {
    /// `len` bytes of a file from `offset`.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
    /// The next `len` bytes that arrive on an upstream socket (a response body from object
    /// storage, whose head has been read).
    Socket { upstream: Arc<TcpStream>, len: u64 },
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::File { len, .. } | Segment::Socket { len, .. } => *len,
        }
    }
}

/// How the body of an object still in the storage's socket reaches the client's socket.
///
/// Splicing costs the gate least (no copy through user space), but the client then reads the
/// storage's own socket pages, written long before, cold in the cache. When the client runs
/// on this machine (a sidecar, a local load balancer, a benchmark) its copy is paid on the
/// same cores, and copying through a buffer small enough to stay in the cache costs the
/// machine less in total (docs/decisions.md, "Proxy bodies").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SocketRelay {
    /// Copy for clients on this machine (a loopback peer, or the peer is one of the socket's
    /// own addresses), splice for the others.
    #[default]
    Auto,
    Splice,
    Copy,
}

impl SocketRelay {
    /// Whether a connection from `peer` accepted on `local` copies rather than splices.
    pub fn copies(self, peer: std::net::IpAddr, local: std::net::IpAddr) -> bool {
        match self {
            SocketRelay::Splice => false,
            SocketRelay::Copy => true,
            SocketRelay::Auto => peer.is_loopback() || peer == local,
        }
    }
}

/// Bytes of a connection's copy buffer: a quarter of this machine's per-core L2, so the client
/// reads what the gate wrote while it is still cached (64 KiB to 1 MiB measured: the smallest
/// cost least; bench/serve-s3.sh).
const COPY_BYTES: usize = 64 << 10;

/// A connection's buffer for copied socket bodies, and the bytes in it not yet sent.
struct CopyBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

/// The ranges a connection's response bodies have handed to hyper and hyper has not yet
/// written, in order. One per connection; the request carries it as an extension.
#[derive(Clone, Default)]
pub struct ZeroCopy(Arc<Mutex<VecDeque<Segment>>>);

impl ZeroCopy {
    pub(crate) fn push(&self, segment: Segment) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(segment);
    }

    /// Records that `n` bytes of the front segment went out.
    fn advance(&self, n: u64) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(front) = q.front_mut() {
            match front {
                Segment::File { offset, len, .. } => {
                    *offset += n;
                    *len -= n;
                }
                Segment::Socket { len, .. } => *len -= n,
            }
            if front.len() == 0 {
                q.pop_front();
            }
        }
    }
}

/// A kernel pipe that carries socket bytes between two `splice(2)` calls, and how many bytes
/// it holds. The bytes in it belong to the front segment.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
    /// What the kernel granted: the size asked for, or the default where it refused.
    capacity: usize,
}

/// A pipe's capacity: larger than the default 64 KiB, so fewer splice calls per gigabyte.
const PIPE_BYTES: libc::c_int = 1 << 20;

impl Pipe {
    fn new(asked: libc::c_int) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A smaller pipe only costs more calls; where the kernel refuses, the default stays.
        // SAFETY: `write` is an open pipe descriptor.
        let mut granted = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, asked) };
        if granted <= 0 {
            // SAFETY: as above.
            granted = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        }
        Ok(Pipe {
            read,
            write,
            held: 0,
            capacity: usize::try_from(granted).unwrap_or(0).max(4096),
        })
    }
}

/// One `splice(2)` of up to `count` bytes from `from` to `to`, neither side blocking; `more`
/// tells a socket that more bytes follow, so it sends full segments rather than each piece.
fn splice(from: RawFd, to: RawFd, count: usize, more: bool) -> io::Result<usize> {
    let more = if more { libc::SPLICE_F_MORE } else { 0 };
    loop {
        // SAFETY: the caller holds both descriptors open; null offsets mean "the current
        // position", which pipes and sockets require.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                count,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK | more,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A connection's TCP stream that sends queued ranges where hyper writes placeholder slices,
/// and writes every other byte as it is.
pub struct ZeroCopyStream {
    tcp: TcpStream,
    queue: ZeroCopy,
    /// Whether socket segments are copied through `copy` rather than spliced through `pipe`.
    copies: bool,
    /// Made at the first socket segment, kept for the connection's life.
    pipe: Option<Pipe>,
    pipe_bytes: libc::c_int,
    /// Made at the first copied socket segment, kept for the connection's life.
    copy: Option<CopyBuffer>,
}

impl ZeroCopyStream {
    /// A stream for `tcp`; socket segments are copied when `copies`, else spliced.
    pub fn new(tcp: TcpStream, copies: bool) -> (Self, ZeroCopy) {
        Self::with_pipe_bytes(tcp, copies, PIPE_BYTES)
    }

    fn with_pipe_bytes(tcp: TcpStream, copies: bool, pipe_bytes: libc::c_int) -> (Self, ZeroCopy) {
        let queue = ZeroCopy::default();
        (
            ZeroCopyStream {
                tcp,
                queue: queue.clone(),
                copies,
                pipe: None,
                pipe_bytes,
                copy: None,
            },
            queue,
        )
    }

    /// Sends up to `max` bytes of the front queued range; returns how many went out.
    fn poll_send_queued(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let front = {
            let q = self.queue.0.lock().unwrap_or_else(|e| e.into_inner());
            match q.front() {
                Some(Segment::File { file, offset, len }) => Segment::File {
                    file: file.clone(),
                    offset: *offset,
                    len: *len,
                },
                Some(Segment::Socket { upstream, len }) => Segment::Socket {
                    upstream: upstream.clone(),
                    len: *len,
                },
                None => {
                    return Poll::Ready(Err(io::Error::other(
                        "a zero-copy frame without a queued range",
                    )));
                }
            }
        };
        let count = (max as u64).min(front.len()) as usize;
        let sent = match front {
            Segment::File { file, offset, .. } => {
                ready!(self.poll_send_file(cx, &file, offset, count))
            }
            Segment::Socket { upstream, .. } if self.copies => {
                ready!(self.poll_copy(cx, &upstream, count))
            }
            Segment::Socket { upstream, len } => {
                ready!(self.poll_splice(cx, &upstream, count, len))
            }
        };
        match sent {
            Ok(0) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stored bytes ended before the length admitted",
            ))),
            Ok(n) => {
                self.queue.advance(n as u64);
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        let socket = self.tcp.as_raw_fd();
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                let mut off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
                loop {
                    // SAFETY: both descriptors are open for the duration of the call (the
                    // stream and the file are borrowed); `off` is ours.
                    let n = unsafe { libc::sendfile(socket, file.as_raw_fd(), &mut off, count) };
                    if n >= 0 {
                        return Ok(n as usize);
                    }
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    /// Moves up to `count` bytes of a socket segment from `upstream` to the client through the
    /// connection's buffer: one read when it is empty (waiting for bytes), then one write of
    /// what it holds. Returns the bytes the client's socket took; 0 only when the upstream
    /// ended.
    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        upstream: &TcpStream,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        let buffer = self.copy.get_or_insert_with(|| CopyBuffer {
            bytes: vec![0; COPY_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        });
        if buffer.start == buffer.end {
            // Never more than the segment's own bytes: what follows belongs to nobody.
            let want = count.min(buffer.bytes.len());
            loop {
                ready!(upstream.poll_read_ready(cx))?;
                match upstream.try_read(&mut buffer.bytes[..want]) {
                    Ok(0) => return Poll::Ready(Ok(0)),
                    Ok(n) => {
                        (buffer.start, buffer.end) = (0, n);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        let want = count.min(buffer.end - buffer.start);
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self
                .tcp
                .try_write(&buffer.bytes[buffer.start..buffer.start + want])
            {
                Ok(n) => {
                    buffer.start += n;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Moves up to `count` of the `remaining` bytes of a socket segment from `upstream` to the
    /// client: into the pipe (waiting only while it is empty, then taking whatever else has
    /// arrived), then from the pipe to the client's socket. Returns the bytes the client's
    /// socket took; 0 only when the upstream ended.
    fn poll_splice(
        &mut self,
        cx: &mut Context<'_>,
        upstream: &TcpStream,
        count: usize,
        remaining: u64,
    ) -> Poll<io::Result<usize>> {
        if self.pipe.is_none() {
            self.pipe = Some(Pipe::new(self.pipe_bytes)?);
        }
        let Some(pipe) = self.pipe.as_mut() else {
            unreachable!("the pipe was made above")
        };
        let fill = count.min(pipe.capacity);
        while pipe.held < fill {
            if pipe.held == 0 {
                ready!(upstream.poll_read_ready(cx))?;
            }
            let (from, to) = (upstream.as_raw_fd(), pipe.write.as_raw_fd());
            let want = fill - pipe.held;
            // With bytes in the pipe, a "would block" may mean the pipe is full (its slots hold
            // pages, not bytes) rather than the socket empty: then the socket's readiness must
            // survive, or the next wait would sleep until more bytes arrive on a socket that
            // already holds them. Only an empty pipe's "would block" speaks for the socket.
            let moved = if pipe.held == 0 {
                upstream.try_io(Interest::READABLE, || splice(from, to, want, false))
            } else {
                splice(from, to, want, false)
            };
            match moved {
                Ok(0) if pipe.held == 0 => return Poll::Ready(Ok(0)),
                Ok(0) => break,
                Ok(n) => pipe.held += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && pipe.held == 0 => continue,
                // What is in the pipe goes out first; the upstream's error shows at the next call.
                Err(_) if pipe.held > 0 => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let (from, to) = (pipe.read.as_raw_fd(), self.tcp.as_raw_fd());
        let want = count.min(pipe.held);
        let more = remaining > want as u64;
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self
                .tcp
                .try_io(Interest::WRITABLE, || splice(from, to, want, more))
            {
                Ok(n) => {
                    pipe.held -= n;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Ordinary slices before the first placeholder go out with one `writev`; a placeholder at
    /// the front goes out as its queued range. A partial write is reported as such, and hyper
    /// calls again with the rest.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else {
            return Poll::Ready(Ok(0));
        };
        if is_placeholder(&bufs[first]) {
            let max = bufs[first].len();
            return self.poll_send_queued(cx, max);
        }
        let plain = bufs[first..]
            .iter()
            .position(|b| is_placeholder(b))
            .map_or(bufs.len(), |i| first + i);
        Pin::new(&mut self.tcp).poll_write_vectored(cx, &bufs[first..plain])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_only_slices_of_the_zero_buffer() {
        assert!(is_placeholder(&placeholder(10)));
        assert!(is_placeholder(&placeholder(FRAME)[FRAME - 1..]));
        assert!(!is_placeholder(&[0u8; 16]));
        assert!(!is_placeholder(&placeholder(0)));
    }

    /// A socket whose peer sends `bytes` and closes.
    async fn upstream_sending(bytes: Vec<u8>) -> TcpStream {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(&bytes).await.unwrap();
        });
        TcpStream::connect(addr).await.unwrap()
    }

    /// Writes `frames` (placeholders of the given lengths with their segments queued, or plain
    /// bytes) through a zero-copy stream and returns what its peer received, or the write error.
    async fn through_zero_copy(
        upstream: TcpStream,
        frames: &[Result<usize, &[u8]>],
        copies: bool,
    ) -> (Vec<u8>, Option<io::Error>) {
        through_zero_copy_with_pipe(upstream, frames, copies, PIPE_BYTES).await
    }

    async fn through_zero_copy_with_pipe(
        upstream: TcpStream,
        frames: &[Result<usize, &[u8]>],
        copies: bool,
        pipe_bytes: libc::c_int,
    ) -> (Vec<u8>, Option<io::Error>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        let (mut stream, queue) = ZeroCopyStream::with_pipe_bytes(
            TcpStream::connect(addr).await.unwrap(),
            copies,
            pipe_bytes,
        );
        let upstream = Arc::new(upstream);
        let mut error = None;
        for frame in frames {
            let written = match frame {
                Ok(len) => {
                    queue.push(Segment::Socket {
                        upstream: upstream.clone(),
                        len: *len as u64,
                    });
                    stream.write_all(&placeholder(*len)).await
                }
                Err(bytes) => stream.write_all(bytes).await,
            };
            if let Err(e) = written {
                error = Some(e);
                break;
            }
        }
        drop(stream);
        (reader.await.unwrap(), error)
    }

    #[tokio::test]
    async fn socket_segments_arrive_in_order_between_plain_bytes_spliced_or_copied() {
        let body: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        for copies in [false, true] {
            let upstream = upstream_sending(body.clone()).await;
            let (got, error) = through_zero_copy(
                upstream,
                &[
                    Err(b"HEAD\r\n"),
                    Ok(FRAME),
                    Ok(100),
                    Err(b"--"),
                    Ok(body.len() - FRAME - 100),
                ],
                copies,
            )
            .await;
            assert!(error.is_none(), "copies {copies}: {error:?}");
            let mut want = b"HEAD\r\n".to_vec();
            want.extend_from_slice(&body[..FRAME + 100]);
            want.extend_from_slice(b"--");
            want.extend_from_slice(&body[FRAME + 100..]);
            assert_eq!(got.len(), want.len());
            assert!(
                got == want,
                "copies {copies}: the bytes differ from the upstream's"
            );
        }
    }

    /// A segment shorter than the copy buffer takes only its own bytes from the upstream: the
    /// plain bytes written after it come next, then the rest of the upstream's.
    #[tokio::test]
    async fn a_copied_segment_takes_no_bytes_beyond_its_length() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let upstream = upstream_sending(body.clone()).await;
        let (got, error) =
            through_zero_copy(upstream, &[Ok(10), Err(b"|"), Ok(body.len() - 10)], true).await;
        assert!(error.is_none(), "{error:?}");
        let mut want = body[..10].to_vec();
        want.push(b'|');
        want.extend_from_slice(&body[10..]);
        assert!(got == want, "a copied segment overran its length");
    }

    #[test]
    fn auto_copies_only_for_clients_on_this_machine() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let auto = SocketRelay::Auto;
        assert!(auto.copies(ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(auto.copies(ip("::1"), ip("::1")));
        assert!(auto.copies(ip("10.0.0.5"), ip("10.0.0.5")));
        assert!(!auto.copies(ip("10.0.0.6"), ip("10.0.0.5")));
        assert!(SocketRelay::Copy.copies(ip("10.0.0.6"), ip("10.0.0.5")));
        assert!(!SocketRelay::Splice.copies(ip("127.0.0.1"), ip("127.0.0.1")));
    }

    /// An upstream that has sent its whole body before the gate starts, and then stays open:
    /// a one-page pipe fills long before the frame does (a larger pipe fills the same way by
    /// slots when the socket holds many small segments).
    #[tokio::test]
    async fn a_pipe_full_of_small_segments_does_not_stall_the_rest_of_the_body() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let piece: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let pieces = 3_000;
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            for _ in 0..pieces {
                s.write_all(&piece).await.unwrap();
                s.flush().await.unwrap();
            }
            let _ = sent_tx.send(());
            let _ = done_rx.await; // open, silent, until the test ends
        });
        let upstream = TcpStream::connect(addr).await.unwrap();
        sent_rx.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // all of it queued
        let len = 200 * pieces;
        let (got, error) = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            through_zero_copy_with_pipe(upstream, &[Ok(len)], false, 4096),
        )
        .await
        .expect("the body stalled with all its bytes already received");
        drop(done_tx);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got.len(), len);
    }

    #[tokio::test]
    async fn an_upstream_that_ends_early_fails_the_write() {
        for copies in [false, true] {
            let upstream = upstream_sending(vec![7u8; 1000]).await;
            let (got, error) = through_zero_copy(upstream, &[Ok(5000)], copies).await;
            let error = error.expect("a short upstream must fail the write");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
            assert_eq!(got, vec![7u8; 1000], "copies {copies}");
        }
    }
}
