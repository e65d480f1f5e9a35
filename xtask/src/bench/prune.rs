//! Pruning under captures: 100,000 images of one camera deleted by retention while another
//! camera's captures run, against the same captures without a prune, measured on the same
//! origin just before it.
//!
//! The images are seeded straight into the data directory while the origin is stopped (a
//! 256-byte original and thumbnail each, rows inserted by Debian's `sqlite3` in one
//! transaction, the camera's counters set to match), captured 30 days ago. A policy of one
//! day (`PUT /api/cameras/{id}/retention`) wakes the retention sweeper, which deletes them
//! 250 rows per write transaction and then their files. The prune lasts from the PUT until
//! the camera reports no image and none of its files is left.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use timelapser_support::{OriginCommand, OriginProcess};

use super::report::Run;
use super::{frames, origin, percentile, ADMIN};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Retention prune under captures";

/// Images pruned.
const IMAGES: usize = 100_000;

/// Bytes of each seeded original (and of its thumbnail).
const SEED_BYTES: usize = 256;

/// Seeded rows per INSERT statement.
const ROWS_PER_INSERT: usize = 500;

/// Distinct 1280x720 frames generated up front (each upload also gets its own JPEG comment,
/// so that no two uploads have the same bytes).
const FRAMES: usize = 600;

/// Captures offered per second to the live camera.
const RATE: f64 = 40.0;

/// Captures in flight at most.
const IN_FLIGHT: usize = 4;

/// The reference run: the capture load alone.
const REFERENCE: Duration = Duration::from_secs(15);

/// How long the prune may take.
const PRUNE_WITHIN: Duration = Duration::from_secs(600);

/// How often the prune's progress is asked.
const POLL: Duration = Duration::from_millis(100);

/// How long the restarted origin may take to become idle (its start-up orphan sweep lists
/// every seeded file and looks each up).
const IDLE_WITHIN: Duration = Duration::from_secs(300);

/// Flags of every start of the benchmark's origin: no periodic sweep during the reference run
/// (the PUT wakes the sweeper), and no disk-pressure pruning.
const ORIGIN_FLAGS: [&str; 6] = [
    "--retention-interval-seconds",
    "3600",
    "--min-free-bytes",
    "0",
    "--min-free-percent",
    "0",
];

