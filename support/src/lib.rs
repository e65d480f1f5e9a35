//! Child processes for `cargo xtask` and the tests, written once: the origin binary started
//! with its arguments on free ports, `wrangler dev` on the built Worker, a wait for an HTTP
//! endpoint with a deadline that fails with what it last saw, and process groups stopped as a
//! whole (wrangler runs workerd as its own child), and an S3-protocol server on loopback.
//!
//! Deliberately light (std, anyhow, tokio's timer, reqwest without TLS) and independent of
//! `timelapser-origin`: xtask builds it before anything else.

pub mod api;
mod origin;
mod process;
pub mod s3;
pub mod wrangler;

pub use origin::{OriginCommand, OriginProcess};
pub use process::{free_port, ProcessGroup};
