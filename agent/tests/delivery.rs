//! No frame lost, none twice: the origin stopped while 30 frames are captured, then started
//! again; and the agent's binary killed with SIGKILL while the origin has stored an upload
//! whose answer the agent never got, then started again.
//!
//! The snapshot camera serves a different JPEG each time, a fixed number of them, and keeps
//! the SHA-256 of each: what it served is what the agent captured, and must be exactly what
//! the origin holds.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::*;
use timelapser_agent::clock::SystemClock;
use timelapser_agent::config::FileConfig;
use timelapser_agent::metrics::{read_counter, Metrics};
use timelapser_agent::Agent;
use timelapser_core::resources::CameraStatus;

fn captured_at(image: &Value) -> DateTime<Utc> {
    image["captured_at"].as_str().unwrap().parse().unwrap()
}

/// Every frame served arrived once, and the origin stored them in capture order.
fn assert_exactly_once_in_order(images: &[Value], served: &[String]) {
    let shas: Vec<&str> = images
        .iter()
        .map(|i| i["sha256"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = shas.iter().copied().collect();
    assert_eq!(unique.len(), shas.len(), "an image stored twice");
    assert_eq!(
        shas,
        served.iter().map(String::as_str).collect::<Vec<_>>(),
        "the origin's images (by id) are the frames served, in order"
    );
    let times: Vec<DateTime<Utc>> = images.iter().map(captured_at).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "captured_at increases with the upload order: {times:?}"
    );
}

async fn wait_for_served(camera: &SnapshotCamera, n: usize, within: Duration) {
    wait_for(&format!("{n} frames served"), within, || async {
        let served = camera.served().len();
        if served >= n {
            Ok(())
        } else {
            Err(format!("{served} served"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_away_for_30_frames_every_frame_arrives_in_order_once_in_its_timelapse() {
    const BEFORE: usize = 4;
    const DURING: usize = 30;
    const TOTAL: usize = 40;
    let mut origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("garden").await;
    origin
        .put_schedule(id, json!({ "interval_seconds": 1, "timezone": "UTC" }))
        .await;
    let first = origin.start_timelapse(id, "before the outage").await;
    let camera =
        SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: TOTAL }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = camera_config(&origin.base, id, &token, &camera.url, dir.path());
    let agent = Agent::start(
        FileConfig {
            cameras: vec![config],
        }
        .resolve()
        .unwrap(),
        Arc::new(SystemClock),
        Metrics::new(),
    );
    wait_for_served(&camera, BEFORE, Duration::from_secs(20)).await;

    origin.stop().await;
    let stopped_at = camera.served().len();
    let health = agent.health(id).unwrap().clone();
    wait_for(
        "the agent to say it spools",
        Duration::from_secs(10),
        || async {
            let (status, message) = health.state().status(Utc::now());
            if status == CameraStatus::Online
                && message.starts_with("spooling: origin unreachable for")
            {
                Ok(())
            } else {
                Err(format!("{status:?}: {message}"))
            }
        },
    )
    .await;
    wait_for_served(&camera, stopped_at + DURING, Duration::from_secs(45)).await;
    // Each frame served since the origin stopped reaches the spool (the last one may still be
    // on its way from the camera to the disk when it has been served).
    let spool = dir.path().join(format!("spool-{id}/frames"));
    wait_for(
        "the frames of the outage in the spool",
        Duration::from_secs(10),
        || async {
            let spooled = std::fs::read_dir(&spool).unwrap().count();
            if spooled >= DURING {
                Ok(())
            } else {
                Err(format!("{spooled} frames in the spool"))
            }
        },
    )
    .await;

    origin.restart().await;
    let second = origin.start_timelapse(id, "after the outage").await;
    let second_started: DateTime<Utc> = second["started_at"].as_str().unwrap().parse().unwrap();

    let images = wait_for(
        "every frame at the origin",
        Duration::from_secs(60),
        || async {
            let images = origin.images(id).await;
            if images.len() >= TOTAL && camera.served().len() == TOTAL {
                Ok(images)
            } else {
                Err(format!(
                    "{} images of {} served",
                    images.len(),
                    camera.served().len()
                ))
            }
        },
    )
    .await;
    let text = agent.metrics.render();
    agent.stop().await;
    assert_exactly_once_in_order(&images, &camera.served());
    for image in &images {
        let expected = if captured_at(image) < second_started {
            &first["id"]
        } else {
            &second["id"]
        };
        assert_eq!(
            &image["timelapse_id"], expected,
            "the frame captured at {} belongs to the timelapse running then",
            image["captured_at"]
        );
    }
    let labels = format!("camera_id=\"{id}\"");
    assert_eq!(
        read_counter(&text, "agent_frames_uploaded_total", &labels),
        TOTAL as f64
    );
    assert_eq!(
        read_counter(&text, "agent_frames_dropped_total", &labels),
        0.0
    );
    assert!(read_counter(&text, "agent_upload_failures_total", &labels) >= 1.0);
    let camera_now = origin.camera(id).await.unwrap();
    assert_eq!(camera_now["status"], "offline", "{camera_now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_upload_and_restarted_nothing_is_lost_or_stored_twice() {
    const TOTAL: usize = 10;
    let origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("porch").await;
    origin
        .put_schedule(id, json!({ "interval_seconds": 2, "timezone": "UTC" }))
        .await;
    let proxy = HoldingProxy::start(&origin.base).await;
    let camera =
        SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: TOTAL }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        camera_toml(&proxy.base, id, &token, &camera.url, dir.path(), ""),
    )
    .unwrap();
    let log = dir.path().join("agent.log");

    let mut agent = AgentProcess::start(&config, &log, &[]);
    wait_for("3 images", Duration::from_secs(30), || async {
        let n = origin.images(id).await.len();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} images"))
        }
    })
    .await;
    // The next upload reaches the origin, which stores it; its answer never comes back.
    proxy.hold_uploads(true);
    let held = proxy.wait_for_held_upload(Duration::from_secs(20)).await;
    agent.kill();
    proxy.hold_uploads(false);
    let stored: Vec<String> = origin
        .images(id)
        .await
        .iter()
        .map(|i| i["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert!(stored.contains(&held), "the origin stored the held upload");

    let mut agent = AgentProcess::start(&config, &log, &[]);
    let images = wait_for(
        "every frame at the origin",
        Duration::from_secs(60),
        || async {
            let images = origin.images(id).await;
            if images.len() >= TOTAL && camera.served().len() == TOTAL {
                Ok(images)
            } else {
                Err(format!(
                    "{} images of {} served",
                    images.len(),
                    camera.served().len()
                ))
            }
        },
    )
    .await;
    assert!(agent.terminate().success());
    assert_exactly_once_in_order(&images, &camera.served());
    // The held frame was sent again after the restart, and the origin said it had it.
    let answers: Vec<u16> = proxy
        .uploads()
        .iter()
        .filter(|(sha, _)| *sha == held)
        .map(|(_, status)| *status)
        .collect();
    assert_eq!(answers, vec![201, 200], "the held frame's uploads");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("frames in the spool from before"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_upload_in_flight_finish_and_keeps_the_spool() {
    let origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("shed").await;
    origin
        .put_schedule(id, json!({ "interval_seconds": 1, "timezone": "UTC" }))
        .await;
    let proxy = HoldingProxy::start(&origin.base).await;
    let camera = SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: 100 }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        camera_toml(&proxy.base, id, &token, &camera.url, dir.path(), ""),
    )
    .unwrap();
    let mut agent = AgentProcess::start(&config, &dir.path().join("agent.log"), &[]);
    proxy.hold_uploads(true);
    let held = proxy.wait_for_held_upload(Duration::from_secs(30)).await;
    // Frames go on being captured and spooled behind the held upload.
    let frames = dir.path().join(format!("spool-{id}/frames"));
    wait_for("3 frames in the spool", Duration::from_secs(10), || async {
        let n = std::fs::read_dir(&frames)
            .map_err(|e| e.to_string())?
            .count();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} frames"))
        }
    })
    .await;

    agent.send_sigterm();
    wait_for(
        "the agent to take the signal",
        Duration::from_secs(10),
        || {
            let log = agent.log_text();
            async move {
                if log.contains("SIGTERM: finishing the uploads in flight") {
                    Ok(())
                } else {
                    Err("not yet".to_owned())
                }
            }
        },
    )
    .await;
    assert!(
        agent.running(),
        "the agent left before its upload was answered"
    );
    proxy.release();
    let status = agent.wait_for_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");

    let stored: Vec<String> = origin
        .images(id)
        .await
        .iter()
        .map(|i| i["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert!(stored.contains(&held), "the upload in flight was finished");
    let kept: Vec<Vec<u8>> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(kept.len() >= 2, "the spool is kept: {} frames", kept.len());
    assert!(
        kept.iter().all(|jpeg| sha256_hex(jpeg) != held),
        "the finished upload left the spool"
    );
    let log = agent.log_text();
    assert!(log.contains("frames stay in the spool"), "{log}");
    let camera_now = origin.camera(id).await.unwrap();
    assert_eq!(camera_now["status_message"], "agent stopped");
}
