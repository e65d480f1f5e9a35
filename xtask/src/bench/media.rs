//! The origin against Debian's nginx serving the same 45 KB thumbnail (`etag on`), each pinned
//! to core 1 with one worker, wrk pinned to core 0: requests per second for 200 and 304.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::Digest;
use timelapser_support::{free_port, ProcessGroup};

use super::report::{self, verdict, Run};
use super::{frames, origin, percentile};
use crate::{step, tools};

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Origin vs nginx";

/// Alternating rounds of the comparison; the medians are reported.
const ROUNDS: usize = 5;

/// Requests per second of the origin and nginx, for 200 and 304.
pub struct MediaResults {
    bytes: usize,
    origin_200: f64,
    origin_304: f64,
    nginx_200: f64,
    nginx_304: f64,
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

/// Checks one response's status and body length; returns its ETag.
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

/// Measures both servers in alternating rounds.
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<MediaResults> {
    tools::ensure_apt_packages(&[("nginx", "nginx-light"), ("wrk", "wrk")])?;
    let data = work.join("media-data");
    let origin = origin(origin_bin, &data)?
        .pinned_to("1")
        .args(["--threads", "1"])
        .start()
        .await?;
    let addr = origin.addr;
    let thumb = frames::thumbnail_45kb()?;
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
    // Stopped with SIGTERM first: the master then stops its workers.
    let mut nginx = ProcessGroup::spawn(
        "nginx",
        Command::new("taskset")
            .args(["-c", "1", "nginx", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(&nginx_dir)
            .stdout(Stdio::null()),
    )?;
    let nginx_url = format!("http://127.0.0.1:{port}{path}");
    nginx
        .wait_until_ok(&nginx_url, Duration::from_secs(60))
        .await?;
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
    for round in 1..=ROUNDS {
        step(&format!(
            "media: round {round} of {ROUNDS} (origin, nginx; 200 then 304)"
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

/// The section's body.
pub fn report(m: &MediaResults, run: &Run) -> String {
    let r200 = m.origin_200 / m.nginx_200;
    let r304 = m.origin_304 / m.nginx_304;
    format!(
        "{today}, {host}. {nginx}, {wrk}.\n\n\
         The same {bytes}-byte JPEG thumbnail from the same directory. The origin (release, \
         `--threads 1`: a single-threaded scheduler) and nginx (`worker_processes 1`, `etag on`, sendfile) each pinned to \
         core 1 with `taskset`, both running, measured in turn; wrk pinned to core 0, 1 thread, 32 connections, \
         2 s warm-up, then {ROUNDS} alternating rounds of 5 s per server and request; the figures are the medians. \
         The 304 requests send the server's own ETag in If-None-Match.\n\n\
         | request | origin req/s | nginx req/s | origin / nginx | target |\n|---|---:|---:|---:|---|\n\
         | 200 (45 KB body) | {o200:.0} | {n200:.0} | **{r200:.2}x** | >= 0.8x: {v200} |\n\
         | 304 (If-None-Match) | {o304:.0} | {n304:.0} | **{r304:.2}x** | >= 1.0x: {v304} |\n",
        today = run.date,
        host = run.host,
        nginx = report::version("nginx", "-v"),
        wrk = report::version("wrk", "-v"),
        bytes = m.bytes,
        o200 = m.origin_200,
        n200 = m.nginx_200,
        o304 = m.origin_304,
        n304 = m.nginx_304,
        v200 = verdict(r200 >= 0.8),
        v304 = verdict(r304 >= 1.0),
    )
}
