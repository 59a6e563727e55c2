//! The accept loop: HTTP/1.1 over hyper with the limits `axum::serve` cannot
//! set (a cap on open connections, a hard cap on the header section and a
//! deadline for receiving it), the client address for rate limiting, and
//! graceful shutdown.
//!
//! hyper gives each connection it serves an 8 KiB read buffer and an 8 KiB
//! write buffer (its floor; a token request needs a few hundred bytes), and
//! keeps them until the connection closes. So hyper holds a connection only
//! while a request is being read and answered:
//! - a new connection is handed over once its first bytes arrive (peeked,
//!   not consumed); until then it costs a task and a socket;
//! - on the public listener, at most [`admission`] requests are handed over
//!   at once: more wait, unread, in the kernel's socket buffers, for at most
//!   the slot timeout, then are served anyway (and may then get the 503 of
//!   a full relay);
//! - once a request has been read to its end and answered on a connection
//!   that stays open, the connection is taken back from hyper (its buffers
//!   freed; bytes hyper had read ahead are replayed to the next session)
//!   and waits, unread, for its next request like a new one.

use crate::config::Limits;
use crate::routes::Relay;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, Version, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

/// Requests hyper may be reading or answering at once on the public
/// listener: twice the exchanges that may wait on the token endpoint at once,
/// so that requests that need no upstream (`/healthz`, preflights, refusals)
/// still find room while every slot is taken.
pub(crate) fn admission(limits: &Limits) -> usize {
    limits.max_concurrency.saturating_mul(2).clamp(1, Semaphore::MAX_PERMITS)
}

/// What a connection's service tells its accept loop, and its socket what
/// hyper could not write yet.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The last request was read to its end and answered, and the
    /// connection stays open (HTTP/1.1, no `Connection: close`): once the
    /// answer is written, hyper can let the connection go.
    reusable: AtomicBool,
    /// The socket refused hyper's last write: hyper holds bytes not yet sent.
    write_blocked: AtomicBool,
}

impl Session {
    /// A request arrived: the connection is hyper's until it is answered.
    fn begin(&self) {
        self.reusable.store(false, Ordering::Relaxed);
    }

    /// The request is answered; `reusable` if it was read to its end and
    /// its connection stays open.
    fn end(&self, reusable: bool) {
        self.reusable.store(reusable, Ordering::Relaxed);
    }

    /// hyper has answered a request that allows taking the connection back,
    /// and has written everything it had to write.
    fn idle(&self) -> bool {
        self.reusable.load(Ordering::Relaxed) && !self.write_blocked.load(Ordering::Relaxed)
    }
}

/// Whether a request allows its connection to stay open after the answer.
fn keeps_alive<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11
        && !request.headers().get_all(header::CONNECTION).iter().any(|value| {
            value.to_str().map_or(true, |tokens| {
                tokens.split(',').any(|token| token.trim().eq_ignore_ascii_case("close"))
            })
        })
}

/// A boxed answer: hyper takes a connection back only from a service whose
/// future is `Unpin`.
type Answering<B> = Pin<Box<dyn Future<Output = Result<Response<B>, Infallible>> + Send>>;

/// A connection's service, with everything the accept loop needs of it said
/// once: it can be cloned into each session and sent to the connection's
/// task, never fails, answers with a body hyper can send, and its answer is
/// `Unpin` (else hyper could not give the connection back). hyper serves
/// it through [`Hyper`].
pub(crate) trait ConnectionService: Clone + Unpin + Send + 'static {
    /// The answers' body.
    type Body: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;

    /// Answers one request.
    fn call(&self, request: Request<Incoming>) -> Answering<Self::Body>;
}

/// A [`ConnectionService`] as the hyper service of one session.
#[derive(Clone)]
struct Hyper<S>(S);

impl<S: ConnectionService> Service<Request<Incoming>> for Hyper<S> {
    type Response = Response<S::Body>;
    type Error = Infallible;
    type Future = Answering<S::Body>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.0.call(request)
    }
}

/// The public listener's service for one connection: [`Relay::serve`], and
/// its [`Session`] told whether the connection can be taken back.
#[derive(Clone)]
pub(crate) struct RelayService {
    pub(crate) relay: Arc<Relay>,
    pub(crate) peer: SocketAddr,
    pub(crate) session: Arc<Session>,
}

impl ConnectionService for RelayService {
    type Body = Full<Bytes>;

