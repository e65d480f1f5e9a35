//! One camera's parts, wired together and run until shutdown: the status reporter, the spool
//! (opened again and again while it cannot be, saying why), the schedule follower, the source,
//! the capture loop and the uploads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Camera;
use crate::health::{self, Health};
use crate::metrics::CameraMetrics;
use crate::origin::OriginClient;
use crate::recorder::{QualityPolicy, Recorder};
use crate::schedule::ScheduleFollower;
use crate::spool::Spool;
use crate::uploader::Uploader;

/// How often a spool that cannot be opened is tried again.
const SPOOL_RETRY: Duration = Duration::from_secs(10);

/// Runs a camera until `cancel`; returns once its upload in flight has finished and its last
/// status ("agent stopped") is sent.
pub async fn run(
    camera: Camera,
    clock: SharedClock,
    health: Health,
    metrics: CameraMetrics,
    cancel: CancellationToken,
) {
    let label = camera.label.clone();
    tracing::info!(camera = %label, source = %camera.source.shown(), origin = %camera.origin, "starting");
    let client = OriginClient::new(&camera);
    // The reporter outlives the other parts, so that its last word is "agent stopped".
    let reporting = CancellationToken::new();
    let reporter = tokio::spawn(health::report(
        client.clone(),
        health.clone(),
        clock.clone(),
        camera.heartbeat,
        label.clone(),
        reporting.clone(),
    ));

    let spool = loop {
        let dir = camera.spool_dir.clone();
        let limit = camera.spool_limit_bytes;
        match tokio::task::spawn_blocking(move || Spool::open(&dir, limit)).await {
            Ok(Ok(spool)) => break Arc::new(spool),
            Ok(Err(e)) => health.set_spool_problem(Some(e.to_string())),
            Err(e) => health.set_spool_problem(Some(format!("opening failed: {e}"))),
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                reporting.cancel();
                let _ = reporter.await;
                return;
            }
            _ = tokio::time::sleep(SPOOL_RETRY) => {}
        }
    };
    health.set_spool_problem(None);
    health.set_backlog(spool.len());
    metrics.spool_frames.set(spool.len() as f64);
    metrics.spool_bytes.set(spool.bytes() as f64);
    if !spool.is_empty() {
        tracing::info!(camera = %label, "{} frames in the spool from before: uploading them first", spool.len());
    }

    let (schedule_tx, schedule_rx) = watch::channel(None);
    let follower = ScheduleFollower::new(
        client.clone(),
        &camera.spool_dir,
        label.clone(),
        schedule_tx,
        health.clone(),
    );
    let follower = tokio::spawn(follower.run(cancel.clone()));

    let recorder = Recorder {
        label: label.clone(),
        clock: clock.clone(),
        source: crate::source::open(&camera, metrics.clone()),
        spool: spool.clone(),
        schedule: schedule_rx,
        health: health.clone(),
        metrics: metrics.clone(),
        policy: QualityPolicy {
            blank: camera.blank_frames,
            frozen: camera.frozen_frames,
            blank_stddev: camera.blank_luma_stddev,
            frozen_after: camera.frozen_after,
        },
    };
    let recorder = tokio::spawn(recorder.run(cancel.clone()));
    let uploader = Uploader {
        label: label.clone(),
        client,
        spool: spool.clone(),
        health: health.clone(),
        metrics,
        clock,
        max_backoff: camera.upload_max_backoff,
    };
    let uploader = tokio::spawn(uploader.run(cancel.clone()));

    cancel.cancelled().await;
    let _ = recorder.await;
    let _ = follower.await;
    let _ = uploader.await;
    tracing::info!(camera = %label, "stopped; {} frames stay in the spool", spool.len());
    reporting.cancel();
    let _ = reporter.await;
}