/// One capture load's figures.
pub struct Load {
    captures: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// The prune and the capture load with and without it.
pub struct PruneResults {
    average_bytes: usize,
    /// Start to idle of the origin on the seeded data, seconds.
    settle_s: f64,
    /// PUT to the camera reporting no image, seconds.
    rows_s: f64,
    /// PUT to none of its files left, seconds.
    prune_s: f64,
    live_images: u64,
    without: Load,
    during: Load,
}

/// Seeds [`IMAGES`] images, then runs the capture load alone and during their prune.
pub async fn measure(origin_bin: &Path, work: &Path) -> Result<PruneResults> {
    let data = work.join("prune-data");
    let command = origin(origin_bin, &data)?.args(ORIGIN_FLAGS);
    let origin = command.start().await?;
    let base = origin.base();
    let (archive, _) = timelapser_support::api::create_camera(&base, ADMIN, "Archive").await?;
    let (live, token) = timelapser_support::api::create_camera(&base, ADMIN, "Live").await?;
    stop(origin)?;

    step(&format!(
        "prune: seeding camera {archive} with {IMAGES} images (files, then rows through sqlite3)"
    ));
    let seeded = {
        let (data, sql) = (data.clone(), work.join("prune-seed.sql"));
        tokio::task::spawn_blocking(move || seed(&data, &sql, archive)).await??
    };

    step(&format!(
        "prune: generating {FRAMES} distinct 1280x720 JPEGs"
    ));
    let frames: Vec<Vec<u8>> = tokio::task::spawn_blocking(|| {
        (0..FRAMES as u32)
            .map(|seed| frames::jpeg(1280, 720, 20_000 + seed, 12, 85))
            .collect::<Result<Vec<_>>>()
    })
    .await??;
    let average_bytes = frames.iter().map(Vec::len).sum::<usize>() / FRAMES;
    let frames = Arc::new(frames);

    let origin = start_again(origin_bin, &data).await?;
    step("prune: waiting for the origin's start-up work (the orphan sweep) to finish");
    let settle_s = wait_until_idle(origin.id()).await?;
    let base = origin.base();
    let client = reqwest::Client::new();
    let seeded_count = image_count(&client, &base, archive).await?;
    ensure!(
        seeded_count == IMAGES as u64,
        "the seeded camera reports {seeded_count} images, not {IMAGES}"
    );
    let load = Uploads {
        client: client.clone(),
        url: format!("{base}/api/cameras/{live}/captures"),
        token,
        frames,
    };

    step(&format!(
        "prune: reference, {RATE:.0} captures/s ({IN_FLIGHT} in flight at most) for {}s",
        REFERENCE.as_secs()
    ));
    let stopped = Arc::new(AtomicBool::new(false));
    let reference = tokio::spawn(load.clone().run(0, stopped.clone()));
    tokio::time::sleep(REFERENCE).await;
    stopped.store(true, Ordering::SeqCst);
    let without = reference.await??;

    step(&format!(
        "prune: {IMAGES} images by retention, with the same captures"
    ));
    let stopped = Arc::new(AtomicBool::new(false));
    let _stop_on_exit = StopOnDrop(stopped.clone());
    let running = tokio::spawn(load.run(1_000_000, stopped.clone()));
    let started = Instant::now();
    client
        .put(format!("{base}/api/cameras/{archive}/retention"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "images_days": 1 }))
        .send()
        .await?
        .error_for_status()
        .context("PUT retention")?;
    loop {
        let left = image_count(&client, &base, archive).await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > PRUNE_WITHIN {
            bail!("{left} images still left {PRUNE_WITHIN:?} after the retention policy");
        }
        tokio::time::sleep(POLL).await;
    }
    let rows_s = started.elapsed().as_secs_f64();
    loop {
        let left = archive_files(&data, &seeded)?;
        if left == 0 {
            break;
        }
        if started.elapsed() > PRUNE_WITHIN {
            bail!(
                "{left} of the pruned images' files still there {PRUNE_WITHIN:?} after the policy"
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let prune_s = started.elapsed().as_secs_f64();
    stopped.store(true, Ordering::SeqCst);
    let during = running.await??;

    // Only the live camera's files are left, one original and one thumbnail per image.
    let live_images = image_count(&client, &base, live).await?;
    for folder in ["images", "thumbnails"] {
        let files = std::fs::read_dir(data.join("media").join(folder))?.count() as u64;
        ensure!(
            files == live_images,
            "media/{folder} holds {files} files after the prune; the live camera has {live_images} images"
        );
    }
    ensure!(
        archive_files(&data, &seeded)? == 0,
        "files of pruned images are back"
    );
    stop(origin)?;
    // The live camera's captures: some 700 MB.
    let _ = std::fs::remove_dir_all(&data);
    Ok(PruneResults {
        average_bytes,
        settle_s,
        rows_s,
        prune_s,
        live_images,
        without,
        during,
    })
}

/// Stops an origin with SIGTERM and waits for it; it must exit cleanly.
fn stop(origin: OriginProcess) -> Result<()> {
    let status = origin.process.stop()?;
    ensure!(
        status.success(),
        "the origin exited with {status} on SIGTERM"
    );
    Ok(())
}

/// The benchmark's origin on its existing data directory.
async fn start_again(origin_bin: &Path, data: &Path) -> Result<OriginProcess> {
    OriginCommand::new(origin_bin, data)?
        .admin_token(ADMIN)
        .quiet()
        .args(ORIGIN_FLAGS)
        .start()
        .await
}

/// Waits until the process uses under 5% of a core over a second; returns how long that
/// took, seconds.
async fn wait_until_idle(pid: u32) -> Result<f64> {
    let ticks_per_second: u64 =
        String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
            .trim()
            .parse()
            .context("getconf CLK_TCK")?;
    let started = Instant::now();
    let mut before = cpu_ticks(pid)?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ticks(pid)?;
        if (now - before) * 20 < ticks_per_second {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > IDLE_WITHIN {
            bail!("the origin was still busy {IDLE_WITHIN:?} after its start");
        }
        before = now;
    }
}

/// A process's CPU time (utime + stime), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .get(stat.rfind(')').context("/proc stat")? + 2..)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    let field = |i: usize| -> Result<u64> { Ok(fields.get(i).context("/proc stat")?.parse()?) };
    Ok(field(11)? + field(12)?)
}

/// A camera's `image_count`.
async fn image_count(client: &reqwest::Client, base: &str, camera: i64) -> Result<u64> {
    let camera: serde_json::Value = client
        .get(format!("{base}/api/cameras/{camera}"))
        .bearer_auth(ADMIN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    camera["image_count"]
        .as_u64()
        .with_context(|| format!("no image_count in {camera}"))
}

/// Writes [`IMAGES`] originals and thumbnails of `camera` under `data`'s media folder and
/// inserts their rows (captured from 30 days ago, a second apart) with `sqlite3`, in one
/// transaction with the camera's counters. Returns their hashes.
fn seed(data: &Path, sql: &Path, camera: i64) -> Result<HashSet<String>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
    let first = now - 30 * 86_400 * 1_000_000;
    let (images, thumbnails) = (data.join("media/images"), data.join("media/thumbnails"));
    std::fs::create_dir_all(&images)?;
    std::fs::create_dir_all(&thumbnails)?;
    let mut hashes = HashSet::with_capacity(IMAGES);
    let mut out = std::io::BufWriter::new(std::fs::File::create(sql)?);
    writeln!(out, "BEGIN;")?;
    let mut values = String::new();
    for i in 0..IMAGES {
        let mut content = format!("timelapser prune benchmark, archived image {i}\n").into_bytes();
        content.resize(SEED_BYTES, b'.');
        let sha = hex::encode(Sha256::digest(&content));
        let name = format!("{sha}.jpg");
        std::fs::write(images.join(&name), &content)?;
        std::fs::write(thumbnails.join(&name), &content)?;
        if !values.is_empty() {
            values.push(',');
        }
        write!(
            values,
            "({camera},NULL,{captured},32,24,{SEED_BYTES},{SEED_BYTES},'{sha}',{now})",
            captured = first + i as i64 * 1_000_000,
        )?;
        if (i + 1) % ROWS_PER_INSERT == 0 || i + 1 == IMAGES {
            writeln!(
                out,
                "INSERT INTO images (camera_id, timelapse_id, captured_at, width, height, bytes, \
                 thumbnail_bytes, sha256, created_at) VALUES {values};"
            )?;
            values.clear();
        }
        hashes.insert(sha);
    }
    writeln!(
        out,
        "UPDATE cameras SET \
         image_count = (SELECT COUNT(*) FROM images WHERE camera_id = {camera}), \
         bytes_stored = (SELECT SUM(bytes + thumbnail_bytes) FROM images WHERE camera_id = {camera}), \
         latest_image_id = (SELECT MAX(id) FROM images WHERE camera_id = {camera}), \
         last_capture_at = (SELECT MAX(captured_at) FROM images WHERE camera_id = {camera}) \
         WHERE id = {camera};\nCOMMIT;"
    )?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let database: PathBuf = data.join("timelapser.db");
    let status = Command::new("sqlite3")
        .arg("-bail")
        .arg(&database)
        .stdin(std::fs::File::open(sql)?)
        .status()
        .context("running sqlite3 (Debian's sqlite3) to seed the images")?;
    ensure!(
        status.success(),
        "sqlite3 failed ({status}) on {}",
        sql.display()
    );
    std::fs::remove_file(sql)?;
    Ok(hashes)
}

/// Files of the seeded images still in media/images and media/thumbnails.
fn archive_files(data: &Path, seeded: &HashSet<String>) -> Result<usize> {
    let mut left = 0;
    for folder in ["images", "thumbnails"] {
        for entry in std::fs::read_dir(data.join("media").join(folder))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name
                .strip_suffix(".jpg")
                .is_some_and(|sha| seeded.contains(sha))
            {
                left += 1;
            }
        }
    }
    Ok(left)
}

/// Sets a flag when dropped (stops a capture load when the prune fails half-way).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The live camera's capture load.
#[derive(Clone)]
struct Uploads {
    client: reqwest::Client,
    url: String,
    token: String,
    frames: Arc<Vec<Vec<u8>>>,
}

impl Uploads {
    /// Offers [`RATE`] captures a second ([`IN_FLIGHT`] at most: a tick that finds them all
    /// busy waits, and the ticks it missed are skipped) until `stopped`; upload `n` is frame
    /// `n` modulo [`FRAMES`] with a comment of its own, numbered from `first`. Every capture
    /// must be accepted (201).
    async fn run(self, first: usize, stopped: Arc<AtomicBool>) -> Result<Load> {
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for n in first.. {
            ticks.tick().await;
            let permit = limit.clone().acquire_owned().await?;
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            let jpeg = commented(&self.frames[n % FRAMES], n);
            let request = self
                .client
                .post(&self.url)
                .bearer_auth(&self.token)
                .header("content-type", "image/jpeg")
                .body(jpeg);
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let status = request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                drop(permit);
                (status, sent.elapsed().as_secs_f64() * 1000.0)
            }));
        }
        let window = started.elapsed().as_secs_f64();
        let mut latencies = Vec::with_capacity(tasks.len());
        let mut others = Vec::new();
        for task in tasks {
            let (status, ms) = task.await?;
            if status != 201 {
                others.push(status);
            }
            latencies.push(ms);
        }
        if !others.is_empty() {
            bail!(
                "{} of {} captures were not accepted: {others:?}",
                others.len(),
                latencies.len()
            );
        }
        latencies.sort_by(f64::total_cmp);
        Ok(Load {
            captures: latencies.len(),
            per_second: latencies.len() as f64 / window,
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(0.0),
        })
    }
}

