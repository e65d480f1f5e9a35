//! The invalidation service: maps each event to exactly the cache keys it makes stale.

use timelapser_core::events::Event;
use timelapser_core::keys::KeyPattern;

use crate::bus::EventHandler;
use crate::cache::ResponseCache;

/// Drops stale cache entries as events are published.
pub struct Invalidation {
    cache: ResponseCache,
}

impl Invalidation {
    /// Invalidates entries of `cache`.
    pub fn new(cache: ResponseCache) -> Self {
        Self { cache }
    }
}

/// The patterns an event makes stale.
pub fn stale_patterns(event: &Event) -> Vec<KeyPattern> {
    let camera = |id: i64| KeyPattern::entity("camera").id(id);
    let cameras = || KeyPattern::entity("cameras");
    let dashboard = || KeyPattern::entity("dashboard");
    match event {
        Event::CameraCreated { camera: c } | Event::CameraUpdated { camera: c } => {
            vec![camera(c.id), cameras(), dashboard()]
        }
        Event::CameraDeleted { camera_id } => vec![
            camera(*camera_id),
            cameras(),
            dashboard(),
            // Its timelapses went with it.
            KeyPattern::entity("timelapse"),
        ],
        Event::CameraStatusChanged { camera_id, .. } => {
            vec![camera(*camera_id), cameras(), dashboard()]
        }
        Event::ImageCaptured {
            camera_id,
            timelapse_id,
            ..
        } => {
            let mut patterns = vec![camera(*camera_id), cameras(), dashboard()];
            if let Some(t) = timelapse_id {
                patterns.push(KeyPattern::entity("timelapse").id(t));
            }
            patterns
        }
        Event::TimelapseStarted { timelapse } | Event::TimelapseStopped { timelapse } => {
            vec![KeyPattern::entity("timelapse").id(timelapse.id)]
        }
        Event::VideoQueued { .. } | Event::VideoReady { .. } | Event::VideoFailed { .. } => {
            vec![dashboard()]
        }
        Event::SettingsUpdated { .. } => vec![KeyPattern::entity("settings")],
        Event::VideoProgress { .. }
        | Event::StatsUpdated(_)
        | Event::HealthChanged { .. }
        | Event::Resync { .. } => vec![],
    }
}

impl EventHandler for Invalidation {
    fn handle(&self, event: &Event) {
        for pattern in stale_patterns(event) {
            tracing::debug!(%pattern, event = event.name(), "invalidating");
            self.cache.invalidate(&pattern);
        }
    }
}
