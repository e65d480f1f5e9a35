//! `timelapser-agent run | check`: see README.md beside this crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use timelapser_agent::clock::SystemClock;
use timelapser_agent::config::{CameraConfig, FileConfig, FramePolicy};
use timelapser_agent::metrics::Metrics;
use timelapser_agent::Agent;

/// Exit status for a configuration that cannot be used (sysexits' EX_CONFIG): the systemd unit
/// does not restart on it, since a restart would fail the same way.
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    version,
    about = "Records cameras on the origin's schedule and uploads every frame"
)]
struct Cli {
    /// Log as JSON lines (for journald or a log shipper).
    #[arg(long, global = true, env = "TIMELAPSER_AGENT_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Records until SIGTERM or Ctrl-C.
    Run {
        #[command(flatten)]
        cameras: CameraArgs,
        /// Serve Prometheus metrics on this address (`GET /metrics`).
        #[arg(long, env = "TIMELAPSER_AGENT_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Validates the config and probes each camera's source, spool and origin once.
    Check {
        #[command(flatten)]
        cameras: CameraArgs,
    },
}

/// A config file, or one camera's fields as flags.
#[derive(Args)]
struct CameraArgs {
    /// The TOML config (one [[camera]] table per camera).
    #[arg(long, env = "TIMELAPSER_AGENT_CONFIG", conflicts_with_all = ["origin", "camera_id", "source"])]
    config: Option<PathBuf>,
    /// The origin's URL (single camera).
    #[arg(long)]
    origin: Option<String>,
    /// The camera's id on the origin (single camera).
    #[arg(long)]
    camera_id: Option<i64>,
    /// A file holding the camera's token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// An environment variable holding the camera's token.
    #[arg(long)]
    token_env: Option<String>,
    /// rtsp://, rtsps://, http(s)://, v4l2:///dev/videoN or dir:///path.
    #[arg(long)]
    source: Option<String>,
    /// The source's user name.
    #[arg(long)]
    username: Option<String>,
    /// A file holding the source's password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The spool directory.
    #[arg(long)]
    spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes.
    #[arg(long)]
    spool_limit_bytes: Option<u64>,
    /// Do not upload blank frames (they are reported either way).
    #[arg(long)]
    skip_blank: bool,
    /// Do not upload frozen frames (they are reported either way).
    #[arg(long)]
    skip_frozen: bool,
}

impl CameraArgs {
    fn cameras(self) -> Result<Vec<CameraConfig>, String> {
        if let Some(path) = self.config {
            return FileConfig::load(&path)
                .map(|c| c.cameras)
                .map_err(|e| e.to_string());
        }
        let missing = |flag: &str| format!("--{flag} is needed (or --config FILE)");
        let mut camera = CameraConfig::new(
            self.origin.ok_or_else(|| missing("origin"))?,
            self.camera_id.ok_or_else(|| missing("camera-id"))?,
            self.source.ok_or_else(|| missing("source"))?,
            self.spool_dir.ok_or_else(|| missing("spool-dir"))?,
        );
        camera.token_file = self.token_file;
        camera.token_env = self.token_env;
        camera.username = self.username;
        camera.password_file = self.password_file;
        if let Some(limit) = self.spool_limit_bytes {
            camera.spool_limit_bytes = limit;
        }
        if self.skip_blank {
            camera.blank_frames = FramePolicy::Skip;
        }
        if self.skip_frozen {
            camera.frozen_frames = FramePolicy::Skip;
        }
        Ok(vec![camera])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Check { cameras } => {
                let cameras = match cameras.cameras() {
                    Ok(cameras) => cameras,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(EX_CONFIG);
                    }
                };
                if cameras.is_empty() {
                    eprintln!("the config has no [[camera]] table");
                    return ExitCode::from(EX_CONFIG);
                }
                if timelapser_agent::check::check_all(&cameras).await {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Command::Run {
                cameras,
                metrics_listen,
            } => run(cameras, metrics_listen).await,
        }
    })
}

async fn run(cameras: CameraArgs, metrics_listen: Option<SocketAddr>) -> ExitCode {
    let cameras = match cameras.cameras().and_then(|c| {
        FileConfig { cameras: c }
            .resolve()
            .map_err(|e| e.to_string())
    }) {
        Ok(cameras) => cameras,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let metrics = Metrics::new();
    if let Some(addr) = metrics_listen {
        match metrics.serve(addr).await {
            Ok(addr) => tracing::info!("metrics on http://{addr}/metrics"),
            Err(e) => {
                tracing::error!("cannot serve metrics on {addr}: {e}");
                return ExitCode::from(EX_CONFIG);
            }
        }
    }
    let mut agent = Agent::start(cameras, Arc::new(SystemClock), metrics);
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            _ => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    tokio::select! {
        signal = stop => {
            tracing::info!("{signal}: finishing the uploads in flight; the spool stays");
            agent.stop().await;
            ExitCode::SUCCESS
        }
        () = agent.stopped() => {
            tracing::error!("a camera's task ended unexpectedly");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
