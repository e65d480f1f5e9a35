//! End-to-end test support: a real origin (in this process, on a real socket) behind the real
//! edge Worker in `wrangler dev` (workerd), each on free ports, with a fresh Cache API state.
//!
//! The Worker must be built (`cargo xtask build-edge`, which `cargo xtask test` runs first)
//! and wrangler installed under target/tools; the stack fails with that advice otherwise.
//! Each origin counts into its own metrics, so tests that read them run concurrently.

pub mod scripted;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use timelapser_origin::{Options, Server};
use timelapser_support::{free_port, wrangler, ProcessGroup};

/// The admin token of test origins.
pub const ADMIN: &str = "e2e-admin-token-0123456789";

/// How long `wrangler dev` has to answer.
const EDGE_READY_WITHIN: Duration = Duration::from_secs(60);

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// `wrangler dev` running the edge Worker; stopped (with its workerd) when dropped.
pub struct Edge {
    // Declared first: stopped before its state folder is removed.
    _wrangler: ProcessGroup,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _state: tempfile::TempDir,
}

impl Edge {
    /// Starts the Worker in front of `origin`, with a fresh persist directory (an empty Cache
    /// API), and waits until it answers.
    pub async fn start(origin: &str, timeout_ms: u64) -> Result<Self> {
        Self::start_on(origin, timeout_ms, free_port()?, &[]).await
    }

    /// As [`Self::start`], on a chosen port (an origin that purges it must know its URL
    /// first) and with more variables (`PURGE_TOKEN_SHA256`).
    pub async fn start_on(
        origin: &str,
        timeout_ms: u64,
        port: u16,
        vars: &[(&str, &str)],
    ) -> Result<Self> {
        let root = root();
        let wrangler = wrangler::bin_dir(&root).join("wrangler");
        let worker = wrangler::built_worker(&root);
        if !wrangler.is_file() || !worker.is_file() {
            bail!(
                "the edge is not built: run `cargo xtask build-edge` (or `cargo xtask test`, which builds it) first; \
                 looked for {} and {}",
                wrangler.display(),
                worker.display()
            );
        }
        let state = tempfile::tempdir()?;
        let timeout = timeout_ms.to_string();
        let mut all_vars = vec![("ORIGIN", origin), ("ORIGIN_TIMEOUT_MS", timeout.as_str())];
        all_vars.extend_from_slice(vars);
        let mut command =
            wrangler::dev_prebuilt(&root, state.path(), port, free_port()?, &all_vars)?;
        let mut process = ProcessGroup::spawn("wrangler dev", &mut command)?;
        let base = format!("http://127.0.0.1:{port}");
        process
            .wait_until_ok(&format!("{base}/healthz"), EDGE_READY_WITHIN)
            .await?;
        Ok(Edge {
            _wrangler: process,
            base,
            _state: state,
        })
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
        Self::start_with(|_| {}).await
    }

    /// Starts an origin with its options changed first.
    pub async fn start_with(configure: impl FnOnce(&mut Options)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut options = Options::new(dir.path().to_path_buf());
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_token = Some(ADMIN.to_owned());
        options.ops_listen = None;
        configure(&mut options);
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

    /// Stops it, then starts it again on the same address and data directory: one origin's
    /// step of a rolling restart (its clients see their connections end, then the same origin
    /// back with everything it stored).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        let mut options = Options::new(self.dir.path().to_path_buf());
        options.listen = self.addr;
        options.admin_token = Some(ADMIN.to_owned());
        options.ops_listen = None;
        self.server = Some(timelapser_origin::start(options).await?);
        Ok(())
    }

    /// A URL on the origin.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests the origin has answered for `route` with `method` and `status`, read from
    /// its `/metrics`.
    pub async fn requests(&self, route: &str, method: &str, status: u16) -> Result<u64> {
        timelapser_support::api::requests_answered(&self.base, ADMIN, route, method, status).await
    }

    /// Creates a camera; returns its id and token.
    pub async fn create_camera(&self, name: &str) -> Result<(i64, String)> {
        timelapser_support::api::create_camera(&self.base, ADMIN, name).await
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