    fn call(&self, request: Request<Incoming>) -> Answering<Self::Body> {
        self.session.begin();
        let keeps_alive = keeps_alive(&request);
        let Self { relay, peer, session } = self.clone();
        Box::pin(async move {
            let served = relay.serve(request, Some(peer.ip())).await;
            session.end(served.body_read && keeps_alive);
            Ok(served.response)
        })
    }
}

/// A router's service for one connection (the metrics listener), with the
/// client's address as [`ConnectInfo`]. Its connections stay with hyper.
#[derive(Clone)]
pub(crate) struct RouterService {
    pub(crate) router: Router,
    pub(crate) peer: SocketAddr,
}

impl ConnectionService for RouterService {
    type Body = axum::body::Body;

    fn call(&self, mut request: Request<Incoming>) -> Answering<Self::Body> {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Box::pin(self.router.clone().oneshot(request))
    }
}

/// Serves `listener` until `shutdown` completes, then lets the requests in
/// flight finish (for at most `drain`) and returns. `service` makes each
/// connection's service; `admission`, if any, caps the requests hyper reads
/// and answers at once.
pub(crate) async fn serve<S: ConnectionService>(
    listener: TcpListener,
    service: impl Fn(SocketAddr, Arc<Session>) -> S,
    limits: &Limits,
    admission: Option<usize>,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The relay answers a JSON 431 itself up to twice the configured
        // size (the core's first gate); beyond, hyper answers a bare 431 and
        // closes the connection before buffering any more.
        .max_header_size(limits.max_header_bytes.saturating_mul(2))
        // hyper's read buffer starts at 8 KiB (its floor) and grows only
        // for a head or body that fills it; it needs no more room than the
        // header cap (a token request's body is capped lower still).
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192))
        // No read while a request is being answered: by default hyper reads
        // on, to notice a client that hangs up early, and since the request's
        // head still holds its first read buffer, that read takes a second
        // 8 KiB buffer for every exchange in flight. A client that goes away
        // is noticed when its answer is written instead.
        .half_close(true);
    let http = Arc::new(http);
    let admission = admission.map(|permits| Arc::new(Semaphore::new(permits)));
    // Names the listener in the shutdown lines (the relay may have two).
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    // Every connection's task holds a receiver: the sender's `closed()` is
    // the end of the last one.
    let (stop, _) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    // One permit per open connection. At the cap the loop stops accepting,
    // so new connections wait in the kernel's queue rather than in memory.
    let open = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let mut at_cap = false;
    loop {
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection limit reached: new connections wait until one closes \
                         (DANCE_MAX_CONNECTIONS)"
                    );
                }
                tokio::select! {
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        if open.available_permits() > limits.max_connections / 2 {
            at_cap = false;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                // Usually "too many open files": back off a little instead of
                // spinning, and keep serving the connections we have.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let session = Arc::new(Session::default());
        let connection = Connection {
            _open: permit,
            io: Reusable { stream, replay: Bytes::new(), session: session.clone() },
            service: service(peer, session),
            http: http.clone(),
            admission: admission.clone(),
            header_timeout: limits.header_timeout,
            admission_timeout: limits.slot_timeout,
            stopping: stop.subscribe(),
        };
        tokio::spawn(connection.run());
    }
    drop(listener);
    let _ = stop.send(true);
    tracing::info!(%address, "shutting down: waiting for requests in flight");
    tokio::select! {
        () = stop.closed() => tracing::info!(%address, "all connections closed"),
        () = tokio::time::sleep(drain) => {
            tracing::warn!(%address, "gave up waiting for connections to close");
        }
    }
}

/// One accepted connection and what it needs to be served.
struct Connection<S> {
    /// Its place among the open connections, held until it ends.
    _open: OwnedSemaphorePermit,
    io: Reusable,
    service: S,
    http: Arc<http1::Builder>,
    admission: Option<Arc<Semaphore>>,
    header_timeout: Duration,
    admission_timeout: Duration,
    stopping: watch::Receiver<bool>,
}

impl<S: ConnectionService> Connection<S> {
    /// Serves requests until the connection closes or the server stops.
    #[allow(clippy::manual_async_fn, reason = "an `async fn` keeps `self` twice in the task")]
    fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            loop {
                if !self.first_bytes().await {
                    return;
                }
                let Some(admitted) = self.admit().await else { return };
                let ended =
                    session(&self.http, self.io, self.service.clone(), &mut self.stopping).await;
                drop(admitted);
                match ended {
                    Some(io) => self.io = io,
                    None => return,
                }
            }
        }
    }
}

