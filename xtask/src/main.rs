//! `cargo xtask`: the orchestration a newcomer would otherwise type.
//!
//! - `cargo xtask test`: installs what is missing into `target/tools`, then runs every check and
//!   test the project has (fmt, clippy, native tests, wasm tests, ...). What `.ci/run` runs.
//! - `cargo xtask dev`: runs the system locally.
//! - `cargo xtask bench`: the benchmarks whose figures go to BENCHMARKS.md.
//! - `cargo xtask fuzz`: the fuzz targets of core's header parsers.

mod bench;
mod edge;
mod rtsp_demo;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use timelapser_support::{OriginCommand, ProcessGroup};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Timelapser's build, test and run tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing, then run every check and test (what CI runs).
    Test,
    /// Run the system: the origin with demo cameras, and the edge in `wrangler dev`.
    Dev,
    /// Build the edge Worker into edge/build (what wrangler.toml's build command runs).
    BuildEdge,
    /// Run the benchmarks (criterion, and the comparisons against reference servers) and
    /// write BENCHMARKS.md.
    Bench {
        /// Parts to run (default: all).
        #[arg(value_enum)]
        parts: Vec<bench::Part>,
    },
    /// Run every fuzz target of core for the given number of executions each.
    Fuzz {
        /// Executions per target.
        #[arg(long, default_value_t = 1_000_000)]
        runs: u64,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match cli.command {
        Task::Test => test(&root),
        Task::Dev => dev(&root),
        Task::BuildEdge => edge::build_edge(&root),
        Task::Bench { parts } => bench::bench(&root, &parts),
        Task::Fuzz { runs, targets } => fuzz(&root, runs, &targets),
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf())
}

/// Prints a step header, so a long run shows where it is.
pub(crate) fn step(what: &str) {
    eprintln!("\n==> {what}");
}

/// Runs a command to completion, failing loudly with the command line when it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("    $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("command failed ({status}): {shown}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The native tests of the workspace; `cargo xtask dev` builds the same with `--no-run`.
const NATIVE_TESTS: [&str; 2] = ["test", "--workspace"];

fn test(root: &Path) -> Result<()> {
    step("checking and installing tools (cached in target/tools)");
    tools::require_node()?;
    tools::require_postgres()?;
    tools::ensure_build_libraries()?;
    // The origin renders videos with Debian's ffmpeg (overlays in DejaVu Sans); its tests
    // check them with ffprobe.
    tools::ensure_render_tools()?;
    // The agent's RTSP tests record GStreamer's RTSP server, run by Debian's python3.
    tools::ensure_rtsp_server()?;
    tools::ensure_wasm_target()?;
    let wasm_bindgen = tools::ensure_wasm_bindgen_cli(root)?;
    // The object-storage suites store media in a real S3-protocol server on loopback.
    tools::ensure_s3_server(root)?;

    step("formatting (cargo fmt --check)");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;

    step("lints (cargo clippy -D warnings)");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("building the edge Worker (the end-to-end tests run it in wrangler dev)");
    edge::build_edge(root)?;
    edge::ensure_wrangler(root)?;
    edge::ensure_browser(root)?;

    step("native tests (origin suites on SQLite and PostgreSQL; edge + origin end to end)");
    run(cargo().args(NATIVE_TESTS))?;

    step("wasm32 tests of core and of the edge's decisions under Node (wasm-bindgen-test)");
    run(cargo()
        .args([
            "test",
            "-p",
            "timelapser-core",
            "-p",
            "timelapser-edge",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            wasm_bindgen.join("wasm-bindgen-test-runner"),
        ))?;

    step("core stays sans-IO on wasm32 (no tokio, mio or sqlx)");
    tools::check_core_is_sans_io()?;

    eprintln!("\nall checks passed");
    Ok(())
}

fn dev(root: &Path) -> Result<()> {
    tools::ensure_build_libraries()?;
    // The agent records the RTSP demo with ffmpeg, from GStreamer's RTSP server; the demo
    // cameras render videos with it (overlays in DejaVu Sans).
    tools::ensure_render_tools()?;
    tools::ensure_rtsp_server()?;
    // Exactly what `cargo xtask test` builds, so that either reuses the other's build: the
    // origin alone (`cargo build -p timelapser-origin`) resolves its dependencies' features
    // without the workspace's dev-dependencies, and compiled them all again (109 s).
    step("building the workspace as `cargo xtask test` does (target/debug/timelapser-origin)");
    run(cargo().args(NATIVE_TESTS).arg("--no-run"))?;
    edge::build_edge(root)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve_dev(root))
}

