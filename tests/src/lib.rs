//! End-to-end test support: a real origin (in this process, on a real socket) behind the real
//! edge Worker in `wrangler dev` (workerd), each on free ports, with a fresh Cache API state.
//!
//! The Worker must be built (`cargo xtask build-edge`, which `cargo xtask test` runs first)
//! and wrangler installed under target/tools; the stack fails with that advice otherwise.
//! Each origin counts into its own metrics, so tests that read them run concurrently.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use timelapser_origin::{Options, Server};

/// The admin token of test origins.
pub const ADMIN: &str = "e2e-admin-token-0123456789";

/// The pinned wrangler (see xtask/src/edge.rs).
const WRANGLER: &str = "target/tools/wrangler-4.86.0/node_modules/.bin/wrangler";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wrangler dev` running the edge Worker; stopped (with its workerd) when dropped.
pub struct Edge {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _state: tempfile::TempDir,
}

impl Drop for Edge {
    fn drop(&mut self) {
        // wrangler runs workerd as a child: end the whole process group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Edge {
    /// Starts the Worker in front of `origin`, with a fresh persist directory (an empty Cache
    /// API), and waits until it answers.
    pub async fn start(origin: &str, timeout_ms: u64) -> Result<Self> {
        let root = root();
        let wrangler = root.join(WRANGLER);
        let worker = root.join("edge/build/index.js");
        if !wrangler.is_file() || !worker.is_file() {
            bail!(
                "the edge is not built: run `cargo xtask build-edge` (or `cargo xtask test`, which builds it) first; \
                 looked for {} and {}",
                wrangler.display(),
                worker.display()
            );
        }
        let state = tempfile::tempdir()?;
        // The root wrangler.toml runs a build command; the tests use the build as it is.
        let config = state.path().join("wrangler.toml");
        std::fs::write(
            &config,
            format!(
                "name = \"timelapser-edge-test\"\nmain = \"{}\"\ncompatibility_date = \"2025-09-01\"\n\n[vars]\nORIGIN = \"{origin}\"\nORIGIN_TIMEOUT_MS = \"{timeout_ms}\"\n",
                worker.display()
            ),
        )?;
        let port = free_port();
        let mut command = Command::new(&wrangler);
        command
            .args(["dev", "--config"])
            .arg(&config)
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--persist-to")
            .arg(state.path().join("persist"))
            .arg("--show-interactive-dev-session=false")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("XDG_CONFIG_HOME", state.path().join("config"))
            .env("XDG_CACHE_HOME", root.join("target/wrangler/cache"))
            .current_dir(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        let child = command.spawn().context("starting wrangler dev")?;
        let edge = Edge {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _state: state,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", edge.base)).send().await {
                if r.status().is_success() {
                    return Ok(edge);
                }
            }
            if Instant::now() > deadline {
                bail!("wrangler dev did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A URL through the edge.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// An origin in this process on a free port, with a temporary data directory (SQLite).
pub struct Origin {
    /// The server (None once stopped).
    pub server: Option<Server>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its address.
    pub addr: SocketAddr,
    /// The data directory.
    pub dir: tempfile::TempDir,
}

impl Origin {
    /// Starts an origin.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut options = Options::new(dir.path().to_path_buf());
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_token = Some(ADMIN.to_owned());
        options.ops_listen = None;
        let server = timelapser_origin::start(options).await?;
        let addr = server.addr;
        Ok(Self {
            server: Some(server),
            base: format!("http://{addr}"),
            addr,
            dir,
        })
    }

    /// Stops it (the edge then sees connection failures).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        Ok(())
    }

    /// A URL on the origin.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests the origin has answered for `route` with `method` and `status`, read from
    /// its `/metrics`.
    pub async fn requests(&self, route: &str, method: &str, status: u16) -> Result<u64> {
        let text = reqwest::Client::new()
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let needle = format!(
            "http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} "
        );
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(&needle))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Creates a camera; returns its id and token.
    pub async fn create_camera(&self, name: &str) -> Result<(i64, String)> {
        let body: serde_json::Value = reqwest::Client::new()
            .post(self.url("/api/cameras"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok((
            body["camera"]["id"].as_i64().context("id")?,
            body["token"].as_str().context("token")?.to_owned(),
        ))
    }

    /// Uploads a synthetic frame; returns the image JSON.
    pub async fn capture(&self, camera: i64, token: &str, seed: u32) -> Result<serde_json::Value> {
        Ok(reqwest::Client::new()
            .post(self.url(&format!("/api/cameras/{camera}/captures")))
            .bearer_auth(token)
            .header("content-type", "image/jpeg")
            .body(frame(seed))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// A distinct synthetic JPEG.
pub fn frame(seed: u32) -> Vec<u8> {
    timelapser_origin::demo::synthetic_frame(320, 240, seed % 2, seed)
}
