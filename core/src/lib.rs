//! HTTP caching semantics for Timelapser, once, for every part of the system.
//!
//! This crate is sans-IO: plain types and functions over [`http`] header values and byte
//! slices. It reads no clock (time is always a parameter), opens no socket and spawns no task,
//! so the same rules decide at the edge (a Cloudflare Worker compiled to wasm32) and at the
//! origin (native), and the two can never disagree about what a 304 is.
//!
//! | module | what it decides | specification |
//! |---|---|---|
//! | [`etag`] | entity tags and their generators | RFC 9110 §8.8.3 |
//! | [`conditional`] | If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since | RFC 9110 §13 |
//! | [`range`] | Range, If-Range, Content-Range | RFC 9110 §14, §13.1.5 |
//! | [`cache_control`] | Cache-Control, storability, freshness (explicit and heuristic), age, stored fields, invalidation | RFC 9111, RFC 8246, RFC 5861 |
//! | [`targeted`] | `CDN-Cache-Control`: directives for this cache only | RFC 9213, RFC 9651 |
//! | [`vary`] | secondary cache keys | RFC 9111 §4.1 |
//! | [`policy`] | the decision matrix: content kind → headers | DESIGN.md |
//! | [`response`] | what to answer from a representation: 200, 206, 304, 412, 416 | RFC 9110 §13.2.2, §14, §15.4.5 |
//! | [`problem`] | problem documents | RFC 9457 |
//! | [`paths`] | the event stream and media paths, media names | API.md |
//! | [`schedule`] | capture schedules: grid, daily and sun windows | API.md |
//! | [`render`] | render options, the content address of a render, automatic render rules | API.md |
//! | [`keys`] | in-memory cache key naming | the v4 caching guide |
//! | [`events`] | the SSE event catalogue and the event-stream wire format | API.md, HTML §9.2 |
//! | [`stream_query`] | an event-stream request's filters in canonical form, its resume point | API.md, HTML §9.2.4 |
//! | [`credentials`] | what makes a request someone's: Authorization, the system's cookies | RFC 9111 §3.5, RFC 6265 |
//! | [`forwarding`] | hop-by-hop fields, the edge's cache status | RFC 9110 §7.6.1, RFC 9211 |
//! | [`resources`] | the JSON representations of API.md | API.md |
//! | [`webhooks`] | webhook events, payloads, signatures (HMAC-SHA256) and retry backoff | RFC 2104, the README |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache_control;
pub mod conditional;
pub mod credentials;
pub mod etag;
pub mod events;
pub mod forwarding;
pub mod keys;
pub mod paths;
pub mod policy;
pub mod problem;
pub mod purge;
pub mod range;
pub mod render;
pub mod resources;
pub mod response;
pub mod schedule;
pub mod stream_query;
pub mod targeted;
pub mod vary;
pub mod webhooks;

mod syntax;

pub use cache_control::CacheControl;
pub use conditional::{Precondition, Preconditions, Validators};
pub use etag::EntityTag;
pub use policy::ContentKind;
pub use problem::Problem;
pub use syntax::parse_http_date;