impl<S> Connection<S> {
    /// Waits for the request's first bytes: until they arrive, the
    /// connection costs a task and a socket. The header deadline covers this
    /// wait too (it closes idle keep-alive connections), and shutdown does
    /// not wait for connections that are not in a request. False when the
    /// connection is to be closed.
    async fn first_bytes(&mut self) -> bool {
        if !self.io.replay.is_empty() {
            return true;
        }
        // (`readable()` alone is not enough: it may report readiness before
        // any byte has arrived.) Polled by hand rather than with `peek()`,
        // whose future would make every waiting connection's task bigger.
        let stream = &self.io.stream;
        let mut first = [0u8; 1];
        let peek = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut ReadBuf::new(&mut first)));
        tokio::select! {
            peeked = tokio::time::timeout(self.header_timeout, peek) => {
                matches!(peeked, Ok(Ok(n)) if n > 0)
            }
            () = stopped(&mut self.stopping) => false,
        }
    }

    /// A place among the requests being read and answered (`None` inside
    /// when served past the cap, after the deadline), or `None` when the
    /// server stops.
    async fn admit(&mut self) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(admission) = &self.admission else { return Some(None) };
        if let Ok(permit) = admission.clone().try_acquire_owned() {
            return Some(Some(permit));
        }
        // Boxed: only a connection past the cap waits here, and the wait
        // inline would make every connection's task bigger for good.
        let wait = tokio::time::timeout(self.admission_timeout, admission.clone().acquire_owned());
        let stopping = &mut self.stopping;
        Box::pin(async move {
            tokio::select! {
                admitted = wait => Some(admitted.ok().and_then(Result::ok)),
                () = stopped(stopping) => None,
            }
        })
        .await
    }
}

/// Completes once the server stops (at once if it has already).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            return;
        }
    }
}

/// One hyper session on a connection, boxed so that a connection waiting
/// for its next request stays small: hyper's state is allocated only now.
/// Returns the connection once it can be taken back (idle after a request
/// that allows it, see [`Session`]); `None` when it closed or the server
/// stops.
fn session<'a, S: ConnectionService>(
    http: &http1::Builder,
    io: Reusable,
    service: S,
    stopping: &'a mut watch::Receiver<bool>,
) -> Pin<Box<impl Future<Output = Option<Reusable>> + 'a>> {
    let session = io.session.clone();
    let mut served = http.serve_connection(TokioIo::new(io), Hyper(service));
    Box::pin(async move {
        let mut stop = std::pin::pin!(stopped(stopping));
        let mut closing = false;
        let mut taking_back = false;
        let ended = std::future::poll_fn(|cx| {
            loop {
                if taking_back {
                    // hyper closes its side without shutting the socket down.
                    return served.poll_without_shutdown(cx).map(|ended| (ended, true));
                }
                if !closing && stop.as_mut().poll(cx).is_ready() {
                    // The server stops: finish the request in flight, then close.
                    Pin::new(&mut served).graceful_shutdown();
                    closing = true;
                }
                match Pin::new(&mut served).poll(cx) {
                    Poll::Ready(ended) => return Poll::Ready((ended, false)),
                    Poll::Pending if !closing && session.idle() => {
                        // Answered and written, waiting for the next request:
                        // hyper stops here (an idle connection just closes its
                        // state), and the connection comes back.
                        Pin::new(&mut served).graceful_shutdown();
                        taking_back = true;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        match ended {
            (Ok(()), true) => {
                let parts = served.into_parts();
                let mut io = parts.io.into_inner();
                // What hyper read past the answered request: the start of the
                // next one, which the next session reads first. Copied, so that
                // hyper's buffer is freed.
                if !parts.read_buf.is_empty() {
                    io.replay = Bytes::copy_from_slice(&parts.read_buf);
                }
                Some(io)
            }
            (Ok(()), false) => None,
            (Err(error), _) => {
                tracing::debug!(%error, "connection ended with an error");
                None
            }
        }
    })
}

/// A client connection as hyper reads and writes it: bytes an earlier
/// session had read ahead come first, and a refused write is noted in the
/// [`Session`].
struct Reusable {
    stream: TcpStream,
    replay: Bytes,
    session: Arc<Session>,
}

impl Reusable {
    fn note<T>(&self, written: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.session.write_blocked.store(written.is_pending(), Ordering::Relaxed);
        written
    }
}

impl AsyncRead for Reusable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replay.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.replay.len().min(buf.remaining());
        buf.put_slice(&this.replay.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Reusable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
