//! The capture agent: one `timelapser-agent` recording 16 RTSP cameras at one frame every 2 s
//! (one long-lived ffmpeg session per camera, every frame spooled and uploaded to a release
//! origin), against the same cameras recorded the upstream way (a new RTSP connection and
//! `ffmpeg -frames:v 1` per frame) as the reference, in the same run, from the same RTSP server;
//! and against that way tuned (stream probing cut short), the best a per-frame recorder does.
//!
//! CPU is read from `/proc`: for the agent, its own time plus its ffmpeg children's (live ones
//! sampled, reaped ones through the agent's `cutime`); for the references, this process's
//! reaped children's time (`cutime` + `cstime`: every per-frame ffmpeg is waited for). Memory
//! is the PSS of the whole process tree, sampled every 100 ms. A frame is lost when its instant
//! has no image at the origin (agent) or no complete JPEG within 15 s (references); a
//! reference's frame in hand after the interval is late (its picture is of a later moment).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use timelapser_support::ProcessGroup;
use tokio::io::AsyncReadExt;

use super::report::{self, Run};
use super::{origin, percentile, ADMIN};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Capture agent";

/// Cameras recorded at once.
const CAMERAS: usize = 16;

/// Seconds between frames.
const INTERVAL_S: u64 = 2;

/// The measured window of each side.
const WINDOW: Duration = Duration::from_secs(60);

/// The stream every camera serves: H.264, 10 frames a second.
const STREAM_SIZE: &str = "1280x720";

/// How long the agent may take to get every camera's first frame to the origin.
const FIRST_FRAMES_WITHIN: Duration = Duration::from_secs(60);

/// How long the agent may take to deliver the window's last frames after it ends.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);

/// What one side cost and delivered over the window.
pub struct Side {
    cpu_s: f64,
    pss_mean_kib: f64,
    pss_peak_kib: f64,
    server_cpu_s: f64,
    expected: usize,
    /// Frames in hand within the interval of their instant.
    in_time: usize,
    /// Frames in hand later than that.
    late: usize,
    duplicated: usize,
    /// Scheduled instant to JPEG in hand, seconds, sorted (the references only).
    latency_s: Vec<f64>,
}

impl Side {
    fn lost(&self) -> usize {
        self.expected.saturating_sub(self.in_time + self.late)
    }
}

/// How the references take a frame: a new RTSP connection and ffmpeg each time.
#[derive(Clone, Copy)]
enum PerFrame {
    /// `ffmpeg -rtsp_transport tcp -i URL -frames:v 1` (the upstream way).
    Upstream,
    /// The same with stream probing cut short (`-probesize 32 -analyzeduration 0`).
    Tuned,
}

impl PerFrame {
    fn probing(self) -> &'static [&'static str] {
        match self {
            PerFrame::Upstream => &[],
            PerFrame::Tuned => &["-probesize", "32", "-analyzeduration", "0"],
        }
    }
}

/// The agent and both references.
pub struct AgentResults {
    agent: Side,
    upstream: Side,
    tuned: Side,
    reconnects: f64,
    dropped: f64,
}

