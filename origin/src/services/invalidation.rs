//! The invalidation service: maps each event to exactly the cache keys it makes stale.

use timelapser_core::events::Event;
use timelapser_core::keys::{Entity, KeyPattern};

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
    let camera = |id: i64| Entity::Camera.member(id);
    match event {
        Event::CameraCreated { camera: c } | Event::CameraUpdated { camera: c } => {
            vec![camera(c.id), Entity::Cameras.all(), Entity::Dashboard.all()]
        }
        Event::CameraDeleted { camera_id } => vec![
            camera(*camera_id),
            Entity::Cameras.all(),
            Entity::Dashboard.all(),
            // Its timelapses went with it.
            Entity::Timelapse.all(),
        ],
        Event::CameraStatusChanged { camera_id, .. } => {
            vec![
                camera(*camera_id),
                Entity::Cameras.all(),
                Entity::Dashboard.all(),
            ]
        }
        Event::ImageCaptured {
            camera_id,
            timelapse_id,
            ..
        } => {
            let mut patterns = vec![
                camera(*camera_id),
                Entity::Cameras.all(),
                Entity::Dashboard.all(),
            ];
            if let Some(t) = timelapse_id {
                patterns.push(Entity::Timelapse.member(t));
            }
            patterns
        }
        Event::TimelapseStarted { timelapse }
        | Event::TimelapseStopped { timelapse }
        | Event::TimelapseUpdated { timelapse } => {
            vec![Entity::Timelapse.member(timelapse.id)]
        }
        // Its videos went with it, and its frames' count moved to the camera's or went too.
        Event::TimelapseDeleted {
            camera_id,
            timelapse_id,
            ..
        } => vec![
            Entity::Timelapse.member(timelapse_id),
            camera(*camera_id),
            Entity::Cameras.all(),
            Entity::Dashboard.all(),
        ],
        // Counts, the latest image, image pages and the timelapses the frames were in.
        Event::ImagesDeleted { camera_id, .. } => vec![
            camera(*camera_id),
            Entity::Cameras.all(),
            Entity::Dashboard.all(),
            Entity::Timelapse.all(),
        ],
        Event::VideoDeleted { timelapse_id, .. } => vec![
            Entity::Timelapse.member(timelapse_id),
            Entity::Dashboard.all(),
        ],
        Event::VideoQueued { .. } | Event::VideoReady { .. } | Event::VideoFailed { .. } => {
            vec![Entity::Dashboard.all()]
        }
        // The time zone decides which frames are "today".
        Event::SettingsUpdated { keys, .. } if keys.iter().any(|k| k == "timezone") => {
            vec![Entity::Settings.all(), Entity::Dashboard.all()]
        }
        Event::SettingsUpdated { .. } => vec![Entity::Settings.all()],
        // Schedules are read by their camera's agent, not cached in memory.
        Event::VideoProgress { .. }
        | Event::StoragePressure { .. }
        | Event::ScheduleUpdated { .. }
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
