//! Private cameras: seen only by signed-in people (a session or the admin token). To the
//! public a private camera does not exist: not in the camera list, the gallery, the dashboard
//! counts or the event stream; its JSON, pages and media are 404 problem documents, and no
//! public tag changes when it captures. Signed-in people get it all as `private` (media
//! `private, max-age=31536000, immutable`), so no shared cache ever stores it.

mod common;

use std::time::Duration;

use common::{problem, SseClient, ADMIN};
use reqwest::header::{CACHE_CONTROL, ETAG};
use reqwest::StatusCode;
use serde_json::{json, Value};
use timelapser_core::events::MessageEvent;
use timelapser_origin::accounts::{self, Role};

const WAIT: Duration = Duration::from_secs(10);

async fn set_public(origin: &common::TestOrigin, camera: i64, public: bool) -> Value {
    let response = origin
        .client
        .patch(origin.url(&format!("/api/cameras/{camera}")))
        .bearer_auth(ADMIN)
        .json(&json!({ "public": public }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// A signed-in read (the admin token).
async fn admin_get(origin: &common::TestOrigin, path: &str) -> reqwest::Response {
    origin
        .get_with(path, &[("authorization", &format!("Bearer {ADMIN}"))])
        .await
}

fn names(cameras: &Value) -> Vec<String> {
    cameras
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn mentions_camera(event: &MessageEvent, camera: i64) -> bool {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    data["camera_id"].as_i64() == Some(camera)
        || data["camera"]["id"].as_i64() == Some(camera)
        || data["video"]["camera_id"].as_i64() == Some(camera)
        || data["timelapse"]["camera_id"].as_i64() == Some(camera)
}

on_both!(
    a_private_camera_is_seen_only_by_signed_in_people,
    |origin| {
        let (garden, garden_token) = origin.create_camera("Garden").await;
        let (bedroom, bedroom_token) = origin.create_camera("Bedroom").await;
        origin
            .capture(garden, &garden_token, common::jpeg(64, 48, 1))
            .await;
        let captured: Value = origin
            .capture(bedroom, &bedroom_token, common::jpeg(64, 48, 2))
            .await
            .json()
            .await
            .unwrap();
        let bedroom_image = captured["url"].as_str().unwrap().to_owned();
        let bedroom_thumbnail = captured["thumbnail_url"].as_str().unwrap().to_owned();

        let events = origin.url("/api/events");
        let mut public_stream = SseClient::connect(&events, None).await;
        let bearer = format!("Bearer {ADMIN}");
        let mut signed_in_stream =
            SseClient::connect_with(&events, None, &[("authorization", &bearer)]).await;

        let camera = set_public(origin, bedroom, false).await;
        assert_eq!(camera["public"], false);

        // The public: a camera that turned private left the gallery.
        let seen = public_stream.until("camera_deleted", WAIT).await;
        let gone: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(gone["camera_id"], bedroom);
        // Signed in: the camera, now private.
        let seen = signed_in_stream.until("camera_updated", WAIT).await;
        let updated: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(updated["camera"]["public"], false);

        // The public's reads.
        let list = origin.get("/api/cameras").await;
        assert_eq!(list.headers()[CACHE_CONTROL], "no-cache");
        let list_tag = list.headers()[ETAG].to_str().unwrap().to_owned();
        assert_eq!(names(&list.json().await.unwrap()), ["Garden"]);
        for path in [
            format!("/api/cameras/{bedroom}"),
            format!("/api/cameras/{bedroom}/images"),
            format!("/api/cameras/{bedroom}/latest-image"),
            format!("/api/cameras/{bedroom}/timelapses"),
            format!("/cameras/{bedroom}"),
            bedroom_image.clone(),
            bedroom_thumbnail.clone(),
        ] {
            let body = problem(origin.get(&path).await, StatusCode::NOT_FOUND).await;
            assert!(
                !body.to_string().contains("Bedroom"),
                "{path} names nothing: {body}"
            );
        }
        let gallery = origin.get("/").await.text().await.unwrap();
        assert!(gallery.contains("Garden") && !gallery.contains("Bedroom"));
        let stats = origin.get("/api/dashboard/stats").await;
        let stats_tag = stats.headers()[ETAG].to_str().unwrap().to_owned();
        let stats: Value = stats.json().await.unwrap();
        assert_eq!(stats["cameras"]["total"], 1);
        assert_eq!(stats["images_total"], 1);
        let dashboard = origin.get("/dashboard").await.text().await.unwrap();
        assert!(!dashboard.contains("Bedroom"));

        // Signed-in reads: everything, never for a shared cache.
        let list = admin_get(origin, "/api/cameras").await;
        assert_eq!(list.headers()[CACHE_CONTROL], "private, no-cache");
        assert_eq!(names(&list.json().await.unwrap()), ["Garden", "Bedroom"]);
        let one = admin_get(origin, &format!("/api/cameras/{bedroom}")).await;
        assert_eq!(one.status(), StatusCode::OK);
        assert_eq!(one.headers()[CACHE_CONTROL], "private, no-cache");
        let page = admin_get(origin, &format!("/cameras/{bedroom}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], "private, no-cache");
        for path in [&bedroom_image, &bedroom_thumbnail] {
            let media = admin_get(origin, path).await;
            assert_eq!(media.status(), StatusCode::OK, "{path}");
            assert_eq!(
                media.headers()[CACHE_CONTROL],
                "private, max-age=31536000, immutable"
            );
        }
        let stats: Value = admin_get(origin, "/api/dashboard/stats")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats["cameras"]["total"], 2);
        assert_eq!(stats["images_total"], 2);

        // A viewer's session sees it too.
        accounts::add_user(&origin.state().db, "wife", Role::Viewer, "a long password")
            .await
            .unwrap();
        let session = accounts::sign_in(
            &origin.state().db,
            &origin.state().throttle,
            "wife",
            "a long password",
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap();
        let cookie = format!("tl_session={}", session.id);
        let media = origin
            .get_with(&bedroom_image, &[("cookie", &cookie)])
            .await;
        assert_eq!(media.status(), StatusCode::OK);
        let gallery = origin
            .get_with("/", &[("cookie", &cookie)])
            .await
            .text()
            .await
            .unwrap();
        assert!(gallery.contains("Bedroom"));

        // It captures: signed-in people see it live; the public sees nothing, not even a changed tag.
        origin
            .capture(bedroom, &bedroom_token, common::jpeg(64, 48, 3))
            .await;
        let seen = signed_in_stream.until("image_captured", WAIT).await;
        let event: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(event["camera_id"], bedroom);
        origin
            .capture(garden, &garden_token, common::jpeg(64, 48, 4))
            .await;
        let seen = public_stream.until("image_captured", WAIT).await;
        assert!(
            seen.iter().all(|e| !mentions_camera(e, bedroom)),
            "the public stream carried the private camera: {seen:?}"
        );
        let event: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(event["camera_id"], garden);
        // The public's numbers moved by the garden's frame alone (stats_updated is coalesced,
        // so wait for the one that counts it).
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = public_stream.until("stats_updated", WAIT).await;
            let stats: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
            assert_eq!(stats["cameras"]["total"], 1, "public stats: {stats}");
            if stats["images_total"] == 2 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{stats}");
        }
        // The bedroom's frame changed no public tag: the list changed by the garden's only.
        let stats = origin.get("/api/dashboard/stats").await;
        assert_ne!(stats.headers()[ETAG].to_str().unwrap(), stats_tag);
        let stats: Value = stats.json().await.unwrap();
        assert_eq!(stats["images_total"], 2);

        // Public again: the public sees it arrive.
        let list_before = list_tag;
        set_public(origin, bedroom, true).await;
        let seen = public_stream.until("camera_created", WAIT).await;
        let created: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(created["camera"]["id"], bedroom);
        let list = origin.get("/api/cameras").await;
        assert_ne!(list.headers()[ETAG].to_str().unwrap(), list_before);
        assert_eq!(names(&list.json().await.unwrap()), ["Garden", "Bedroom"]);
        let media = origin.get(&bedroom_image).await;
        assert_eq!(media.status(), StatusCode::OK);
        assert_eq!(
            media.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable, stale-if-error=86400"
        );
    }
);

on_both!(
    the_public_list_tag_does_not_move_with_a_private_camera,
    |origin| {
        let (_, garden_token) = origin.create_camera("Garden").await;
        let (bedroom, bedroom_token) = origin.create_camera("Bedroom").await;
        origin
            .capture(1, &garden_token, common::jpeg(64, 48, 1))
            .await;
        set_public(origin, bedroom, false).await;
        let tag = |r: &reqwest::Response| r.headers()[ETAG].to_str().unwrap().to_owned();
        let before = tag(&origin.get("/api/cameras").await);
        let stats_before = tag(&origin.get("/api/dashboard/stats").await);
        let gallery_before = tag(&origin.get("/").await);
        for seed in 10..13 {
            let r = origin
                .capture(bedroom, &bedroom_token, common::jpeg(64, 48, seed))
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let r = origin
            .client
            .put(origin.url(&format!("/api/cameras/{bedroom}/status")))
            .bearer_auth(&bedroom_token)
            .json(&json!({ "status": "error", "message": "lens fogged" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(tag(&origin.get("/api/cameras").await), before);
        assert_eq!(tag(&origin.get("/api/dashboard/stats").await), stats_before);
        assert_eq!(tag(&origin.get("/").await), gallery_before);
        // Signed in, the same changes show.
        let stats: Value = admin_get(origin, "/api/dashboard/stats")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats["images_total"], 4);
        assert_eq!(stats["cameras"]["error"], 1);
    }
);

on_both!(
    visibility_changes_are_checked_and_need_an_operator,
    |origin| {
        let (camera, _) = origin.create_camera("Porch").await;
        // Not a boolean: 422, nothing changed.
        let r = origin
            .client
            .patch(origin.url(&format!("/api/cameras/{camera}")))
            .bearer_auth(ADMIN)
            .json(&json!({ "public": "no" }))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        // A bad name with a good visibility: 422, and the visibility did not change either.
        let r = origin
            .client
            .patch(origin.url(&format!("/api/cameras/{camera}")))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "", "public": false }))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        let shown: Value = origin
            .get(&format!("/api/cameras/{camera}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["public"], true);
        // Without credentials: 401.
        let r = origin
            .client
            .patch(origin.url(&format!("/api/cameras/{camera}")))
            .json(&json!({ "public": false }))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
        // A viewer's session, with its CSRF token: 403.
        accounts::add_user(&origin.state().db, "guest", Role::Viewer, "a long password")
            .await
            .unwrap();
        let session = accounts::sign_in(
            &origin.state().db,
            &origin.state().throttle,
            "guest",
            "a long password",
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap();
        let r = origin
            .client
            .patch(origin.url(&format!("/api/cameras/{camera}")))
            .header("cookie", format!("tl_session={}", session.id))
            .header("x-csrf-token", &session.csrf_token)
            .json(&json!({ "public": false }))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
        assert_eq!(
            origin.get(&format!("/api/cameras/{camera}")).await.status(),
            StatusCode::OK
        );
    }
);

on_both!(
    a_private_cameras_host_still_follows_its_own_schedule,
    |origin| {
        let (porch, porch_token) = origin.create_camera("Porch").await;
        let (attic, _) = origin.create_camera("Attic").await;
        set_public(origin, porch, false).await;
        set_public(origin, attic, false).await;
        // The agent's stream: its camera token, schedule changes.
        let bearer = format!("Bearer {porch_token}");
        let mut host = SseClient::connect_with(
            &origin.url("/api/events?types=schedule_updated,camera_deleted"),
            None,
            &[("authorization", &bearer)],
        )
        .await;
        for camera in [attic, porch] {
            let r = origin
                .client
                .put(origin.url(&format!("/api/cameras/{camera}/schedule")))
                .bearer_auth(ADMIN)
                .json(&json!({ "interval_seconds": 30, "timezone": "UTC" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        // Its own camera's change arrives; the other private camera's never did.
        let seen = host.until("schedule_updated", WAIT).await;
        assert!(
            seen.iter().all(|e| !mentions_camera(e, attic)),
            "another private camera's event reached a camera host: {seen:?}"
        );
        let event: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
        assert_eq!(event["camera_id"], porch);
        assert_eq!(event["schedule"]["interval_seconds"], 30);
        // Nor does the host see its camera "deleted" when it turned private (the public's view).
        set_public(origin, porch, true).await;
        set_public(origin, porch, false).await;
        let r = origin
            .client
            .put(origin.url(&format!("/api/cameras/{porch}/schedule")))
            .bearer_auth(ADMIN)
            .json(&json!({ "interval_seconds": 45, "timezone": "UTC" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let seen = host.until("schedule_updated", WAIT).await;
        assert!(seen.iter().all(|e| e.event != "camera_deleted"), "{seen:?}");
    }
);

on_both!(
    the_public_streams_ids_have_no_gaps_where_private_events_were,
    |origin| {
        let (garden, garden_token) = origin.create_camera("Garden").await;
        let (bedroom, bedroom_token) = origin.create_camera("Bedroom").await;
        set_public(origin, bedroom, false).await;
        let events = origin.url("/api/events?types=image_captured");
        let mut public_stream = SseClient::connect(&events, None).await;
        let bearer = format!("Bearer {ADMIN}");
        let mut signed_in_stream =
            SseClient::connect_with(&events, None, &[("authorization", &bearer)]).await;
        // The private camera captures between every two public frames.
        for seed in 0..4u32 {
            origin
                .capture(bedroom, &bedroom_token, common::jpeg(64, 48, 100 + seed))
                .await;
            origin
                .capture(garden, &garden_token, common::jpeg(64, 48, 200 + seed))
                .await;
        }
        let mut public_ids = Vec::new();
        while public_ids.len() < 4 {
            let seen = public_stream.until("image_captured", WAIT).await;
            let event = seen.last().unwrap();
            assert!(!mentions_camera(event, bedroom), "{event:?}");
            public_ids.push(event.last_event_id.parse::<i64>().unwrap());
        }
        // Dense: each public event's id follows the previous one's (the private captures and
        // their stats in between took none of the public's ids).
        assert!(
            public_ids.windows(2).all(|w| w[1] == w[0] + 1),
            "public ids {public_ids:?}"
        );
        // Signed-in people see the log's ids, gaps and all: both cameras' frames.
        let mut signed_in_ids = Vec::new();
        while signed_in_ids.len() < 8 {
            let seen = signed_in_stream.until("image_captured", WAIT).await;
            signed_in_ids.push(seen.last().unwrap().last_event_id.parse::<i64>().unwrap());
        }
        assert!(signed_in_ids.windows(2).all(|w| w[1] > w[0]));

        // Resuming the public stream from a public id replays exactly what followed it.
        let mut resumed = SseClient::connect(&events, Some(&public_ids[1].to_string())).await;
        let mut replayed = Vec::new();
        while replayed.len() < 2 {
            let seen = resumed.until("image_captured", WAIT).await;
            let event = seen.last().unwrap();
            assert!(!mentions_camera(event, bedroom), "{event:?}");
            replayed.push(event.last_event_id.parse::<i64>().unwrap());
        }
        assert_eq!(replayed, public_ids[2..]);
        // An id the public never had is a resync, never a replay from a log position.
        let mut wrong = SseClient::connect(&events, Some("999999")).await;
        let first = wrong.next_event(WAIT).await.unwrap();
        assert_eq!(first.event, "resync");
        assert!(first.last_event_id.parse::<i64>().unwrap() >= public_ids[3]);
    }
);
