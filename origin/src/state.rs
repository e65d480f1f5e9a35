//! The shared context every handler and service gets.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::auth::AdminToken;
use crate::bus::EventBus;
use crate::cache::ResponseCache;
use crate::db::Db;
use crate::event_log::EventLog;
use crate::media::MediaStore;
use crate::media_cache::MediaCache;
use crate::render::Renderer;

/// Settings fixed at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the SQLite file, media and admin token live.
    pub data_dir: PathBuf,
    /// Largest capture accepted, in bytes.
    pub max_capture_bytes: u64,
    /// Capture times accepted around the server's clock.
    pub capture_window: CaptureWindow,
    /// Reconnection delay sent to SSE clients.
    pub sse_retry: std::time::Duration,
    /// Interval of SSE heartbeat comments.
    pub sse_heartbeat: std::time::Duration,
    /// The most events a resume or catch-up replays; further behind, a client gets `resync`.
    pub sse_max_replay: i64,
    /// The longest a request may take to arrive.
    pub request_timeout: std::time::Duration,
    /// The edge to purge, if any.
    pub edge_purge: Option<EdgePurgeTarget>,
    /// Free space the media disk keeps: below it the oldest unprotected frames are pruned,
    /// and a capture that nothing can make room for is refused (507).
    pub min_free: MinFree,
}

/// The edge in front of the origin, for purges: its public URL (the one clients use, since
/// the edge stores responses under it) and the purge token.
#[derive(Clone)]
pub struct EdgePurgeTarget {
    /// `https://timelapser.example.org`.
    pub url: String,
    /// The token; the edge holds its SHA-256 (`PURGE_TOKEN_SHA256`).
    pub token: String,
}

impl std::fmt::Debug for EdgePurgeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgePurgeTarget")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

/// The free-space threshold of the media disk: the larger of a number of bytes and a share
/// of the disk (default: 2 GiB and 5 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinFree {
    /// Bytes.
    pub bytes: u64,
    /// Percent of the disk's size.
    pub percent: u8,
}

impl Default for MinFree {
    fn default() -> Self {
        Self {
            bytes: 2 * 1024 * 1024 * 1024,
            percent: 5,
        }
    }
}

impl MinFree {
    /// No threshold: the disk may fill (what embedded origins start with).
    pub const NONE: Self = Self {
        bytes: 0,
        percent: 0,
    };

    /// The threshold on a disk of `total` bytes.
    pub fn threshold(&self, total: u64) -> u64 {
        self.bytes
            .max(total / 100 * u64::from(self.percent.min(100)))
    }
}

/// The time retention counts from: the system clock, unless a test sets it.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<std::sync::Mutex<Option<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// From now on reads `at` (tests).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = Some(at);
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .expect("clock lock")
            .unwrap_or_else(crate::db::now)
    }
}

/// How far from the server's clock a capture time may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureWindow {
    /// The oldest capture accepted, before now (an agent's spool after an outage).
    pub past: std::time::Duration,
    /// The newest, after now (clock skew between a camera host and the origin).
    pub future: std::time::Duration,
}

impl Default for CaptureWindow {
    fn default() -> Self {
        Self {
            past: std::time::Duration::from_secs(365 * 86_400),
            future: std::time::Duration::from_secs(600),
        }
    }
}

impl CaptureWindow {
    /// 422 for a capture time outside the window around `now`: a frame dated in year 9999
    /// would otherwise stay "latest" forever.
    pub fn check(
        &self,
        captured_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> crate::error::Result<()> {
        let span =
            |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let earliest = now
            .checked_sub_signed(span(self.past))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let latest = now
            .checked_add_signed(span(self.future))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if captured_at < earliest || captured_at > latest {
            return Err(crate::error::Error::Unprocessable(format!(
                "Capture-Time {} is outside the accepted window, {} to {} (the server's clock, minus {} s and plus {} s)",
                captured_at.to_rfc3339(),
                earliest.to_rfc3339(),
                latest.to_rfc3339(),
                self.past.as_secs(),
                self.future.as_secs(),
            )));
        }
        Ok(())
    }
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
    /// Which media files everyone may fetch.
    pub media_visibility: crate::services::media_visibility::MediaVisibility,
    /// Expensive reads kept in memory.
    pub cache: ResponseCache,
    /// Committed events, published in order.
    pub bus: EventBus,
    /// The event log: commits and publishes events.
    pub events: EventLog,
    /// The admin token.
    pub admin: AdminToken,
    /// Failed sign-ins, per account and per address.
    pub throttle: crate::accounts::Throttle,
    /// Its metrics.
    pub metrics: crate::metrics::Metrics,
    /// The render queue.
    pub renderer: Renderer,
    /// The clock of retention and of automatic render rules.
    pub clock: Clock,
    /// Wakes the automatic render rules' runner.
    pub rules: crate::services::render_rules::RuleRunner,
    /// Retention, deletes and disk pressure: their wake-ups and state.
    pub storage: crate::services::storage::Storage,
    /// Cancelled when the server shuts down (ends SSE streams and background tasks).
    pub shutdown: tokio_util::sync::CancellationToken,
}
