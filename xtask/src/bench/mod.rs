//! `cargo xtask bench`: every benchmark of the project, in one run, written to BENCHMARKS.md
//! as ratios against the named reference measured in the same run. One module per benchmark,
//! each measuring and writing its own section's text:
//!
//! - [`criterion`]: core's criterion micro-benchmarks (ns/op).
//! - [`media`]: the origin against Debian's nginx serving the same 45 KB thumbnail
//!   (`etag on`), each pinned to core 1 with one worker, wrk pinned to core 0: req/s for 200
//!   and 304.
//! - [`captures`]: 1920x1080 JPEG uploads per second, thumbnails included.
//! - [`objects`]: the same uploads with the media in an S3-protocol server, against the local
//!   disk.
//! - [`concurrent`]: 200 captures at once on SQLite and on PostgreSQL.
//! - [`prune`]: 100,000 images pruned by retention while captures run: the prune rate, and
//!   capture latency during the prune against the same captures without it.
//! - [`sse`]: 10,000 SSE clients of one origin: memory per connection, broadcast latency,
//!   deliveries per second, lost and duplicated events.
//! - [`offload`]: what a gallery workload through the edge asks of the origin.
//! - [`fanout`]: 5,000 clients of the event stream through the edge's Durable Objects against
//!   the same directly on the origin: origin connections and RSS.
//! - [`render`]: a timelapse rendered through the origin against ffmpeg by hand.
//! - [`agent`]: `timelapser-agent` recording 16 RTSP cameras against reconnecting per frame.
//!
//! [`report`] writes the sections; [`frames`] makes the synthetic JPEGs they upload.

mod agent;
mod captures;
mod concurrent;
mod criterion;
mod fanout;
mod frames;
mod media;
mod objects;
mod offload;
mod prune;
mod render;
mod report;
mod sse;

use std::path::{Path, PathBuf};

use anyhow::Result;
use timelapser_support::OriginCommand;

use crate::{cargo, run, step, tools};

/// The admin token of benchmark origins.
const ADMIN: &str = "bench-admin-token-0123456789";

/// Which parts to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// criterion micro-benchmarks of core.
    Core,
    /// origin vs nginx on a 45 KB thumbnail.
    Media,
    /// capture uploads per second.
    Captures,
    /// capture uploads with the media in object storage, against the local disk.
    Objects,
    /// 200 captures at once, on SQLite and on PostgreSQL.
    Concurrent,
    /// 100,000 images pruned by retention while captures run.
    Prune,
    /// 10,000 SSE clients.
    Sse,
    /// Origin offload of a gallery workload through the edge.
    Offload,
    /// 5,000 event-stream clients through the edge vs directly: origin connections and RSS.
    Fanout,
    /// Video rendering, against the same ffmpeg command typed by hand.
    Render,
    /// The capture agent on 16 RTSP cameras, against a new connection per frame.
    Agent,
}

/// Runs the parts asked for (all by default) and writes BENCHMARKS.md.
pub fn bench(root: &Path, parts: &[Part]) -> Result<()> {
    let all = [
        Part::Core,
        Part::Media,
        Part::Captures,
        Part::Objects,
        Part::Concurrent,
        Part::Prune,
        Part::Sse,
        Part::Offload,
        Part::Fanout,
        Part::Render,
        Part::Agent,
    ];
    let parts: Vec<Part> = if parts.is_empty() {
        all.to_vec()
    } else {
        parts.to_vec()
    };
    let run_info = report::Run::now();
    let work: PathBuf = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    let write = |heading: &str, body: String| {
        eprintln!("{body}");
        report::write_section(root, heading, &body)
    };

    if parts.contains(&Part::Core) {
        let c = criterion::measure(root)?;
        report::write_section(root, criterion::HEADING, &criterion::report(&c, &run_info))?;
    }
    if parts.iter().all(|p| *p == Part::Core) {
        return Ok(());
    }
    tools::ensure_build_libraries()?;
    step("building the origin (release)");
    run(cargo().args(["build", "--release", "-p", "timelapser-origin"]))?;
    let origin_bin = root.join("target/release/timelapser-origin");
    let runtime = tokio::runtime::Runtime::new()?;

    if parts.contains(&Part::Media) {
        let m = runtime.block_on(media::measure(&origin_bin, &work))?;
        write(media::HEADING, media::report(&m, &run_info))?;
    }
    if parts.contains(&Part::Captures) {
        let c = runtime.block_on(captures::measure(&origin_bin, &work))?;
        write(captures::HEADING, captures::report(&c, &run_info))?;
    }
    if parts.contains(&Part::Objects) {
        tools::ensure_s3_server(root)?;
        let o = runtime.block_on(objects::measure(root, &origin_bin, &work))?;
        write(objects::HEADING, objects::report(&o, &run_info))?;
    }
    if parts.contains(&Part::Concurrent) {
        tools::require_postgres()?;
        let c = runtime.block_on(concurrent::measure(&origin_bin, &work))?;
        write(concurrent::HEADING, concurrent::report(&c, &run_info))?;
    }
    if parts.contains(&Part::Prune) {
        tools::ensure_apt_packages(&[("sqlite3", "sqlite3")])?;
        let p = runtime.block_on(prune::measure(&origin_bin, &work))?;
        write(prune::HEADING, prune::report(&p, &run_info))?;
    }
    if parts.contains(&Part::Sse) {
        let s = runtime.block_on(sse::measure(&origin_bin, &work))?;
        write(sse::HEADING, sse::report(&s, &run_info))?;
    }
    if parts.contains(&Part::Offload) {
        crate::edge::build_edge(root)?;
        let o = runtime.block_on(offload::measure(root, &origin_bin, &work))?;
        write(offload::HEADING, offload::report(&o, &run_info))?;
    }
    if parts.contains(&Part::Fanout) {
        crate::edge::build_edge(root)?;
        crate::edge::ensure_wrangler(root)?;
        let f = runtime.block_on(fanout::measure(root, &origin_bin, &work))?;
        write(fanout::HEADING, fanout::report(&f, &run_info))?;
    }
    if parts.contains(&Part::Render) {
        tools::ensure_apt_packages(&[("ffmpeg", "ffmpeg")])?;
        let r = runtime.block_on(render::measure(&origin_bin, &work))?;
        write(render::HEADING, render::report(&r, &run_info))?;
    }
    if parts.contains(&Part::Agent) {
        tools::ensure_apt_packages(&[("ffmpeg", "ffmpeg")])?;
        tools::ensure_rtsp_server()?;
        step("building the agent (release)");
        run(cargo().args(["build", "--release", "-p", "timelapser-agent"]))?;
        let agent_bin = root.join("target/release/timelapser-agent");
        let a = runtime.block_on(agent::measure(&origin_bin, &agent_bin, root, &work))?;
        write(agent::HEADING, agent::report(&a, &run_info))?;
    }
    Ok(())
}

/// A release origin on a fresh data directory (SQLite), with the benchmarks' admin token,
/// logging warnings only, on a free port and without an operations listener.
fn origin(binary: &Path, data_dir: &Path) -> Result<OriginCommand> {
    let _ = std::fs::remove_dir_all(data_dir);
    std::fs::create_dir_all(data_dir)?;
    Ok(OriginCommand::new(binary, data_dir)?
        .admin_token(ADMIN)
        .quiet())
}

/// Creates a camera on the origin at `base`; returns its id and token.
async fn create_camera(base: &str) -> Result<(i64, String)> {
    timelapser_support::api::create_camera(base, ADMIN, "bench").await
}

/// The `p` quantile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
