//! Building the Worker and running `wrangler dev`, with pinned tools under target/tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use timelapser_support::wrangler;

use crate::{run, step, tools};

/// worker-build, pinned to the worker crate's version.
pub const WORKER_BUILD_VERSION: &str = "0.8.7";

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

/// The wrangler install (pinned: `timelapser_support::wrangler::VERSION`): its bin folder
/// (wrangler, esbuild).
pub fn ensure_wrangler(root: &Path) -> Result<PathBuf> {
    let prefix = wrangler::install_dir(root);
    let bin = wrangler::bin_dir(root);
    if bin.join("wrangler").is_file() && bin.join("esbuild").is_file() {
        return Ok(bin);
    }
    tools::require_node()?;
    let npm = tools::which("npm")
        .context("npm is required to install wrangler; install Debian's npm package")?;
    step(&format!(
        "installing wrangler {} (npm) into {}",
        wrangler::VERSION,
        prefix.display()
    ));
    std::fs::create_dir_all(&prefix)?;
    std::fs::write(
        prefix.join("package.json"),
        "{\"name\":\"timelapser-edge-tools\",\"private\":true}\n",
    )?;
    run(Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("wrangler@{}", wrangler::VERSION))
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
    vars: &[(&str, &str)],
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
        .args(
            vars.iter()
                .flat_map(|(name, value)| ["--var".to_owned(), format!("{name}:{value}")]),
        )
        .envs(wrangler::quiet_env(
            root,
            &root.join("target/wrangler/config"),
        ))
        .current_dir(root);
    Ok(command)
}

/// playwright-core, pinned; it drives Debian's Chromium (it never downloads a browser).
pub const PLAYWRIGHT_CORE_VERSION: &str = "1.65.1";

/// axe-core, pinned: the accessibility engine the browser tests run in each page.
pub const AXE_CORE_VERSION: &str = "4.14.1";

/// Debian's Chromium (apt, as root), and playwright-core and axe-core (npm) for the browser
/// tests.
pub fn ensure_browser(root: &Path) -> Result<()> {
    if !Path::new("/usr/bin/chromium").is_file() {
        tools::ensure_apt_packages(&[("chromium", "chromium")])?;
    }
    npm_tool(root, "playwright-core", PLAYWRIGHT_CORE_VERSION)?;
    npm_tool(root, "axe-core", AXE_CORE_VERSION)
}

/// An npm package at a pinned version in its own folder,
/// `target/tools/<package>-<version>/node_modules/<package>`, unless already there.
fn npm_tool(root: &Path, package: &str, version: &str) -> Result<()> {
    let prefix = root.join(format!("target/tools/{package}-{version}"));
    if prefix
        .join(format!("node_modules/{package}/package.json"))
        .is_file()
    {
        return Ok(());
    }
    let npm =
        tools::which("npm").with_context(|| format!("npm is required to install {package}"))?;
    step(&format!(
        "installing {package} {version} (npm) into {}",
        prefix.display()
    ));
    std::fs::create_dir_all(&prefix)?;
    std::fs::write(
        prefix.join("package.json"),
        "{\"name\":\"timelapser-browser-tools\",\"private\":true}\n",
    )?;
    run(Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("{package}@{version}"))
        .current_dir(&prefix))
}
