//! The shared context every handler and service gets.

use std::path::PathBuf;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::bus::EventBus;
use crate::cache::ResponseCache;
use crate::db::Db;
use crate::event_log::EventLog;
use crate::media::MediaStore;
use crate::media_cache::MediaCache;
use crate::services::auth::AdminToken;

/// Settings fixed at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the SQLite file, media and admin token live.
    pub data_dir: PathBuf,
    /// Largest capture accepted, in bytes.
    pub max_capture_bytes: u64,
    /// Reconnection delay sent to SSE clients.
    pub sse_retry: std::time::Duration,
    /// Interval of SSE heartbeat comments.
    pub sse_heartbeat: std::time::Duration,
}

/// The application context, shared by every handler: cloning it is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps a context.
    pub fn new(context: Shared) -> Self {
        Self(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the application context holds.
pub struct Shared {
    /// Fixed settings.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// Media files.
    pub media: MediaStore,
    /// Small media files and file facts kept in memory.
    pub media_cache: MediaCache,
    /// Expensive reads kept in memory.
    pub cache: ResponseCache,
    /// Committed events, published in order.
    pub bus: EventBus,
    /// The event log: commits and publishes events.
    pub events: EventLog,
    /// The admin token.
    pub admin: AdminToken,
    /// Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// The render queue.
    pub renderer: crate::services::render::Renderer,
    /// Cancelled when the server shuts down (ends SSE streams and background tasks).
    pub shutdown: tokio_util::sync::CancellationToken,
}
