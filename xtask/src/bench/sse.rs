//! The SSE fan-out benchmark of issue 4: one origin process, N concurrent SSE clients over
//! loopback, broadcasts of capture events to all of them. Reports memory per connection (RSS
//! delta / clients) for streams opened as a connection's first request and for streams opened
//! on a kept-alive connection after another request (each on a fresh origin), delivery latency
//! from the capture request to each receipt (p50/p99), deliveries per second in a burst, and
//! lost or duplicated events (must be zero).
//!
//! Clients are raw TCP connections on one runtime, each reading with a small buffer and
//! looking for `event: image_captured` frames: a real client's work, without a heavy HTTP
//! client per connection skewing the client side.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use timelapser_support::OriginProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::report::{verdict, Run};
use super::{create_camera, frames, origin};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "SSE fan-out";

/// SSE clients connected at once.
const CLIENTS: usize = 10_000;

/// Single broadcasts timed for latency.
const SINGLE_BROADCASTS: usize = 5;

/// Captures sent back to back for throughput.
const BURST: usize = 20;

/// Clients connect this many at a time, [`CONNECT_PAUSE`] apart.
const CONNECT_BATCH: usize = 100;

/// The pause between batches of connecting clients.
const CONNECT_PAUSE: Duration = Duration::from_millis(20);

/// How long every client has to open its stream.
const CONNECT_WITHIN: Duration = Duration::from_secs(120);

/// The request that opens a stream, to `host`.
pub(super) fn events_request(host: &str) -> Arc<[u8]> {
    format!("GET /api/events?types=image_captured HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n")
        .into_bytes()
        .into()
}

/// The request a kept-alive client sends first on its connection.
const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";

/// How a client opens its event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opening {
    /// `GET /api/events` as the connection's first request.
    FirstRequest,
    /// `GET /healthz` first, its response read, then `GET /api/events` on the same (kept-alive)
    /// connection, as browsers and the edge reuse connections.
    KeptAlive,
}

/// The origin's memory with every client idle.
#[derive(Debug, Clone, Copy)]
pub struct IdleMemory {
    /// Origin RSS before the clients connected, KiB.
    pub rss_before_kib: u64,
    /// Origin RSS with every client connected and idle, KiB.
    pub rss_connected_kib: u64,
}

impl IdleMemory {
    /// KiB per client.
    fn per_client(&self, clients: usize) -> f64 {
        self.rss_connected_kib.saturating_sub(self.rss_before_kib) as f64 / clients as f64
    }
}

/// Results of one run.
#[derive(Debug, Clone)]
pub struct SseResults {
    /// Clients connected.
    pub clients: usize,
    /// Memory with streams opened as their connection's first request.
    pub first_request: IdleMemory,
    /// Memory with streams opened on a kept-alive connection, after `GET /healthz`.
    pub kept_alive: IdleMemory,
    /// Latency percentiles of single broadcasts, ms (p50, p99, max).
    pub latency_ms: (f64, f64, f64),
    /// Events in the burst.
    pub burst_events: usize,
    /// Deliveries per second during the burst.
    pub deliveries_per_second: f64,
    /// Events missed by some client.
    pub lost: usize,
    /// Events received twice by some client.
    pub duplicated: usize,
}

/// Reads VmRSS of a process, in KiB.
pub(super) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// One received event: the client, the event id, and when.
pub(super) struct Receipt {
    pub(super) client: usize,
    pub(super) id: u64,
    pub(super) at: Instant,
}

/// The end of a response head in `bytes`, if it has arrived.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Sends `GET /healthz` and reads its response to the end of its body, leaving the connection
/// ready for the next request.
async fn request_health(stream: &mut TcpStream, buf: &mut [u8]) -> Result<()> {
    stream.write_all(HEALTH_REQUEST).await?;
    let mut response = Vec::new();
    loop {
        let n = stream.read(buf).await?;
        if n == 0 {
            bail!(
                "the origin closed the connection after GET /healthz; it sent: {:?}",
                String::from_utf8_lossy(&response)
            );
        }
        response.extend_from_slice(&buf[..n]);
        let Some(end) = head_end(&response) else {
            continue;
        };
        let head = String::from_utf8_lossy(&response[..end]);
        if !head.starts_with("HTTP/1.1 200") {
            bail!("GET /healthz answered: {head}");
        }
        let field = |name: &str| {
            head.lines().skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if field("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            bail!("GET /healthz closes the connection: {head}");
        }
        let length: usize = field("content-length")
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("GET /healthz answered without a Content-Length: {head}"))?;
        let complete = end + 4 + length;
        if response.len() > complete {
            bail!("bytes after the response to GET /healthz: {head}");
        }
        if response.len() == complete {
            return Ok(());
        }
    }
}

