//! The SPA.
fn main() {}
