//! The SPA's entry point; everything lives in the library (`src/lib.rs`).

fn main() {
    oauth_dance::start();
}
