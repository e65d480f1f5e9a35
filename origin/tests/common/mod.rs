//! Test support: a real origin on a free port, over a real socket, on SQLite or on a fresh
//! PostgreSQL database of the server at `TIMELAPSER_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). PostgreSQL being unreachable fails
//! the tests; nothing is skipped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use timelapser_origin::{Options, Server};

pub const ADMIN: &str = "test-admin-token-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TIMELAPSER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a fresh PostgreSQL database and returns its URL and name.
pub async fn fresh_postgres_database() -> (String, String) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin_url = postgres_admin_url();
    let name = format!(
        "tl_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        rand_suffix()
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL must be reachable at {admin_url} for these tests: {e}")
        });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b)
        .to_owned();
    (format!("{base}/{name}"), name)
}

pub async fn drop_postgres_database(name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos % 100_000
}

pub struct TestOrigin {
    pub server: Option<Server>,
    pub base: String,
    pub addr: SocketAddr,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pg_database: Option<String>,
}

impl TestOrigin {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Options)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::new(dir.path().to_path_buf());
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_token = Some(ADMIN.to_owned());
        options.sweep_interval = std::time::Duration::from_secs(3600);
        options.ops_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut pg_database = None;
        if backend == Backend::Postgres {
            let (url, name) = fresh_postgres_database().await;
            options.database_url = Some(url);
            pg_database = Some(name);
        }
        configure(&mut options);
        let server = timelapser_origin::start(options)
            .await
            .expect("origin starts");
        let addr = server.addr;
        Self {
            server: Some(server),
            base: format!("http://{addr}"),
            addr,
            client: Client::builder().build().unwrap(),
            dir,
            backend,
            pg_database,
        }
    }

    pub fn state(&self) -> &timelapser_origin::state::AppState {
        &self.server.as_ref().unwrap().state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    pub async fn create_camera(&self, name: &str) -> (i64, String) {
        let response = self
            .client
            .post(self.url("/api/cameras"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["camera"]["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// `PUT /api/settings` with the admin token (no If-Match).
    pub async fn put_settings(&self, body: Value) -> Response {
        self.client
            .put(self.url("/api/settings"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn capture(&self, camera_id: i64, token: &str, jpeg: Vec<u8>) -> Response {
        capture(&self.client, &self.base, camera_id, token, jpeg).await
    }

    /// The domain events logged after `after`, in order: everything but the derived
    /// `stats_updated`, which the stats publisher logs on its own schedule.
    pub async fn events_after(&self, after: i64) -> Vec<(i64, String, Value)> {
        let mut events = self.log_after(after).await;
        events.retain(|e| e.1 != "stats_updated");
        events
    }

    /// The id of the newest domain event (see [`Self::events_after`]).
    pub async fn last_event_id(&self) -> i64 {
        self.events_after(0).await.last().map_or(0, |e| e.0)
    }

    /// Every event logged after `after`, in order.
    pub async fn log_after(&self, after: i64) -> Vec<(i64, String, Value)> {
        let mut conn = self.state().db.pool().acquire().await.unwrap();
        timelapser_origin::db::events::after(&mut conn, after, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.name, serde_json::from_str(&e.payload).unwrap()))
            .collect()
    }

    /// Waits (at most 20 s) until the whole log satisfies `condition`; fails with `what` and
    /// the log's event names otherwise.
    pub async fn wait_for_log(
        &self,
        what: &str,
        condition: impl Fn(&[(i64, String, Value)]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let log = self.log_after(0).await;
            if condition(&log) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 20 s for {what}; the log holds {:?}",
                log.iter().map(|e| e.1.as_str()).collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most 20 s) until `count` receivers are subscribed to the event bus (SSE
    /// streams and internal subscribers).
    pub async fn wait_for_streams(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = self.state().bus.receiver_count();
            if now >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 20 s for {count} bus subscribers; {now} are"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The value of a metric of this origin (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.state()
            .metrics
            .render()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits (at most 20 s) until a metric of this origin has `value`.
    pub async fn wait_for_gauge(&self, name: &str, value: f64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = self.metric(name);
            if now == value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 20 s for {name} = {value}; it is {now}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The newest id in the log.
    /// The newest public id (the public event stream's own numbering).
    pub async fn public_newest(&self) -> i64 {
        let mut conn = self.state().db.pool().acquire().await.unwrap();
        timelapser_origin::db::events::public_id_through(&mut conn, i64::MAX)
            .await
            .unwrap()
    }

    pub async fn log_newest(&self) -> i64 {
        let mut conn = self.state().db.pool().acquire().await.unwrap();
        timelapser_origin::db::events::bounds(&mut conn)
            .await
            .unwrap()
            .1
            .unwrap_or(0)
    }

    /// Files under `media/<folder>`.
    pub fn media_files(&self, folder: &str) -> Vec<String> {
        self.files(&self.dir.path().join("media").join(folder))
    }

    /// Files left in the temp directory (partial uploads and renders).
    pub fn temp_files(&self) -> Vec<String> {
        self.files(&self.dir.path().join("tmp"))
    }

    fn files(&self, dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub async fn finish(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        if let Some(name) = self.pg_database.take() {
            drop_postgres_database(&name).await;
        }
    }
}

/// Uploads a capture to the origin at `base` (for tasks that cannot borrow a `TestOrigin`).
pub async fn capture(
    client: &Client,
    base: &str,
    camera_id: i64,
    token: &str,
    jpeg: Vec<u8>,
) -> Response {
    client
        .post(format!("{base}/api/cameras/{camera_id}/captures"))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(jpeg)
        .send()
        .await
        .unwrap()
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The status line and header fields, as text.
    pub head: String,
    /// The body (as far as it was read).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header field's value (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// Asserts it is a problem document with `status`.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.head);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{}",
            self.head
        );
        let problem: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)));
        assert_eq!(problem["status"], status);
        problem
    }
}

/// Reads one response from a socket: its head, then `Content-Length` bytes of body (or up to
/// the end of the stream); fails after 20 s.
pub async fn read_response(socket: &mut tokio::net::TcpStream) -> RawResponse {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let mut head_end = None;
    loop {
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length = head.lines().find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|n| bytes.len() >= end + 4 + n) {
                let status = head[9..12].parse().unwrap();
                let body = bytes[end + 4..end + 4 + length.unwrap()].to_vec();
                return RawResponse { status, head, body };
            }
        }
        let read = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no complete response within 20 s; got {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
        let n = read.unwrap_or(0);
        if n == 0 {
            let end = head_end.unwrap_or_else(|| {
                panic!(
                    "the connection closed before a response head: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let status = head[9..12].parse().unwrap();
            return RawResponse {
                status,
                body: bytes[end + 4..].to_vec(),
                head,
            };
        }
        bytes.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
        }
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResponse {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    read_response(&mut socket).await
}

/// A JPEG of the given size whose pixels depend on `seed`.
pub fn jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    timelapser_origin::demo::synthetic_frame(width, height, seed % 3, seed)
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v: &HeaderValue| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("missing header {name}"))
}

pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "expected {status}");
    assert_eq!(
        header(response.headers(), "content-type"),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}

/// Defines a test that runs once on SQLite and once on PostgreSQL; optionally with the
/// origin's options changed first (`on_both!(name, |options| { ... }, |origin| { ... })`).
#[macro_export]
macro_rules! on_both {
    ($name:ident, |$options:ident| $configure:block, |$origin:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($origin: &$crate::common::TestOrigin) $body

            fn configure($options: &mut timelapser_origin::Options) $configure

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let origin =
                    $crate::common::TestOrigin::start_with($crate::common::Backend::Sqlite, configure).await;
                run(&origin).await;
                origin.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let origin =
                    $crate::common::TestOrigin::start_with($crate::common::Backend::Postgres, configure).await;
                run(&origin).await;
                origin.finish().await;
            }
        }
    };
    ($name:ident, |$origin:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($origin: &$crate::common::TestOrigin) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let origin = $crate::common::TestOrigin::start($crate::common::Backend::Sqlite).await;
                run(&origin).await;
                origin.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let origin = $crate::common::TestOrigin::start($crate::common::Backend::Postgres).await;
                run(&origin).await;
                origin.finish().await;
            }
        }
    };
}

/// A real SSE client: reqwest's byte stream through core's event-stream parser (which follows
/// the HTML spec's parsing rules).
pub struct SseClient {
    pub response_headers: HeaderMap,
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: timelapser_core::events::EventStreamParser,
    pending: std::collections::VecDeque<timelapser_core::events::MessageEvent>,
    pub ended: bool,
    pub raw: Vec<u8>,
}

impl SseClient {
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> Self {
        Self::connect_with(url, last_event_id, &[]).await
    }

    /// As [`Self::connect`], with more request fields (credentials).
    pub async fn connect_with(
        url: &str,
        last_event_id: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Self {
        let client = Client::new();
        let mut request = client.get(url).header("accept", "text/event-stream");
        for (name, value) in fields {
            request = request.header(*name, *value);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let response_headers = response.headers().clone();
        Self {
            response_headers,
            stream: Box::pin(response.bytes_stream()),
            parser: Default::default(),
            pending: Default::default(),
            ended: false,
            raw: Vec::new(),
        }
    }

    /// The next event, or `None` if none arrives within `timeout` or the stream ended.
    pub async fn next_event(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<timelapser_core::events::MessageEvent> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => self.ended = true,
                Ok(Some(Err(_))) => self.ended = true,
                Ok(Some(Ok(chunk))) => {
                    self.raw.extend_from_slice(&chunk);
                    self.pending.extend(self.parser.push(&chunk));
                }
            }
        }
    }

    /// Events until one named `name` arrives (inclusive); panics after `timeout`.
    pub async fn until(
        &mut self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Vec<timelapser_core::events::MessageEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next_event(left).await.unwrap_or_else(|| {
                panic!(
                    "no {name} event within {timeout:?}; saw {:?}",
                    seen.iter()
                        .map(|e: &timelapser_core::events::MessageEvent| e.event.clone())
                        .collect::<Vec<_>>()
                )
            });
            let done = event.event == name;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Every event arriving within `window`.
    pub async fn drain(
        &mut self,
        window: std::time::Duration,
    ) -> Vec<timelapser_core::events::MessageEvent> {
        let deadline = tokio::time::Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(event) = self
            .next_event(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            seen.push(event);
        }
        seen
    }

    pub fn reconnection_time(&self) -> Option<u64> {
        self.parser.reconnection_time()
    }
}

impl TestOrigin {
    /// Stops this origin and starts another on the same data directory and database.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`TestOrigin::restart`], with options of the test's own.
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Options)) -> Self {
        let server = self.server.take().unwrap();
        let database_url = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(b, _)| b)
                    .to_owned();
                Some(format!("{base}/{}", self.pg_database.as_ref().unwrap()))
            }
        };
        server.shutdown().await.unwrap();
        let mut options = Options::new(self.dir.path().to_path_buf());
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_token = Some(ADMIN.to_owned());
        options.sweep_interval = std::time::Duration::from_secs(3600);
        options.ops_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        options.database_url = database_url;
        configure(&mut options);
        let server = timelapser_origin::start(options)
            .await
            .expect("origin restarts");
        self.addr = server.addr;
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
        self
    }

    /// A second origin process-equivalent on the same PostgreSQL database (a replica).
    pub async fn replica(&self) -> Server {
        self.replica_with(|_| {}).await
    }

    /// [`TestOrigin::replica`], with options of the test's own.
    pub async fn replica_with(&self, configure: impl FnOnce(&mut Options)) -> Server {
        assert_eq!(self.backend, Backend::Postgres);
        let admin = postgres_admin_url();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_owned();
        let dir = self.dir.path().join("replica");
        let mut options = Options::new(dir);
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.admin_token = Some(ADMIN.to_owned());
        options.sweep_interval = std::time::Duration::from_secs(3600);
        options.ops_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        options.database_url = Some(format!("{base}/{}", self.pg_database.as_ref().unwrap()));
        configure(&mut options);
        timelapser_origin::start(options)
            .await
            .expect("replica starts")
    }
}
