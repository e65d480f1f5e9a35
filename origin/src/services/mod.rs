//! Services: the layer between routes and the database. They generate entity tags, use and
//! invalidate the in-memory cache, log events in the same transaction as the change they
//! describe, and publish them once committed.

pub mod auth;
pub mod cameras;
pub mod captures;
pub mod invalidation;
pub mod live;
pub mod render;
pub mod settings;
pub mod stats;
pub mod timelapses;

use std::time::Duration;

use sqlx::AnyConnection;
use timelapser_core::events::Event;
use timelapser_core::keys::CacheKey;

use crate::bus::LoggedEvent;
use crate::db;

/// Appends `event` to the event log inside the caller's transaction.
pub async fn log_event(
    conn: &mut AnyConnection,
    event: Event,
    now: i64,
) -> Result<LoggedEvent, sqlx::Error> {
    let id = db::events::append(conn, event.name(), &event.data(), event.camera_id(), now).await?;
    Ok(LoggedEvent::new(id, event))
}

/// The in-memory cache's keys, named once (`entity:operation:id`).
pub mod keys {
    use super::CacheKey;

    /// `camera:get:<id>`: one camera's representation.
    pub fn camera(id: i64) -> CacheKey {
        CacheKey::new("camera", "get", id)
    }

    /// `camera:get_latest_image:<id>`: a camera's latest image.
    pub fn latest_image(camera_id: i64) -> CacheKey {
        CacheKey::new("camera", "get_latest_image", camera_id)
    }

    /// `cameras:list`: every camera.
    pub fn camera_list() -> CacheKey {
        CacheKey::singleton("cameras", "list")
    }

    /// `dashboard:get_stats`: the dashboard numbers.
    pub fn dashboard_stats() -> CacheKey {
        CacheKey::singleton("dashboard", "get_stats")
    }

    /// `settings:get_all`: the settings.
    pub fn settings() -> CacheKey {
        CacheKey::singleton("settings", "get_all")
    }

    /// `timelapse:get:<id>`: one timelapse.
    pub fn timelapse(id: i64) -> CacheKey {
        CacheKey::new("timelapse", "get", id)
    }
}

/// How long cached reads live when no event invalidates them first. Events invalidate every
/// change, so the TTL only bounds the damage of a missed invalidation.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
