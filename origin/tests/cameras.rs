//! Cameras, timelapses, status and the dashboard over a real socket, on SQLite and PostgreSQL.

mod common;

use common::{header, problem, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(create_requires_the_admin_token_and_valid_names, |origin| {
    let post = |token: Option<&str>, body: &str| {
        let mut r = origin
            .client
            .post(origin.url("/api/cameras"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = post(None, r#"{"name":"a"}"#).await.unwrap();
    assert_eq!(
        header(r.headers(), "www-authenticate"),
        "Bearer realm=\"timelapser\""
    );
    problem(r, StatusCode::UNAUTHORIZED).await;
    problem(
        post(Some("wrong-token-value"), r#"{"name":"a"}"#)
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        post(Some(ADMIN), r#"{"name":"  "}"#).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        post(Some(ADMIN), &format!(r#"{{"name":"{}"}}"#, "x".repeat(101)))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        post(Some(ADMIN), r#"{"nam":"a"}"#).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        post(Some(ADMIN), r#"{"name":"a""#).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Nothing was created by any of those.
    let list: Vec<Value> = origin.get("/api/cameras").await.json().await.unwrap();
    assert!(list.is_empty());
    assert_eq!(origin.last_event_id().await, 0);

    let r = post(Some(ADMIN), r#"{"name":" Roof "}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(r.headers(), "location"), "/api/cameras/1");
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["camera"]["name"], "Roof");
    assert_eq!(body["camera"]["status"], "unknown");
    assert_eq!(body["camera"]["image_count"], 0);
    assert!(body["camera"]["latest_image"].is_null());
    assert!(body["token"].as_str().unwrap().starts_with("tl_cam_"));
    let events = origin.events_after(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "camera_created");
    assert_eq!(events[0].2["camera"]["id"], 1);
});

on_both!(camera_reads_carry_validators_and_answer_304, |origin| {
    let (id, _) = origin.create_camera("Roof").await;
    let r = origin.get(&format!("/api/cameras/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), "no-cache");
    let etag = header(r.headers(), "etag").to_owned();
    assert!(
        etag.starts_with(&format!("\"{id}-")),
        "composite tag {etag}"
    );
    let r = origin
        .get_with(&format!("/api/cameras/{id}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(r.headers(), "etag"), etag);
    assert_eq!(header(r.headers(), "cache-control"), "no-cache");
    assert!(r.bytes().await.unwrap().is_empty());
    // Weak comparison for If-None-Match.
    let weak = format!("W/{etag}");
    let r = origin
        .get_with(&format!("/api/cameras/{id}"), &[("if-none-match", &weak)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    let list = origin.get("/api/cameras").await;
    let list_etag = header(list.headers(), "etag").to_owned();
    assert!(list_etag.starts_with("\"c1-"));
    let r = origin
        .get_with("/api/cameras", &[("if-none-match", &list_etag)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // HEAD answers like GET without a body.
    let head = origin
        .client
        .head(origin.url(&format!("/api/cameras/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(head.headers(), "etag"), etag);
    assert!(head.bytes().await.unwrap().is_empty());

    // A rename changes both tags.
    let r = origin
        .client
        .patch(origin.url(&format!("/api/cameras/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Roof east"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let renamed: Value = r.json().await.unwrap();
    assert_eq!(renamed["name"], "Roof east");
    let r = origin
        .get_with(&format!("/api/cameras/{id}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = origin
        .get_with("/api/cameras", &[("if-none-match", &list_etag)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list[0]["name"], "Roof east");
});

on_both!(unknown_and_malformed_ids_are_problems, |origin| {
    problem(origin.get("/api/cameras/999").await, StatusCode::NOT_FOUND).await;
    problem(
        origin.get("/api/cameras/abc").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin.get("/api/cameras/999/latest-image").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(origin.get("/api/timelapses/5").await, StatusCode::NOT_FOUND).await;
    problem(origin.get("/api/videos/5").await, StatusCode::NOT_FOUND).await;
    problem(origin.get("/api/nothing-here").await, StatusCode::NOT_FOUND).await;
    let r = origin
        .client
        .delete(origin.url("/api/cameras"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
    let r = origin
        .client
        .delete(origin.url("/api/cameras/999"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
    let r = origin
        .client
        .patch(origin.url("/api/cameras/999"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
});

on_both!(
    delete_removes_the_camera_its_images_and_unshared_files,
    |origin| {
        let (a, token_a) = origin.create_camera("A").await;
        let (b, token_b) = origin.create_camera("B").await;
        let shared = common::jpeg(320, 240, 1);
        assert_eq!(
            origin.capture(a, &token_a, shared.clone()).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            origin
                .capture(a, &token_a, common::jpeg(320, 240, 2))
                .await
                .status(),
            StatusCode::CREATED
        );
        assert_eq!(
            origin.capture(b, &token_b, shared).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(origin.media_files("images").len(), 2);

        let r = origin
            .client
            .delete(origin.url(&format!("/api/cameras/{a}")))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
        let r = origin
            .client
            .delete(origin.url(&format!("/api/cameras/{a}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        problem(
            origin.get(&format!("/api/cameras/{a}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        // Its media goes in the background: the frame B shares is kept; A's own frame goes.
        origin
            .wait_for_log("the camera's images deleted", |log| {
                log.iter().any(|e| {
                    e.1 == "images_deleted"
                        && e.2["camera_id"] == a
                        && e.2["reason"] == "camera_deleted"
                        && e.2["image_ids"].as_array().unwrap().len() == 2
                })
            })
            .await;
        // Its files go after the rows' transaction commits.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while origin.media_files("images").len() > 1 || origin.media_files("thumbnails").len() > 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "A's own frame or thumbnail is still on disk after 20 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(origin.media_files("images").len(), 1);
        assert_eq!(origin.media_files("thumbnails").len(), 1);
        let events = origin.events_after(0).await;
        let deleted = events.iter().position(|e| e.1 == "camera_deleted").unwrap();
        assert_eq!(events[deleted].2, json!({"camera_id": a}));
        assert!(
            events[deleted + 1..]
                .iter()
                .all(|e| e.1 == "images_deleted"),
            "only the deletion of its images follows: {events:?}"
        );
        let stats: Value = origin
            .get("/api/dashboard/stats")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats["cameras"]["total"], 1);
        assert_eq!(stats["images_total"], 1);
    }
);

on_both!(status_reports_log_an_event_only_on_change, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let (_, other_token) = origin.create_camera("Other").await;
    let put = |token: &str, body: Value| {
        origin
            .client
            .put(origin.url(&format!("/api/cameras/{id}/status")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    problem(
        put("nobody", json!({"status": "online"})).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        put(&other_token, json!({"status": "online"}))
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        put(ADMIN, json!({"status": "online"})).await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        put(&token, json!({"status": "sleeping"})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(&token, json!({"status": "unknown"})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(&token, json!({"state": "online"})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let start = origin.last_event_id().await;

    let r = put(&token, json!({"status": "online"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let camera: Value = r.json().await.unwrap();
    assert_eq!(camera["status"], "online");
    assert_eq!(
        put(&token, json!({"status": "online"}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        put(&token, json!({"status": "error", "message": "lens fogged"}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let events = origin.events_after(start).await;
    let names: Vec<_> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(names, ["camera_status_changed", "camera_status_changed"]);
    assert_eq!(events[1].2["status"], "error");
    assert_eq!(events[1].2["message"], "lens fogged");
    assert_eq!(events[1].2["camera_id"], id);
    let camera: Value = origin
        .get(&format!("/api/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera["status"], "error");
    assert_eq!(camera["status_message"], "lens fogged");
});

on_both!(offline_sweep_marks_silent_cameras_once, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let (quiet, _) = origin.create_camera("Never heard from").await;
    assert_eq!(
        origin
            .capture(id, &token, common::jpeg(64, 48, 1))
            .await
            .status(),
        StatusCode::CREATED
    );
    let start = origin.last_event_id().await;
    // A long threshold leaves it online.
    let now = timelapser_origin::db::now();
    let changed = timelapser_origin::services::cameras::sweep_offline(origin.state(), 3600, now)
        .await
        .unwrap();
    assert!(changed.is_empty());
    // A minute later, with a 30 s threshold: offline.
    let later = now + chrono::Duration::seconds(60);
    let changed = timelapser_origin::services::cameras::sweep_offline(origin.state(), 30, later)
        .await
        .unwrap();
    assert_eq!(changed, vec![id]);
    let again = timelapser_origin::services::cameras::sweep_offline(origin.state(), 30, later)
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "an offline camera does not go offline twice"
    );
    let events = origin.events_after(start).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "camera_status_changed");
    assert_eq!(events[0].2["status"], "offline");
    let camera: Value = origin
        .get(&format!("/api/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera["status"], "offline");
    let never: Value = origin
        .get(&format!("/api/cameras/{quiet}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(never["status"], "unknown");
});

on_both!(timelapses_collect_captures_and_stop, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let start = |name: &str| {
        origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/timelapses")))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name }))
            .send()
    };
    problem(
        origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/timelapses")))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let r = start("Spring").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "running");
    let first_id = first["id"].as_i64().unwrap();
    let image: Value = origin
        .capture(id, &token, common::jpeg(64, 48, 7))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(image["timelapse_id"], first_id);

    let second: Value = start("Summer").await.unwrap().json().await.unwrap();
    let stopped: Value = origin
        .get(&format!("/api/timelapses/{first_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["image_count"], 1);
    assert!(stopped["stopped_at"].is_string());
    let second_id = second["id"].as_i64().unwrap();

    let r = origin.get(&format!("/api/timelapses/{second_id}")).await;
    let etag = header(r.headers(), "etag").to_owned();
    let r = origin
        .get_with(
            &format!("/api/timelapses/{second_id}"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = origin
        .client
        .post(origin.url(&format!("/api/timelapses/{second_id}/stop")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = origin
        .get_with(
            &format!("/api/timelapses/{second_id}"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "stopping changes the tag");
    let image: Value = origin
        .capture(id, &token, common::jpeg(64, 48, 8))
        .await
        .json()
        .await
        .unwrap();
    assert!(image["timelapse_id"].is_null());

    let names: Vec<String> = origin
        .events_after(0)
        .await
        .into_iter()
        .map(|e| e.1)
        .filter(|n| n.starts_with("timelapse"))
        .collect();
    assert_eq!(
        names,
        [
            "timelapse_started",
            "timelapse_stopped",
            "timelapse_started",
            "timelapse_stopped"
        ]
    );
    let list: Vec<Value> = origin
        .get(&format!("/api/cameras/{id}/timelapses"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    let videos = origin
        .get(&format!("/api/timelapses/{second_id}/videos"))
        .await;
    assert_eq!(videos.status(), StatusCode::OK);
    assert_eq!(header(videos.headers(), "cache-control"), "no-cache");
    assert_eq!(videos.json::<Vec<Value>>().await.unwrap().len(), 0);
});

on_both!(dashboard_stats_follow_captures, |origin| {
    let r = origin.get("/api/dashboard/stats").await;
    assert_eq!(header(r.headers(), "cache-control"), "no-cache");
    let etag = header(r.headers(), "etag").to_owned();
    let stats: Value = r.json().await.unwrap();
    assert_eq!(stats["images_total"], 0);
    let r = origin
        .get_with("/api/dashboard/stats", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let (id, token) = origin.create_camera("Roof").await;
    let jpeg = common::jpeg(320, 240, 3);
    let len = jpeg.len() as u64;
    origin.capture(id, &token, jpeg).await;
    let r = origin
        .get_with("/api/dashboard/stats", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let stats: Value = r.json().await.unwrap();
    assert_eq!(
        stats["cameras"],
        json!({"total": 1, "online": 1, "offline": 0, "unknown": 0, "error": 0})
    );
    assert_eq!(stats["images_total"], 1);
    assert_eq!(stats["images_today"], 1);
    assert!(
        stats["storage_bytes"].as_u64().unwrap() > len,
        "original and thumbnail"
    );
    assert_eq!(stats["renders_in_flight"], 0);
});

on_both!(health_metrics_and_cache_stats, |origin| {
    let r = origin.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    let (id, token) = origin.create_camera("Roof").await;
    origin.get(&format!("/api/cameras/{id}")).await;
    origin.get(&format!("/api/cameras/{id}")).await;
    // Operational endpoints are never public: the admin token on the main listener...
    problem(origin.get("/metrics").await, StatusCode::UNAUTHORIZED).await;
    for path in ["/metrics", "/api/cache/stats"] {
        let r = origin
            .client
            .get(origin.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
    }
    let r = origin
        .client
        .get(origin.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    let text = r.text().await.unwrap();
    // ...or the operations listener, which needs none and serves nothing else.
    let ops = origin.server.as_ref().unwrap().ops_addr.unwrap();
    let r = origin
        .client
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("http_requests_total"));
    for (path, status) in [
        ("/api/cache/stats", StatusCode::OK),
        ("/healthz", StatusCode::OK),
        ("/api/cameras", StatusCode::NOT_FOUND),
    ] {
        let r = origin
            .client
            .get(format!("http://{ops}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path} on the operations listener");
    }
    assert!(
        text.contains(
            "http_requests_total{route=\"/api/cameras/{id}\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("cache_hits_total"));
    problem(
        origin.get("/api/cache/stats").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let r = origin
        .client
        .get(origin.url("/api/cache/stats"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    let stats: Value = r.json().await.unwrap();
    assert!(stats["hits"].as_u64().unwrap() >= 1);
    assert!(stats["misses"].as_u64().unwrap() >= 1);
    assert!(stats["entries"].as_u64().unwrap() >= 1);
    for key in ["loads", "evictions", "invalidations", "weighted_bytes"] {
        assert!(stats[key].is_u64(), "{key}");
    }
});

/// Sets the site's time zone.
async fn set_time_zone(origin: &common::TestOrigin, zone: &str) {
    let r = origin.put_settings(json!({ "timezone": zone })).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

on_both!(
    images_today_and_page_times_follow_the_sites_time_zone,
    |origin| {
        use chrono::{Duration, Utc};
        let (id, token) = origin.create_camera("Roof").await;
        let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let taken = [
            now - Duration::hours(30),
            now - Duration::hours(13),
            now - Duration::minutes(1),
        ];
        for (seed, at) in (10..).zip(taken) {
            let r = origin
                .client
                .post(origin.url(&format!("/api/cameras/{id}/captures")))
                .bearer_auth(&token)
                .header("content-type", "image/jpeg")
                .header("capture-time", at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .body(common::jpeg(64, 48, seed))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        // UTC+14, UTC-11, and two zones with summer time, each with its own idea of "today".
        for zone in [
            "Pacific/Kiritimati",
            "Pacific/Pago_Pago",
            "Europe/Paris",
            "America/New_York",
            "UTC",
        ] {
            set_time_zone(origin, zone).await;
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            let today = Utc::now().with_timezone(&tz).date_naive();
            let expected = taken
                .iter()
                .filter(|at| at.with_timezone(&tz).date_naive() == today)
                .count();
            let stats: Value = origin
                .get("/api/dashboard/stats")
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(stats["images_today"], expected, "frames of today in {zone}");
        }
        // The dashboard shows the last capture in the site's time zone.
        set_time_zone(origin, "Asia/Tokyo").await;
        let html = origin.get("/dashboard").await.text().await.unwrap();
        let shown = taken[2]
            .with_timezone(&chrono_tz::Asia::Tokyo)
            .format("%Y-%m-%d %H:%M:%S JST")
            .to_string();
        assert!(html.contains(&shown), "{shown} in:\n{html}");
        assert!(html.contains("data-timezone=\"Asia/Tokyo\""));
    }
);

on_both!(images_pages_keep_to_a_range_of_capture_times, |origin| {
    use chrono::{DateTime, Duration, Utc};
    let (id, token) = origin.create_camera("Roof").await;
    let midnight = |days_ago: i64| {
        (Utc::now() - Duration::days(days_ago))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    };
    let (day_a, day_b) = (midnight(3), midnight(2));
    let rfc = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut ids = Vec::new();
    // Three frames on day A, two on day B (10:00, 11:00, ...).
    for (seed, at) in (40..).zip([
        day_a + Duration::hours(10),
        day_a + Duration::hours(11),
        day_a + Duration::hours(12),
        day_b + Duration::hours(10),
        day_b + Duration::hours(11),
    ]) {
        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/captures")))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .header("capture-time", rfc(at))
            .body(common::jpeg(64, 48, seed))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let page = |query: String| async move {
        let r = origin
            .get(&format!("/api/cameras/{id}/images?{query}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        assert_eq!(header(r.headers(), "cache-control"), "no-cache");
        let page: Value = r.json().await.unwrap();
        let got: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        (got, page["next_before"].as_i64())
    };
    let a = format!("from={}&to={}", rfc(day_a), rfc(day_a + Duration::days(1)));

    // Day A, newest first, two at a time: the cursor stays in the range.
    assert_eq!(
        page(format!("{a}&limit=2")).await,
        (vec![ids[2], ids[1]], Some(ids[1]))
    );
    assert_eq!(
        page(format!("{a}&limit=2&before={}", ids[1])).await,
        (vec![ids[0]], None)
    );
    // Either end alone; `from` included, `to` excluded.
    assert_eq!(
        page(format!("from={}", rfc(day_b))).await,
        (vec![ids[4], ids[3]], None)
    );
    assert_eq!(
        page(format!("to={}", rfc(day_b))).await,
        (vec![ids[2], ids[1], ids[0]], None)
    );
    assert_eq!(
        page(format!(
            "from={}&to={}",
            rfc(day_a + Duration::hours(11)),
            rfc(day_a + Duration::hours(12))
        ))
        .await,
        (vec![ids[1]], None)
    );
    // The newest frame before a day: how a page steps back to the previous day with frames.
    assert_eq!(
        page(format!("to={}&limit=1", rfc(day_b))).await,
        (vec![ids[2]], Some(ids[2]))
    );
    // A day without frames is an empty page; a range that ends before it starts is refused.
    assert_eq!(
        page(format!("from={}&to={}", rfc(midnight(1)), rfc(midnight(0)))).await,
        (vec![], None)
    );
    problem(
        origin
            .get(&format!(
                "/api/cameras/{id}/images?from={}&to={}",
                rfc(day_b),
                rfc(day_a)
            ))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        origin
            .get(&format!("/api/cameras/{id}/images?from=yesterday"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
});
