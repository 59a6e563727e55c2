//! The demo's static file server for `dist/`, like a static host (GitHub Pages)
//! with single-page-app fallback.
//!
//! - Files are served from `dist/` with their MIME type (`.wasm` as
//!   `application/wasm`, which `WebAssembly.instantiateStreaming` requires).
//! - Any other path without a file extension (`/some/page`) gets `index.html`,
//!   so deep links and the OAuth callback land in the app; a missing asset
//!   (`/missing.js`) is a plain 404.
//! - Responses carry `Cache-Control: no-cache` so a rebuild shows up on reload.
//! - Every request is logged through the callback given to [`app`].

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where log lines of the static server go.
pub(crate) type Log = Arc<dyn Fn(String) + Send + Sync>;

/// The router serving `dist`, logging each request to `log`.
pub(crate) fn app(dist: PathBuf, log: Log) -> Router {
    let index = Arc::new(dist.join("index.html"));
    let fallback = (move |uri: Uri| spa_fallback(Arc::clone(&index), uri)).into_service();
    let files = ServeDir::new(dist).append_index_html_on_directories(true).fallback(fallback);
    Router::new()
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(middleware::from_fn_with_state(log, log_request))
}

/// Answers paths that are not files: `index.html` for app routes, 404 for assets.
async fn spa_fallback(index: Arc<PathBuf>, uri: Uri) -> Response {
    let last_segment = uri.path().rsplit('/').next().unwrap_or_default();
    if last_segment.contains('.') {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match tokio::fs::read(index.as_ref()).await {
        Ok(html) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], Body::from(html)).into_response()
        }
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not read {}: {error}\n", index.display()),
        )
            .into_response(),
    }
}

/// Logs `METHOD /path STATUS` for every request.
async fn log_request(State(log): State<Log>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path_and_query().map_or_else(|| "/".to_owned(), ToString::to_string);
    let response = next.run(request).await;
    log(format!("{method} {path} {}", response.status().as_u16()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A dist directory with an index, a wasm file and a nested asset.
    fn dist() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-serve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).expect("create dist");
        std::fs::write(dir.join("index.html"), "<html>app</html>").expect("write");
        std::fs::write(dir.join("app_bg.wasm"), b"\0asm\x01\0\0\0").expect("write");
        std::fs::write(dir.join("assets/style.css"), "body{}").expect("write");
        dir
    }

    /// A bare HTTP/1.1 GET (one request per connection), enough for these tests.
    async fn get(base: &str, path: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(base).await.expect("connect");
        let head = format!("GET {path} HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let split =
            raw.windows(4).position(|window| window == b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status line");
        let content_type = lines
            .find_map(|line| line.strip_prefix("content-type:"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        (status, content_type, raw[split + 4..].to_vec())
    }

    #[tokio::test]
    async fn serves_files_with_mime_types_and_falls_back_to_index() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let log: Log = Arc::new(move |line| sink.lock().expect("lock").push(line));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = listener.local_addr().expect("addr").to_string();
        let dir = dist();
        tokio::spawn(axum::serve(listener, app(dir.clone(), log)).into_future());

        let (status, content_type, body) = get(&base, "/app_bg.wasm").await;
        assert_eq!((status, content_type.as_str()), (200, "application/wasm"));
        assert_eq!(body, b"\0asm\x01\0\0\0");

        let (status, content_type, _) = get(&base, "/assets/style.css").await;
        assert_eq!((status, content_type.as_str()), (200, "text/css"));

        for path in ["/", "/some/page?x=1", "/callback"] {
            let (status, content_type, body) = get(&base, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
            assert_eq!(body, b"<html>app</html>", "{path}");
        }

        let (status, _, _) = get(&base, "/missing.js").await;
        assert_eq!(status, 404);

        let logged = lines.lock().expect("lock").clone();
        assert!(logged.contains(&"GET /some/page?x=1 200".to_owned()), "{logged:?}");
        assert!(logged.contains(&"GET /missing.js 404".to_owned()), "{logged:?}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
