//! `timelapser-agent`: the camera host's side of Timelapser. It records cameras (RTSP, HTTP
//! snapshots, V4L2, a watched folder) at the instants of each camera's schedule, which the
//! origin owns; writes every frame durably to a spool; and uploads the spool in capture order,
//! so that nothing is lost while the origin or the network is away. It reports each camera's
//! health through the origin's status endpoint.
//!
//! Per camera (see [`camera::run`]): a [`source::Source`] behind a small trait, a
//! [`recorder::Recorder`] driven by an injected [`clock::Clock`], a [`spool::Spool`], an
//! [`uploader::Uploader`], a [`schedule::ScheduleFollower`] and a [`health`] reporter.

pub mod backoff;
pub mod camera;
pub mod check;
pub mod clock;
pub mod config;
pub mod health;
pub mod metrics;
pub mod net;
pub mod origin;
pub mod quality;
pub mod recorder;
pub mod redact;
pub mod schedule;
pub mod source;
pub mod spool;
pub mod uploader;

use std::collections::HashMap;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Camera;
use crate::health::Health;
use crate::metrics::Metrics;

/// A running agent.
pub struct Agent {
    /// Its metrics.
    pub metrics: Metrics,
    health: HashMap<i64, Health>,
    shutdown: CancellationToken,
    cameras: JoinSet<()>,
}

impl Agent {
    /// Starts recording `cameras` (on a tokio runtime).
    pub fn start(cameras: Vec<Camera>, clock: SharedClock, metrics: Metrics) -> Self {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut health = HashMap::new();
        for camera in cameras {
            let camera_health = Health::new();
            health.insert(camera.camera_id, camera_health.clone());
            tasks.spawn(camera::run(
                camera.clone(),
                clock.clone(),
                camera_health,
                metrics.camera(camera.camera_id),
                shutdown.child_token(),
            ));
        }
        Self {
            metrics,
            health,
            shutdown,
            cameras: tasks,
        }
    }

    /// A camera's health, as its status reports it.
    pub fn health(&self, camera_id: i64) -> Option<&Health> {
        self.health.get(&camera_id)
    }

    /// Stops: captures end, uploads in flight finish, the spool stays; each camera reports
    /// itself offline.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.cameras.join_next().await.is_some() {}
    }

    /// Completes if a camera's task ends by itself (it should not: each retries forever).
    pub async fn stopped(&mut self) {
        self.cameras.join_next().await;
    }
}
