//! Capture schedules (`/api/cameras/{id}/schedule`) and frames filed by their capture time.

mod common;

use std::time::Duration;

use common::{header, problem, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn get_schedule(origin: &TestOrigin, camera: i64, token: &str) -> reqwest::Response {
    origin
        .client
        .get(origin.url(&format!("/api/cameras/{camera}/schedule")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn put_schedule(
    origin: &TestOrigin,
    camera: i64,
    token: &str,
    if_match: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = origin
        .client
        .put(origin.url(&format!("/api/cameras/{camera}/schedule")))
        .bearer_auth(token)
        .json(&body);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

on_both!(
    a_camera_starts_with_the_sites_schedule_and_its_agent_revalidates_it,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        let r = get_schedule(origin, id, &token).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(r.headers(), "cache-control"), "private, no-cache");
        let etag = header(r.headers(), "etag").to_owned();
        let schedule: Value = r.json().await.unwrap();
        assert_eq!(schedule["camera_id"], id);
        assert_eq!(schedule["interval_seconds"], 10);
        assert_eq!(schedule["timezone"], "UTC");
        assert_eq!(schedule["windows"], json!([]));
        assert_eq!(schedule["sun"], Value::Null);
        assert_eq!(schedule["paused"], false);
        // The agent asks again with its tag: 304, nothing sent.
        let r = origin
            .client
            .get(origin.url(&format!("/api/cameras/{id}/schedule")))
            .bearer_auth(&token)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(r.headers(), "etag"), etag);
        assert_eq!(header(r.headers(), "cache-control"), "private, no-cache");
        // A new camera follows the site's settings of the day.
        let r = origin
            .client
            .put(origin.url("/api/settings"))
            .bearer_auth(ADMIN)
            .json(&json!({"capture_interval_seconds": 30, "timezone": "Europe/Paris"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let (later, later_token) = origin.create_camera("Garden").await;
        let schedule: Value = get_schedule(origin, later, &later_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(schedule["interval_seconds"], 30);
        assert_eq!(schedule["timezone"], "Europe/Paris");
    }
);

on_both!(
    only_the_camera_and_operators_read_it_and_only_operators_change_it,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        let (_, other_token) = origin.create_camera("Other").await;
        let r = origin.get(&format!("/api/cameras/{id}/schedule")).await;
        problem(r, StatusCode::UNAUTHORIZED).await;
        problem(
            get_schedule(origin, id, &other_token).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(
            get_schedule(origin, id, ADMIN).await.status(),
            StatusCode::OK
        );
        problem(
            get_schedule(origin, 999, ADMIN).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let change = json!({"interval_seconds": 60, "timezone": "UTC"});
        problem(
            put_schedule(origin, id, &token, None, change.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            put_schedule(origin, 999, ADMIN, None, change).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
);

on_both!(a_change_is_validated_conditional_and_announced, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let r = get_schedule(origin, id, &token).await;
    let etag = header(r.headers(), "etag").to_owned();
    let mut client = SseClient::connect(
        &origin.url(&format!(
            "/api/events?camera_id={id}&types=schedule_updated"
        )),
        None,
    )
    .await;
    let before = origin.last_event_id().await;
    // Invalid: a problem naming the field; nothing changes, nothing is announced.
    for (body, field) in [
        (
            json!({"interval_seconds": 60, "timezone": "UTC", "sun": {"latitude": 95, "longitude": 0}}),
            "sun.latitude",
        ),
        (
            json!({"interval_seconds": 60, "timezone": "Nowhere/Town"}),
            "timezone",
        ),
        (
            json!({"interval_seconds": 60, "timezone": "UTC", "windows": [{"start": "08:00", "end": "08:00"}]}),
            "windows[0]",
        ),
        (
            json!({"interval_seconds": 60, "timezone": "UTC", "colour": "red"}),
            "colour",
        ),
    ] {
        let r = put_schedule(origin, id, ADMIN, Some(&etag), body).await;
        let problem = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    assert_eq!(origin.last_event_id().await, before);
    // Valid, with the current tag: stored and announced with the new representation.
    let change = json!({
        "interval_seconds": 120,
        "timezone": "Europe/Paris",
        "windows": [{"start": "07:00", "end": "19:00"}],
        "sun": {"latitude": 48.85, "longitude": 2.35, "sunrise_offset_minutes": -15,
                "sunset_offset_minutes": 15, "civil_twilight": false},
        "paused": false,
    });
    let r = put_schedule(origin, id, ADMIN, Some(&etag), change.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_etag = header(r.headers(), "etag").to_owned();
    assert_ne!(new_etag, etag);
    let stored: Value = r.json().await.unwrap();
    for key in ["interval_seconds", "timezone", "windows", "sun", "paused"] {
        assert_eq!(stored[key], change[key], "{key}");
    }
    let event = client.until("schedule_updated", WAIT).await.pop().unwrap();
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["camera_id"], id);
    assert_eq!(data["schedule"], stored);
    let read: Value = get_schedule(origin, id, &token).await.json().await.unwrap();
    assert_eq!(read, stored);
    // The old tag is stale now: 412, nothing changes.
    let r = put_schedule(
        origin,
        id,
        ADMIN,
        Some(&etag),
        json!({"interval_seconds": 5, "timezone": "UTC"}),
    )
    .await;
    problem(r, StatusCode::PRECONDITION_FAILED).await;
    let read: Value = get_schedule(origin, id, &token).await.json().await.unwrap();
    assert_eq!(read, stored);
    // The same schedule again changes nothing and announces nothing.
    let last = origin.last_event_id().await;
    let r = put_schedule(origin, id, ADMIN, Some(&new_etag), change).await;
    assert_eq!(header(r.headers(), "etag"), new_etag);
    assert_eq!(origin.last_event_id().await, last);
});

on_both!(
    a_frame_is_filed_under_the_timelapse_running_at_its_capture_time,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        let start = |name: &'static str| {
            origin
                .client
                .post(origin.url(&format!("/api/cameras/{id}/timelapses")))
                .bearer_auth(ADMIN)
                .json(&json!({ "name": name }))
                .send()
        };
        let first: Value = start("First").await.unwrap().json().await.unwrap();
        let started: chrono::DateTime<chrono::Utc> =
            first["started_at"].as_str().unwrap().parse().unwrap();
        let stopped: Value = origin
            .client
            .post(origin.url(&format!("/api/timelapses/{}/stop", first["id"])))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stopped_at: chrono::DateTime<chrono::Utc> =
            stopped["stopped_at"].as_str().unwrap().parse().unwrap();
        let second: Value = start("Second").await.unwrap().json().await.unwrap();
        let capture = |seed: u32, at: Option<chrono::DateTime<chrono::Utc>>| {
            let mut request = origin
                .client
                .post(origin.url(&format!("/api/cameras/{id}/captures")))
                .bearer_auth(&token)
                .header("content-type", "image/jpeg")
                .body(common::jpeg(96, 72, seed));
            if let Some(at) = at {
                request = request.header("capture-time", at.to_rfc3339());
            }
            request.send()
        };
        // Taken while the first ran, arriving after it stopped (an agent's spool after an outage).
        let during_first = started + (stopped_at - started) / 2;
        let backfilled: Value = capture(1, Some(during_first))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(backfilled["timelapse_id"], first["id"]);
        // Taken before any timelapse: none.
        let before_any = started - chrono::Duration::minutes(5);
        let early: Value = capture(2, Some(before_any))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(early["timelapse_id"], Value::Null);
        // Taken now: the running one.
        let live: Value = capture(3, None).await.unwrap().json().await.unwrap();
        assert_eq!(live["timelapse_id"], second["id"]);
        let first_now: Value = origin
            .get(&format!("/api/timelapses/{}", first["id"]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(first_now["image_count"], 1);
    }
);

/// The migration gives cameras that existed before schedules the site's settings.
mod migration {
    use super::*;
    use sqlx::{Connection, Executor};

    async fn run(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, name) = common::fresh_postgres_database().await;
                (url, Some(name))
            }
        };
        let folder = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder);
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        // The database as the release before schedules left it, with a camera and settings.
        for file in ["0001_initial.sql", "0002_event_log_pruning.sql"] {
            let sql = std::fs::read_to_string(migrations.join(file)).unwrap();
            conn.execute(sql.as_str()).await.unwrap();
        }
        conn.execute(
            "INSERT INTO cameras (name, token_hash, status, image_count, created_at, updated_at) \
             VALUES ('Old', 'hash', 'unknown', 0, 1700000000000000, 1700000000000000)",
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES \
             ('capture_interval_seconds', '45', 1), ('timezone', '\"Asia/Tokyo\"', 1)",
        )
        .await
        .unwrap();
        let sql = std::fs::read_to_string(migrations.join("0003_schedules.sql")).unwrap();
        conn.execute(sql.as_str()).await.unwrap();
        let row: (String, i64) =
            sqlx::query_as("SELECT document, updated_at FROM schedules WHERE camera_id = 1")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let schedule: timelapser_core::schedule::Schedule = serde_json::from_str(&row.0).unwrap();
        assert_eq!(
            schedule,
            timelapser_core::schedule::Schedule::every(45, "Asia/Tokyo")
        );
        assert_eq!(
            row.1, 1_700_000_000_000_000,
            "dated by the camera's creation"
        );
        conn.close().await.unwrap();
        if let Some(name) = pg {
            common::drop_postgres_database(&name).await;
        }
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}
