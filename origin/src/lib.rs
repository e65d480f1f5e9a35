//! Timelapser's origin: the owner of state.
//!
//! Three layers, as the v4 caching guide has them: [`routes`] set HTTP status and headers
//! (every value from `timelapser_core`); [`services`] make entity tags, use and invalidate
//! the in-memory [`cache`], and log and publish events; [`db`] is pure data access.

pub mod accounts;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod db;
pub mod demo;
pub mod error;
pub mod event_log;
pub mod media;
pub mod media_cache;
pub mod metrics;
pub mod render;
pub mod routes;
pub mod serve;
pub mod services;
pub mod state;
pub mod thumbnail;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::AdminToken;
use crate::bus::{EventBus, EventHandler};
use crate::cache::ResponseCache;
use crate::db::Db;
use crate::event_log::EventLog;
use crate::media::MediaStore;
use crate::media_cache::MediaCache;
use crate::render::Renderer;
use crate::serve::ServeLimits;
use crate::services::invalidation::Invalidation;
use crate::services::media_sweep::{self, MediaFiles};
use crate::services::media_visibility::MediaVisibility;
use crate::state::{AppState, CaptureWindow, Config, Shared};

/// Everything needed to start an origin.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where media lives (`--media-url`); `None`: `media/` in the data directory.
    pub media: Option<media::MediaLocation>,
    /// `sqlite:...` or `postgres:...`; default: `timelapser.db` in the data directory.
    pub database_url: Option<String>,
    /// The admin token; generated and stored (hashed) on first start when absent.
    pub admin_token: Option<String>,
    /// Largest capture accepted.
    pub max_capture_bytes: u64,
    /// Create demo cameras fed by synthetic frames.
    pub demo: bool,
    /// Seconds between synthetic frames in demo mode.
    pub demo_interval: Duration,
    /// Seconds between offline sweeps.
    pub sweep_interval: Duration,
    /// Events the in-process broadcast keeps for slow SSE clients before they fall back to
    /// reading the log.
    pub event_buffer: usize,
    /// Reconnection delay sent to SSE clients (`retry:`).
    pub sse_retry: Duration,
    /// Interval of SSE heartbeat comments.
    pub sse_heartbeat: Duration,
    /// Interval of event log pruning.
    pub prune_interval: Duration,
    /// Renders run at once (one suits a small machine: ffmpeg uses every core).
    pub render_workers: usize,
    /// How long a render's lease lasts without renewal ([`render`]).
    pub render_lease: Duration,
    /// The ffmpeg binary; `ffmpeg` on PATH when not set.
    pub ffmpeg: Option<PathBuf>,
    /// Where to serve `/metrics`, `/api/cache/stats` and `/healthz` without a token (never
    /// through the edge); `None`: no operations listener.
    pub ops_listen: Option<SocketAddr>,
    /// Capture times accepted around the server's clock.
    pub capture_window: CaptureWindow,
    /// The longest a request may take to arrive (head and body), before its response.
    pub request_timeout: Duration,
    /// How long shutdown waits for open connections before closing them.
    pub shutdown_grace: Duration,
    /// Connections open at once (default: the file-descriptor limit, less a reserve).
    pub max_connections: usize,
    /// How long an event-stream write may stall before that client is dropped.
    pub sse_write_timeout: Duration,
    /// The most events a resume or catch-up replays before `resync` instead.
    pub sse_max_replay: i64,
    /// Seconds between sweeps for media files no row refers to (after the one at start-up).
    pub orphan_sweep_interval: Duration,
    /// Interval of the health checks behind `health_changed`.
    pub health_interval: Duration,
    /// The edge in front of this origin and its purge token: what it stored of a camera
    /// that turns private is purged ([`services::edge_purge`]). `None`: no edge to purge.
    pub edge_purge: Option<state::EdgePurgeTarget>,
    /// The media disk's free-space threshold.
    pub min_free: state::MinFree,
    /// Interval of the retention sweeps (also run at start-up, and at once when a policy
    /// changes).
    pub retention_interval: Duration,
    /// Interval at which automatic render rules are looked at (also at start-up, and at
    /// once when a rule changes).
    pub render_rules_interval: Duration,
    /// The clock retention and render rules count from (tests set their own).
    pub clock: state::Clock,
    /// How webhook attempts are made: their timeout and the base of their retry backoff.
    pub webhook_delivery: services::webhooks::DeliveryOptions,
}

