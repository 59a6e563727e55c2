//! The demo's static file server for `dist/`, like a static host (GitHub Pages)
//! with single-page-app fallback.
//!
//! - Files are served from `dist/` with their MIME type (`.wasm` as
//!   `application/wasm`, which `WebAssembly.instantiateStreaming` requires).
//! - Any other path without a file extension (`/some/page`) gets `index.html`,
//!   so deep links and the OAuth callback land in the app; a missing asset
//!   (`/missing.js`) is a plain 404.
//! - Responses carry `Cache-Control: no-cache` so a rebuild shows up on reload.
//! - Responses are gzip-compressed for clients that accept it, as GitHub
//!   Pages compresses them, so what the demo and the browser benchmark
//!   measure is what a deployment sends (the wasm is ~322 KiB raw, ~138 KiB
//!   gzipped).
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
use tower_http::compression::CompressionLayer;
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
        .layer(CompressionLayer::new())
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
        get_with(base, path, "").await
    }

    /// [`get`] with extra header lines (each ending in `\r\n`).
    async fn get_with(base: &str, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(base).await.expect("connect");
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n{headers}\r\n");
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
        let header = |name: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let content_type = header("content-type");
        let mut body = raw[split + 4..].to_vec();
        if header("transfer-encoding") == "chunked" {
            body = dechunk(&body);
        }
        if header("content-encoding") == "gzip" {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
                .expect("gzip");
            return (status, format!("{content_type}; gzip"), plain);
        }
        (status, content_type, body)
    }

    /// The body of a chunked transfer.
    fn dechunk(mut raw: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = raw.windows(2).position(|w| w == b"\r\n").expect("chunk size");
            let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).expect("hex"), 16)
                .expect("chunk size");
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&raw[line + 2..line + 2 + size]);
            raw = &raw[line + 2 + size + 2..];
        }
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

        // Compressed for a browser that accepts it, as a static host does;
        // the wasm is ~322 KiB raw, so this is most of what a visitor waits for.
        let accept = "Accept-Encoding: gzip, br\r\n";
        let wasm = vec![7_u8; 4096];
        std::fs::write(dir.join("big_bg.wasm"), &wasm).expect("write");
        let (status, content_type, body) = get_with(&base, "/big_bg.wasm", accept).await;
        assert_eq!((status, content_type.as_str()), (200, "application/wasm; gzip"));
        assert_eq!(body, wasm);
        let (_, content_type, _) = get(&base, "/big_bg.wasm").await;
        assert_eq!(content_type, "application/wasm", "not compressed unless asked");

        let logged = lines.lock().expect("lock").clone();
        assert!(logged.contains(&"GET /some/page?x=1 200".to_owned()), "{logged:?}");
        assert!(logged.contains(&"GET /missing.js 404".to_owned()), "{logged:?}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
