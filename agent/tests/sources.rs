//! Sources and schedules against a real origin: HTTP snapshots with Basic and Digest
//! authentication, a folder being written into, bad input of every kind (each a clear status,
//! never a crash), and a schedule changed by an operator (applied within 2 s; the agent
//! revalidates it with If-None-Match and keeps following it while the origin is away).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};
use support::*;
use timelapser_agent::clock::SystemClock;
use timelapser_agent::config::{CameraConfig, FileConfig};
use timelapser_agent::metrics::Metrics;
use timelapser_agent::Agent;

fn every_second() -> Value {
    json!({ "interval_seconds": 1, "timezone": "UTC" })
}

fn start_agent(cameras: Vec<CameraConfig>) -> Agent {
    let cameras = FileConfig { cameras }.resolve().unwrap();
    Agent::start(cameras, Arc::new(SystemClock), Metrics::new())
}

fn captured_at(image: &Value) -> DateTime<Utc> {
    image["captured_at"].as_str().unwrap().parse().unwrap()
}

fn shas(images: &[Value]) -> Vec<String> {
    images
        .iter()
        .map(|i| i["sha256"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_behind_basic_and_digest_authentication_arrive() {
    let origin = TestOrigin::start().await;
    let (basic_id, basic_token) = origin.create_camera("basic").await;
    let (digest_id, digest_token) = origin.create_camera("digest").await;
    for id in [basic_id, digest_id] {
        origin.put_schedule(id, every_second()).await;
    }
    let basic = SnapshotCamera::start(
        CameraAuth::Basic("admin", "open sesame"),
        CameraAnswer::Frames { limit: 3 },
    )
    .await;
    let digest = SnapshotCamera::start(
        CameraAuth::Digest("viewer", "s3cret"),
        CameraAnswer::Frames { limit: 3 },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("digest.password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let mut digest_camera = camera_config(
        &origin.base,
        digest_id,
        &digest_token,
        &digest.url,
        dir.path(),
    );
    digest_camera.username = Some("viewer".into());
    digest_camera.password_file = Some(password);
    // Credentials in the URL are taken out of it and answer the challenge.
    let basic_url = basic.url.replace("http://", "http://admin:open%20sesame@");
    let agent = start_agent(vec![
        camera_config(&origin.base, basic_id, &basic_token, &basic_url, dir.path()),
        digest_camera,
    ]);

    for (id, camera) in [(basic_id, &basic), (digest_id, &digest)] {
        let images = wait_for("3 images", Duration::from_secs(30), || async {
            let images = origin.images(id).await;
            if images.len() >= 3 {
                Ok(images)
            } else {
                Err(format!("{} images", images.len()))
            }
        })
        .await;
        assert_eq!(shas(&images), camera.served(), "camera {id}");
        assert_eq!(camera.refused(), 0, "every answer to a challenge was right");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_source_takes_complete_files_only() {
    let origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("ftp drop").await;
    origin.put_schedule(id, every_second()).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();

    // A file renamed into place, with the camera's own time on it.
    let complete = test_jpeg(1);
    let complete_at = DateTime::from_timestamp(Utc::now().timestamp() - 120, 0).unwrap();
    let part = inbox.join(".a.jpg.part");
    std::fs::write(&part, &complete).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(complete_at.into())
        .unwrap();
    std::fs::rename(&part, inbox.join("a.jpg")).unwrap();

    // A file written slowly, a chunk every 150 ms.
    let slow = test_jpeg(2);
    let slow_path = inbox.join("b.jpg");
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (slow, slow_path, writing) = (slow.clone(), slow_path.clone(), writing.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&slow_path).unwrap();
            let chunk = slow.len().div_ceil(30);
            for piece in slow.chunks(chunk) {
                file.write_all(piece).unwrap();
                file.flush().unwrap();
                std::thread::sleep(Duration::from_millis(150));
            }
            writing.store(false, std::sync::atomic::Ordering::SeqCst);
        })
    };

    let mut camera = camera_config(
        &origin.base,
        id,
        &token,
        &format!("dir://{}", inbox.display()),
        dir.path(),
    );
    camera.folder_settle_ms = 500;
    let agent = start_agent(vec![camera]);

    let images = wait_for(
        "the complete file's image",
        Duration::from_secs(20),
        || async {
            let images = origin.images(id).await;
            if images.is_empty() {
                Err("no image".into())
            } else {
                Ok(images)
            }
        },
    )
    .await;
    assert_eq!(shas(&images), vec![sha256_hex(&complete)]);
    assert_eq!(captured_at(&images[0]), complete_at, "the file's mtime");
    assert!(inbox.join("done/a.jpg").is_file(), "moved to done/");
    // The agent polls every second; while the slow file grows it is left alone.
    let mut polls_while_writing = 0;
    while writing.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(slow_path.is_file(), "a file being written was taken");
        let shas = shas(&origin.images(id).await);
        assert!(
            !shas.contains(&sha256_hex(&slow)),
            "a partial file was uploaded"
        );
        polls_while_writing += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    writer.join().unwrap();
    assert!(
        polls_while_writing >= 5,
        "the writer took {polls_while_writing} looks"
    );

    wait_for("the slow file's image", Duration::from_secs(20), || async {
        let shas = shas(&origin.images(id).await);
        if shas.contains(&sha256_hex(&slow)) {
            Ok(())
        } else {
            Err(format!("{shas:?}"))
        }
    })
    .await;
    assert!(inbox.join("done/b.jpg").is_file());
    assert_eq!(
        std::fs::read(inbox.join("done/b.jpg")).unwrap(),
        slow,
        "the whole file"
    );
    assert_eq!(origin.images(id).await.len(), 2);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_status_and_never_a_crash() {
    let origin = TestOrigin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = SnapshotCamera::start(
        CameraAuth::Digest("viewer", "right"),
        CameraAnswer::Frames { limit: 100 },
    )
    .await;
    let html = SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Html).await;
    let fine = SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: 1000 }).await;
    let closed_port = timelapser_support::free_port().unwrap();
    // A spool under a regular file cannot be created, whoever the agent runs as.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let password = dir.path().join("wrong.password");
    std::fs::write(&password, "wrong").unwrap();

    let mut config = String::new();
    let mut expected = Vec::new();
    for (name, source, extra, message) in [
        (
            "unreachable",
            format!("http://127.0.0.1:{closed_port}/snapshot.jpg"),
            String::new(),
            "HTTP snapshot: connection refused".to_owned(),
        ),
        (
            "wrong credentials",
            wrong.url.clone(),
            format!(
                "username = \"viewer\"\npassword_file = {:?}",
                password.display().to_string()
            ),
            "HTTP snapshot: wrong credentials (401 Unauthorized)".to_owned(),
        ),
        (
            "not a jpeg",
            html.url.clone(),
            String::new(),
            "HTTP snapshot: the camera answered text/html".to_owned(),
        ),
        (
            "unwritable spool",
            fine.url.clone(),
            format!(
                "spool_dir = {:?}",
                blocker.join("spool").display().to_string()
            ),
            "spool: cannot create".to_owned(),
        ),
    ] {
        let (id, token) = origin.create_camera(name).await;
        origin.put_schedule(id, every_second()).await;
        let table = camera_toml(&origin.base, id, &token, &source, dir.path(), &extra);
        config.push_str(&table);
        expected.push((id, name, message));
    }
    let config_path = dir.path().join("agent.toml");
    std::fs::write(&config_path, &config).unwrap();

    // `check` names each problem and fails.
    let (status, verdicts) = run_check(&config_path);
    assert_eq!(status.code(), Some(1), "{verdicts}");
    for (_, _, message) in &expected {
        assert!(
            verdicts.contains(message.as_str()),
            "{message:?} in:\n{verdicts}"
        );
    }
    assert_eq!(verdicts.matches(": FAIL\n").count(), 4, "{verdicts}");

    // And a camera with its lens cap on, whose black frames are not uploaded.
    let (capped_id, capped_token) = origin.create_camera("lens cap").await;
    origin.put_schedule(capped_id, every_second()).await;
    let capped = SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Black).await;
    let mut with_capped = config.clone();
    with_capped.push_str(&camera_toml(
        &origin.base,
        capped_id,
        &capped_token,
        &capped.url,
        dir.path(),
        "blank_frames = \"skip\"",
    ));
    std::fs::write(&config_path, &with_capped).unwrap();

    let mut agent = AgentProcess::start(&config_path, &dir.path().join("agent.log"), &[]);
    origin
        .wait_for_status(capped_id, Duration::from_secs(30), |status, message| {
            status == "online" && message == "frames are black"
        })
        .await;
    for (id, name, message) in &expected {
        let shown = origin
            .wait_for_status(*id, Duration::from_secs(30), |status, shown| {
                status == "error" && shown.starts_with(message.as_str())
            })
            .await;
        eprintln!("{name}: {shown}");
    }
    // Still running, still saying so: no crash, no restart loop.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(agent.running(), "the agent exited:\n{}", agent.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (id, _, message) in &expected {
        let camera = origin.camera(*id).await.unwrap();
        assert_eq!(camera["status"], "error");
        assert!(camera["status_message"]
            .as_str()
            .unwrap()
            .starts_with(message.as_str()));
    }
    assert!(capped.served().len() >= 2);
    assert!(
        origin.images(capped_id).await.is_empty(),
        "black frames were uploaded"
    );
    let status = agent.terminate();
    assert!(status.success(), "{status}");
    for (id, _, _) in &expected {
        let camera = origin.camera(*id).await.unwrap();
        assert_eq!(
            (camera["status"].as_str(), camera["status_message"].as_str()),
            (Some("offline"), Some("agent stopped"))
        );
    }
}

