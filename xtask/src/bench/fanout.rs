//! The public's event streams fanned out at the edge (issue 18): [`CLIENTS`] clients of
//! `/api/events` through the edge (four `wrangler dev` instances, like four locations, each with
//! one Durable Object per filter holding one upstream stream), against the same clients
//! directly on the origin, the reference measured in the same run. Each side runs on a fresh release origin: the origin's event-stream
//! connections (`http_requests_total` of `/api/events`) and its RSS with every client connected
//! and idle, then one broadcast that every client must receive (latency from the capture
//! request to each receipt). Clients are [`super::sse`]'s raw TCP clients.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use timelapser_support::{free_port, wrangler, OriginProcess, ProcessGroup};

use super::report::{verdict, Run};
use super::sse::{self, Opening};
use super::{create_camera, frames, origin, percentile, ADMIN};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Event fan-out at the edge";

/// Clients connected at once, on each side.
const CLIENTS: usize = 5_000;

/// One side's figures.
#[derive(Debug, Clone)]
pub struct Side {
    /// Event streams the origin opened for the clients.
    pub origin_streams: u64,
    /// Origin RSS before the clients connected, KiB.
    pub rss_before_kib: u64,
    /// Origin RSS with every client connected and idle, KiB.
    pub rss_connected_kib: u64,
    /// wrangler dev's processes (node and workerd) with every client connected, KiB.
    pub edge_rss_kib: Option<u64>,
    /// Their open file descriptors then.
    pub edge_fds: Option<usize>,
    /// The first instance's processes in start order (node, then wrangler's proxy workerd,
    /// then the Worker's workerd), with their RSS, KiB.
    pub edge_processes: Vec<(String, u64)>,
    /// How long it took every client to have its stream open.
    pub connect: Duration,
    /// Broadcast latency p50 / p99 / max, ms.
    pub latency_ms: (f64, f64, f64),
}

/// Both sides.
#[derive(Debug, Clone)]
pub struct FanoutResults {
    /// Clients on each side.
    pub clients: usize,
    /// Straight to the origin: the reference.
    pub direct: Side,
    /// Through the edge.
    pub edge: Side,
}

/// The origin's count of `GET /api/events` answered 200.
async fn event_streams(origin: &OriginProcess) -> Result<u64> {
    timelapser_support::api::requests_answered(&origin.base(), ADMIN, "/api/events", "GET", 200)
        .await
}

/// `wrangler dev` instances the edge side's clients are spread over, like viewers at several
/// locations (each location's viewers share their own fan-out, so the origin holds one stream
/// per location). One would not hold 5,000: wrangler dev puts a proxy (a workerd of its own) in
/// front of the Worker's workerd, which for every event-stream response also POSTs
/// `sseResponseDetected` to wrangler's node process (wrangler's `ProxyWorker.ts`); it peaked at
/// 8.4 file descriptors per streaming client, and this machine's hard limit of 20,000 open files
/// cannot be raised without CAP_SYS_RESOURCE (2,500 clients per instance failed one run in two).
const EDGES: usize = 4;

/// The processes of a process group.
fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                // After the command's closing parenthesis: state, ppid, pgrp.
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.to_owned()))
                .and_then(|rest| rest.split_whitespace().nth(2)?.parse::<u32>().ok())
                == Some(group)
        })
        .collect()
}

/// The processes of a process group in start order, by name, with their RSS, KiB.
fn group_processes(group: u32) -> Vec<(String, u64)> {
    let mut members = group_members(group);
    members.sort_unstable();
    members
        .into_iter()
        .filter_map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((name.trim().to_owned(), sse::rss_kib(pid).ok()?))
        })
        .collect()
}

/// The RSS of every process of a process group, KiB, and their open file descriptors.
fn group_usage(group: u32) -> (u64, usize) {
    let members = group_members(group);
    let rss = members
        .iter()
        .filter_map(|pid| sse::rss_kib(*pid).ok())
        .sum();
    let fds = members
        .iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .map(|fds| fds.count())
        .sum();
    (rss, fds)
}

