//! The listener: accepts connections and holds them to limits (request-head deadline and size,
//! stalled writes, a connection cap that closes idle connections first), then hands each
//! request to the Hub API's router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use tower::ServiceExt;

use super::decision::Gate;
use super::hub_api::router;
use super::zero_copy::{SocketRelay, ZeroCopyStream};

/// Connection limits against slow or hostile clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send its whole request head within this time, counted from the moment
    /// the connection opens or the previous response ends: so it is also the first-byte and
    /// the keep-alive idle timeout.
    pub header_read_timeout: Duration,
    /// Largest request head (request line plus headers) accepted.
    pub max_header_bytes: usize,
    /// A write to the client that makes no progress for this long ends the connection.
    pub write_timeout: Duration,
    /// Connections open at once. Each holds a socket and, while downloading, one blob: the
    /// server also keeps this under half the process's open-file limit.
    pub max_connections: usize,
    /// Caps on uploads (the write routes).
    pub uploads: crate::gate::upload::UploadLimits,
    /// How a bucket object's body is relayed from the storage's socket to the client's.
    pub socket_relay: SocketRelay,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            write_timeout: Duration::from_secs(60),
            max_connections: 1024,
            uploads: Default::default(),
            socket_relay: SocketRelay::Auto,
        }
    }
}

/// The address a request came from (a request extension the listener adds).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Descriptors kept free for the listener, the audit log, the store and the runtime.
const RESERVED_FILES: u64 = 64;

/// The connection cap actually used: the configured one, but never so many that sockets plus
/// one open blob each would exceed the open-file limit (then `accept` would fail instead).
pub fn effective_max_connections(configured: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let by_files = (files.saturating_sub(RESERVED_FILES) / 2).max(1);
    configured
        .min(usize::try_from(by_files).unwrap_or(usize::MAX))
        .max(1)
}

/// The open connections, oldest first, with whether each is serving a request. When the cap
/// is reached, the oldest connection that is not serving anything (silent, sending its head
/// slowly, or idle between requests) is closed to make room: a flood of silent sockets cannot
/// keep a real client out, it only shortens its own connections' lives.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: std::collections::BTreeMap<u64, (Arc<ConnectionState>, tokio::task::AbortHandle)>,
}

#[derive(Default)]
struct ConnectionState {
    /// Requests being answered, responses bodies included.
    busy: std::sync::atomic::AtomicUsize,
}

/// Marks its connection busy while alive: created when a request arrives, dropped when the
/// response body has been written (or abandoned).
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn new(state: Arc<ConnectionState>) -> Self {
        state.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A response body that keeps its connection marked busy until it is finished.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl axum::body::HttpBody for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Connections {
    /// Closes the oldest connection that is serving nothing; false if every one is busy.
    fn evict_oldest_idle(&mut self) -> bool {
        let victim = self.open.iter().find_map(|(id, (state, _))| {
            (state.busy.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(*id)
        });
        match victim.and_then(|id| self.open.remove(&id)) {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }
}

/// Serves on `listener` until the process is stopped. Policy reloads are the caller's
/// ([`Gate::reload`]); this library installs no signal handler.
///
/// HTTP/1.1 only: cleartext HTTP/2 would need its own limits (streams, windows, preface
/// timeout) and `huggingface_hub` speaks HTTP/1.1; a client that sends the HTTP/2 preface gets
/// an HTTP/1 error and its connection closed.
pub async fn serve(
    gate: Arc<Gate>,
    listener: tokio::net::TcpListener,
    limits: Limits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};

    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "listening");
    let max_connections = effective_max_connections(limits.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let connections = Arc::new(Mutex::new(Connections::default()));
    // Uploads stream for as long as bytes keep coming (they have an idle timeout of their
    // own), so the whole-request timeout covers the read routes only.
    let uploads = crate::gate::upload::Uploads::new(gate.store.clone(), limits.uploads);
    let writes = crate::gate::upload::routes::UploadApi::new(gate.clone(), uploads.clone());
    let xet =
        crate::gate::xet::cas::XetCas::new(gate.store.clone(), Arc::new(uploads), writes.clone());
    let app = router(gate.clone())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .merge(crate::gate::upload::routes::routes(writes))
        .merge(crate::gate::xet::cas::router(Arc::new(xet)));
    loop {
        // A slot before accepting: when all are taken, make room by closing the oldest idle
        // connection; when every connection is busy, wait (new clients queue in the backlog).
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                connections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .evict_oldest_idle();
                match slots.clone().acquire_owned().await {
                    Ok(s) => s,
                    Err(_) => return Ok(()),
                }
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // File bodies go from the page cache to the socket with sendfile(2) (blob_body.rs);
        // the write timeout wraps it, so a client that stops reading is cut off all the same.
        let copies = match stream.local_addr() {
            Ok(local) => limits.socket_relay.copies(peer.ip(), local.ip()),
            Err(_) => limits.socket_relay == SocketRelay::Copy,
        };
        let (stream, zero_copy) = ZeroCopyStream::new(stream, copies);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let state = Arc::new(ConnectionState::default());
        let request_state = state.clone();
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
                let busy = Busy::new(request_state.clone());
                let app = app.clone();
                let mut req = req;
                req.extensions_mut().insert(zero_copy.clone());
                req.extensions_mut().insert(PeerAddr(peer));
                async move {
                    let resp = app.oneshot(req.map(Body::new)).await?;
                    Ok::<_, std::convert::Infallible>(
                        resp.map(|inner| Body::new(BusyBody { inner, _busy: busy })),
                    )
                }
            });
        let registry = connections.clone();
        let mut open = connections.lock().unwrap_or_else(|e| e.into_inner());
        let id = open.next_id;
        open.next_id += 1;
        let task = tokio::spawn(async move {
            let _slot = slot;
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes)
                .max_header_size(limits.max_header_bytes)
                .serve_connection(TokioIo::new(Box::pin(stream)), service)
                .await;
            registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open
                .remove(&id);
        });
        open.open.insert(id, (state, task.abort_handle()));
    }
}