/// The longest a reference's ffmpeg may take before its frame counts as lost.
const PER_FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// Records the cameras with the agent, then the upstream way.
pub async fn measure(
    origin_bin: &Path,
    agent_bin: &Path,
    root: &Path,
    work: &Path,
) -> Result<AgentResults> {
    let tick = clock_ticks_per_second()?;
    let rtsp_port = timelapser_support::free_port()?;
    let rtsp = start_rtsp_server(root, rtsp_port).await?;
    let url = format!("rtsp://127.0.0.1:{rtsp_port}/cam");
    let data = work.join("agent-data");
    let origin = origin(origin_bin, &data)?.start().await?;
    let base = origin.base();
    let client = reqwest::Client::new();

    step(&format!("agent: {CAMERAS} RTSP cameras ({STREAM_SIZE}, 10 fps H.264), one frame every {INTERVAL_S} s"));
    let dir = work.join("agent-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut config = String::new();
    let mut cameras = Vec::new();
    for n in 0..CAMERAS {
        let (id, token) =
            timelapser_support::api::create_camera(&base, ADMIN, &format!("rtsp {n}")).await?;
        client
            .put(format!("{base}/api/cameras/{id}/schedule"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "interval_seconds": INTERVAL_S, "timezone": "UTC" }))
            .send()
            .await?
            .error_for_status()
            .context("setting the schedule")?;
        let token_file = dir.join(format!("camera-{id}.token"));
        std::fs::write(&token_file, &token)?;
        config.push_str(&format!(
            "[[camera]]\nname = \"rtsp {n}\"\norigin = {base:?}\ncamera_id = {id}\n\
             token_file = {token:?}\nsource = {url:?}\nspool_dir = {spool:?}\n\n",
            token = token_file.display().to_string(),
            spool = dir.join(format!("spool-{id}")).display().to_string(),
        ));
        cameras.push(id);
    }
    let config_file = dir.join("agent.toml");
    std::fs::write(&config_file, config)?;
    let metrics_port = timelapser_support::free_port()?;
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let agent = ProcessGroup::spawn(
        "timelapser-agent",
        Command::new(agent_bin)
            .args(["run", "--config"])
            .arg(&config_file)
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null()),
    )?;
    let deadline = Instant::now() + FIRST_FRAMES_WITHIN;
    for &camera in &cameras {
        while images(&client, &base, camera).await?.is_empty() {
            if Instant::now() > deadline {
                bail!("camera {camera} had no frame at the origin within {FIRST_FRAMES_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let counters_before = client.get(&metrics_url).send().await?.text().await?;
    let (start, end) = next_window().await;
    let agent_pid = agent.id();
    let cpu_before = tree_cpu_ticks(agent_pid)?;
    let server_before = process_ticks(rtsp.id())?;
    let pss = sample_pss(end, || {
        let mut pids = children(agent_pid);
        pids.push(agent_pid);
        pids
    })
    .await;
    let cpu_after = tree_cpu_ticks(agent_pid)?;
    let server_after = process_ticks(rtsp.id())?;
    let counters_after = client.get(&metrics_url).send().await?.text().await?;
    let sum = |text: &str, name: &str| -> f64 {
        cameras
            .iter()
            .map(|id| counter(text, name, &format!("camera_id=\"{id}\"")))
            .sum()
    };
    let reconnects = sum(&counters_after, "agent_source_reconnects_total")
        - sum(&counters_before, "agent_source_reconnects_total");
    let dropped = sum(&counters_after, "agent_frames_dropped_total")
        - sum(&counters_before, "agent_frames_dropped_total");

    // Every frame of the window at the origin, by capture time.
    let expected_per_camera = ((end - start) / INTERVAL_S) as usize;
    let deadline = Instant::now() + DRAIN_WITHIN;
    let (mut delivered, mut duplicated) = (0, 0);
    for &camera in &cameras {
        loop {
            let times = images(&client, &base, camera).await?;
            let in_window: Vec<u64> = times
                .iter()
                .copied()
                .filter(|t| (start..end).contains(t))
                .collect();
            let after = times.iter().any(|t| *t >= end);
            if after || Instant::now() > deadline {
                let distinct: BTreeSet<u64> = in_window.iter().copied().collect();
                delivered += distinct.len();
                duplicated += in_window.len() - distinct.len();
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    agent.stop()?;
    let agent_side = Side {
        cpu_s: (cpu_after - cpu_before) as f64 / tick,
        pss_mean_kib: pss.0,
        pss_peak_kib: pss.1,
        server_cpu_s: (server_after - server_before) as f64 / tick,
        expected: expected_per_camera * CAMERAS,
        in_time: delivered,
        late: 0,
        duplicated,
        latency_s: Vec::new(),
    };
    drop(origin);
    drop(rtsp);
    let upstream = per_frame(PerFrame::Upstream, root, tick).await?;
    let tuned = per_frame(PerFrame::Tuned, root, tick).await?;
    Ok(AgentResults {
        agent: agent_side,
        upstream,
        tuned,
        reconnects,
        dropped,
    })
}

/// The cameras recorded with a new connection per frame, over a window, from an RTSP server of
/// their own (GStreamer's shared media, once many sessions have come and gone at once, stops
/// answering with a stream: "Invalid data found" for every later client).
async fn per_frame(how: PerFrame, root: &Path, tick: f64) -> Result<Side> {
    step(&format!(
        "agent: the reference, a new RTSP connection and `ffmpeg {}-frames:v 1` per frame",
        how.probing()
            .iter()
            .map(|a| format!("{a} "))
            .collect::<String>()
    ));
    let port = timelapser_support::free_port()?;
    let rtsp = start_rtsp_server(root, port).await?;
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let server = rtsp.id();
    let holder = rtsp.holder_id();
    let (start, end) = next_window().await;
    let own = std::process::id();
    let reaped_before = reaped_children_ticks()?;
    let server_before = process_ticks(server)?;
    let recorders: Vec<_> = (0..CAMERAS)
        .map(|_| tokio::spawn(record_per_frame(how, url.clone(), start, end)))
        .collect();
    let pss = sample_pss(end, || {
        children(own)
            .into_iter()
            .filter(|p| Some(*p) != holder && command_name(*p).as_deref() == Some("ffmpeg"))
            .collect()
    })
    .await;
    let mut latency_s = Vec::new();
    for recorder in recorders {
        latency_s.extend(recorder.await??);
    }
    let reaped_after = reaped_children_ticks()?;
    let server_after = process_ticks(server)?;
    drop(rtsp);
    latency_s.sort_by(f64::total_cmp);
    let interval = INTERVAL_S as f64;
    let in_time = latency_s.iter().filter(|l| **l <= interval).count();
    Ok(Side {
        cpu_s: (reaped_after - reaped_before) as f64 / tick,
        pss_mean_kib: pss.0,
        pss_peak_kib: pss.1,
        server_cpu_s: (server_after - server_before) as f64 / tick,
        expected: ((end - start) / INTERVAL_S) as usize * CAMERAS,
        in_time,
        late: latency_s.len() - in_time,
        duplicated: 0,
        latency_s,
    })
}
/// One camera recorded a frame at a time: at each instant of the window a new ffmpeg connects,
/// takes one frame and exits, while the previous ones may still be running (as a scheduler
/// firing at each instant does). Returns the latency of each frame taken (instant to JPEG in
/// hand); a frame not taken within [`PER_FRAME_TIMEOUT`] is lost.
async fn record_per_frame(how: PerFrame, url: String, start: u64, end: u64) -> Result<Vec<f64>> {
    let mut captures = Vec::new();
    let mut at = start;
    while at < end {
        let instant = UNIX_EPOCH + Duration::from_secs(at);
        if let Ok(wait) = instant.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        captures.push(tokio::spawn(take_one_frame(how, url.clone())));
        at += INTERVAL_S;
    }
    let mut taken = Vec::new();
    for capture in captures {
        if let Some(latency) = capture.await?? {
            taken.push(latency);
        }
    }
    Ok(taken)
}

/// One frame through a new connection; its latency, or `None` when none came in time.
async fn take_one_frame(how: PerFrame, url: String) -> Result<Option<f64>> {
    let began = Instant::now();
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(how.probing())
        .args(["-rtsp_transport", "tcp", "-i"])
        .arg(&url)
        // The JPEG settings of the agent's own ffmpeg (agent/src/source/stream.rs), so that
        // both sides encode the same frames the same way.
        .args(["-an", "-sn", "-dn", "-frames:v", "1", "-c:v", "mjpeg"])
        .args([
            "-pix_fmt",
            "yuvj420p",
            "-q:v",
            "3",
            "-f",
            "image2pipe",
            "pipe:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running ffmpeg")?;
    let mut stdout = child.stdout.take().context("ffmpeg's stdout")?;
    let mut jpeg = Vec::new();
    let read = tokio::time::timeout(PER_FRAME_TIMEOUT, async {
        stdout.read_to_end(&mut jpeg).await?;
        child.wait().await
    })
    .await;
    Ok(match read {
        Ok(Ok(status))
            if status.success()
                && jpeg.starts_with(&[0xFF, 0xD8])
                && jpeg.ends_with(&[0xFF, 0xD9]) =>
        {
            Some(began.elapsed().as_secs_f64())
        }
        Ok(_) => None,
        Err(_) => {
            // Killed and reaped, so that its time is counted.
            let _ = child.kill().await;
            None
        }
    })
}

/// A window of [`WINDOW`] starting at a grid instant at least 2 s away; waits until it starts.
async fn next_window() -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let start = (now + 2).div_ceil(INTERVAL_S) * INTERVAL_S;
    let end = start + WINDOW.as_secs();
    if let Ok(wait) = (UNIX_EPOCH + Duration::from_secs(start)).duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    (start, end)
}

/// Samples the summed PSS (proportional set size: shared pages split between the processes
/// sharing them) of `pids()` every 100 ms until the Unix second `end`: mean and peak, KiB.
async fn sample_pss(end: u64, pids: impl Fn() -> Vec<u32>) -> (f64, f64) {
    let end = UNIX_EPOCH + Duration::from_secs(end);
    let mut samples = Vec::new();
    while SystemTime::now() < end {
        samples.push(pids().into_iter().filter_map(pss_kib).sum::<u64>() as f64);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = samples.iter().copied().fold(0.0, f64::max);
    (
        samples.iter().sum::<f64>() / samples.len().max(1) as f64,
        peak,
    )
}

/// The capture times (Unix seconds) of a camera's images at the origin.
async fn images(client: &reqwest::Client, base: &str, camera: i64) -> Result<Vec<u64>> {
    let mut times = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/cameras/{camera}/images?limit=100");
        if let Some(b) = &before {
            url.push_str(&format!("&before={b}"));
        }
        let page: serde_json::Value = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for image in page["items"].as_array().context("items")? {
            let at = image["captured_at"].as_str().context("captured_at")?;
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .with_context(|| format!("captured_at {at}"))?;
            times.push(at.timestamp() as u64);
        }
        match &page["next_before"] {
            serde_json::Value::Null => return Ok(times),
            next => before = Some(next.to_string().trim_matches('"').to_owned()),
        }
    }
}

/// GStreamer's RTSP server and the session that holds its shared pipeline open.
struct StreamServer {
    process: ProcessGroup,
    holder: tokio::process::Child,
}

impl StreamServer {
    fn id(&self) -> u32 {
        self.process.id()
    }

    /// The holding session's ffmpeg, not one of the measured ones.
    fn holder_id(&self) -> Option<u32> {
        self.holder.id()
    }
}

/// Starts GStreamer's RTSP server (the agent tests' script) at [`STREAM_SIZE`] on `port`, with
/// one session (ffmpeg copying the stream, no decoding) holding its shared pipeline open until
/// the server is dropped: the measured sessions join a running pipeline. (Sixteen sessions
/// arriving at once while the shared pipeline is being built, or torn down, crash Debian's
/// gst-rtsp-server 1.22 in `gst_rtsp_media_get_rates`, or leave it answering every later client
/// with a stream ffmpeg cannot read.)
async fn start_rtsp_server(root: &Path, port: u16) -> Result<StreamServer> {
    let server = crate::rtsp_demo::start_rtsp_server(root, port, &["0", STREAM_SIZE]).await?;
    let mut holder = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
        ])
        .arg("-i")
        .arg(format!("rtsp://127.0.0.1:{port}/cam"))
        .args(["-map", "0:v", "-c", "copy", "-f", "h264", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("running ffmpeg")?;
    let mut stdout = holder.stdout.take().context("ffmpeg's stdout")?;
    let mut first = [0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(20), stdout.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => bail!("the RTSP server sent no stream within 20 s"),
    }
    tokio::spawn(async move { tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await });
    Ok(StreamServer {
        process: server,
        holder,
    })
}

/// `/proc/<pid>/stat`'s fields after the command name (index 0 is the state).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// A process's own CPU time (utime + stime) plus its reaped children's (cutime + cstime), ticks.
fn process_ticks(pid: u32) -> Result<u64> {
    let f = stat_fields(pid).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // After the state: ppid(0) ... utime(10) stime(11) cutime(12) cstime(13).
    Ok(f[10] + f[11] + f[12] + f[13])
}

/// A process's time and its live children's.
fn tree_cpu_ticks(pid: u32) -> Result<u64> {
    let live: u64 = children(pid)
        .into_iter()
        .filter_map(|c| stat_fields(c).map(|f| f[10] + f[11]))
        .sum();
    Ok(process_ticks(pid)? + live)
}

/// This process's reaped children's time.
fn reaped_children_ticks() -> Result<u64> {
    let f = stat_fields(std::process::id()).context("reading /proc/self/stat")?;
    Ok(f[12] + f[13])
}

/// The live children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat_fields(p).is_some_and(|f| f[0] == u64::from(pid)))
        .collect()
}

/// A counter's value in a Prometheus text exposition (`name{labels} value`), 0 when absent.
fn counter(text: &str, name: &str, labels: &str) -> f64 {
    let needle = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn clock_ticks_per_second() -> Result<f64> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK")
}

/// The section's body.
pub fn report(r: &AgentResults, run: &Run) -> String {
    let window = WINDOW.as_secs_f64();
    let row = |name: &str, s: &Side| {
        format!(
            "| {name} | {cpu:.1} % | {mean:.0} MiB | {peak:.0} MiB | {expected} | {in_time} | {late} | \
             **{lost}** | {dup} | {p50} | {server:.1} % |\n",
            cpu = s.cpu_s / window * 100.0,
            mean = s.pss_mean_kib / 1024.0,
            peak = s.pss_peak_kib / 1024.0,
            expected = s.expected,
            in_time = s.in_time,
            late = s.late,
            lost = s.lost(),
            dup = s.duplicated,
            p50 = if s.in_time + s.late == 0 {
                "–".to_owned()
            } else if s.latency_s.is_empty() {
                "0 (in hand)".to_owned()
            } else {
                format!(
                    "{:.2} / {:.2}",
                    percentile(&s.latency_s, 0.5),
                    percentile(&s.latency_s, 0.99)
                )
            },
            server = s.server_cpu_s / window * 100.0,
        )
    };
    format!(
        "{today}, {host}. {ffmpeg}; GStreamer's RTSP server (the agent tests' script).\n\n\
         One release `timelapser-agent` recording {cameras} RTSP cameras at one frame every \
         {interval} s (the origin's schedule), each over its own long-lived RTSP/TCP session (an \
         ffmpeg child decoding the stream, one JPEG a second handed over), every frame spooled \
         durably and uploaded to a release origin (SQLite). The reference, in the same run: the \
         same cameras recorded the upstream way, a new RTSP connection and `ffmpeg -frames:v 1` \
         fired at each instant (earlier ones may still be running); and that way tuned, with \
         `-probesize 32 -analyzeduration 0`. The references' frames are not uploaded: their \
         figures leave out what the agent's include, spooling and uploading. Every camera reads \
         the same {size} 10 fps H.264 stream (x264 `ultrafast`, a key frame a second) from \
         GStreamer's RTSP server, one pipeline shared by all sessions, on the same machine (a \
         fresh server for each side). Each side measured over {window:.0} \
         s: CPU in % of one core (the agent with its ffmpeg children; the references' ffmpegs), \
         memory as the PSS of the whole process tree sampled every 100 ms, frames in hand within \
         the interval, late (after it: the picture is of a later moment) and lost (no image at \
         the origin for the instant; for the references, no JPEG within 15 s).\n\n\
         | | CPU | PSS mean | PSS peak | frames due | in time | late | lost | duplicated | \
         instant to JPEG, median / p99 (s) | RTSP server CPU |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         {agent}{upstream}{tuned}\n\
         Agent CPU against the upstream way: **{ratio:.2}x** (against the tuned way {tuned_ratio:.2}x); \
         memory (mean PSS) {mem:.2}x. The agent's sessions reconnected {reconnects:.0} times and \
         its spools dropped {dropped:.0} frames in the window; its frame is already in hand at \
         each instant (at most a second old), where a new session must connect, probe the \
         stream and wait for a key frame.\n",
        today = run.date,
        host = run.host,
        ffmpeg = report::version("ffmpeg", "-version"),
        cameras = CAMERAS,
        interval = INTERVAL_S,
        size = STREAM_SIZE,
        agent = row("agent: one session per camera", &r.agent),
        upstream = row("reference: a connection per frame (upstream)", &r.upstream),
        tuned = row("a connection per frame, tuned probing", &r.tuned),
        ratio = r.agent.cpu_s / r.upstream.cpu_s.max(f64::EPSILON),
        tuned_ratio = r.agent.cpu_s / r.tuned.cpu_s.max(f64::EPSILON),
        mem = r.agent.pss_mean_kib / r.upstream.pss_mean_kib.max(1.0),
        reconnects = r.reconnects,
        dropped = r.dropped,
    )
}
