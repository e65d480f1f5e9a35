//! Capture throughput: distinct 1920x1080 JPEGs uploaded to the release origin, 8 in flight,
//! thumbnails included.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use timelapser_support::OriginCommand;

use super::report::{verdict, Run};
use super::{create_camera, frames, origin, percentile};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Capture throughput";

/// Captures uploaded.
const COUNT: usize = 300;

/// Uploads in flight at once.
pub const CONCURRENCY: usize = 8;

/// Captures per second and their latencies.
pub struct CaptureResults {
    count: usize,
    average_bytes: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Uploads [`COUNT`] distinct frames with [`CONCURRENCY`] in flight.
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<CaptureResults> {
    let frames = full_hd_frames("captures", COUNT).await?;
    let average_bytes = frames.iter().map(Vec::len).sum::<usize>() / COUNT;
    let origin = origin(origin_bin, &work.join("capture-data"))?;
    let t = upload(origin, frames).await?;
    Ok(CaptureResults {
        count: COUNT,
        average_bytes,
        per_second: t.per_second,
        p50_ms: t.p50_ms,
        p99_ms: t.p99_ms,
    })
}

/// `count` distinct 1920x1080 JPEGs, as cameras upload them.
pub async fn full_hd_frames(part: &str, count: usize) -> Result<Vec<Vec<u8>>> {
    step(&format!(
        "{part}: generating {count} distinct 1920x1080 JPEGs"
    ));
    tokio::task::spawn_blocking(move || {
        (0..count as u32)
            .map(|seed| frames::jpeg(1920, 1080, seed, 12, 85))
            .collect::<Result<Vec<_>>>()
    })
    .await?
}

/// Captures per second and their latencies, for one origin.
pub struct Throughput {
    /// Captures per second.
    pub per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

/// Starts `origin`, creates a camera and uploads `frames` with [`CONCURRENCY`] in flight;
/// every one must be a 201.
pub async fn upload(origin: OriginCommand, frames: Vec<Vec<u8>>) -> Result<Throughput> {
    let count = frames.len();
    let origin = origin.start().await?;
    let base = origin.base();
    let (camera, token) = create_camera(&base).await?;
    step(&format!(
        "captures: uploading {count} with {CONCURRENCY} in flight"
    ));
    let client = reqwest::Client::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for jpeg in frames {
        let permit = limit.clone().acquire_owned().await?;
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            format!("{base}/api/cameras/{camera}/captures"),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "image/jpeg")
                .body(jpeg)
                .send()
                .await;
            drop(permit);
            let status = response.map(|r| r.status().as_u16()).unwrap_or(0);
            (status, sent.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        let (status, ms) = task.await?;
        if status != 201 {
            bail!("a capture answered {status}");
        }
        latencies.push(ms);
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(origin);
    latencies.sort_by(f64::total_cmp);
    Ok(Throughput {
        per_second: count as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// The section's body.
pub fn report(c: &CaptureResults, run: &Run) -> String {
    format!(
        "{today}, {host}.\n\n{count} distinct 1920x1080 JPEGs (average {kb} KB) uploaded to the release origin \
         on SQLite (WAL, fsync of every file), 8 in flight, not pinned (origin and client share both cores). \
         Each capture is authenticated, hashed, decoded at reduced DCT scale, thumbnailed, written \
         atomically twice (original and thumbnail) and committed with its event.\n\n\
         | captures/s | p50 latency | p99 latency | target |\n|---:|---:|---:|---|\n\
         | **{rate:.0}** | {p50:.1} ms | {p99:.1} ms | >= 100/s: {verdict} |\n",
        today = run.date,
        host = run.host,
        count = c.count,
        kb = c.average_bytes / 1024,
        rate = c.per_second,
        p50 = c.p50_ms,
        p99 = c.p99_ms,
        verdict = verdict(c.per_second >= 100.0),
    )
}