/// One side on a fresh origin: through the edge or not.
async fn side(root: &Path, origin_bin: &Path, work: &Path, through_edge: bool) -> Result<Side> {
    let name = if through_edge { "edge" } else { "direct" };
    let origin = origin(origin_bin, &work.join(format!("fanout-{name}-data")))?
        .start()
        .await?;
    let (camera, token) = create_camera(&origin.base()).await?;
    let mut edges: Vec<ProcessGroup> = Vec::new();
    let mut targets = Vec::new();
    if through_edge {
        for n in 0..EDGES {
            let state = work.join(format!("fanout-edge-{n}"));
            let _ = std::fs::remove_dir_all(&state);
            let port = free_port()?;
            let mut process = ProcessGroup::spawn(
                "wrangler dev",
                &mut wrangler::dev_prebuilt(
                    root,
                    &state,
                    port,
                    free_port()?,
                    &[("ORIGIN", &origin.base())],
                )?,
            )?;
            process
                .wait_until_ok(
                    &format!("http://127.0.0.1:{port}/healthz"),
                    Duration::from_secs(60),
                )
                .await?;
            edges.push(process);
            targets.push(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    } else {
        targets.push(origin.addr);
    }
    let before = event_streams(&origin).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = sse::rss_kib(origin.id())?;
    let started = Instant::now();
    let mut groups = Vec::new();
    for addr in &targets {
        let count = CLIENTS / targets.len();
        let request = sse::events_request(&addr.to_string());
        groups.push(
            sse::connect(*addr, count, Opening::FirstRequest, request)
                .await
                .with_context(|| format!("{name}: connecting {count} clients to {addr}"))?,
        );
    }
    let connect = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected_kib = sse::rss_kib(origin.id())?;
    let edge_usage = (!edges.is_empty()).then(|| {
        edges
            .iter()
            .map(|e| group_usage(e.id()))
            .fold((0, 0), |(rss, fds), (r, f)| (rss + r, fds + f))
    });
    let edge_processes = edges
        .first()
        .map(|e| group_processes(e.id()))
        .unwrap_or_default();
    let origin_streams = event_streams(&origin).await? - before;

    let frame = frames::jpeg(64, 48, 7000, 20, 80)?;
    let sent = Instant::now();
    sse::capture(&reqwest::Client::new(), &origin, camera, &token, frame).await?;
    let mut latencies = Vec::new();
    for (n, clients) in groups.iter_mut().enumerate() {
        let count = CLIENTS / targets.len();
        let receipts = sse::receive_one_each(clients, Duration::from_secs(60))
            .await
            .with_context(|| format!("{name}: the broadcast"))?;
        let mut reached: Vec<usize> = receipts.iter().map(|r| r.client).collect();
        reached.sort_unstable();
        reached.dedup();
        if reached.len() != count || receipts.iter().any(|r| r.id == 0) {
            bail!(
                "{name}: the broadcast reached {} of {count} clients of {}",
                reached.len(),
                targets[n]
            );
        }
        latencies.extend(
            receipts
                .iter()
                .map(|r| r.at.duration_since(sent).as_secs_f64() * 1000.0),
        );
    }
    latencies.sort_by(f64::total_cmp);
    drop(groups);
    drop(edges);
    drop(origin);
    Ok(Side {
        origin_streams,
        rss_before_kib,
        rss_connected_kib,
        edge_rss_kib: edge_usage.map(|u| u.0),
        edge_fds: edge_usage.map(|u| u.1),
        edge_processes,
        connect,
        latency_ms: (
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
        ),
    })
}

/// Both sides, the reference first.
pub async fn measure(root: &Path, origin_bin: &Path, work: &Path) -> Result<FanoutResults> {
    step(&format!(
        "fanout: {CLIENTS} clients of /api/events directly on the origin (the reference)"
    ));
    let direct = side(root, origin_bin, work, false).await?;
    step(&format!(
        "fanout: {CLIENTS} clients of /api/events through the edge (wrangler dev)"
    ));
    let edge = side(root, origin_bin, work, true).await?;
    Ok(FanoutResults {
        clients: CLIENTS,
        direct,
        edge,
    })
}

/// The section's body.
pub fn report(f: &FanoutResults, run: &Run) -> String {
    let delta = |s: &Side| s.rss_connected_kib.saturating_sub(s.rss_before_kib);
    let (direct, edge) = (&f.direct, &f.edge);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    format!(
        "{today}, {host}.\n\n\
         {clients} clients of `/api/events?types=image_captured` (raw TCP, as in the SSE fan-out benchmark, \
         connecting 100 at a time), each side on a fresh release origin (SQLite): straight to the origin (the \
         reference), and through the edge in `wrangler dev` (workerd on the same 2 cores), where one Durable \
         Object per filter holds one stream from the origin and writes each event to every viewer. Origin \
         streams are its `http_requests_total` for `/api/events` while the clients connected; RSS is the \
         origin's, idle with every client connected, minus before; then one capture, which every client must \
         receive (latency from the capture request to each receipt). Through the edge the clients are spread \
         over {edges} `wrangler dev` instances, like viewers at {edges} locations, each with its own fan-out: \
         wrangler dev's proxy workerd also POSTs a message to wrangler's node process for every event-stream \
         response and peaked at 8.4 file descriptors per streaming client, so one instance cannot hold 5,000 \
         under this machine's hard limit of 20,000 open files.\n\n\
         | figure | direct (reference) | through the edge | edge / direct |\n|---|---:|---:|---:|\n\
         | origin event-stream connections | {ds} | **{es}** | {rs:.4} |\n\
         | origin RSS growth with every client connected | {dd} KiB | **{ed} KiB** | {rd:.3} |\n\
         | origin RSS connected | {dr} KiB | {er} KiB | {rr:.3} |\n\
         | wrangler dev (node + workerd, all instances) RSS / open files, connected | | {wr} KiB / {wf} | |\n\
         | every client's stream open after | {dc:.1} s | {ec:.1} s | {rc:.2} |\n\
         | broadcast latency p50 / p99 / max | {dp50:.0} / {dp99:.0} / {dmax:.0} ms | {ep50:.0} / {ep99:.0} / {emax:.0} ms | {rp:.2} (p99) |\n\n\
         One instance's processes with its {per} clients connected: {processes} (wrangler's node and proxy \
         are dev machinery a deployment does not have; the last workerd runs the Worker and its Durable \
         Objects).\n\n\
         Target: through the edge the origin holds one event stream per location whatever the viewers: \
         {verdict}.\n",
        today = run.date,
        host = run.host,
        clients = f.clients,
        edges = EDGES,
        ds = direct.origin_streams,
        es = edge.origin_streams,
        rs = ratio(edge.origin_streams as f64, direct.origin_streams as f64),
        dd = delta(direct),
        ed = delta(edge),
        rd = ratio(delta(edge) as f64, delta(direct) as f64),
        dr = direct.rss_connected_kib,
        er = edge.rss_connected_kib,
        rr = ratio(edge.rss_connected_kib as f64, direct.rss_connected_kib as f64),
        wr = edge.edge_rss_kib.unwrap_or(0),
        wf = edge.edge_fds.unwrap_or(0),
        per = f.clients / EDGES,
        processes = edge
            .edge_processes
            .iter()
            .map(|(name, rss)| format!("{name} {} MiB", rss / 1024))
            .collect::<Vec<_>>()
            .join(", "),
        dc = direct.connect.as_secs_f64(),
        ec = edge.connect.as_secs_f64(),
        rc = ratio(edge.connect.as_secs_f64(), direct.connect.as_secs_f64()),
        dp50 = direct.latency_ms.0,
        dp99 = direct.latency_ms.1,
        dmax = direct.latency_ms.2,
        ep50 = edge.latency_ms.0,
        ep99 = edge.latency_ms.1,
        emax = edge.latency_ms.2,
        rp = ratio(edge.latency_ms.1, direct.latency_ms.1),
        verdict = verdict(edge.origin_streams <= EDGES as u64),
    )
}
