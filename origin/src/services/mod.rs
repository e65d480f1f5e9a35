//! Services: the layer between routes and the database. They generate entity tags, use and
//! invalidate the in-memory cache, log events in the same transaction as the change they
//! describe, and publish them once committed. They take typed values (core's
//! `Preconditions`, ids, parsed bodies), never HTTP requests.

pub mod cameras;
pub mod captures;
pub mod edge_purge;
pub mod event_stream;
pub mod invalidation;
pub mod live;
pub mod media_sweep;
pub mod media_visibility;
pub mod render_rules;
pub mod schedules;
pub mod settings;
pub mod stats;
pub mod storage;
pub mod timelapses;
pub mod webhooks;

use std::time::Duration;

/// How long cached reads live when no event invalidates them first. Events invalidate every
/// change, so the TTL only bounds the damage of a missed invalidation.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
