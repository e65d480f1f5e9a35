//! Timelapser's edge: a Cloudflare Worker in front of the origin.
//!
//! [`plan`] makes every decision (what is cached, reused, revalidated), pure and tested natively
//! and on wasm32, with core's rules; what to answer a client from a representation (200, 206,
//! 304, 412, 416) is core's `response::answer`. The rest is the Worker, which carries those
//! decisions out; `fetch` below only dispatches on [`plan::route`]:
//! - `media`: answered from the Cache API; a miss fills it with one origin fetch however many
//!   requests are waiting for the same object (per isolate, which is what the platform
//!   allows), then every waiter answers from the stored copy;
//! - `cacheable` (other GET/HEAD, with Authorization too): an RFC 9111 shared cache in front of
//!   any origin: any status core says a shared cache may store, per `Vary` variant, with
//!   `CDN-Cache-Control` for this cache; served while fresh, served stale while revalidated in
//!   the background within `stale-while-revalidate`, revalidated with the stored validators
//!   when stale, served stale within `stale-if-error` when the origin fails;
//! - `fanout`: the public's `/api/events`, one Durable Object per filter holding one stream from
//!   the origin and writing each event to all its viewers, answering resumes from its ring;
//! - `pass_through`: other `/api/events` streamed as the origin writes it; writes, other methods,
//!   media with credentials and requests with the console's session forwarded untouched, body
//!   and all; a successful unsafe request forgets what is stored for its URI and its Location
//!   and Content-Location (RFC 9111 §4.4);
//! - operational endpoints (`/metrics`, `/api/cache/stats`): a 404 problem from the edge itself,
//!   whatever the credentials; they are never forwarded;
//! - `/media/` paths that name no media file: a 404 problem from the edge itself;
//! - the origin's purge (`core::purge`): stored responses forgotten, when the origin's token
//!   says so (a camera turned private).
//!
//! Around them: `origin` (the fetch with a deadline; [`interim`] reads the final response the
//! runtime hands over after a 1xx), `storage` (what the Cache API holds, every call bounded),
//! `answer` (carrying out core's answer from a stored or full representation), `glue` (the
//! Worker's types and `http`'s) and `error` (problem documents the edge answers itself).

pub mod fanout;
pub mod interim;
pub mod plan;

mod answer;
mod cacheable;
mod error;
mod glue;
mod media;
mod origin;
mod pass_through;
mod purge;
mod storage;

use worker::{event, Context, Env, Request, Response};

use crate::error::AppError;
use crate::glue::Incoming;
use crate::origin::Origin;
use crate::plan::Route;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let origin = Origin::from_env(&env);
    let served = match Incoming::read(&req, &origin) {
        Ok(incoming) => match incoming.route {
            Route::PassThrough => pass_through::serve(&origin, req, &incoming).await,
            Route::Events => fanout::serve(&origin, req, &incoming, &env).await,
            Route::Media => media::serve(&origin, &incoming).await,
            Route::Cacheable => cacheable::serve(&origin, &incoming, &ctx).await,
            Route::Operational => Err(AppError::Operational(incoming.path)),
            Route::Purge => purge::serve(req, &incoming, &env).await,
            Route::NoSuchMedia => Err(AppError::NoSuchMedia(incoming.path)),
        },
        Err(e) => Err(e),
    };
    Ok(served.unwrap_or_else(Response::from))
}
