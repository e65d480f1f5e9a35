//! Capture throughput with the media in an S3-compatible object store (s3s-fs on loopback,
//! the server the tests use) against the same captures on the local disk, in the same run:
//! what `--media-url s3://...` costs a camera fleet's uploads.

use std::path::Path;

use anyhow::Result;
use timelapser_support::s3::S3Server;

use super::captures::{full_hd_frames, upload, Throughput, CONCURRENCY};
use super::origin;
use super::report::Run;
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Capture throughput with media in object storage";

/// Captures uploaded to each origin.
const COUNT: usize = 200;

/// Both origins' figures.
pub struct ObjectResults {
    average_bytes: usize,
    disk: Throughput,
    objects: Throughput,
}

/// Uploads the same [`COUNT`] distinct frames to an origin on the local disk, then to one
/// whose media is in s3s-fs.
pub async fn measure(root: &Path, origin_bin: &Path, work: &Path) -> Result<ObjectResults> {
    let frames = full_hd_frames("objects", COUNT).await?;
    let average_bytes = frames.iter().map(Vec::len).sum::<usize>() / COUNT;
    step("objects: the reference, media on the local disk");
    let disk = upload(
        origin(origin_bin, &work.join("objects-disk"))?.args([
            "--min-free-bytes",
            "0",
            "--min-free-percent",
            "0",
        ]),
        frames.clone(),
    )
    .await?;
    step("objects: media in s3s-fs on loopback");
    let storage = work.join("objects-s3");
    let _ = std::fs::remove_dir_all(&storage);
    let s3 = S3Server::start(root, &storage, &["bench"]).await?;
    let mut command =
        origin(origin_bin, &work.join("objects-data"))?.args(["--media-url", "s3://bench/media"]);
    for (name, value) in s3.env() {
        command = command.env(name, value);
    }
    let objects = upload(command, frames).await?;
    drop(s3);
    Ok(ObjectResults {
        average_bytes,
        disk,
        objects,
    })
}

/// The section's body.
pub fn report(r: &ObjectResults, run: &Run) -> String {
    format!(
        "{today}, {host}.\n\n{COUNT} distinct 1920x1080 JPEGs (average {kb} KB) uploaded to the \
         release origin on SQLite, {CONCURRENCY} in flight, first with its media on the local \
         disk (the reference: fsync of every file), then with `--media-url s3://bench/media` \
         in s3s-fs {version} on loopback (each capture: a HEAD and a signed PUT for the \
         original and for the thumbnail, and a HEAD of each under the writer lock before the \
         row commits). Origin, S3 server and client share both cores.\n\n\
         | media | captures/s | p50 latency | p99 latency | vs local disk |\n|---|---:|---:|---:|---:|\n\
         | local disk (reference) | {d:.0} | {dp50:.1} ms | {dp99:.1} ms | 1.00 |\n\
         | object store (s3s-fs) | **{o:.0}** | {op50:.1} ms | {op99:.1} ms | **{ratio:.2}** |\n",
        today = run.date,
        host = run.host,
        kb = r.average_bytes / 1024,
        version = timelapser_support::s3::VERSION,
        d = r.disk.per_second,
        dp50 = r.disk.p50_ms,
        dp99 = r.disk.p99_ms,
        o = r.objects.per_second,
        op50 = r.objects.p50_ms,
        op99 = r.objects.p99_ms,
        ratio = r.objects.per_second / r.disk.per_second,
    )
}
