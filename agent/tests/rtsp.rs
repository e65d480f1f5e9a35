//! An RTSP camera (GStreamer's RTSP server, a real session over TCP) recorded by the agent's
//! binary, the server stopped and started again mid-run: the agent reconnects, frames resume
//! within three intervals, the camera's status shows the outage and the recovery, and the
//! password in the camera's URL never reaches the log.
//!
//! Needs Debian's GStreamer packages (`cargo xtask test` installs them); fails, naming them,
//! when they are missing.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::*;
use timelapser_agent::metrics::read_counter;

const INTERVAL_SECONDS: i64 = 3;

fn captured_at(image: &Value) -> DateTime<Utc> {
    image["captured_at"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_camera_that_goes_away_is_reconnected_and_its_outage_shown() {
    let mut rtsp = RtspServer::start().await;
    let origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("rtsp").await;
    origin
        .put_schedule(
            id,
            json!({ "interval_seconds": INTERVAL_SECONDS, "timezone": "UTC" }),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        camera_toml(
            &origin.base,
            id,
            &token,
            &rtsp.url("viewer:hunter2@"),
            dir.path(),
            "",
        ),
    )
    .unwrap();

    let (status, verdict) = run_check(&config);
    assert!(status.success(), "{verdict}");
    assert!(verdict.contains("a 320×240 JPEG"), "{verdict}");
    assert!(verdict.contains("rtsp://***@127.0.0.1"), "{verdict}");
    assert!(!verdict.contains("hunter2"), "{verdict}");

    let metrics_port = timelapser_support::free_port().unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = AgentProcess::start(
        &config,
        &log,
        &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")],
    );
    wait_for("2 images", Duration::from_secs(40), || async {
        let n = origin.images(id).await.len();
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} images"))
        }
    })
    .await;
    origin
        .wait_for_status(id, Duration::from_secs(10), |s, m| {
            s == "online" && m == "ok"
        })
        .await;

    rtsp.stop();
    let outage = origin
        .wait_for_status(id, Duration::from_secs(20), |s, m| {
            s == "error" && m.starts_with("RTSP: ")
        })
        .await;
    eprintln!("during the outage: {outage}");
    assert!(!outage.contains("hunter2"), "{outage}");

    rtsp.restart().await;
    let restarted = Utc::now();
    let within = chrono::Duration::seconds(3 * INTERVAL_SECONDS);
    let resumed = wait_for(
        "a frame after the restart",
        Duration::from_secs(3 * INTERVAL_SECONDS as u64 + 10),
        || async {
            let images = origin.images(id).await;
            match images.iter().map(captured_at).find(|t| *t > restarted) {
                Some(t) => Ok(t),
                None => Err(format!("{} images, none after the restart", images.len())),
            }
        },
    )
    .await;
    assert!(
        resumed <= restarted + within,
        "frames resumed at {resumed}, more than three intervals after the restart at \
         {restarted}; the agent's log:\n{}",
        agent.log_text()
    );
    origin
        .wait_for_status(id, Duration::from_secs(10), |s, m| {
            s == "online" && m == "ok"
        })
        .await;

    // A server that hangs (connections open, nothing flowing): the stall is noticed within
    // two intervals, ffmpeg is restarted, and the stream comes back when the server does.
    rtsp.freeze();
    let stall = origin
        .wait_for_status(id, Duration::from_secs(20), |s, m| {
            s == "error" && m.starts_with("RTSP: ") && m.contains("no frame")
        })
        .await;
    eprintln!("while the server hangs: {stall}");
    origin
        .wait_for_status(id, Duration::from_secs(20), |_, m| {
            m.starts_with("RTSP: the stream stalled")
        })
        .await;
    rtsp.thaw();
    origin
        .wait_for_status(id, Duration::from_secs(30), |s, m| {
            s == "online" && m == "ok"
        })
        .await;

    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = format!("camera_id=\"{id}\"");
    assert!(
        read_counter(&text, "agent_source_reconnects_total", &labels) >= 2.0,
        "{text}"
    );
    assert!(read_counter(&text, "agent_frames_uploaded_total", &labels) >= 3.0);

    assert!(agent.terminate().success());
    for t in origin.images(id).await.iter().map(captured_at) {
        assert_eq!(t.timestamp() % INTERVAL_SECONDS, 0, "{t} is off the grid");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains("hunter2"),
        "the password is in the log:\n{log}"
    );
    assert!(log.contains("rtsp://***@127.0.0.1"), "{log}");
    assert!(log.contains("reconnecting in"), "{log}");
}

/// A camera that asks for credentials: with the right ones (from a password file) it is
/// recorded; with wrong ones (in the URL) `check` and the camera's status say so plainly, no
/// password appears anywhere, and the agent keeps running without a restart loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_camera_with_wrong_credentials_is_a_clear_status_and_never_a_crash() {
    let rtsp = RtspServer::start_with_credentials("viewer:hunter2").await;
    let origin = TestOrigin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("right.password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let (right, right_token) = origin.create_camera("right credentials").await;
    let (wrong, wrong_token) = origin.create_camera("wrong credentials").await;
    for id in [right, wrong] {
        origin
            .put_schedule(
                id,
                json!({ "interval_seconds": INTERVAL_SECONDS, "timezone": "UTC" }),
            )
            .await;
    }
    let config = dir.path().join("agent.toml");
    let mut text = camera_toml(
        &origin.base,
        right,
        &right_token,
        &rtsp.url(""),
        dir.path(),
        &format!(
            "username = \"viewer\"\npassword_file = {:?}",
            password.display().to_string()
        ),
    );
    text.push_str(&camera_toml(
        &origin.base,
        wrong,
        &wrong_token,
        &rtsp.url("viewer:letmein@"),
        dir.path(),
        "",
    ));
    std::fs::write(&config, text).unwrap();

    let (status, verdict) = run_check(&config);
    assert_eq!(status.code(), Some(1), "{verdict}");
    assert!(
        verdict.contains("RTSP: wrong credentials (401 Unauthorized)"),
        "{verdict}"
    );
    assert_eq!(verdict.matches(": FAIL\n").count(), 1, "{verdict}");
    assert!(verdict.contains("a 320×240 JPEG"), "{verdict}");

    let log = dir.path().join("agent.log");
    let mut agent = AgentProcess::start(&config, &log, &[]);
    let shown = origin
        .wait_for_status(wrong, Duration::from_secs(30), |s, m| {
            s == "error" && m.starts_with("RTSP: wrong credentials (401 Unauthorized)")
        })
        .await;
    wait_for(
        "a frame of the camera with the right credentials",
        Duration::from_secs(30),
        || async {
            match origin.images(right).await.len() {
                0 => Err("no image yet".to_owned()),
                n => Ok(n),
            }
        },
    )
    .await;
    assert!(agent.running(), "the agent exited:\n{}", agent.log_text());
    assert!(origin.images(wrong).await.is_empty());
    assert!(agent.terminate().success());
    let log = std::fs::read_to_string(&log).unwrap();
    for secret in ["hunter2", "letmein"] {
        assert!(!verdict.contains(secret), "{verdict}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!log.contains(secret), "a password is in the log:\n{log}");
    }
}
