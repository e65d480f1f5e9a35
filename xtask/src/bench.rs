//! `cargo xtask bench`: every benchmark of the project, in one run, written to BENCHMARKS.md
//! as ratios against the named reference measured in the same run.
//!
//! - core: criterion micro-benchmarks (ns/op).
//! - media: the origin against Debian's nginx serving the same 45 KB thumbnail (`etag on`),
//!   each pinned to core 1 with one worker, wrk pinned to core 0: req/s for 200 and 304.
//! - captures: 1920x1080 JPEG uploads per second, thumbnails included.
//! - sse: 10,000 SSE clients of one origin: memory per connection, broadcast latency,
//!   deliveries per second, lost and duplicated events.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use sha2::Digest;

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
    /// 10,000 SSE clients.
    Sse,
    /// Origin offload of a gallery workload through the edge.
    Offload,
    /// Video rendering, against the same ffmpeg command typed by hand.
    Render,
}

/// A child process killed when dropped (also on errors).
struct Guard {
    child: Child,
    name: &'static str,
}

impl Drop for Guard {
    /// SIGTERM first (nginx's master then stops its workers; SIGKILL would orphan them), then
    /// SIGKILL if it has not exited after 5 s.
    fn drop(&mut self) {
        // Each child leads its own process group (wrangler runs workerd as its own child).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                eprintln!("    stopped {}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        eprintln!("    killed {}", self.name);
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer within 60 s")
}

/// Starts the release origin on a fresh data directory, optionally pinned to `cpus`.
async fn start_origin(
    binary: &Path,
    data_dir: &Path,
    cpus: Option<&str>,
    threads: Option<usize>,
) -> Result<(Guard, SocketAddr)> {
    let _ = std::fs::remove_dir_all(data_dir);
    std::fs::create_dir_all(data_dir)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut command = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    command
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data_dir)
        .env("TIMELAPSER_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(threads) = threads {
        command.arg("--threads").arg(threads.to_string());
    }
    let guard = Guard {
        child: command
            .process_group(0)
            .spawn()
            .context("starting the origin")?,
        name: "origin",
    };
    wait_ready(&format!("http://{addr}/healthz")).await?;
    Ok((guard, addr))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A photo-like frame: gradients, shapes and noise; distinct per `seed`.
fn frame(width: u32, height: u32, seed: u32, noise: u32) -> Vec<u8> {
    let mut rng = seed.wrapping_mul(2_654_435_761) | 1;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let n = (rng % (2 * noise + 1)) as i32 - noise as i32;
            let base = [
                (x * 255 / width) as i32,
                (y * 255 / height) as i32,
                (((x + y + seed * 7) / 3) % 256) as i32,
            ];
            rgb.extend(base.map(|c| (c + n).clamp(0, 255) as u8));
        }
    }
    rgb
}

