//! The SPA's entry point; everything lives in the library (`src/lib.rs`).

/// The allocator of the bundle: rlsf's TLSF (two-level segregated fit),
/// constant-time, in 2.5 KB (brotli) less than the standard library's
/// dlmalloc. It takes memory from the browser in 64 KiB pages, each growth a
/// separate pool, and never merges pools (rlsf 0.2.3 can't on wasm32, so the
/// small variant leaves that code out): memory after a burst of growing
/// buffers can be about twice the largest one, where dlmalloc's would be
/// once. The app's buffers are a few KB, so this costs little; the browser
/// tests run on this allocator and bound the growth. Native builds (the unit
/// tests) keep the system allocator.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: rlsf::SmallGlobalTlsf = rlsf::SmallGlobalTlsf::new();

fn main() {
    oauth_dance::start();
}
