//! Log output for the binary: `tracing` lines as text or JSON on standard
//! output, filtered by `RUST_LOG` (default `info`); the binary writes them in
//! batches ([`init_deferred`]).
//!
//! What is logged is decided elsewhere, and never includes a secret, a code, a
//! verifier or a token: one access line per request (`dance_relay::access`,
//! see [`crate::routes`]), start-up and shutdown, and the kind of upstream
//! failures.

use crate::cli::LogFormat;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};
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

/// Installs the global subscriber like [`init`], but its lines wait in
/// memory until [`flush`] writes them out in one go (or until 16 KiB of them
/// pile up). The binary flushes each time its runtime runs out of work
/// (`on_thread_park`): a line is written at most one batch of work after its
/// request ended, never on the request's own path (before, the pipe write and
/// the reader it woke delayed every answer), and a busy relay writes many
/// lines with one system call instead of one each. The returned guard flushes
/// once more when dropped; lines still waiting when the process is killed are
/// lost.
pub fn init_deferred(
    format: LogFormat,
) -> Result<FlushOnDrop, tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(|| Deferred);
    match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    }?;
    Ok(FlushOnDrop(()))
}

/// Lines written by [`init_deferred`]'s subscriber and not yet on standard output.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// How many bytes of lines may wait before they are written without a [`flush`].
const FLUSH_AT: usize = 16 * 1024;

/// Writes the lines waiting since the last flush to standard output.
pub fn flush() {
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    write_out(&mut pending);
}

fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        // Nowhere to report a failure to write the log.
        let _ = io::stdout().lock().write_all(pending);
        pending.clear();
    }
}

/// Flushes the waiting log lines when dropped (see [`init_deferred`]).
#[derive(Debug)]
#[must_use = "dropping the guard flushes the log"]
pub struct FlushOnDrop(());

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        flush();
    }
}

/// The writer of one line: appends it to [`PENDING`].
struct Deferred;

impl Write for Deferred {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend_from_slice(bytes);
        if pending.len() >= FLUSH_AT {
            write_out(&mut pending);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
