//! A scripted HTTP/1.1 origin on a real socket, for testing the edge as a general shared cache
//! on responses Timelapser's origin never sends: each path answers what the test scripted for
//! it, byte for byte (any status, interim 1xx responses, obs-text in fields, a reply that never
//! comes), and every request it receives is recorded.
//!
//! It is written on a bare `TcpListener` rather than with hyper or axum because those refuse to
//! send exactly such malformed or unusual responses. One request per connection
//! (`Connection: close`), which is all a test needs.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted response.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// Its status code.
    pub status: u16,
    /// Its fields, as raw bytes (so obs-text can be sent), in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Its body. `Content-Length` is added unless the fields have one.
    pub body: Vec<u8>,
    /// Raw interim responses (`HTTP/1.1 103 Early Hints\r\n...\r\n\r\n`) sent first.
    pub interim: Vec<u8>,
    /// A request field whose value (or `-` when absent) is appended to the body, so variants
    /// can be told apart.
    pub echo: Option<String>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// A reply with a status and a body.
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.as_bytes().to_vec(),
            ..Self::default()
        }
    }

    /// Adds a field.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Appends a request field's value to the body.
    pub fn echo(mut self, name: &str) -> Self {
        self.echo = Some(name.to_ascii_lowercase());
        self
    }

    /// Sends raw interim responses first.
    pub fn interim(mut self, raw: &str) -> Self {
        self.interim = raw.as_bytes().to_vec();
        self
    }

    /// Answers only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the origin received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its method.
    pub method: String,
    /// Its request target (path and query).
    pub target: String,
    /// Its fields, names lower-cased, values as raw bytes, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Received {
    /// The value of a field, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of a field, if present.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Default)]
struct State {
    /// Per path: the replies still to give; the last one is given again and again.
    scripts: HashMap<String, VecDeque<Reply>>,
    /// Per path: what was received.
    received: HashMap<String, Vec<Received>>,
}

/// The scripted origin; stops when dropped.
pub struct ScriptedOrigin {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedOrigin {
    /// Listens on a free loopback port. `/healthz` answers 200 (`no-store`); unscripted paths
    /// 404 (`no-store`).
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, state).await;
                });
            }
        });
        let origin = Self { base, state, task };
        origin.script(
            "/healthz",
            [Reply::new(200, "ok").header("cache-control", "no-store")],
        );
        Ok(origin)
    }

    /// Scripts the replies for a path (without query): given in order, the last repeated.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.lock().unwrap();
        state
            .scripts
            .insert(path.to_owned(), replies.into_iter().collect());
    }

    /// What the origin received for a path so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        let state = self.state.lock().unwrap();
        state.received.get(path).cloned().unwrap_or_default()
    }

    /// How many requests for a path the origin received.
    pub fn count(&self, path: &str) -> usize {
        self.received(path).len()
    }

    /// Waits until the origin has received `n` requests for a path (a background
    /// revalidation, say); fails after `within`.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let count = self.count(path);
            if count >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{path}: {count} requests after {within:?}, expected {n}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads one request, records it, writes its scripted reply and closes.
async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) -> Result<()> {
    let request = read_request(&mut socket).await?;
    let path = request
        .target
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let reply = {
        let mut state = state.lock().unwrap();
        state
            .received
            .entry(path.clone())
            .or_default()
            .push(request.clone());
        match state.scripts.get_mut(&path) {
            Some(replies) if replies.len() > 1 => replies.pop_front(),
            Some(replies) => replies.front().cloned(),
            None => None,
        }
    };
    let mut reply = reply
        .unwrap_or_else(|| Reply::new(404, "not scripted").header("cache-control", "no-store"));
    if let Some(name) = &reply.echo {
        let value = request.header(name).unwrap_or("-").to_owned();
        reply.body.extend_from_slice(value.as_bytes());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut out = reply.interim.clone();
    out.extend_from_slice(format!("HTTP/1.1 {} Scripted\r\n", reply.status).as_bytes());
    let mut has_length = false;
    for (name, value) in &reply.headers {
        has_length |= name.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = request.method == "HEAD" || matches!(reply.status, 204 | 304);
    if !has_length && !matches!(reply.status, 204 | 304) {
        out.extend_from_slice(format!("content-length: {}\r\n", reply.body.len()).as_bytes());
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    if !bodiless {
        out.extend_from_slice(&reply.body);
    }
    socket.write_all(&out).await?;
    socket.shutdown().await?;
    Ok(())
}

/// Reads a request's head and body (Content-Length or chunked).
async fn read_request(socket: &mut TcpStream) -> Result<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            bail!("the connection closed before a request");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut lines = buf[..head_end]
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii());
    let request_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut request_line = request_line.split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&l[..colon])
                .trim()
                .to_ascii_lowercase();
            Some((name, l[colon + 1..].trim_ascii().to_vec()))
        })
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let field = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(length) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !body.ends_with(b"0\r\n\r\n") {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(Received {
        method,
        target,
        headers,
        body,
    })
}