fn encode(width: u32, height: u32, rgb: &[u8], quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode(
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// A ~45 KB 320x180 thumbnail (the v4 guide's thumbnail size).
fn thumbnail_45kb() -> Result<Vec<u8>> {
    let rgb = frame(320, 180, 7, 40);
    let mut best = encode(320, 180, &rgb, 90)?;
    for quality in (50..=100).rev() {
        let jpeg = encode(320, 180, &rgb, quality)?;
        if jpeg.len() <= 46_080 {
            best = jpeg;
            break;
        }
    }
    Ok(best)
}

/// Runs wrk pinned to core 0 and returns requests per second.
fn wrk(url: &str, header: Option<&str>, seconds: u32) -> Result<f64> {
    let mut command = Command::new("taskset");
    command.args([
        "-c",
        "0",
        "wrk",
        "-t1",
        "-c32",
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(h) = header {
        command.args(["-H", h]);
    }
    command.arg(url);
    let output = command.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"));
    if let Some(line) = non2xx {
        bail!("wrk saw errors against {url}: {line}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))
}

/// Media results: req/s for origin and nginx, 200 and 304.
struct MediaResults {
    bytes: usize,
    origin_200: f64,
    origin_304: f64,
    nginx_200: f64,
    nginx_304: f64,
}

async fn check(
    url: &str,
    header: Option<(&str, &str)>,
    status: u16,
    len: Option<usize>,
) -> Result<String> {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some((n, v)) = header {
        request = request.header(n, v);
    }
    let response = request.send().await?;
    if response.status().as_u16() != status {
        bail!("{url} answered {} instead of {status}", response.status());
    }
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await?;
    if let Some(len) = len {
        if body.len() != len {
            bail!("{url} sent {} bytes instead of {len}", body.len());
        }
    }
    Ok(etag)
}

async fn media(origin_bin: &Path, work: &Path) -> Result<MediaResults> {
    tools::ensure_apt_packages(&[("nginx", "nginx-light"), ("wrk", "wrk")])?;
    let data = work.join("media-data");
    let (origin, addr) = start_origin(origin_bin, &data, Some("1"), Some(1)).await?;
    let thumb = thumbnail_45kb()?;
    let sha = hex::encode(sha2::Sha256::digest(&thumb));
    std::fs::write(data.join(format!("media/thumbnails/{sha}.jpg")), &thumb)?;
    let path = format!("/media/thumbnails/{sha}.jpg");
    let origin_url = format!("http://{addr}{path}");
    let origin_etag = check(&origin_url, None, 200, Some(thumb.len())).await?;
    check(
        &origin_url,
        Some(("if-none-match", &origin_etag)),
        304,
        Some(0),
    )
    .await?;

    let nginx_dir = work.join("nginx");
    std::fs::create_dir_all(nginx_dir.join("logs"))?;
    let port = free_port()?;
    let conf = nginx_dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "user root;\ndaemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  etag on;\n  keepalive_requests 1000000;\n\
               types {{ image/jpeg jpg; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
            dir = nginx_dir.display(),
            root = data.display()
        ),
    )?;
    let nginx = Guard {
        child: Command::new("taskset")
            .args(["-c", "1", "nginx", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(&nginx_dir)
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting nginx")?,
        name: "nginx",
    };
    let nginx_url = format!("http://127.0.0.1:{port}{path}");
    wait_ready(&nginx_url).await?;
    let nginx_etag = check(&nginx_url, None, 200, Some(thumb.len())).await?;
    check(
        &nginx_url,
        Some(("if-none-match", &nginx_etag)),
        304,
        Some(0),
    )
    .await?;

    // Both servers run side by side, each idle while the other is measured; the rounds
    // alternate between them so that drift in the machine's speed hits both alike.
    let origin_inm = format!("If-None-Match: {origin_etag}");
    let nginx_inm = format!("If-None-Match: {nginx_etag}");
    wrk(&origin_url, None, 2)?;
    wrk(&nginx_url, None, 2)?;
    let mut samples: [Vec<f64>; 4] = Default::default();
    for round in 1..=MEDIA_ROUNDS {
        step(&format!(
            "media: round {round} of {MEDIA_ROUNDS} (origin, nginx; 200 then 304)"
        ));
        samples[0].push(wrk(&origin_url, None, 5)?);
        samples[1].push(wrk(&nginx_url, None, 5)?);
        samples[2].push(wrk(&origin_url, Some(&origin_inm), 5)?);
        samples[3].push(wrk(&nginx_url, Some(&nginx_inm), 5)?);
    }
    drop(nginx);
    drop(origin);
    let [o200, n200, o304, n304] = samples.map(|mut v| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    });
    Ok(MediaResults {
        bytes: thumb.len(),
        origin_200: o200,
        origin_304: o304,
        nginx_200: n200,
        nginx_304: n304,
    })
}

/// Alternating rounds of the media comparison; the medians are reported.
const MEDIA_ROUNDS: usize = 5;

async fn create_camera(base: &str) -> Result<(i64, String)> {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/cameras"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((
        created["camera"]["id"].as_i64().context("camera id")?,
        created["token"].as_str().context("token")?.to_owned(),
    ))
}

struct CaptureResults {
    count: usize,
    average_bytes: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn captures(origin_bin: &Path, work: &Path) -> Result<CaptureResults> {
    const COUNT: usize = 300;
    const CONCURRENCY: usize = 8;
    step(&format!(
        "captures: generating {COUNT} distinct 1920x1080 JPEGs"
    ));
    let frames: Vec<Vec<u8>> = tokio::task::spawn_blocking(|| {
        (0..COUNT as u32)
            .map(|seed| encode(1920, 1080, &frame(1920, 1080, seed, 12), 85))
            .collect::<Result<Vec<_>>>()
    })
    .await??;
    let average_bytes = frames.iter().map(Vec::len).sum::<usize>() / COUNT;
    let (origin, addr) = start_origin(origin_bin, &work.join("capture-data"), None, None).await?;
    let base = format!("http://{addr}");
    let (camera, token) = create_camera(&base).await?;
    step(&format!(
        "captures: uploading {COUNT} with {CONCURRENCY} in flight"
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
    Ok(CaptureResults {
        count: COUNT,
        average_bytes,
        per_second: COUNT as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

async fn sse(origin_bin: &Path, work: &Path) -> Result<crate::sse_bench::SseResults> {
    const CLIENTS: usize = 10_000;
    let (origin, addr) = start_origin(origin_bin, &work.join("sse-data"), None, None).await?;
    let (camera, token) = create_camera(&format!("http://{addr}")).await?;
    let frames = (0..25u32)
        .map(|seed| encode(64, 48, &frame(64, 48, 1000 + seed, 20), 80))
        .collect::<Result<Vec<_>>>()?;
    step(&format!(
        "sse: {CLIENTS} clients, 5 single broadcasts, then a burst of 20"
    ));
    let results =
        crate::sse_bench::run(addr, origin.child.id(), CLIENTS, camera, &token, frames).await?;
    drop(origin);
    Ok(results)
}

/// The medians criterion wrote, by benchmark id.
fn criterion_medians(root: &Path) -> Vec<(String, f64)> {
    let mut found = Vec::new();
    let base = root.join("target/criterion");
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    let estimates = path.join("estimates.json");
                    let benchmark = path.join("benchmark.json");
                    let (Ok(e), Ok(b)) = (
                        std::fs::read_to_string(&estimates),
                        std::fs::read_to_string(&benchmark),
                    ) else {
                        continue;
                    };
                    let (Ok(e), Ok(b)) = (
                        serde_json::from_str::<serde_json::Value>(&e),
                        serde_json::from_str::<serde_json::Value>(&b),
                    ) else {
                        continue;
                    };
                    if let (Some(id), Some(median)) = (
                        b["full_id"].as_str(),
                        e["median"]["point_estimate"].as_f64(),
                    ) {
                        found.push((id.to_owned(), median));
                    }
                } else if path.file_name().is_none_or(|n| n != "report") {
                    stack.push(path);
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores, {cpu}; load average before the run: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn version(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "absent".into())
}

/// Replaces (or appends) the section of BENCHMARKS.md headed `heading`.
fn write_section(root: &Path, heading: &str, body: &str) -> Result<()> {
    let path = root.join("BENCHMARKS.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nWritten by `cargo xtask bench`; each figure is a ratio against the reference \
         measured in the same run where the issue names one.\n"
            .to_owned()
    });
    let header = format!("\n## {heading}\n");
    let section = format!("{header}{body}");
    match text.find(&header) {
        Some(start) => {
            let rest = &text[start + header.len()..];
            let end = rest
                .find("\n## ")
                .map_or(text.len(), |e| start + header.len() + e);
            // Sections are separated by one blank line.
            let replacement = format!("{}\n", section.trim_end_matches('\n'));
            text.replace_range(start..end, &replacement);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        None => {
            text.push_str(&section);
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// Runs the parts asked for (all by default) and writes BENCHMARKS.md.
pub fn bench(root: &Path, parts: &[Part]) -> Result<()> {
    let all = [
        Part::Core,
        Part::Media,
        Part::Captures,
        Part::Sse,
        Part::Offload,
        Part::Render,
    ];
    let parts: Vec<Part> = if parts.is_empty() {
        all.to_vec()
    } else {
        parts.to_vec()
    };
    let today = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let host = machine();
    let work: PathBuf = root.join("target/bench");
    std::fs::create_dir_all(&work)?;

    if parts.contains(&Part::Core) {
        step("core micro-benchmarks (criterion)");
        run(cargo().args([
            "bench",
            "-p",
            "timelapser-core",
            "--bench",
            "core",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
        ]))?;
        let mut body = format!("{today}, {host}. `cargo bench -p timelapser-core --bench core` (criterion, median of 100 samples).\n\n| benchmark | ns/op |\n|---|---:|\n");
        for (id, ns) in criterion_medians(root) {
            let _ = writeln!(body, "| {id} | {ns:.1} |");
        }
        write_section(root, "Core micro-benchmarks", &body)?;
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
        let m = runtime.block_on(media(&origin_bin, &work))?;
        let r200 = m.origin_200 / m.nginx_200;
        let r304 = m.origin_304 / m.nginx_304;
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let body = format!(
            "{today}, {host}. {nginx}, {wrk}.\n\n\
             The same {bytes}-byte JPEG thumbnail from the same directory. The origin (release, \
             `--threads 1`: a single-threaded scheduler) and nginx (`worker_processes 1`, `etag on`, sendfile) each pinned to \
             core 1 with `taskset`, both running, measured in turn; wrk pinned to core 0, 1 thread, 32 connections, \
             2 s warm-up, then {rounds} alternating rounds of 5 s per server and request; the figures are the medians. \
             The 304 requests send the server's own ETag in If-None-Match.\n\n\
             | request | origin req/s | nginx req/s | origin / nginx | target |\n|---|---:|---:|---:|---|\n\
             | 200 (45 KB body) | {o200:.0} | {n200:.0} | **{r200:.2}x** | >= 0.8x: {v200} |\n\
             | 304 (If-None-Match) | {o304:.0} | {n304:.0} | **{r304:.2}x** | >= 1.0x: {v304} |\n",
            nginx = version("nginx", "-v"),
            wrk = version("wrk", "-v"),
            bytes = m.bytes,
            rounds = MEDIA_ROUNDS,
            o200 = m.origin_200,
            n200 = m.nginx_200,
            o304 = m.origin_304,
            n304 = m.nginx_304,
            v200 = verdict(r200 >= 0.8),
            v304 = verdict(r304 >= 1.0),
        );
        eprintln!("{body}");
        write_section(root, "Origin vs nginx", &body)?;
    }
    if parts.contains(&Part::Captures) {
        let c = runtime.block_on(captures(&origin_bin, &work))?;
        let body = format!(
            "{today}, {host}.\n\n{count} distinct 1920x1080 JPEGs (average {kb} KB) uploaded to the release origin \
             on SQLite (WAL, fsync of every file), 8 in flight, not pinned (origin and client share both cores). \
             Each capture is authenticated, hashed, decoded at reduced DCT scale, thumbnailed, written \
             atomically twice (original and thumbnail) and committed with its event.\n\n\
             | captures/s | p50 latency | p99 latency | target |\n|---:|---:|---:|---|\n\
             | **{rate:.0}** | {p50:.1} ms | {p99:.1} ms | >= 100/s: {verdict} |\n",
            count = c.count,
            kb = c.average_bytes / 1024,
            rate = c.per_second,
            p50 = c.p50_ms,
            p99 = c.p99_ms,
            verdict = if c.per_second >= 100.0 { "met" } else { "NOT met" },
        );
        eprintln!("{body}");
        write_section(root, "Capture throughput", &body)?;
    }
    if parts.contains(&Part::Sse) {
        let s = runtime.block_on(sse(&origin_bin, &work))?;
        let per_connection =
            (s.rss_connected_kib.saturating_sub(s.rss_before_kib)) as f64 / s.clients as f64;
        let body = format!(
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
            clients = s.clients,
            before = s.rss_before_kib,
            after = s.rss_connected_kib,
            per = per_connection,
            vmem = if per_connection <= 8.0 { "met" } else { "NOT met" },
            p50 = s.latency_ms.0,
            p99 = s.latency_ms.1,
            max = s.latency_ms.2,
            vlat = if s.latency_ms.1 < 250.0 { "met" } else { "NOT met" },
            burst = s.burst_events,
            rate = s.deliveries_per_second,
            lost = s.lost,
            dup = s.duplicated,
            vloss = if s.lost == 0 && s.duplicated == 0 { "met" } else { "NOT met" },
        );
        eprintln!("{body}");
        write_section(root, "SSE fan-out", &body)?;
    }
    if parts.contains(&Part::Offload) {
        crate::edge::build_edge(root)?;
        let o = runtime.block_on(offload(root, &origin_bin, &work))?;
        let body = crate::offload::report(&o, &today, &host);
        eprintln!("{body}");
        write_section(root, "Origin offload through the edge", &body)?;
    }
    if parts.contains(&Part::Render) {
        tools::ensure_apt_packages(&[("ffmpeg", "ffmpeg")])?;
        let (frames, origin_s, hand_s) = runtime.block_on(render_bench(&origin_bin, &work))?;
        let (origin_fps, hand_fps) = (frames as f64 / origin_s, frames as f64 / hand_s);
        let body = format!(
            "{today}, {host}. {ffmpeg}.\n\n\
             {frames} distinct 1920x1080 captures of one timelapse rendered at 24 fps into H.264 \
             (libx264 `-preset veryfast`, yuv420p, `+faststart`). The origin: from `POST \
             /api/timelapses/{{id}}/videos` to the video reported ready (queueing, the ffmpeg child, progress \
             events, hashing and the atomic move included). By hand: the same ffmpeg command on the same \
             frame list, timed alone.\n\n\
             | | seconds | frames/s | ratio |\n|---|---:|---:|---:|\n\
             | origin | {origin_s:.2} | {origin_fps:.1} | **{ratio:.2}x** |\n\
             | ffmpeg by hand | {hand_s:.2} | {hand_fps:.1} | 1.00x |\n",
            ffmpeg = version("ffmpeg", "-version"),
            ratio = origin_fps / hand_fps,
        );
        eprintln!("{body}");
        write_section(root, "Video rendering", &body)?;
    }
    Ok(())
}

/// Renders a timelapse through the origin, then the same ffmpeg command by hand.
async fn render_bench(origin_bin: &Path, work: &Path) -> Result<(usize, f64, f64)> {
    const FRAMES: usize = 120;
    let data = work.join("render-data");
    let (origin, addr) = start_origin(origin_bin, &data, None, None).await?;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let (camera, token) = create_camera(&base).await?;
    let timelapse: serde_json::Value = client
        .post(format!("{base}/api/cameras/{camera}/timelapses"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let timelapse = timelapse["id"].as_i64().context("timelapse id")?;
    step(&format!("render: uploading {FRAMES} 1920x1080 frames"));
    let mut shas = Vec::new();
    for seed in 0..FRAMES as u32 {
        let jpeg = tokio::task::spawn_blocking(move || {
            encode(1920, 1080, &frame(1920, 1080, 7000 + seed, 12), 85)
        })
        .await??;
        let image: serde_json::Value = client
            .post(format!("{base}/api/cameras/{camera}/captures"))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(jpeg)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        shas.push(image["sha256"].as_str().context("sha256")?.to_owned());
    }
    step("render: through the origin");
    let started = Instant::now();
    let video: serde_json::Value = client
        .post(format!("{base}/api/timelapses/{timelapse}/videos"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"fps": 24}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = video["id"].as_i64().context("video id")?;
    loop {
        let v: serde_json::Value = client
            .get(format!("{base}/api/videos/{id}"))
            .send()
            .await?
            .json()
            .await?;
        match v["status"].as_str() {
            Some("ready") => break,
            Some("failed") => bail!("the render failed: {}", v["error"]),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let origin_s = started.elapsed().as_secs_f64();
    drop(origin);
    step("render: the same ffmpeg command by hand");
    let list = work.join("render-by-hand.txt");
    let lines: String = shas
        .iter()
        .map(|sha| {
            format!(
                "file '{}'\n",
                data.join(format!("media/images/{sha}.jpg")).display()
            )
        })
        .collect();
    std::fs::write(&list, lines)?;
    let out = work.join("render-by-hand.mp4");
    let started = Instant::now();
    run(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-r",
            "24",
            "-i",
        ])
        .arg(&list)
        .args([
            "-vf",
            "scale=1920:1080,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-r",
            "24",
        ])
        .args(["-movflags", "+faststart", "-y"])
        .arg(&out))?;
    let hand_s = started.elapsed().as_secs_f64();
    Ok((FRAMES, origin_s, hand_s))
}

async fn offload(root: &Path, origin_bin: &Path, work: &Path) -> Result<crate::offload::Offload> {
    const VIEWERS: usize = 50;
    let (origin, addr) = start_origin(origin_bin, &work.join("offload-data"), None, None).await?;
    let base = format!("http://{addr}");
    let mut cameras = Vec::new();
    for n in 0..3u32 {
        let (camera, token) = create_camera(&base).await?;
        for seed in 0..20u32 {
            let jpeg = encode(320, 240, &frame(320, 240, n * 100 + seed, 20), 85)?;
            reqwest::Client::new()
                .post(format!("{base}/api/cameras/{camera}/captures"))
                .bearer_auth(&token)
                .header("content-type", "image/jpeg")
                .body(jpeg)
                .send()
                .await?
                .error_for_status()?;
        }
        cameras.push(camera);
    }
    let state = work.join("offload-edge");
    let _ = std::fs::remove_dir_all(&state);
    let port = free_port()?;
    let edge = Guard {
        child: crate::edge::wrangler_dev_prebuilt(root, port, free_port()?, &state, &base)?
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting wrangler dev")?,
        name: "wrangler dev",
    };
    let edge_base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{edge_base}/healthz")).await?;
    step(&format!(
        "offload: {VIEWERS} viewers, gallery and {} camera pages, twice",
        cameras.len()
    ));
    let result = crate::offload::run(addr, &edge_base, &cameras, VIEWERS).await;
    drop(edge);
    drop(origin);
    result
}
