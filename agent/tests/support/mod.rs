//! What the agent's tests run against, all real and on loopback: the origin (in this process,
//! restartable on the same port and data), GStreamer's RTSP server (a child process), an HTTP
//! snapshot camera speaking Basic and Digest authentication (RFC 7617, RFC 7616), a proxy in
//! front of the origin that can hold an upload's answer, and the agent itself (in this process,
//! or its binary as a child).
//!
//! Waits poll for a condition with a deadline and fail with what they last saw.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use timelapser_agent::config::CameraConfig;
use timelapser_origin::{Options, Server};
use timelapser_support::{free_port, ProcessGroup};

/// The admin token of test origins.
pub const ADMIN: &str = "agent-test-admin-token-0123456789";

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `probe` until it gives a value; panics after `within` with what it last saw.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    let mut last_seen: String;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => last_seen = seen,
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {within:?}; last seen: {last_seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// SHA-256 in hex, as the origin names images.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A small JPEG, different for each `n`, never blank: what a test camera serves.
pub fn test_jpeg(n: usize) -> Vec<u8> {
    let n = n as u32;
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([
            ((x * 4 + n * 7) % 256) as u8,
            ((y * 5 + n * 3) % 256) as u8,
            ((x + y + n * 11) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

// ---------------------------------------------------------------------------------------------
// The origin

/// An origin in this process, restartable on the same port and data directory.
pub struct TestOrigin {
    server: Option<Server>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub base: String,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl TestOrigin {
    /// Starts an origin on a free port with a fresh SQLite database.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let mut origin = Self {
            server: None,
            addr,
            base: format!("http://{addr}"),
            dir,
            client: reqwest::Client::new(),
        };
        origin.restart().await;
        origin
    }

    fn options(&self) -> Options {
        let mut options = Options::new(self.dir.path().to_path_buf());
        options.listen = self.addr;
        options.admin_token = Some(ADMIN.to_owned());
        options.ops_listen = None;
        options.shutdown_grace = Duration::from_secs(1);
        options.sse_retry = Duration::from_millis(500);
        options
    }

    /// Stops it: connections are refused until [`TestOrigin::restart`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }

    /// Starts it (again) on the same port and data.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "the origin is running");
        let options = self.options();
        let server = wait_for("the origin to start", Duration::from_secs(20), || {
            let options = options.clone_options();
            async move {
                timelapser_origin::start(options)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
        })
        .await;
        self.server = Some(server);
    }

    /// A URL on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a camera; its id and token.
    pub async fn create_camera(&self, name: &str) -> (i64, String) {
        timelapser_support::api::create_camera(&self.base, ADMIN, name)
            .await
            .unwrap()
    }

    /// Replaces a camera's schedule (as an operator).
    pub async fn put_schedule(&self, camera: i64, schedule: Value) -> Value {
        let response = self
            .client
            .put(self.url(&format!("/api/cameras/{camera}/schedule")))
            .bearer_auth(ADMIN)
            .json(&schedule)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Starts a timelapse on a camera.
    pub async fn start_timelapse(&self, camera: i64, name: &str) -> Value {
        let response = self
            .client
            .post(self.url(&format!("/api/cameras/{camera}/timelapses")))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// The camera as `GET /api/cameras/{id}` shows it.
    pub async fn camera(&self, camera: i64) -> Result<Value, String> {
        let response = self
            .client
            .get(self.url(&format!("/api/cameras/{camera}")))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json().await.map_err(|e| e.to_string())
    }

    /// Waits until the camera's status and message satisfy `want`; returns the message.
    pub async fn wait_for_status(
        &self,
        camera: i64,
        within: Duration,
        want: impl Fn(&str, &str) -> bool,
    ) -> String {
        wait_for("the camera's status", within, || async {
            let camera = self.camera(camera).await?;
            let status = camera["status"].as_str().unwrap_or("").to_owned();
            let message = camera["status_message"].as_str().unwrap_or("").to_owned();
            if want(&status, &message) {
                Ok(message)
            } else {
                Err(format!("{status}: {message}"))
            }
        })
        .await
    }

    /// Every image of a camera, in the order the origin stored them (by id).
    pub async fn images(&self, camera: i64) -> Vec<Value> {
        let mut all = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let mut url = self.url(&format!("/api/cameras/{camera}/images?limit=200"));
            if let Some(before) = before {
                url.push_str(&format!("&before={before}"));
            }
            let page: Value = self
                .client
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_before"].as_i64() {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        all.sort_by_key(|i| i["id"].as_i64());
        all
    }
}

/// `Options` is not `Clone`; a copy field by field of what the tests set.
trait CloneOptions {
    fn clone_options(&self) -> Options;
}

impl CloneOptions for Options {
    fn clone_options(&self) -> Options {
        let mut options = Options::new(self.data_dir.clone());
        options.listen = self.listen;
        options.admin_token = self.admin_token.clone();
        options.ops_listen = self.ops_listen;
        options.shutdown_grace = self.shutdown_grace;
        options.sse_retry = self.sse_retry;
        options
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

/// A camera's config for an agent in this process: the token written to a file in `dir`.
pub fn camera_config(
    origin: &str,
    camera: i64,
    token: &str,
    source: &str,
    dir: &Path,
) -> CameraConfig {
    let token_file = dir.join(format!("camera-{camera}.token"));
    std::fs::write(&token_file, token).unwrap();
    let mut config = CameraConfig::new(origin, camera, source, dir.join(format!("spool-{camera}")));
    config.token_file = Some(token_file);
    config.reconnect_max_seconds = 2;
    config.upload_max_backoff_seconds = 1;
    config
}

/// The agent's binary.
pub fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_timelapser-agent"))
}

/// The agent's binary running `run --config`, its stderr (the log) kept in a file.
pub struct AgentProcess {
    group: Option<ProcessGroup>,
    /// The log file.
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts `timelapser-agent run --config <config> <extra args>`.
    pub fn start(config: &Path, log: &Path, extra: &[&str]) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(agent_binary());
        command
            .args(["run", "--config"])
            .arg(config)
            .args(extra)
            .env("RUST_LOG", "info,timelapser_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let group = ProcessGroup::spawn("timelapser-agent", &mut command).unwrap();
        Self {
            group: Some(group),
            log: log.to_owned(),
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.group
            .as_mut()
            .is_some_and(|g| g.try_wait().unwrap().is_none())
    }

    /// SIGKILL: nothing of the agent's shutdown runs.
    pub fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            group.kill().unwrap();
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let pid = self.group.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for it to exit by itself; its exit status.
    pub async fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let group = self.group.as_mut().expect("running");
        let status = wait_for("the agent to exit", within, || {
            let exited = group.try_wait().unwrap();
            async move { exited.ok_or_else(|| "still running".to_owned()) }
        })
        .await;
        self.group = None;
        status
    }

    /// SIGTERM, and its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.group.take().expect("running").stop().unwrap()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `timelapser-agent check --config <config>`: its exit status and stdout.
pub fn run_check(config: &Path) -> (std::process::ExitStatus, String) {
    let output = Command::new(agent_binary())
        .args(["check", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// One `[[camera]]` table.
pub fn camera_toml(
    origin: &str,
    camera: i64,
    token: &str,
    source: &str,
    dir: &Path,
    extra: &str,
) -> String {
    let token_file = dir.join(format!("camera-{camera}.token"));
    std::fs::write(&token_file, token).unwrap();
    let spool = if extra.contains("spool_dir") {
        String::new()
    } else {
        format!(
            "spool_dir = {:?}\n",
            dir.join(format!("spool-{camera}")).display().to_string()
        )
    };
    format!(
        "[[camera]]\norigin = {origin:?}\ncamera_id = {camera}\ntoken_file = {:?}\nsource = {source:?}\n{spool}reconnect_max_seconds = 2\nupload_max_backoff_seconds = 1\n{extra}\n",
        token_file.display().to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// GStreamer's RTSP server

/// The Debian packages the RTSP tests need (`cargo xtask test` installs them).
pub const GSTREAMER_PACKAGES: &str = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
     gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly \
     gstreamer1.0-plugins-bad gstreamer1.0-tools";

/// Debian's python, for which PyGObject is installed.
const PYTHON: &str = "/usr/bin/python3";

/// GStreamer's RTSP server serving `rtsp://127.0.0.1:<port>/cam`.
pub struct RtspServer {
    process: Option<ProcessGroup>,
    /// Its port (kept across restarts).
    pub port: u16,
    /// Starts so far: each start tints the picture differently.
    starts: u32,
    /// `user:password` the stream asks for, if any.
    credentials: Option<String>,
}

impl RtspServer {
    /// Starts it on a free port. Fails loudly, with the packages to install, when GStreamer's
    /// RTSP server is not there: these tests are never skipped.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts it on a free port, asking for `user:password` (Basic) as a camera does.
    pub async fn start_with_credentials(credentials: &str) -> Self {
        Self::start_with(Some(credentials.to_owned())).await
    }

    async fn start_with(credentials: Option<String>) -> Self {
        let mut server = Self {
            process: None,
            port: free_port().unwrap(),
            starts: 0,
            credentials,
        };
        server.restart().await;
        server
    }

    /// The stream's URL with `userinfo` (`user:password@`, or empty).
    pub fn url(&self, userinfo: &str) -> String {
        format!("rtsp://{userinfo}127.0.0.1:{}/cam", self.port)
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing flows, as when a
    /// camera's encoder hangs.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Stops the server process (an outage, as a camera's reboot is).
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().unwrap();
        }
    }

    /// Starts it (again) on the same port; returns once it listens.
    pub async fn restart(&mut self) {
        assert!(self.process.is_none(), "the RTSP server is running");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py");
        let probe = Command::new(PYTHON)
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0'); \
                 from gi.repository import GstRtspServer",
            ])
            .output();
        match probe {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "GStreamer's RTSP server is not usable from {PYTHON} ({}). The RTSP tests need \
                 Debian's packages: `apt-get install -y --no-install-recommends {GSTREAMER_PACKAGES}` \
                 (`cargo xtask test` installs them)",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => panic!(
                "{PYTHON} cannot run ({e}). The RTSP tests need Debian's python3 and \
                 `apt-get install -y --no-install-recommends {GSTREAMER_PACKAGES}` \
                 (`cargo xtask test` installs them)"
            ),
        }
        let out = tempfile::NamedTempFile::new().unwrap();
        let stdout = out.reopen().unwrap();
        let mut command = Command::new(PYTHON);
        command
            .arg(&script)
            .arg(self.port.to_string())
            .arg(self.starts.to_string())
            .stdin(Stdio::null())
            .stdout(stdout);
        if let Some(credentials) = &self.credentials {
            command.env("RTSP_SERVER_CREDENTIALS", credentials);
        }
        let mut process = ProcessGroup::spawn("the RTSP server", &mut command).unwrap();
        wait_for("the RTSP server to listen", Duration::from_secs(20), || {
            let ready = std::fs::read_to_string(out.path()).unwrap_or_default();
            let exited = process.try_wait().unwrap();
            async move {
                if let Some(status) = exited {
                    panic!("the RTSP server exited ({status}) before it listened");
                }
                if ready.contains("ready") {
                    Ok(())
                } else {
                    Err("not listening yet".into())
                }
            }
        })
        .await;
        self.process = Some(process);
        self.starts += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// An HTTP snapshot camera

/// How a snapshot camera authenticates.
#[derive(Clone, Debug)]
pub enum CameraAuth {
    /// Anyone.
    Open,
    /// Basic (RFC 7617).
    Basic(&'static str, &'static str),
    /// Digest (RFC 7616), offering SHA-256 and MD5.
    Digest(&'static str, &'static str),
}

/// What a snapshot camera answers once authenticated.
#[derive(Clone, Copy, Debug)]
pub enum CameraAnswer {
    /// A new JPEG each time, up to `limit` (then 503).
    Frames {
        /// JPEGs served at most.
        limit: usize,
    },
    /// A login page, as a misconfigured URL gets.
    Html,
    /// A black picture (a lens cap), a new JPEG each time all the same.
    Black,
}

struct CameraState {
    auth: CameraAuth,
    answer: CameraAnswer,
    served: Mutex<Vec<String>>,
    nonce: String,
    refused: AtomicUsize,
}

/// A snapshot camera on loopback.
pub struct SnapshotCamera {
    /// Its snapshot URL.
    pub url: String,
    state: Arc<CameraState>,
}

impl SnapshotCamera {
    /// Starts a camera.
    pub async fn start(auth: CameraAuth, answer: CameraAnswer) -> Self {
        let state = Arc::new(CameraState {
            auth,
            answer,
            served: Mutex::new(Vec::new()),
            nonce: sha256_hex(&free_port().unwrap().to_be_bytes())[..32].to_owned(),
            refused: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/snapshot.jpg", axum::routing::get(snapshot))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/snapshot.jpg?channel=1"),
            state,
        }
    }

    /// The SHA-256 of each JPEG served, in order.
    pub fn served(&self) -> Vec<String> {
        self.state.served.lock().unwrap().clone()
    }

    /// Requests refused for their credentials.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
}

async fn snapshot(State(state): State<Arc<CameraState>>, request: Request) -> Response {
    let uri = request.uri().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorised = match &state.auth {
        CameraAuth::Open => true,
        CameraAuth::Basic(user, password) => {
            use base64::Engine as _;
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            authorization.as_deref() == Some(expected.as_str())
        }
        CameraAuth::Digest(user, password) => authorization
            .as_deref()
            .is_some_and(|a| digest_is_valid(a, user, password, &state.nonce, &uri)),
    };
    if !authorised {
        if authorization.is_some() {
            state.refused.fetch_add(1, Ordering::SeqCst);
        }
        let mut headers = HeaderMap::new();
        match &state.auth {
            CameraAuth::Basic(..) => {
                headers.append(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"camera\""),
                );
            }
            CameraAuth::Digest(..) => {
                for algorithm in ["MD5", "SHA-256"] {
                    headers.append(
                        "www-authenticate",
                        HeaderValue::from_str(&format!(
                            "Digest realm=\"camera\", qop=\"auth\", algorithm={algorithm}, nonce=\"{}\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
                            state.nonce
                        ))
                        .unwrap(),
                    );
                }
            }
            CameraAuth::Open => {}
        }
        return (StatusCode::UNAUTHORIZED, headers, "unauthorized").into_response();
    }
    match state.answer {
        CameraAnswer::Html => (
            [("content-type", "text/html")],
            "<html><body>Please log in</body></html>",
        )
            .into_response(),
        CameraAnswer::Black => {
            let black = image::RgbImage::from_pixel(64, 48, image::Rgb([3, 3, 3]));
            let mut out = std::io::Cursor::new(Vec::new());
            black.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            state.served.lock().unwrap().push(sha256_hex(out.get_ref()));
            ([("content-type", "image/jpeg")], out.into_inner()).into_response()
        }
        CameraAnswer::Frames { limit } => {
            let mut served = state.served.lock().unwrap();
            if served.len() >= limit {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            let jpeg = test_jpeg(served.len());
            served.push(sha256_hex(&jpeg));
            ([("content-type", "image/jpeg")], jpeg).into_response()
        }
    }
}

/// Checks a Digest `Authorization` per RFC 7616 §3.4.1, computed here independently of the
/// agent's digest crate: `response = H(H(A1):nonce:nc:cnonce:qop:H(A2))`.
fn digest_is_valid(header: &str, user: &str, password: &str, nonce: &str, uri: &str) -> bool {
    let Some(params) = header.strip_prefix("Digest ") else {
        return false;
    };
    let params = parse_auth_params(params);
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let hash = |text: String| -> String {
        match get("algorithm") {
            "SHA-256" => hex::encode(Sha256::digest(text.as_bytes())),
            "MD5" | "" => hex::encode(md5::Md5::digest(text.as_bytes())),
            _ => String::new(),
        }
    };
    if get("username") != user || get("nonce") != nonce || get("uri") != uri || get("qop") != "auth"
    {
        return false;
    }
    let ha1 = hash(format!("{user}:camera:{password}"));
    let ha2 = hash(format!("GET:{uri}"));
    let expected = hash(format!(
        "{ha1}:{nonce}:{}:{}:auth:{ha2}",
        get("nc"),
        get("cnonce")
    ));
    !expected.is_empty() && get("response") == expected
}

/// `k=v, k="v, with comma"` into a map.
fn parse_auth_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            value = quoted[..end].to_owned();
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.insert(key, value);
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A proxy that can hold an upload's answer

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    hold: AtomicBool,
    held: tokio::sync::watch::Sender<usize>,
    released: tokio::sync::watch::Sender<bool>,
    uploads: Mutex<Vec<(String, u16)>>,
}

/// A reverse proxy in front of the origin. Armed, it forwards the next capture upload to the
/// origin and then never answers: the origin has stored the frame, the agent does not know.
pub struct HoldingProxy {
    /// Its base URL (give this to the agent as the origin).
    pub base: String,
    state: Arc<ProxyState>,
}

impl HoldingProxy {
    /// A proxy to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            hold: AtomicBool::new(false),
            held: tokio::sync::watch::channel(0).0,
            released: tokio::sync::watch::channel(false).0,
            uploads: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Holds the answer of every upload from now on (until [`HoldingProxy::release`]).
    pub fn hold_uploads(&self, hold: bool) {
        self.state.hold.store(hold, Ordering::SeqCst);
    }

    /// Sends the held answers, and holds no more.
    pub fn release(&self) {
        self.hold_uploads(false);
        self.state.released.send_replace(true);
    }

    /// Waits until an upload's answer is being held; returns the frame's SHA-256.
    pub async fn wait_for_held_upload(&self, within: Duration) -> String {
        let mut held = self.state.held.subscribe();
        tokio::time::timeout(within, held.wait_for(|n| *n > 0))
            .await
            .expect("an upload to be held")
            .unwrap();
        self.uploads().last().unwrap().0.clone()
    }

    /// Each upload the origin answered: the frame's SHA-256 and the origin's status.
    pub fn uploads(&self) -> Vec<(String, u16)> {
        self.state.uploads.lock().unwrap().clone()
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    let mut upstream = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .body(body.clone());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    if parts.method == axum::http::Method::POST && path.ends_with("/captures") {
        let answer = response.bytes().await.unwrap_or_default();
        state
            .uploads
            .lock()
            .unwrap()
            .push((sha256_hex(&body), status.as_u16()));
        if state.hold.load(Ordering::SeqCst) {
            state.held.send_modify(|n| *n += 1);
            let _ = state.released.subscribe().wait_for(|r| *r).await;
        }
        return (status, headers, answer).into_response();
    }
    (status, headers, Body::from_stream(response.bytes_stream())).into_response()
}
