//! dance-relay-worker: the oauth-dance token relay on Cloudflare Workers.
//!
//! Every rule comes from [`dance_relay_core`]; this crate only moves bytes
//! between the Workers runtime and the core's steps, exactly as the native
//! binary (`dance-relay`) does between hyper and the same steps.
//!
//! - On wasm32 (built by `worker-build`), `worker` is the fetch handler: it
//!   reads the settings from the Worker's vars and secrets once per isolate,
//!   runs a request through the core, and sends the forwarded exchange with
//!   the runtime's `fetch`.
//! - Natively, [`workerd`] runs the built Worker in a local `workerd`, for
//!   the relay's integration tests, the end-to-end suite, the demo and the
//!   benchmark.

#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(not(target_arch = "wasm32"))]
pub mod workerd;