impl Options {
    /// Defaults for a data directory (tests and embedding).
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir,
            media: None,
            database_url: None,
            admin_token: None,
            max_capture_bytes: 20 * 1024 * 1024,
            demo: false,
            demo_interval: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(5),
            event_buffer: 1024,
            sse_retry: Duration::from_secs(2),
            sse_heartbeat: Duration::from_secs(15),
            prune_interval: Duration::from_secs(60),
            render_workers: 1,
            render_lease: Duration::from_secs(30),
            ffmpeg: None,
            ops_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9000))),
            capture_window: CaptureWindow::default(),
            request_timeout: routes::DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: Duration::from_secs(10),
            max_connections: serve::default_max_connections(),
            sse_write_timeout: Duration::from_secs(30),
            sse_max_replay: 10_000,
            orphan_sweep_interval: Duration::from_secs(3600),
            health_interval: Duration::from_secs(10),
            edge_purge: None,
            // Embedded origins (tests) keep no free-space threshold unless they set one;
            // the command line's default is MinFree::default().
            min_free: state::MinFree::NONE,
            retention_interval: Duration::from_secs(600),
            render_rules_interval: Duration::from_secs(30),
            clock: state::Clock::system(),
            webhook_delivery: services::webhooks::DeliveryOptions::default(),
        }
    }
}

/// Opens (and migrates) the database the options name: `DATABASE_URL`, or SQLite in the data
/// directory.
pub async fn open_database(options: &Options) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating the data directory {}", options.data_dir.display()))?;
    let database_url = match &options.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}?mode=rwc",
            options.data_dir.join("timelapser.db").display()
        ),
    };
    Db::connect(&database_url).await
}

/// Opens the database and media, and builds the application state.
pub async fn build_state(
    options: &Options,
) -> anyhow::Result<(AppState, Option<String>, render::Queue)> {
    let db = open_database(options).await?;
    let media = MediaStore::open(&options.data_dir, options.media.as_ref()).await?;
    tracing::info!(media = %media.describe(), "media store");
    let (admin, generated) =
        AdminToken::load_or_generate(options.admin_token.as_deref(), &options.data_dir)?;
    let metrics = crate::metrics::Metrics::new();
    let cache = ResponseCache::new(64 * 1024 * 1024, &metrics);
    let media_visibility = MediaVisibility::default();
    let handlers: Vec<Arc<dyn EventHandler>> = vec![
        Arc::new(Invalidation::new(cache.clone())),
        Arc::new(media_visibility.clone()),
    ];
    let bus = EventBus::new(options.event_buffer, handlers);
    let events = EventLog::open(db.clone(), bus.clone()).await?;
    let media_cache = MediaCache::new(128 * 1024 * 1024);
    let (renderer, queue) = Renderer::new(
        render::find_ffmpeg(options.ffmpeg.as_deref()),
        db.clone(),
        media.clone(),
        media_cache.clone(),
        events.clone(),
        options.render_lease,
    );
    let state = AppState::new(Shared {
        config: Arc::new(Config {
            data_dir: options.data_dir.clone(),
            max_capture_bytes: options.max_capture_bytes,
            capture_window: options.capture_window,
            sse_retry: options.sse_retry,
            sse_heartbeat: options.sse_heartbeat,
            sse_max_replay: options.sse_max_replay,
            request_timeout: options.request_timeout,
            edge_purge: options.edge_purge.clone(),
            min_free: options.min_free,
        }),
        db,
        media,
        media_cache,
        media_visibility,
        cache,
        bus,
        events,
        admin,
        throttle: accounts::Throttle::default(),
        metrics,
        renderer,
        clock: options.clock.clone(),
        rules: services::render_rules::RuleRunner::default(),
        storage: services::storage::Storage::default(),
        shutdown: CancellationToken::new(),
    });
    services::settings::seed_defaults(&state).await?;
    Ok((state, generated, queue))
}

/// A running origin.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its operations listener listens, if it has one.
    pub ops_addr: Option<SocketAddr>,
    /// Its state (tests reach into it).
    pub state: AppState,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Asks the server to stop and waits for in-flight requests.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("server task panicked")??;
        // Renders were cancelled with the rest; they give their leases back before the
        // database closes, so another replica (or the next start) takes them at once.
        self.state.renderer.stopped(RENDER_STOP_GRACE).await;
        self.state.db.close().await;
        Ok(())
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server stops.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")??;
        self.state.renderer.stopped(RENDER_STOP_GRACE).await;
        self.state.db.close().await;
        Ok(())
    }
}

