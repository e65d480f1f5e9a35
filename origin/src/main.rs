//! `timelapser-origin serve`: the origin server; `timelapser-origin user add`: accounts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use timelapser_origin::Options;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "timelapser-origin",
    version,
    about = "Timelapser's origin server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, media and events.
    Serve(Box<ServeArgs>),
    /// Manage the people who sign in to the console.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (the password is asked for, or read from --password-file).
    Add(UserAddArgs),
}

#[derive(Parser)]
struct UserAddArgs {
    /// The sign-in name.
    name: String,
    /// `viewer` (sees private cameras) or `operator` (changes things).
    #[arg(long, value_parser = ["viewer", "operator"])]
    role: String,
    /// A file whose first line is the password (instead of being asked for it).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Data directory (its SQLite database, unless --database-url names another).
    #[arg(long, env = "TIMELAPSER_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL (`sqlite://...` or `postgres://...`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TIMELAPSER_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Data directory: SQLite database, media files, admin token hash.
    #[arg(long, env = "TIMELAPSER_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL (`sqlite://...` or `postgres://...`); default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Where media lives: `file:///path`, or `s3://bucket/prefix` in S3, R2, MinIO or any
    /// S3-compatible store, configured by the usual `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL` (default: `media/` in the
    /// data directory). Replicas share media by naming the same bucket.
    #[arg(long, env = "TIMELAPSER_MEDIA_URL")]
    media_url: Option<String>,
    /// Admin token; generated on first start (and printed once) when not given.
    #[arg(long, env = "TIMELAPSER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Largest capture accepted, in bytes.
    #[arg(long, env = "TIMELAPSER_MAX_CAPTURE_BYTES", default_value_t = 20 * 1024 * 1024)]
    max_capture_bytes: u64,
    /// Create two demo cameras fed by a synthetic camera, so the gallery is alive.
    #[arg(long, env = "TIMELAPSER_DEMO")]
    demo: bool,
    /// Seconds between synthetic frames in demo mode.
    #[arg(long, default_value_t = 5)]
    demo_interval_seconds: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "TIMELAPSER_LOG_JSON")]
    log_json: bool,
    /// Renders run at once.
    #[arg(long, env = "TIMELAPSER_RENDER_WORKERS", default_value_t = 1)]
    render_workers: usize,
    /// Seconds a render's lease lasts without renewal: how long a video whose origin died
    /// mid-render waits before another replica takes it over (renewed every third of it).
    #[arg(long, env = "TIMELAPSER_RENDER_LEASE", default_value_t = 30)]
    render_lease_seconds: u64,
    /// The ffmpeg binary (default: `ffmpeg` on PATH).
    #[arg(long, env = "TIMELAPSER_FFMPEG")]
    ffmpeg: Option<PathBuf>,
    /// Worker threads serving requests (default: one per core). With 1, the origin runs a
    /// single-threaded scheduler, the cheapest on a one-core allotment.
    #[arg(long, env = "TIMELAPSER_THREADS")]
    threads: Option<usize>,
    /// Where to serve /metrics, /api/cache/stats and /healthz without a token ("off": nowhere;
    /// on the main listener they need the admin token).
    #[arg(long, env = "TIMELAPSER_OPS_LISTEN", default_value = "127.0.0.1:9000")]
    ops_listen: String,
    /// Seconds a request may take to arrive, head and body (408 after).
    #[arg(long, env = "TIMELAPSER_REQUEST_TIMEOUT", default_value_t = 60)]
    request_timeout_seconds: u64,
    /// Seconds shutdown waits for open connections before closing them.
    #[arg(long, env = "TIMELAPSER_SHUTDOWN_GRACE", default_value_t = 10)]
    shutdown_grace_seconds: u64,
    /// Connections open at once (default: the file-descriptor limit, less a reserve).
    #[arg(long, env = "TIMELAPSER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Oldest capture time accepted, in days before the server's clock.
    #[arg(long, env = "TIMELAPSER_CAPTURE_MAX_AGE_DAYS", default_value_t = 365)]
    capture_max_age_days: u64,
    /// Newest capture time accepted, in seconds after the server's clock.
    #[arg(long, env = "TIMELAPSER_CAPTURE_MAX_SKEW", default_value_t = 600)]
    capture_max_skew_seconds: u64,
    /// Seconds an event-stream client may stop reading before it is dropped.
    #[arg(long, env = "TIMELAPSER_SSE_WRITE_TIMEOUT", default_value_t = 30)]
    sse_write_timeout_seconds: u64,
    /// The most events replayed to a resuming client; further behind, it gets `resync`.
    #[arg(long, env = "TIMELAPSER_SSE_MAX_REPLAY", default_value_t = 10_000)]
    sse_max_replay: i64,
    /// The edge's public URL (as clients reach it): what it stored of a camera that turns
    /// private is purged there. Needs --edge-purge-token.
    #[arg(long, env = "TIMELAPSER_EDGE_URL", requires = "edge_purge_token")]
    edge_url: Option<String>,
    /// The token the edge accepts purges with (it is configured with its SHA-256,
    /// `PURGE_TOKEN_SHA256`).
    #[arg(
        long,
        env = "TIMELAPSER_EDGE_PURGE_TOKEN",
        hide_env_values = true,
        requires = "edge_url"
    )]
    edge_purge_token: Option<String>,
    /// Free bytes the media disk keeps (with --min-free-percent, the larger applies): below
    /// it the oldest unprotected frames are pruned; when nothing is left to prune, captures
    /// get 507.
    #[arg(long, env = "TIMELAPSER_MIN_FREE_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    min_free_bytes: u64,
    /// Share of the media disk kept free, in percent (with --min-free-bytes, the larger
    /// applies).
    #[arg(long, env = "TIMELAPSER_MIN_FREE_PERCENT", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(0..=90))]
    min_free_percent: u8,
    /// Seconds between retention sweeps (also at start-up and when a policy changes).
    #[arg(long, env = "TIMELAPSER_RETENTION_INTERVAL", default_value_t = 600)]
    retention_interval_seconds: u64,
    /// Seconds between looks at the automatic render rules (also at start-up and when a rule
    /// changes).
    #[arg(long, env = "TIMELAPSER_RENDER_RULES_INTERVAL", default_value_t = 30)]
    render_rules_interval_seconds: u64,
    /// Seconds one webhook attempt may take, connection to answer (a receiver that takes
    /// longer is retried later).
    #[arg(long, env = "TIMELAPSER_WEBHOOK_TIMEOUT", default_value_t = 10)]
    webhook_timeout_seconds: u64,
    /// Seconds before a failed webhook attempt is retried the first time; later retries wait
    /// 3, 12, 60, 360, 1080 and 2160 times as long, then the delivery fails.
    #[arg(long, env = "TIMELAPSER_WEBHOOK_BACKOFF", default_value_t = 10)]
    webhook_backoff_seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args = match Cli::parse().command {
        Command::Serve(args) => *args,
        Command::User(UserCommand::Add(args)) => return add_user(args),
    };
    let runtime = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build()?,
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let mut options = Options::new(args.data_dir);
    options.listen = args.listen;
    options.database_url = args.database_url.filter(|u| !u.is_empty());
    options.media = args
        .media_url
        .filter(|u| !u.is_empty())
        .map(|u| timelapser_origin::media::MediaLocation::parse(&u))
        .transpose()?;
    options.admin_token = args.admin_token.filter(|t| !t.is_empty());
    options.max_capture_bytes = args.max_capture_bytes;
    options.demo = args.demo;
    options.render_workers = args.render_workers.max(1);
    options.render_lease = Duration::from_secs(args.render_lease_seconds.max(1));
    options.ffmpeg = args.ffmpeg;
    options.demo_interval = Duration::from_secs(args.demo_interval_seconds.max(1));
    options.ops_listen = match args.ops_listen.as_str() {
        "off" | "" => None,
        addr => Some(addr.parse().with_context(|| {
            format!("--ops-listen must be an address or \"off\", not {addr:?}")
        })?),
    };
    options.request_timeout = Duration::from_secs(args.request_timeout_seconds.max(1));
    options.shutdown_grace = Duration::from_secs(args.shutdown_grace_seconds);
    if let Some(max) = args.max_connections {
        options.max_connections = max.max(1);
    }
    options.capture_window = timelapser_origin::state::CaptureWindow {
        past: Duration::from_secs(args.capture_max_age_days.saturating_mul(86_400)),
        future: Duration::from_secs(args.capture_max_skew_seconds),
    };
    options.sse_write_timeout = Duration::from_secs(args.sse_write_timeout_seconds.max(1));
    options.sse_max_replay = args.sse_max_replay.max(0);
    options.edge_purge = match (args.edge_url, args.edge_purge_token) {
        (Some(url), Some(token)) if !url.is_empty() => {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "--edge-url must be an http(s) URL, not {url:?}"
            );
            anyhow::ensure!(
                token.len() >= 16,
                "the edge purge token must be at least 16 characters"
            );
            Some(timelapser_origin::state::EdgePurgeTarget {
                url: url.trim_end_matches('/').to_owned(),
                token,
            })
        }
        _ => None,
    };
    options.min_free = timelapser_origin::state::MinFree {
        bytes: args.min_free_bytes,
        percent: args.min_free_percent,
    };
    options.retention_interval = Duration::from_secs(args.retention_interval_seconds.max(1));
    options.render_rules_interval = Duration::from_secs(args.render_rules_interval_seconds.max(1));
    options.webhook_delivery = timelapser_origin::services::webhooks::DeliveryOptions {
        timeout: Duration::from_secs(args.webhook_timeout_seconds.max(1)),
        backoff_base: Duration::from_secs(args.webhook_backoff_seconds.max(1)),
    };
    let server = timelapser_origin::start(options).await?;
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    server.wait().await.context("origin stopped with an error")
}

/// `timelapser-origin user add NAME --role ROLE [--password-file F]`.
fn add_user(args: UserAddArgs) -> anyhow::Result<()> {
    let password = match &args.password_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => {
            let password = rpassword::prompt_password(format!("Password for {}: ", args.name))?;
            let again = rpassword::prompt_password("Again: ")?;
            anyhow::ensure!(password == again, "the two passwords differ");
            password
        }
    };
    let role = timelapser_origin::accounts::Role::parse(&args.role)
        .context("the role is viewer or operator")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = Options::new(args.data_dir);
        options.database_url = args.database_url.filter(|u| !u.is_empty());
        let db = timelapser_origin::open_database(&options).await?;
        let id = timelapser_origin::accounts::add_user(&db, &args.name, role, &password)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "user {:?} ({}) created with id {id}",
            args.name.trim(),
            role.as_str()
        );
        db.close().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