/// Where `cargo xtask dev` serves: the origin, its operations listener (its default), the
/// edge and the edge's inspector.
const DEV_ORIGIN: &str = "127.0.0.1:8000";
const DEV_OPS: &str = "127.0.0.1:9000";
const DEV_EDGE_PORT: u16 = 8787;
const DEV_INSPECTOR_PORT: u16 = 9229;

/// Runs the origin and the edge until Ctrl-C (or SIGTERM, or a hang-up), or until either
/// stops by itself, then stops both.
async fn serve_dev(root: &Path) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Each child leads its own process group, so that stopping it stops what it started
    // (wrangler's workerd); a Ctrl-C therefore reaches this process only, which stops them.
    let (mut interrupt, mut terminate, mut hangup) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
    );
    let mut stop_requested = std::pin::pin!(async {
        tokio::select! {
            _ = interrupt.recv() => "Ctrl-C",
            _ = terminate.recv() => "SIGTERM",
            _ = hangup.recv() => "hang-up",
        }
    });
    let started = Instant::now();
    let data = root.join("target/dev-data");
    std::fs::create_dir_all(&data)?;
    let admin = rtsp_demo::admin_token(&data)?;
    // The edge purges what it stored of a camera turned private with this token.
    let purge = rtsp_demo::dev_secret(&data, "dev-purge-token", "tl_dev_purge")?;
    let operator = dev_operator(root, &data)?;
    step(&format!(
        "starting the origin on http://{DEV_ORIGIN} with demo cameras (data in {}; \
         /metrics on http://{DEV_OPS})",
        data.display()
    ));
    // Not quiet: its log, and the admin token on the first start, are for the user.
    let mut origin = ProcessGroup::spawn(
        "the origin",
        &mut OriginCommand::new(root.join("target/debug/timelapser-origin"), &data)?
            .listen(DEV_ORIGIN.parse()?)
            .ops_listen(DEV_OPS.parse()?)
            .admin_token(&admin)
            .arg("--demo")
            .arg("--edge-url")
            .arg(format!("http://127.0.0.1:{DEV_EDGE_PORT}"))
            .arg("--edge-purge-token")
            .arg(&purge)
            .command(),
    )?;
    step(&format!(
        "starting the RTSP demo stream on rtsp://127.0.0.1:{}/cam (GStreamer)",
        rtsp_demo::RTSP_PORT
    ));
    let mut rtsp = rtsp_demo::start_rtsp_server(root, rtsp_demo::RTSP_PORT, &[]).await?;
    step(&format!(
        "starting the edge: wrangler dev on http://127.0.0.1:{DEV_EDGE_PORT}"
    ));
    let mut edge = ProcessGroup::spawn(
        "wrangler dev",
        edge::wrangler_dev(
            root,
            DEV_EDGE_PORT,
            DEV_INSPECTOR_PORT,
            &root.join("target/wrangler/dev-state"),
            &format!("http://{DEV_ORIGIN}"),
            &[(
                "PURGE_TOKEN_SHA256",
                &timelapser_core::purge::token_sha256(&purge),
            )],
        )?
        .stdin(Stdio::null()),
    )?;
    let gallery = format!("http://127.0.0.1:{DEV_EDGE_PORT}/");
    let ready = async {
        origin
            .wait_until_ok(&format!("http://{DEV_ORIGIN}/healthz"), DEV_READY_WITHIN)
            .await?;
        edge.wait_until_ok(&gallery, DEV_READY_WITHIN).await
    };
    tokio::select! {
        ready = ready => ready?,
        why = &mut stop_requested => {
            eprintln!("\n    {why}: stopping the edge, the origin and the RTSP demo");
            return Ok(());
        }
    }
    let config = rtsp_demo::agent_config(&data, &format!("http://{DEV_ORIGIN}"), &admin).await?;
    step(&format!(
        "starting the agent recording the RTSP demo ({})",
        config.display()
    ));
    let mut agent = rtsp_demo::start_agent(root, &config)?;
    eprintln!(
        "\n    The gallery answers at {gallery} (through the edge; {:.1} s after the start), the \
         origin at http://{DEV_ORIGIN}.\n    The camera \"RTSP demo\" is recorded from \
         rtsp://127.0.0.1:{} by timelapser-agent, on the origin's schedule.\n    \
         The console: {gallery}login, as \"{DEV_OPERATOR}\" with the password in {}.\n    \
         The admin token is in {}.\n    Ctrl-C stops everything.\n",
        started.elapsed().as_secs_f64(),
        rtsp_demo::RTSP_PORT,
        operator.display(),
        data.join("dev-admin-token").display(),
    );
    loop {
        tokio::select! {
            why = &mut stop_requested => {
                eprintln!("\n    {why}: stopping the agent, the edge, the origin and the RTSP demo");
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                for child in [&mut origin, &mut edge, &mut rtsp, &mut agent] {
                    if let Some(status) = child.try_wait()? {
                        bail!("{} stopped: {status}", child.name());
                    }
                }
            }
        }
    }
}