/// One client: opens its stream, says so on `open`, then reports every event it receives.
async fn client(
    index: usize,
    addr: SocketAddr,
    opening: Opening,
    request: Arc<[u8]>,
    open: mpsc::UnboundedSender<Result<(), String>>,
    receipts: mpsc::UnboundedSender<Receipt>,
) -> Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = vec![0u8; 2048];
    if opening == Opening::KeptAlive {
        request_health(&mut stream, &mut buf).await?;
    }
    stream.write_all(&request).await?;
    let mut pending: Vec<u8> = Vec::new();
    let mut headers_done = false;
    let mut signalled = false;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let at = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        if !headers_done {
            let Some(end) = head_end(&pending) else {
                continue;
            };
            if !pending.starts_with(b"HTTP/1.1 200") {
                bail!("{}", String::from_utf8_lossy(&pending[..end]));
            }
            pending.drain(..end + 4);
            headers_done = true;
        }
        if !signalled && pending.windows(7).any(|w| w == b"retry: ") {
            signalled = true;
            let _ = open.send(Ok(()));
        }
        // Frames end with a blank line; chunked encoding wraps them, which the id scan ignores.
        while let Some(pos) = pending.windows(4).position(|w| w == b"id: ") {
            let rest = &pending[pos + 4..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            let id: u64 = std::str::from_utf8(&rest[..nl])
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let _ = receipts.send(Receipt {
                client: index,
                id,
                at,
            });
            pending.drain(..pos + 4 + nl);
        }
        if pending.len() > 4096 {
            let keep = pending.len() - 16;
            pending.drain(..keep);
        }
    }
}

/// Clients with their streams open; dropping them closes their connections.
pub(super) struct Clients {
    count: usize,
    tasks: Vec<JoinHandle<()>>,
    receipts: mpsc::UnboundedReceiver<Receipt>,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects `count` clients to `addr`, each opening its stream as `opening` says, and waits
/// until every stream is open; fails with the first client's error, or with how many were
/// open at the deadline.
pub(super) async fn connect(
    addr: SocketAddr,
    count: usize,
    opening: Opening,
    request: Arc<[u8]>,
) -> Result<Clients> {
    let (open_tx, mut open_rx) = mpsc::unbounded_channel();
    let (receipts_tx, receipts) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let (open, receipts) = (open_tx.clone(), receipts_tx.clone());
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client(index, addr, opening, request, open.clone(), receipts).await {
                let _ = open.send(Err(format!("client {index}: {e:#}")));
            }
        }));
        if index % CONNECT_BATCH == CONNECT_BATCH - 1 {
            tokio::time::sleep(CONNECT_PAUSE).await;
        }
    }
    let clients = Clients {
        count,
        tasks,
        receipts,
    };
    let deadline = tokio::time::Instant::now() + CONNECT_WITHIN;
    let mut opened = 0;
    while opened < count {
        match tokio::time::timeout_at(deadline, open_rx.recv()).await {
            Ok(Some(Ok(()))) => opened += 1,
            Ok(Some(Err(e))) => bail!("{opened} of {count} streams open ({opening:?}); {e}"),
            Ok(None) => bail!("the clients ended with {opened} of {count} streams open"),
            Err(_) => {
                bail!("{opened} of {count} streams open ({opening:?}) after {CONNECT_WITHIN:?}")
            }
        }
    }
    Ok(clients)
}

/// Connects [`CLIENTS`] idle clients to `origin` and measures its RSS before and after, as
/// the method says: 0.5 s for the origin to settle first, 2 s for it to settle after.
async fn idle_clients(origin: &OriginProcess, opening: Opening) -> Result<(IdleMemory, Clients)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = rss_kib(origin.id())?;
    let clients = connect(origin.addr, CLIENTS, opening, events_request("bench")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected_kib = rss_kib(origin.id())?;
    Ok((
        IdleMemory {
            rss_before_kib,
            rss_connected_kib,
        },
        clients,
    ))
}

