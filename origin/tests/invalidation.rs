//! The in-memory cache: every event kind drops exactly the keys it makes stale, so the next
//! read is fresh and unrelated entries survive; identical misses load once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ADMIN;
use reqwest::StatusCode;
use serde_json::{json, Value};
use timelapser_core::events::Event;
use timelapser_core::keys;
use timelapser_origin::bus::LoggedEvent;
use timelapser_origin::cache::Represented;

/// Warms the cache with every key of two cameras, one timelapse, settings and stats.
async fn warm(origin: &common::TestOrigin, a: i64, b: i64, timelapse: i64) {
    for path in [
        "/api/cameras".to_owned(),
        format!("/api/cameras/{a}"),
        format!("/api/cameras/{b}"),
        format!("/api/cameras/{a}/latest-image"),
        format!("/api/cameras/{b}/latest-image"),
        format!("/api/timelapses/{timelapse}"),
        "/api/settings".to_owned(),
        "/api/dashboard/stats".to_owned(),
    ] {
        assert_eq!(origin.get(&path).await.status(), StatusCode::OK, "{path}");
    }
}

async fn cached(origin: &common::TestOrigin) -> Vec<String> {
    let cache = &origin.state().cache;
    let mut present = Vec::new();
    for (name, key) in [
        // Read without credentials: the public's entries.
        ("list", keys::public_camera_list()),
        ("a", keys::camera(1)),
        ("b", keys::camera(2)),
        ("a_latest", keys::latest_image(1)),
        ("b_latest", keys::latest_image(2)),
        ("timelapse", keys::timelapse(1)),
        ("settings", keys::settings()),
        ("stats", keys::public_dashboard_stats()),
    ] {
        if cache.contains(&key).await {
            present.push(name.to_owned());
        }
    }
    present
}