/// How long shutdown waits for cancelled renders to give their leases back.
const RENDER_STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts the origin: binds, spawns the background tasks and serves until shut down.
pub async fn start(options: Options) -> anyhow::Result<Server> {
    let (state, generated, queue) = build_state(&options).await?;
    if let Some(token) = generated {
        // Shown once: only its hash is kept.
        eprintln!(
            "\n  Admin token (shown once, store it now): {token}\n  Its hash is in {}.\n",
            options.data_dir.join("admin-token.sha256").display()
        );
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let ops_listener = match options.ops_listen {
        Some(ops) => Some(
            TcpListener::bind(ops)
                .await
                .with_context(|| format!("cannot listen on {ops} (--ops-listen)"))?,
        ),
        None => None,
    };
    let ops_addr = ops_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let shutdown = state.shutdown.clone();
    spawn_background(&state, &options, shutdown.clone());
    state
        .renderer
        .spawn_workers(queue, options.render_workers, shutdown.clone())
        .await?;
    if options.demo {
        demo::start(state.clone(), options.demo_interval, shutdown.clone()).await?;
    }
    let limits = ServeLimits {
        max_connections: options.max_connections,
        shutdown_grace: options.shutdown_grace,
        sse_write_timeout: options.sse_write_timeout,
    };
    let app = routes::router(state.clone());
    let (stop, serve_state) = (shutdown.clone(), state.clone());
    let ops = ops_listener.map(|listener| {
        let (stop, ops_state) = (shutdown.clone(), state.clone());
        let app = routes::ops::operations_router(state.clone());
        tokio::spawn(
            async move { serve::serve_http1(listener, app, ops_state, limits, stop).await },
        )
    });
    let task = tokio::spawn(async move {
        let served = serve::serve_http1(listener, app, serve_state, limits, stop).await;
        if let Some(ops) = ops {
            ops.await.context("operations listener panicked")??;
        }
        served
    });
    tracing::info!(%addr, ?ops_addr, backend = ?state.db.backend(), "timelapser origin listening");
    Ok(Server {
        addr,
        ops_addr,
        state,
        shutdown,
        task,
    })
}

fn spawn_background(state: &AppState, options: &Options, shutdown: CancellationToken) {
    state.events.spawn_listener(shutdown.clone());
    spawn_media_sweeper(state.clone(), options, shutdown.clone());
    services::live::spawn_stats_publisher(state.clone(), shutdown.clone());
    services::edge_purge::spawn(state.clone(), shutdown.clone());
    services::live::spawn_health_monitor(state.clone(), options.health_interval, shutdown.clone());
    services::live::spawn_pruner(state.clone(), options.prune_interval, shutdown.clone());
    services::storage::spawn(state.clone(), options.retention_interval, shutdown.clone());
    services::render_rules::spawn(
        state.clone(),
        options.render_rules_interval,
        shutdown.clone(),
    );
    services::webhooks::spawn(state.clone(), options.webhook_delivery, shutdown.clone());
    let sweep_state = state.clone();
    let interval = options.sweep_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // Once across replicas: one of them marks a camera offline and logs it.
            let result = sweep_state
                .db
                .run_once(db::JobKey::OfflineSweep, async {
                    let after =
                        services::settings::integer(&sweep_state, "offline_after_seconds").await?;
                    services::cameras::sweep_offline(&sweep_state, after, db::now()).await
                })
                .await;
            match result {
                Ok(Some(changed)) if !changed.is_empty() => {
                    tracing::info!(?changed, "cameras went offline")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "offline sweep failed"),
            }
        }
    });
}

/// Sweeps media files no row refers to: once at start-up (what a crash left), then every
/// `orphan_sweep_interval`, leaving files younger than the request timeout alone (an upload
/// that has moved its file into place but not yet committed its row).
fn spawn_media_sweeper(state: AppState, options: &Options, shutdown: CancellationToken) {
    let interval = options.orphan_sweep_interval;
    let grace = options.request_timeout;
    tokio::spawn(async move {
        let mut first = true;
        loop {
            // Writers check their files under the writer lock, so even the start-up sweep's
            // zero grace cannot take a file from an upload that is about to commit.
            // Once across replicas sharing the media.
            let result = state
                .db
                .run_once(
                    db::JobKey::MediaSweep,
                    media_sweep::sweep_orphans(
                        MediaFiles::of(&state),
                        if first { Duration::ZERO } else { grace },
                    ),
                )
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "the media sweep failed");
            }
            first = false;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}
