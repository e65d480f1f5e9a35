//! The SSE fan-out benchmark of issue 4: one origin process, N concurrent SSE clients over
//! loopback, broadcasts of capture events to all of them. Reports memory per connection (RSS
//! delta / clients), delivery latency from the capture request to each receipt (p50/p99),
//! deliveries per second in a burst, and lost or duplicated events (must be zero).
//!
//! Clients are raw TCP connections on one runtime, each reading with a small buffer and
//! looking for `event: image_captured` frames: a real client's work, without a heavy HTTP
//! client per connection skewing the client side.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Barrier};

use super::report::{verdict, Run};
use super::{create_camera, frames, origin};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "SSE fan-out";

/// SSE clients connected at once.
const CLIENTS: usize = 10_000;

/// Results of one run.
#[derive(Debug, Clone)]
pub struct SseResults {
    /// Clients connected.
    pub clients: usize,
    /// Origin RSS before the clients connected, KiB.
    pub rss_before_kib: u64,
    /// Origin RSS with every client connected and idle, KiB.
    pub rss_connected_kib: u64,
    /// Latency percentiles of single broadcasts, ms (p50, p99, max).
    pub latency_ms: (f64, f64, f64),
    /// Deliveries per second during a burst.
    pub burst_events: usize,
    /// Deliveries per second during the burst.
    pub deliveries_per_second: f64,
    /// Events missed by some client.
    pub lost: usize,
    /// Events received twice by some client.
    pub duplicated: usize,
}

/// Reads VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// One received event: the client, the event id, and when.
struct Receipt {
    client: usize,
    id: u64,
    at: Instant,
}

async fn client(
    index: usize,
    addr: SocketAddr,
    ready: Arc<Barrier>,
    receipts: mpsc::UnboundedSender<Receipt>,
) -> Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /api/events?types=image_captured HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        .await?;
    let mut buf = vec![0u8; 2048];
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
            let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if !pending.starts_with(b"HTTP/1.1 200") {
                bail!(
                    "client {index}: {}",
                    String::from_utf8_lossy(&pending[..end])
                );
            }
            pending.drain(..end + 4);
            headers_done = true;
        }
        if !signalled && pending.windows(7).any(|w| w == b"retry: ") {
            signalled = true;
            ready.wait().await;
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

/// Runs the benchmark against an origin at `addr` (process `pid`), posting captures with the
/// camera `camera_id` and its `token`; `jpegs` are distinct small frames (one per event).
async fn run(
    addr: SocketAddr,
    pid: u32,
    clients: usize,
    camera_id: i64,
    token: &str,
    jpegs: Vec<Vec<u8>>,
) -> Result<SseResults> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = rss_kib(pid)?;
    let ready = Arc::new(Barrier::new(clients + 1));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(clients);
    for index in 0..clients {
        let ready = ready.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client(index, addr, ready.clone(), tx).await {
                eprintln!("    client {index}: {e:#}");
            }
        }));
        if index % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(120), ready.wait())
        .await
        .context("not every SSE client connected within 120 s")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected_kib = rss_kib(pid)?;

    let mut frames = jpegs.into_iter();
    let post = |frame: Vec<u8>| {
        http.post(format!("{base}/api/cameras/{camera_id}/captures"))
            .bearer_auth(token)
            .header("content-type", "image/jpeg")
            .body(frame)
            .send()
    };
    // Single broadcasts, for latency: one at a time, all receipts collected.
    let mut latencies = Vec::new();
    let mut expected_ids = Vec::new();
    let mut received: Vec<Vec<u64>> = vec![Vec::new(); clients];
    for _ in 0..5 {
        let frame = frames.next().context("not enough frames")?;
        let sent = Instant::now();
        let response = post(frame).await?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!("capture answered {}", response.status());
        }
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut id = 0;
        while got < clients {
            let receipt = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .context("broadcast not delivered to every client within 30 s")?
                .context("clients ended")?;
            latencies.push(receipt.at.duration_since(sent).as_secs_f64() * 1000.0);
            received[receipt.client].push(receipt.id);
            id = receipt.id;
            got += 1;
        }
        expected_ids.push(id);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A burst, for throughput.
    let burst: Vec<Vec<u8>> = frames.collect();
    let burst_events = burst.len();
    let started = Instant::now();
    for frame in burst {
        let response = post(frame).await?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!("capture answered {}", response.status());
        }
    }
    let total = burst_events * clients;
    let mut last = started;
    for _ in 0..total {
        let receipt = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .context("burst not delivered within 60 s")?
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
    for task in tasks {
        task.abort();
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok(SseResults {
        clients,
        rss_before_kib,
        rss_connected_kib,
        latency_ms: (pct(0.50), pct(0.99), *latencies.last().unwrap_or(&0.0)),
        burst_events,
        deliveries_per_second,
        lost,
        duplicated,
    })
}

/// Starts a release origin and runs [`CLIENTS`] clients against it.
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<SseResults> {
    let origin = origin(origin_bin, &work.join("sse-data"))?.start().await?;
    let (camera, token) = create_camera(&origin.base()).await?;
    let frames = (0..25u32)
        .map(|seed| frames::jpeg(64, 48, 1000 + seed, 20, 80))
        .collect::<Result<Vec<_>>>()?;
    step(&format!(
        "sse: {CLIENTS} clients, 5 single broadcasts, then a burst of 20"
    ));
    let results = run(origin.addr, origin.id(), CLIENTS, camera, &token, frames).await?;
    drop(origin);
    Ok(results)
}

/// The section's body.
pub fn report(s: &SseResults, run: &Run) -> String {
    let per_connection =
        (s.rss_connected_kib.saturating_sub(s.rss_before_kib)) as f64 / s.clients as f64;
    format!(
        "{today}, {host}.\n\n\
         One release origin (SQLite), {clients} SSE clients over loopback (raw TCP, one client process on the same \
         2 cores), each subscribed to `image_captured`. Memory per connection is the origin's RSS with every \
         client connected and idle minus its RSS before, over the clients. Latency runs from sending the \
         capture request to each client's receipt of the event (it includes the capture's own processing), \
         over 5 single broadcasts; the burst is 20 captures back to back. Reference: Mercure's published \
         figure of 40k connections on one small VM at \"a few KB\" per client. Each client's stream is its \
         connection's first request, which the origin serves without hyper's per-connection buffers \
         (`origin/src/serve.rs`; 12.6 KiB per connection and p99 378 ms through hyper in the run before).\n\n\
         | figure | value | target |\n|---|---:|---|\n\
         | RSS before / connected | {before} KiB / {after} KiB | |\n\
         | memory per connection | **{per:.1} KiB** | <= 8 KiB: {vmem} |\n\
         | broadcast latency p50 / p99 / max | {p50:.1} / **{p99:.1}** / {max:.1} ms | p99 < 250 ms: {vlat} |\n\
         | deliveries per second (burst of {burst} events) | {rate:.0} | |\n\
         | lost / duplicated events | {lost} / {dup} | 0 / 0: {vloss} |\n",
        today = run.date,
        host = run.host,
        clients = s.clients,
        before = s.rss_before_kib,
        after = s.rss_connected_kib,
        per = per_connection,
        vmem = verdict(per_connection <= 8.0),
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
