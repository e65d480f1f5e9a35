//! `cargo xtask`: the orchestration a newcomer would otherwise type.
//!
//! - `cargo xtask test`: installs what is missing into `target/tools`, then runs every check and
//!   test the project has (fmt, clippy, native tests, wasm tests, ...). What `.ci/run` runs.
//! - `cargo xtask dev`: runs the system locally.
//! - `cargo xtask bench`: the benchmarks whose figures go to BENCHMARKS.md.
//! - `cargo xtask fuzz`: the fuzz targets of core's header parsers.

mod bench;
mod edge;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

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

fn test(root: &Path) -> Result<()> {
    step("checking and installing tools (cached in target/tools)");
    tools::require_node()?;
    tools::require_postgres()?;
    tools::ensure_build_libraries()?;
    // The origin renders videos with Debian's ffmpeg; its tests check them with ffprobe.
    tools::ensure_apt_packages(&[("ffmpeg", "ffmpeg"), ("ffprobe", "ffmpeg")])?;
    tools::ensure_wasm_target()?;
    let wasm_bindgen = tools::ensure_wasm_bindgen_cli(root)?;

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
    run(cargo().args(["test", "--workspace"]))?;

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
    step("building the origin");
    run(cargo().args(["build", "-p", "timelapser-origin"]))?;
    edge::build_edge(root)?;
    let data = root.join("target/dev-data");
    std::fs::create_dir_all(&data)?;
    step(&format!(
        "starting the origin on 127.0.0.1:8000 with demo cameras (data in {})",
        data.display()
    ));
    let mut origin = Command::new(root.join("target/debug/timelapser-origin"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:8000",
            "--demo",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .spawn()
        .context("starting the origin")?;
    step("starting the edge: wrangler dev on http://127.0.0.1:8787");
    let mut edge = edge::wrangler_dev(
        root,
        8787,
        9229,
        &root.join("target/wrangler/dev-state"),
        "http://127.0.0.1:8000",
    )?
    .spawn()
    .context("starting wrangler dev")?;
    eprintln!("\n    Open http://127.0.0.1:8787 (through the edge) or http://127.0.0.1:8000 (the origin).\n    Ctrl-C stops both.\n");
    // Ctrl-C reaches both children (same process group); wait for either to end.
    loop {
        if let Some(status) = origin.try_wait()? {
            let _ = edge.kill();
            bail!("the origin stopped: {status}");
        }
        if let Some(status) = edge.try_wait()? {
            let _ = origin.kill();
            bail!("wrangler dev stopped: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

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
