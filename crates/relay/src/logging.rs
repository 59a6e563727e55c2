//! Log output for the binary: `tracing` lines as text or JSON on standard
//! output, filtered by `RUST_LOG` (default `info`).
//!
//! What is logged is decided elsewhere, and never includes a secret, a code, a
//! verifier or a token: one access line per request (`dance_relay::access`,
//! see [`crate::routes`]), start-up and shutdown, and the kind of upstream
//! failures.

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Fails if one is installed already.
pub fn init(format: LogFormat) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().flatten_event(true)).try_init()
        }
    }
}