/// `HH:MM`, `hours` from now (UTC), wrapping around midnight.
fn hh_mm_from_now(hours: i64) -> String {
    let t = Utc::now() + chrono::Duration::hours(hours);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_change_applies_within_two_seconds_and_survives_the_origin_going_away() {
    let mut origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("scheduled").await;
    origin.put_schedule(id, every_second()).await;
    let camera =
        SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: 10_000 }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = camera_config(&origin.base, id, &token, &camera.url, dir.path());
    let agent = start_agent(vec![config.clone()]);
    wait_for("2 images", Duration::from_secs(20), || async {
        let n = origin.images(id).await.len();
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} images"))
        }
    })
    .await;

    // A window that closed an hour ago and opens in an hour: nothing now.
    origin
        .put_schedule(
            id,
            json!({ "interval_seconds": 1, "timezone": "UTC",
                    "windows": [{ "start": hh_mm_from_now(1), "end": hh_mm_from_now(-1) }] }),
        )
        .await;
    let closed_at = Utc::now();
    // Watch for 4 s: nothing may be captured later than 2 s after the change.
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        let late: Vec<_> = origin
            .images(id)
            .await
            .iter()
            .map(captured_at)
            .filter(|t| *t > closed_at + chrono::Duration::seconds(2))
            .collect();
        assert!(late.is_empty(), "frames outside the window: {late:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Open again, every 2 s.
    origin
        .put_schedule(
            id,
            json!({ "interval_seconds": 2, "timezone": "UTC",
                    "windows": [{ "start": hh_mm_from_now(-1), "end": hh_mm_from_now(1) }] }),
        )
        .await;
    let opened_at = Utc::now();
    let resumed = wait_for("frames again", Duration::from_secs(6), || async {
        let images = origin.images(id).await;
        match images.iter().map(captured_at).find(|t| *t > opened_at) {
            Some(t) => Ok(t),
            None => Err(format!("{} images, none after {opened_at}", images.len())),
        }
    })
    .await;
    assert!(
        resumed <= opened_at + chrono::Duration::seconds(2 + 2),
        "resumed at {resumed}, opened at {opened_at}"
    );
    for t in origin.images(id).await.iter().map(captured_at) {
        assert!(
            t <= closed_at + chrono::Duration::seconds(2)
                || t > opened_at - chrono::Duration::seconds(1),
            "a frame at {t}, outside the window ({closed_at} to {opened_at})"
        );
        if t > opened_at + chrono::Duration::seconds(2) {
            assert_eq!(t.timestamp() % 2, 0, "{t} is off the 2 s grid");
        }
    }
    agent.stop().await;

    // Started again, the agent revalidates what it kept: 304.
    let schedule_304s = || async {
        let text = reqwest::Client::new()
            .get(origin.url("/metrics"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let count = timelapser_agent::metrics::read_counter(
            &text,
            "http_requests_total",
            "route=\"/api/cameras/{id}/schedule\",method=\"GET\",status=\"304\"",
        );
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("schedule")).collect();
        Ok::<(f64, String), String>((count, lines.join("\n")))
    };
    let before = schedule_304s().await.unwrap().0;
    let agent = start_agent(vec![config.clone()]);
    wait_for(
        "a 304 for the kept schedule",
        Duration::from_secs(10),
        || async {
            let (now, lines) = schedule_304s().await?;
            if now > before {
                Ok(())
            } else {
                Err(format!("{now} 304s in:\n{lines}"))
            }
        },
    )
    .await;
    agent.stop().await;

    // Without the origin, a restarted agent follows the kept schedule (every 2 s).
    origin.stop().await;
    let agent = start_agent(vec![config.clone()]);
    let frames = dir.path().join(format!("spool-{id}/frames"));
    let names = wait_for(
        "frames spooled without the origin",
        Duration::from_secs(10),
        || async {
            let names: Vec<String> = std::fs::read_dir(&frames)
                .map_err(|e| e.to_string())?
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            if names.len() >= 2 {
                Ok(names)
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await;
    for name in names {
        let key = timelapser_agent::spool::FrameKey::parse(&name).unwrap();
        assert_eq!(
            key.captured_at.timestamp() % 2,
            0,
            "{name} is off the 2 s grid"
        );
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_left_in_the_spool_are_uploaded_with_their_time_and_a_refused_one_set_aside() {
    let origin = TestOrigin::start().await;
    let (id, token) = origin.create_camera("after a crash").await;
    origin
        .put_schedule(
            id,
            json!({ "interval_seconds": 60, "timezone": "UTC", "paused": true }),
        )
        .await;
    let camera = SnapshotCamera::start(CameraAuth::Open, CameraAnswer::Frames { limit: 10 }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = camera_config(&origin.base, id, &token, &camera.url, dir.path());
    // What a previous run left: a frame too old for the origin (422), then two recent ones.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let left = [
        (now - chrono::Duration::days(400), test_jpeg(100)),
        (now - chrono::Duration::seconds(20), test_jpeg(101)),
        (now - chrono::Duration::seconds(10), test_jpeg(102)),
    ];
    {
        let spool =
            timelapser_agent::spool::Spool::open(&config.spool_dir, config.spool_limit_bytes)
                .unwrap();
        for (at, jpeg) in left.iter().rev() {
            spool.add(jpeg, *at).unwrap();
        }
    }
    let agent = start_agent(vec![config.clone()]);
    let images = wait_for("the two recent frames", Duration::from_secs(20), || async {
        let images = origin.images(id).await;
        if images.len() >= 2 {
            Ok(images)
        } else {
            Err(format!("{} images", images.len()))
        }
    })
    .await;
    assert_eq!(
        images.iter().map(captured_at).collect::<Vec<_>>(),
        vec![left[1].0, left[2].0],
        "uploaded with the capture times they were spooled with, in order"
    );
    assert_eq!(
        shas(&images),
        vec![sha256_hex(&left[1].1), sha256_hex(&left[2].1)]
    );
    let message = origin
        .wait_for_status(id, Duration::from_secs(10), |status, message| {
            status == "online" && message.contains("frame refused (422")
        })
        .await;
    assert!(message.ends_with("schedule paused"), "{message}");
    let rejected: Vec<_> = std::fs::read_dir(config.spool_dir.join("rejected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(std::fs::read(&rejected[0]).unwrap(), left[0].1);
    assert!(camera.served().is_empty(), "nothing captured while paused");
    agent.stop().await;
}
