//! Building the Worker and running `wrangler dev`, with pinned tools under target/tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::{run, step, tools};

/// worker-build, pinned to the worker crate's version.
pub const WORKER_BUILD_VERSION: &str = "0.8.7";

/// wrangler, pinned: the last 4.x that runs on Debian's Node 20 (EDGE-TOOLCHAIN.md).
pub const WRANGLER_VERSION: &str = "4.86.0";

/// The newest modification time under `path` (files and folders, recursively).
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(t) = self::newest(&entry.path()) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// The wrangler install: its bin folder (wrangler, esbuild).
pub fn ensure_wrangler(root: &Path) -> Result<PathBuf> {
    let prefix = root.join(format!("target/tools/wrangler-{WRANGLER_VERSION}"));
    let bin = prefix.join("node_modules/.bin");
    if bin.join("wrangler").is_file() && bin.join("esbuild").is_file() {
        return Ok(bin);
    }
    tools::require_node()?;
    let npm = tools::which("npm")
        .context("npm is required to install wrangler; install Debian's npm package")?;
    step(&format!(
        "installing wrangler {WRANGLER_VERSION} (npm) into {}",
        prefix.display()
    ));
    std::fs::create_dir_all(&prefix)?;
    std::fs::write(
        prefix.join("package.json"),
        "{\"name\":\"timelapser-edge-tools\",\"private\":true}\n",
    )?;
    run(Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("wrangler@{WRANGLER_VERSION}"))
        .current_dir(&prefix))?;
    Ok(bin)
}

/// Builds the Worker into edge/build unless it is newer than its sources.
pub fn build_edge(root: &Path) -> Result<()> {
    let output = root.join("edge/build/index_bg.wasm");
    let sources = [
        "edge/src",
        "edge/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
    ];
    let newest_source = sources.iter().filter_map(|s| newest(&root.join(s))).max();
    let built = std::fs::metadata(&output).and_then(|m| m.modified()).ok();
    if let (Some(source), Some(built)) = (newest_source, built) {
        if built > source && root.join("edge/build/index.js").is_file() {
            eprintln!("    the Worker is up to date ({})", output.display());
            return Ok(());
        }
    }
    tools::ensure_wasm_target()?;
    let wasm_bindgen = tools::ensure_wasm_bindgen_cli(root)?;
    let worker_build =
        tools::cargo_install(root, "worker-build", WORKER_BUILD_VERSION, "worker-build")?;
    let wrangler = ensure_wrangler(root)?;
    step("building the Worker (worker-build --release)");
    run(Command::new(worker_build.join("worker-build"))
        .arg("--release")
        .current_dir(root.join("edge"))
        // worker-build would download these from GitHub; use the pinned local ones.
        .env("WASM_BINDGEN_BIN", wasm_bindgen.join("wasm-bindgen"))
        .env("ESBUILD_BIN", wrangler.join("esbuild")))?;
    if !output.is_file() {
        bail!("worker-build did not produce {}", output.display());
    }
    Ok(())
}

/// A `wrangler dev` command with quiet, offline settings and its state under target/.
pub fn wrangler_dev(
    root: &Path,
    port: u16,
    inspector_port: u16,
    persist: &Path,
    origin: &str,
) -> Result<Command> {
    let bin = ensure_wrangler(root)?;
    let mut command = Command::new(bin.join("wrangler"));
    command
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &inspector_port.to_string()])
        .arg("--persist-to")
        .arg(persist)
        .args(["--show-interactive-dev-session=false", "--var"])
        .arg(format!("ORIGIN:{origin}"))
        .current_dir(root);
    for (name, value) in wrangler_env(root) {
        command.env(name, value);
    }
    Ok(command)
}

/// Environment that keeps wrangler quiet and offline, its state in target/wrangler.
pub fn wrangler_env(root: &Path) -> Vec<(&'static str, String)> {
    let state = root.join("target/wrangler");
    vec![
        ("WRANGLER_SEND_METRICS", "false".into()),
        ("CI", "true".into()),
        ("CLOUDFLARE_CF_FETCH_ENABLED", "false".into()),
        ("WRANGLER_HIDE_BANNER", "true".into()),
        (
            "XDG_CONFIG_HOME",
            state.join("config").display().to_string(),
        ),
        ("XDG_CACHE_HOME", state.join("cache").display().to_string()),
    ]
}

/// playwright-core, pinned; it drives Debian's Chromium (it never downloads a browser).
pub const PLAYWRIGHT_CORE_VERSION: &str = "1.65.1";

/// Debian's Chromium (apt, as root) and playwright-core (npm) for the browser tests.
pub fn ensure_browser(root: &Path) -> Result<()> {
    if !Path::new("/usr/bin/chromium").is_file() {
        tools::ensure_apt_packages(&[("chromium", "chromium")])?;
    }
    let prefix = root.join(format!(
        "target/tools/playwright-core-{PLAYWRIGHT_CORE_VERSION}"
    ));
    if prefix
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Ok(());
    }
    let npm = tools::which("npm").context("npm is required to install playwright-core")?;
    step(&format!(
        "installing playwright-core {PLAYWRIGHT_CORE_VERSION} (npm) into {}",
        prefix.display()
    ));
    std::fs::create_dir_all(&prefix)?;
    std::fs::write(
        prefix.join("package.json"),
        "{\"name\":\"timelapser-browser-tools\",\"private\":true}\n",
    )?;
    run(Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("playwright-core@{PLAYWRIGHT_CORE_VERSION}"))
        .current_dir(&prefix))
}

/// `wrangler dev` on the Worker as built (no build command), with its state in `state`:
/// for tests and benchmarks, which build first and must not run cargo inside cargo.
pub fn wrangler_dev_prebuilt(
    root: &Path,
    port: u16,
    inspector_port: u16,
    state: &Path,
    origin: &str,
) -> Result<Command> {
    let bin = ensure_wrangler(root)?;
    std::fs::create_dir_all(state)?;
    let config = state.join("wrangler.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"timelapser-edge\"\nmain = \"{}\"\ncompatibility_date = \"2025-09-01\"\n\n[vars]\nORIGIN = \"{origin}\"\n",
            root.join("edge/build/index.js").display()
        ),
    )?;
    let mut command = Command::new(bin.join("wrangler"));
    command
        .args(["dev", "--config"])
        .arg(&config)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &inspector_port.to_string()])
        .arg("--persist-to")
        .arg(state.join("persist"))
        .arg("--show-interactive-dev-session=false")
        .current_dir(state);
    for (name, value) in wrangler_env(root) {
        command.env(name, value);
    }
    Ok(command)
}
