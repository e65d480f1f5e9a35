//! Finding and installing the tools the tasks need, pinned, into `target/tools`, so a fresh
//! machine sets itself up and the next run reuses what the first installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{run, step};

/// cargo-fuzz, pinned.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

fn tools_dir(root: &Path) -> PathBuf {
    root.join("target/tools")
}

/// The version of a package in Cargo.lock (the first entry of that name).
pub fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let end = lock[start..].find('"').context("malformed Cargo.lock")? + start;
    Ok(lock[start..end].to_owned())
}

/// `cargo install <krate> --version <version>` into its own folder under target/tools, unless
/// already there. Returns the folder holding its binaries.
pub fn cargo_install(root: &Path, krate: &str, version: &str, binary: &str) -> Result<PathBuf> {
    cargo_install_with(root, krate, version, binary, &[])
}

/// [`cargo_install`] with more arguments (`--features`, `--locked`).
pub fn cargo_install_with(
    root: &Path,
    krate: &str,
    version: &str,
    binary: &str,
    extra: &[&str],
) -> Result<PathBuf> {
    let prefix = tools_dir(root).join(format!("{krate}-{version}"));
    let bin = prefix.join("bin");
    if bin.join(binary).is_file() {
        return Ok(bin);
    }
    step(&format!(
        "installing {krate} {version} into {} (once; a few minutes)",
        prefix.display()
    ));
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", krate, "--version", version])
            .args(extra)
            .arg("--root")
            .arg(&prefix),
    )?;
    Ok(bin)
}

/// The S3-protocol server the object-storage tests and benchmarks run against (s3s-fs, from
/// crates.io, pinned; its server binary is behind the `binary` feature).
pub fn ensure_s3_server(root: &Path) -> Result<PathBuf> {
    let bin = cargo_install_with(
        root,
        "s3s-fs",
        timelapser_support::s3::VERSION,
        "s3s-fs",
        &["--features", "binary", "--locked"],
    )?;
    Ok(bin.join("s3s-fs"))
}

/// The wasm32 target of the one toolchain, added with rustup when missing.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32-unknown-unknown target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// wasm-bindgen-cli at exactly the version of wasm-bindgen in Cargo.lock (the CLI and the
/// library must match). Returns its bin folder (wasm-bindgen, wasm-bindgen-test-runner).
pub fn ensure_wasm_bindgen_cli(root: &Path) -> Result<PathBuf> {
    let version = locked_version(root, "wasm-bindgen")?;
    cargo_install(
        root,
        "wasm-bindgen-cli",
        &version,
        "wasm-bindgen-test-runner",
    )
}

/// cargo-fuzz, pinned. Runs on the stable toolchain with RUSTC_BOOTSTRAP=1.
pub fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    Ok(cargo_install(root, "cargo-fuzz", CARGO_FUZZ_VERSION, "cargo-fuzz")?.join("cargo-fuzz"))
}

/// Node.js, which runs the wasm tests. Fails loudly when absent.
pub fn require_node() -> Result<PathBuf> {
    let node = which("node").context(
        "Node.js is required to run the wasm32 tests (wasm-bindgen-test runs them under Node); \
         install Debian's nodejs package",
    )?;
    let version = Command::new(&node).arg("--version").output()?;
    if !version.status.success() {
        bail!("{} --version failed", node.display());
    }
    Ok(node)
}

/// Looks a program up on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// core must stay sans-IO: its wasm32 dependency tree has no runtime, socket or database.
pub fn check_core_is_sans_io() -> Result<()> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree",
            "-p",
            "timelapser-core",
            "--target",
            "wasm32-unknown-unknown",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .context("cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tree = String::from_utf8(output.stdout)?;
    let forbidden: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| ["tokio", "mio", "sqlx", "hyper", "reqwest"].contains(name))
        .collect();
    if !forbidden.is_empty() {
        bail!("timelapser-core depends on {forbidden:?} on wasm32; core must stay sans-IO");
    }
    eprintln!(
        "    {} crates, none of tokio/mio/sqlx/hyper/reqwest",
        tree.lines().count()
    );
    Ok(())
}

/// The PostgreSQL server the origin's tests run against
/// (`TIMELAPSER_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
/// Fails loudly when it cannot be reached: those tests are never skipped.
pub fn require_postgres() -> Result<()> {
    let url = std::env::var("TIMELAPSER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split('/').next())
        .map(|a| a.rsplit('@').next().unwrap_or(a))
        .context("TIMELAPSER_TEST_POSTGRES_URL is not a postgres:// URL")?;
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)).is_ok()
        });
    if !reachable {
        bail!(
            "PostgreSQL is not reachable at {address} ({url}); the origin's tests run on \
             PostgreSQL as well as SQLite. Start it (on Debian: \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or \
             point TIMELAPSER_TEST_POSTGRES_URL at one."
        );
    }
    eprintln!("    PostgreSQL reachable at {address}");
    Ok(())
}

/// Debian packages providing `binary`, installed with apt-get when missing and running as root;
/// a clear error naming the packages otherwise.
pub fn ensure_apt_packages(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(binary, _)| {
            which(binary).is_none() && !Path::new("/usr/sbin").join(binary).is_file()
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    ensure_debian_packages(&missing)
}

/// Debian's packages GStreamer's RTSP server needs (the agent's tests, `cargo xtask dev`'s
/// RTSP demo and `cargo xtask bench agent` run it with Debian's python3).
pub const RTSP_SERVER_PACKAGES: [&str; 8] = [
    "python3-gi",
    "gir1.2-gst-rtsp-server-1.0",
    "gstreamer1.0-rtsp",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-tools",
];

/// Debian's ffmpeg (renders, and ffprobe for the tests) and DejaVu Sans, the font the
/// render overlays draw with.
pub fn ensure_render_tools() -> Result<()> {
    ensure_apt_packages(&[("ffmpeg", "ffmpeg"), ("ffprobe", "ffmpeg")])?;
    ensure_debian_packages_installed(&["fonts-dejavu-core"])
}

/// Installs GStreamer's RTSP server packages when missing.
pub fn ensure_rtsp_server() -> Result<()> {
    ensure_debian_packages_installed(&RTSP_SERVER_PACKAGES)
}

/// Debian packages that provide no program to look for (Python bindings, GStreamer plugins),
/// checked with dpkg and installed with apt-get when missing and running as root; a clear error
/// naming them otherwise.
pub fn ensure_debian_packages_installed(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    ensure_debian_packages(&missing)
}

/// The C libraries the origin links: libjpeg-turbo's TurboJPEG API (Debian's
/// libturbojpeg0-dev), found with pkg-config. Installed with apt-get when missing and running
/// as root; a clear error otherwise.
pub fn ensure_build_libraries() -> Result<()> {
    let present = Command::new("pkg-config")
        .args(["--exists", "libturbojpeg"])
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    ensure_debian_packages(&["pkg-config", "libturbojpeg0-dev"])
}

/// Installs Debian packages with apt-get when running as root; a clear error otherwise.
fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref().ok() != Some("0") {
        bail!(
            "missing Debian packages {packages:?}: install them (`sudo apt-get install -y {}`) and run again",
            packages.join(" ")
        );
    }
    step(&format!("installing {} with apt-get", packages.join(", ")));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