/// The dev stack's operator account.
const DEV_OPERATOR: &str = "operator";

/// Creates the dev stack's operator (once; its password in `data/dev-operator-password`),
/// with `timelapser-origin user add`, before the origin starts. Returns the password's file.
fn dev_operator(root: &Path, data: &Path) -> Result<std::path::PathBuf> {
    let file = data.join("dev-operator-password");
    if file.is_file() {
        return Ok(file);
    }
    rtsp_demo::dev_secret(data, "dev-operator-password.new", "console")?;
    run(Command::new(root.join("target/debug/timelapser-origin"))
        .args(["user", "add", DEV_OPERATOR, "--role", "operator"])
        .arg("--password-file")
        .arg(data.join("dev-operator-password.new"))
        .arg("--data-dir")
        .arg(data))?;
    std::fs::rename(data.join("dev-operator-password.new"), &file)?;
    Ok(file)
}

/// How long `cargo xtask dev` waits for the origin, then for the gallery through the edge.
const DEV_READY_WITHIN: Duration = Duration::from_secs(120);

fn fuzz(root: &Path, runs: u64, only: &[String]) -> Result<()> {
    let cargo_fuzz = tools::ensure_cargo_fuzz(root)?;
    let fuzz_dir = root.join("core/fuzz");
    let output = Command::new(&cargo_fuzz)
        .args(["fuzz", "list"])
        .current_dir(&fuzz_dir)
        .output()
        .context("listing fuzz targets")?;
    let listed = String::from_utf8(output.stdout)?;
    let targets: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && (only.is_empty() || only.iter().any(|o| o == t)))
        .collect();
    if targets.is_empty() {
        bail!(
            "no fuzz target matches {only:?}; targets are: {}",
            listed.trim()
        );
    }
    // cargo-fuzz passes nightly-only flags (-Zsanitizer=address, sancov passes); the one
    // stable toolchain accepts them under RUSTC_BOOTSTRAP=1, for this process tree only.
    step("building the fuzz targets (release, AddressSanitizer)");
    run(Command::new(&cargo_fuzz)
        .args(["fuzz", "build"])
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1"))?;
    for target in targets {
        step(&format!("fuzzing {target} for {runs} executions"));
        let mut command = Command::new(&cargo_fuzz);
        command
            .args(["fuzz", "run", target, "--"])
            .arg(format!("-runs={runs}"))
            .arg("-rss_limit_mb=2048")
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1");
        let dict = fuzz_dir.join(format!("dicts/{target}.dict"));
        if dict.is_file() {
            command.arg(format!("-dict={}", dict.display()));
        }
        run(&mut command)?;
    }
    Ok(())
}