/// Posts a capture of `camera` (one event for every client).
pub(super) async fn capture(
    http: &reqwest::Client,
    origin: &OriginProcess,
    camera: i64,
    token: &str,
    frame: Vec<u8>,
) -> Result<()> {
    let response = http
        .post(origin.url(&format!("/api/cameras/{camera}/captures")))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(frame)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::CREATED {
        bail!("capture answered {}", response.status());
    }
    Ok(())
}

/// Receives one event on every client within `within`; returns each receipt.
pub(super) async fn receive_one_each(
    clients: &mut Clients,
    within: Duration,
) -> Result<Vec<Receipt>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::with_capacity(clients.count);
    while got.len() < clients.count {
        let receipt = tokio::time::timeout_at(deadline, clients.receipts.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "broadcast delivered to {} of {} clients within {within:?}",
                    got.len(),
                    clients.count
                )
            })?
            .context("clients ended")?;
        got.push(receipt);
    }
    Ok(got)
}

/// Broadcast figures of the first-request clients.
struct Broadcasts {
    latency_ms: (f64, f64, f64),
    burst_events: usize,
    deliveries_per_second: f64,
    lost: usize,
    duplicated: usize,
}

/// Single broadcasts for latency, then a burst for throughput, to every client; `jpegs` are
/// distinct small frames (one per event).
async fn broadcasts(
    origin: &OriginProcess,
    clients: &mut Clients,
    camera: i64,
    token: &str,
    jpegs: Vec<Vec<u8>>,
) -> Result<Broadcasts> {
    let http = reqwest::Client::new();
    let mut frames = jpegs.into_iter();
    // Single broadcasts, for latency: one at a time, all receipts collected.
    let mut latencies = Vec::new();
    let mut received: Vec<Vec<u64>> = vec![Vec::new(); clients.count];
    for _ in 0..SINGLE_BROADCASTS {
        let frame = frames.next().context("not enough frames")?;
        let sent = Instant::now();
        capture(&http, origin, camera, token, frame).await?;
        for receipt in receive_one_each(clients, Duration::from_secs(30)).await? {
            latencies.push(receipt.at.duration_since(sent).as_secs_f64() * 1000.0);
            received[receipt.client].push(receipt.id);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A burst, for throughput.
    let burst: Vec<Vec<u8>> = frames.collect();
    let burst_events = burst.len();
    let started = Instant::now();
    for frame in burst {
        capture(&http, origin, camera, token, frame).await?;
    }
    let total = burst_events * clients.count;
    let mut last = started;
    for delivered in 0..total {
        let receipt = tokio::time::timeout(Duration::from_secs(60), clients.receipts.recv())
            .await
            .with_context(|| {
                format!("burst: {delivered} of {total} deliveries, then none for 60 s")
            })?
            .context("clients ended")?;
        received[receipt.client].push(receipt.id);
        last = receipt.at;
    }
    let deliveries_per_second = total as f64 / last.duration_since(started).as_secs_f64();
    // Every client must have the same ids, once each, in increasing order.
    let reference = received
        .iter()
        .max_by_key(|r| r.len())
        .cloned()
        .unwrap_or_default();
    let (mut lost, mut duplicated) = (0, 0);
    for ids in &received {
        let mut sorted = ids.clone();
        sorted.dedup();
        duplicated += ids.len() - sorted.len();
        lost += reference.len().saturating_sub(sorted.len());
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            duplicated += 1;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok(Broadcasts {
        latency_ms: (pct(0.50), pct(0.99), *latencies.last().unwrap_or(&0.0)),
        burst_events,
        deliveries_per_second,
        lost,
        duplicated,
    })
}

/// Both ways of opening a stream, each on a fresh release origin: first-request clients for
/// memory and every broadcast figure, then kept-alive clients for memory (and one broadcast,
/// which each of them must receive).
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<SseResults> {
    let mut frames = (0..(SINGLE_BROADCASTS + BURST + 1) as u32)
        .map(|seed| frames::jpeg(64, 48, 1000 + seed, 20, 80))
        .collect::<Result<Vec<_>>>()?;
    let check_frame = frames.pop().context("no frame")?;

    step(&format!(
        "sse: {CLIENTS} clients, each stream its connection's first request; \
         {SINGLE_BROADCASTS} single broadcasts, then a burst of {BURST}"
    ));
    let first = origin(origin_bin, &work.join("sse-data"))?.start().await?;
    let (camera, token) = create_camera(&first.base()).await?;
    let (first_request, mut clients) = idle_clients(&first, Opening::FirstRequest).await?;
    let broadcasts = broadcasts(&first, &mut clients, camera, &token, frames).await?;
    drop(clients);
    drop(first);

    step(&format!(
        "sse: {CLIENTS} clients on a fresh origin, each stream after GET /healthz on its \
         kept-alive connection; one broadcast"
    ));
    let kept = origin(origin_bin, &work.join("sse-kept-alive-data"))?
        .start()
        .await?;
    let (camera, token) = create_camera(&kept.base()).await?;
    let (kept_alive, mut clients) = idle_clients(&kept, Opening::KeptAlive).await?;
    capture(&reqwest::Client::new(), &kept, camera, &token, check_frame).await?;
    receive_one_each(&mut clients, Duration::from_secs(30))
        .await
        .context("kept-alive streams")?;
    drop(clients);
    drop(kept);

    Ok(SseResults {
        clients: CLIENTS,
        first_request,
        kept_alive,
        latency_ms: broadcasts.latency_ms,
        burst_events: broadcasts.burst_events,
        deliveries_per_second: broadcasts.deliveries_per_second,
        lost: broadcasts.lost,
        duplicated: broadcasts.duplicated,
    })
}

/// The section's body.
pub fn report(s: &SseResults, run: &Run) -> String {
    let first = s.first_request.per_client(s.clients);
    let kept = s.kept_alive.per_client(s.clients);
    format!(
        "{today}, {host}.\n\n\
         One release origin (SQLite), {clients} SSE clients over loopback (raw TCP, one client process on the same \
         2 cores), each subscribed to `image_captured`. Memory per connection is the origin's RSS with every \
         client connected and idle minus its RSS before, over the clients, measured twice, each time on a fresh \
         origin: with each client's stream as its connection's first request, and with each client first \
         sending `GET /healthz` and reading its response, then `GET /api/events` on the same kept-alive \
         connection (as browsers and the edge reuse connections); clients connect {batch} at a time, \
         {pause} ms apart. The origin holds both streams without hyper's per-connection buffers \
         (`origin/src/serve.rs`; 12.6 KiB per connection and p99 378 ms through hyper in the run before that \
         path), but a kept-alive client's first request is served by hyper, buffers included, before its \
         stream is handed out, so that figure also depends on how many clients arrive at once. Latency runs from sending the \
         capture request to each first-request client's receipt of the event (it includes the capture's own \
         processing), over {singles} single broadcasts; the burst is {burst} captures back to back; each \
         kept-alive client must also receive one broadcast. Reference: Mercure's published figure of 40k \
         connections on one small VM at \"a few KB\" per client.\n\n\
         | figure | value | target |\n|---|---:|---|\n\
         | RSS before / connected, stream as the connection's first request | {before1} KiB / {after1} KiB | |\n\
         | memory per connection, stream as the connection's first request | **{first:.1} KiB** | <= 8 KiB: {vfirst} |\n\
         | RSS before / connected, stream after `GET /healthz` on a kept-alive connection | {before2} KiB / {after2} KiB | |\n\
         | memory per connection, stream after `GET /healthz` on a kept-alive connection | **{kept:.1} KiB** | <= 8 KiB: {vkept} |\n\
         | broadcast latency p50 / p99 / max | {p50:.1} / **{p99:.1}** / {max:.1} ms | p99 < 250 ms: {vlat} |\n\
         | deliveries per second (burst of {burst} events) | {rate:.0} | |\n\
         | lost / duplicated events | {lost} / {dup} | 0 / 0: {vloss} |\n",
        today = run.date,
        host = run.host,
        clients = s.clients,
        singles = SINGLE_BROADCASTS,
        batch = CONNECT_BATCH,
        pause = CONNECT_PAUSE.as_millis(),
        before1 = s.first_request.rss_before_kib,
        after1 = s.first_request.rss_connected_kib,
        vfirst = verdict(first <= 8.0),
        before2 = s.kept_alive.rss_before_kib,
        after2 = s.kept_alive.rss_connected_kib,
        vkept = verdict(kept <= 8.0),
        p50 = s.latency_ms.0,
        p99 = s.latency_ms.1,
        max = s.latency_ms.2,
        vlat = verdict(s.latency_ms.1 < 250.0),
        burst = s.burst_events,
        rate = s.deliveries_per_second,
        lost = s.lost,
        dup = s.duplicated,
        vloss = verdict(s.lost == 0 && s.duplicated == 0),
    )
}
