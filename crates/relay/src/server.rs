//! The accept loop: HTTP/1.1 over hyper with the limits `axum::serve` cannot
//! set (a hard cap on the header section and a deadline for receiving it),
//! the client address for rate limiting, and graceful shutdown.

use crate::config::Limits;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (for at most `drain`) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The relay answers a JSON 431 itself up to twice the configured
        // size (see routes::access_log); beyond, hyper answers a bare 431 and
        // closes the connection before buffering any more.
        .max_header_size(limits.max_header_bytes.saturating_mul(2));
    let graceful = GracefulShutdown::new();
    let (stop, _) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let (http, watcher) = (http.clone(), graceful.watcher());
        let header_timeout = limits.header_timeout;
        let mut stopping = stop.subscribe();
        tokio::spawn(async move {
            // hyper allocates its buffers (about 16 KiB) as soon as it owns a
            // connection, so a connection is handed over only once its first
            // bytes arrive (peeked, not consumed): until then it costs a task
            // and a socket. The header deadline covers this wait too, and
            // shutdown does not wait for connections that never spoke.
            // (`readable()` alone is not enough: it may report readiness
            // before any byte has arrived.)
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(header_timeout, stream.peek(&mut first)) => {
                    if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                        return;
                    }
                }
                _ = stopping.changed() => return,
            }
            // Boxed so that the waiting task above stays small: the served
            // connection's state is allocated only now.
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = Box::pin(watcher.watch(connection)).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(());
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(drain) => tracing::warn!("gave up waiting for connections to close"),
    }
}