/// `jpeg` with a comment segment (COM) numbered `n` right after its start marker: other bytes
/// and another hash, the same picture and the same work to decode.
fn commented(jpeg: &[u8], n: usize) -> Vec<u8> {
    let text = format!("timelapser prune benchmark, capture {n}");
    let length = (text.len() + 2) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The section's body.
pub fn report(p: &PruneResults, run: &Run) -> String {
    let row = |name: &str, l: &Load| {
        format!(
            "| {name} | {captures} | {rate:.1} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms |\n",
            captures = l.captures,
            rate = l.per_second,
            p50 = l.p50_ms,
            p99 = l.p99_ms,
            max = l.max_ms,
        )
    };
    format!(
        "{today}, {host}.\n\n{IMAGES} images of one camera, captured 30 days ago, deleted by retention \
         on the release origin (SQLite, WAL; not pinned): `PUT /api/cameras/{{id}}/retention` \
         `{{\"images_days\": 1}}` wakes the sweeper, which deletes 250 rows per write transaction \
         (the rows, the camera's counters, an `images_deleted` event and the queued file \
         removals), then their files (100 queued removals per transaction). The images were seeded while the origin was stopped (a \
         {SEED_BYTES}-byte original and thumbnail each, rows inserted with `sqlite3`). The prune \
         lasts from the PUT until the camera reports no image and none of its {files} files is \
         left; afterwards the media folders hold the other camera's files only. Meanwhile another \
         camera receives distinct 1280x720 JPEGs (average {kb} KB) offered at {RATE:.0}/s, \
         {IN_FLIGHT} in flight at most; latency runs from sending a capture to its response, for \
         the captures sent during the prune. Reference: the same load for {reference} s alone, on \
         the same origin just before the prune, once it was idle after its start ({settle:.1} s: \
         its start-up orphan sweep looks every seeded file up).\n\n\
         | prune | value |\n|---|---:|\n\
         | images | {IMAGES} |\n\
         | rows gone (`image_count` 0) | {rows:.1} s |\n\
         | rows and files gone | **{prune:.1} s** |\n\
         | prune rate | **{rate:.0} images/s** |\n\n\
         | captures | sent | captures/s | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n\
         {without}{during}\n\
         Capture p99 during the prune / without: **{ratio:.2}x** (p50: {ratio50:.2}x); no target, \
         figures as measured. The live camera holds {live} images afterwards.\n",
        today = run.date,
        host = run.host,
        files = 2 * IMAGES,
        kb = p.average_bytes / 1024,
        reference = REFERENCE.as_secs(),
        settle = p.settle_s,
        rows = p.rows_s,
        prune = p.prune_s,
        rate = IMAGES as f64 / p.prune_s,
        without = row("without a prune (reference)", &p.without),
        during = row("during the prune", &p.during),
        ratio = p.during.p99_ms / p.without.p99_ms,
        ratio50 = p.during.p50_ms / p.without.p50_ms,
        live = p.live_images,
    )
}
