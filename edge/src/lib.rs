//! Timelapser's edge: a Cloudflare Worker in front of the origin.
//!
//! - [`plan`]: every decision (what is cached, reused, revalidated, answered), pure and tested
//!   natively and on wasm32.
//! - [`worker_glue`]: the Worker itself: Cache API, fetches to the origin, streaming.

pub mod plan;
pub mod worker_glue;