async fn setup(origin: &common::TestOrigin) -> (String, String) {
    let (a, token_a) = origin.create_camera("A").await;
    let (b, token_b) = origin.create_camera("B").await;
    assert_eq!((a, b), (1, 2));
    origin.capture(a, &token_a, common::jpeg(64, 48, 1)).await;
    origin.capture(b, &token_b, common::jpeg(64, 48, 2)).await;
    let r = origin
        .client
        .post(origin.url("/api/cameras/1/timelapses"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    warm(origin, a, b, 1).await;
    assert_eq!(cached(origin).await.len(), 8);
    (token_a, token_b)
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

on_both!(
    image_captured_drops_that_camera_and_aggregates_only,
    |origin| {
        let (token_a, _) = setup(origin).await;
        let image: Value = origin
            .capture(1, &token_a, common::jpeg(64, 48, 3))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(cached(origin).await, names(&["b", "b_latest", "settings"]));
        // The next reads are fresh.
        let latest: Value = origin
            .get("/api/cameras/1/latest-image")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(latest["id"], image["id"]);
        let camera: Value = origin.get("/api/cameras/1").await.json().await.unwrap();
        assert_eq!(camera["image_count"], 2);
        let timelapse: Value = origin.get("/api/timelapses/1").await.json().await.unwrap();
        assert_eq!(timelapse["image_count"], 1);
    }
);

on_both!(
    camera_status_changed_drops_that_camera_and_aggregates,
    |origin| {
        let (token_a, _) = setup(origin).await;
        let r = origin
            .client
            .put(origin.url("/api/cameras/1/status"))
            .bearer_auth(&token_a)
            .json(&json!({"status": "error", "message": "fogged"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            cached(origin).await,
            names(&["b", "b_latest", "timelapse", "settings"])
        );
        let camera: Value = origin.get("/api/cameras/1").await.json().await.unwrap();
        assert_eq!(camera["status"], "error");
        let stats: Value = origin
            .get("/api/dashboard/stats")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats["cameras"]["error"], 1);
    }
);

on_both!(camera_created_updated_deleted, |origin| {
    setup(origin).await;
    origin.create_camera("C").await;
    assert_eq!(
        cached(origin).await,
        names(&["a", "b", "a_latest", "b_latest", "timelapse", "settings"])
    );
    let list: Vec<Value> = origin.get("/api/cameras").await.json().await.unwrap();
    assert_eq!(list.len(), 3);

    warm(origin, 1, 2, 1).await;
    let r = origin
        .client
        .patch(origin.url("/api/cameras/2"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "B2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        cached(origin).await,
        names(&["a", "a_latest", "timelapse", "settings"])
    );
    let b: Value = origin.get("/api/cameras/2").await.json().await.unwrap();
    assert_eq!(b["name"], "B2");

    warm(origin, 1, 2, 1).await;
    let r = origin
        .client
        .delete(origin.url("/api/cameras/2"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(cached(origin).await, names(&["a", "a_latest", "settings"]));
    assert_eq!(
        origin.get("/api/cameras/2").await.status(),
        StatusCode::NOT_FOUND
    );
});

on_both!(timelapse_events_drop_that_timelapse, |origin| {
    setup(origin).await;
    let r = origin
        .client
        .post(origin.url("/api/timelapses/1/stop"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        cached(origin).await,
        names(&["list", "a", "b", "a_latest", "b_latest", "settings", "stats"])
    );
    let t: Value = origin.get("/api/timelapses/1").await.json().await.unwrap();
    assert_eq!(t["status"], "stopped");
});

on_both!(
    settings_updated_drops_settings_and_a_new_time_zone_the_stats,
    |origin| {
        setup(origin).await;
        let r = origin.put_settings(json!({"site_name": "Farm"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            cached(origin).await,
            names(&[
                "list",
                "a",
                "b",
                "a_latest",
                "b_latest",
                "timelapse",
                "stats"
            ])
        );
        let s: Value = origin.get("/api/settings").await.json().await.unwrap();
        assert_eq!(s["site_name"], "Farm");
        // The time zone decides which frames are "today": the dashboard's numbers go too.
        let r = origin
            .put_settings(json!({"timezone": "Europe/Paris"}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            cached(origin).await,
            names(&["list", "a", "b", "a_latest", "b_latest", "timelapse"])
        );
    }
);

on_both!(
    video_events_drop_stats_and_progress_drops_nothing,
    |origin| {
        setup(origin).await;
        let video: timelapser_core::resources::Video = serde_json::from_value(json!({
        "id": 1, "timelapse_id": 1, "camera_id": 1, "status": "rendering", "progress": 0.5, "fps": 24,
        "frame_count": 1, "bytes": null, "sha256": null, "url": null, "error": null,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
        let bus = &origin.state().bus;
        bus.publish([LoggedEvent::new(
            1000,
            Event::VideoProgress {
                video: video.clone(),
            },
        )]);
        assert_eq!(cached(origin).await.len(), 8);
        bus.publish([LoggedEvent::new(
            1001,
            Event::VideoQueued {
                video: video.clone(),
            },
        )]);
        assert_eq!(
            cached(origin).await,
            names(&[
                "list",
                "a",
                "b",
                "a_latest",
                "b_latest",
                "timelapse",
                "settings"
            ])
        );
        warm(origin, 1, 2, 1).await;
        bus.publish([LoggedEvent::new(
            1002,
            Event::VideoReady {
                video: video.clone(),
            },
        )]);
        assert!(!cached(origin).await.contains(&"stats".to_owned()));
        warm(origin, 1, 2, 1).await;
        bus.publish([LoggedEvent::new(1003, Event::VideoFailed { video })]);
        assert!(!cached(origin).await.contains(&"stats".to_owned()));
        for event in [
            Event::StatsUpdated(Default::default()),
            Event::Resync {
                reason: "test".into(),
            },
            Event::HealthChanged {
                component: "database".into(),
                status: timelapser_core::resources::HealthStatus::Ok,
                message: None,
            },
        ] {
            warm(origin, 1, 2, 1).await;
            bus.publish([LoggedEvent::new(1004, event)]);
            assert_eq!(cached(origin).await.len(), 8);
        }
    }
);

fn represented(body: &str) -> Represented<()> {
    Represented {
        value: (),
        body: body.to_owned().into(),
        etag: timelapser_core::EntityTag::strong(body).unwrap(),
    }
}

#[tokio::test]
async fn a_burst_of_identical_misses_runs_one_load() {
    let cache = timelapser_origin::cache::ResponseCache::new(1 << 20, &Default::default());
    let loads = Arc::new(AtomicUsize::new(0));
    // The load is held until all 50 requests have missed, so they all meet it in flight.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let key = keys::dashboard_stats();
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads, key, gate) =
                (cache.clone(), loads.clone(), key.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&key, Duration::from_secs(60), || {
                        let (loads, gate) = (loads.clone(), gate.clone());
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            let _open = gate.acquire().await.unwrap();
                            Ok(represented("{}"))
                        }
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let misses = cache.stats().await.misses;
        if misses == 50 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {misses} of 50 requests missed within 10 s"
        );
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for r in futures::future::join_all(requests).await {
        assert_eq!(r.unwrap().body, "{}");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let stats = cache.stats().await;
    assert_eq!(stats.loads, 1);
    assert_eq!(stats.entries, 1);
}

#[tokio::test]
async fn a_load_that_raced_an_invalidation_is_not_served_afterwards() {
    // A load starts, a write invalidates the key, the stale load finishes: the next read must
    // load again rather than serve what the first load produced.
    let cache = timelapser_origin::cache::ResponseCache::new(1 << 20, &Default::default());
    let key = keys::camera(1);
    let version = Arc::new(AtomicUsize::new(1));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = {
        let (cache, key, version, gate) =
            (cache.clone(), key.clone(), version.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_load(&key, Duration::from_secs(60), || {
                    let (version, started, gate) =
                        (version.clone(), started_tx.clone(), gate.clone());
                    async move {
                        let seen = version.load(Ordering::SeqCst);
                        if let Some(tx) = started.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        let _open = gate.acquire().await.unwrap();
                        Ok(represented(&seen.to_string()))
                    }
                })
                .await
                .unwrap()
        })
    };
    started_rx.await.unwrap();
    version.store(2, Ordering::SeqCst);
    cache.invalidate(&timelapser_core::keys::Entity::Camera.member(1));
    gate.add_permits(1);
    // The racing read began before the write, so either version may answer it.
    let _ = slow.await.unwrap();
    let fresh = cache
        .get_or_load(&key, Duration::from_secs(60), || {
            let version = version.clone();
            async move { Ok(represented(&version.load(Ordering::SeqCst).to_string())) }
        })
        .await
        .unwrap();
    assert_eq!(fresh.body, "2");
}
