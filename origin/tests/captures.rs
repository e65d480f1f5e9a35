//! Capture ingestion and image reads over a real socket, on SQLite and PostgreSQL.

mod common;

use common::{header, problem, ADMIN};
use reqwest::StatusCode;
use serde_json::Value;

on_both!(
    a_capture_stores_original_thumbnail_row_and_event,
    |origin| {
        let (id, token) = origin.create_camera("Roof").await;
        problem(
            origin.get(&format!("/api/cameras/{id}/latest-image")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let jpeg = common::jpeg(1920, 1080, 1);
        let sha = hex_sha256(&jpeg);
        let r = origin.capture(id, &token, jpeg.clone()).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            header(r.headers(), "location"),
            format!("/media/images/{sha}.jpg")
        );
        let image: Value = r.json().await.unwrap();
        assert_eq!(image["camera_id"], id);
        assert_eq!(image["width"], 1920);
        assert_eq!(image["height"], 1080);
        assert_eq!(image["bytes"], jpeg.len());
        assert_eq!(image["sha256"], sha);
        assert_eq!(image["url"], format!("/media/images/{sha}.jpg"));
        assert_eq!(
            image["thumbnail_url"],
            format!("/media/thumbnails/{sha}.jpg")
        );
        // The files are on disk, complete, and nothing is left in tmp/.
        let original =
            std::fs::read(origin.dir.path().join(format!("media/images/{sha}.jpg"))).unwrap();
        assert_eq!(original, jpeg);
        let thumb = std::fs::read(
            origin
                .dir
                .path()
                .join(format!("media/thumbnails/{sha}.jpg")),
        )
        .unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 180));
        assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
        // The camera is online with one image, and the latest image is this one.
        let camera: Value = origin
            .get(&format!("/api/cameras/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(camera["status"], "online");
        assert_eq!(camera["image_count"], 1);
        assert_eq!(camera["latest_image"], image);
        let latest: Value = origin
            .get(&format!("/api/cameras/{id}/latest-image"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(latest, image);
        // Two events, in order: the camera came online, the image was captured.
        let events = origin.events_after(0).await;
        let names: Vec<_> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(
            names,
            ["camera_created", "camera_status_changed", "image_captured"]
        );
        assert_eq!(events[2].2["image"], image);
        assert_eq!(events[2].2["image_count"], 1);
        assert_eq!(events[2].2["camera_id"], id);
    }
);

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

on_both!(the_same_bytes_twice_return_the_existing_image, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let jpeg = common::jpeg(640, 480, 2);
    let first: Value = origin
        .capture(id, &token, jpeg.clone())
        .await
        .json()
        .await
        .unwrap();
    let before = origin.last_event_id().await;
    let r = origin.capture(id, &token, jpeg).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        origin.last_event_id().await,
        before,
        "no event for a duplicate"
    );
    let camera: Value = origin
        .get(&format!("/api/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera["image_count"], 1);
});

on_both!(rejected_captures_change_nothing, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let (other, other_token) = origin.create_camera("Other").await;
    let before = origin.last_event_id().await;
    let jpeg = common::jpeg(320, 240, 3);
    let send = |token: Option<&str>, content_type: Option<&str>, body: Vec<u8>, camera: i64| {
        let mut r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{camera}/captures")))
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    problem(
        send(None, Some("image/jpeg"), jpeg.clone(), id)
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        send(Some("tl_cam_forged"), Some("image/jpeg"), jpeg.clone(), id)
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        send(Some(&other_token), Some("image/jpeg"), jpeg.clone(), id)
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        send(Some(ADMIN), Some("image/jpeg"), jpeg.clone(), id)
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    // A valid token for a camera that does not exist.
    problem(
        send(Some(&token), Some("image/jpeg"), jpeg.clone(), 999)
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        send(Some(&token), Some("image/png"), jpeg.clone(), id)
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    problem(
        send(Some(&token), None, jpeg.clone(), id).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    problem(
        send(
            Some(&token),
            Some("image/jpeg"),
            b"GIF89a not a jpeg".to_vec(),
            id,
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        send(
            Some(&token),
            Some("image/jpeg"),
            jpeg[..jpeg.len() / 2].to_vec(),
            id,
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        send(Some(&token), Some("image/jpeg"), Vec::new(), id)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let r = origin
        .client
        .post(origin.url(&format!("/api/cameras/{id}/captures")))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .header("capture-time", "last tuesday")
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
    // Nothing written anywhere.
    assert_eq!(origin.last_event_id().await, before);
    assert!(origin.media_files("images").is_empty());
    assert!(origin.media_files("thumbnails").is_empty());
    assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
    for camera in [id, other] {
        let c: Value = origin
            .get(&format!("/api/cameras/{camera}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(c["image_count"], 0);
        assert_eq!(c["status"], "unknown");
    }
});

mod size_limit {
    use super::*;
    use common::{Backend, TestOrigin};

    async fn run(backend: Backend) {
        let origin = TestOrigin::start_with(backend, |o| o.max_capture_bytes = 10_000).await;
        let (id, token) = origin.create_camera("Roof").await;
        let big = common::jpeg(640, 480, 4);
        assert!(big.len() > 10_000);
        let body = problem(
            origin.capture(id, &token, big.clone()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains("10000"));
        // Without Content-Length (chunked), the limit holds while reading.
        let stream = futures::stream::iter(
            big.chunks(4096)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/captures")))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert!(origin.media_files("images").is_empty());
        let small = common::jpeg(64, 48, 4);
        assert!(small.len() < 10_000);
        assert_eq!(
            origin.capture(id, &token, small).await.status(),
            StatusCode::CREATED
        );
        origin.finish().await;
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

on_both!(capture_time_orders_images_and_pages, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let mut ids = Vec::new();
    // Yesterday, within the accepted window whatever the date.
    let day = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    // Captured out of order: 10:02, 10:00, 10:01.
    for (seed, minute) in [(1, 2), (2, 0), (3, 1)] {
        let r = origin
            .client
            .post(origin.url(&format!("/api/cameras/{id}/captures")))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .header("capture-time", format!("{day}T10:0{minute}:00Z"))
            .body(common::jpeg(64, 48, seed))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let image: Value = r.json().await.unwrap();
        assert_eq!(image["captured_at"], format!("{day}T10:0{minute}:00Z"));
        ids.push(image["id"].as_i64().unwrap());
    }
    let latest: Value = origin
        .get(&format!("/api/cameras/{id}/latest-image"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        latest["id"], ids[0],
        "the latest by capture time, not arrival"
    );

    let r = origin
        .get(&format!("/api/cameras/{id}/images?limit=2"))
        .await;
    assert_eq!(header(r.headers(), "cache-control"), "no-cache");
    let etag = header(r.headers(), "etag").to_owned();
    let page: Value = r.json().await.unwrap();
    let got: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[0], ids[2]]);
    assert_eq!(page["next_before"], ids[2]);
    let page2: Value = origin
        .get(&format!(
            "/api/cameras/{id}/images?limit=2&before={}",
            ids[2]
        ))
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<i64> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[1]]);
    assert!(page2["next_before"].is_null());

    let r = origin
        .get_with(
            &format!("/api/cameras/{id}/images?limit=2"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    origin.capture(id, &token, common::jpeg(64, 48, 9)).await;
    let r = origin
        .get_with(
            &format!("/api/cameras/{id}/images?limit=2"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a new capture changes the first page"
    );

    problem(
        origin
            .get(&format!("/api/cameras/{id}/images?limit=0"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin
            .get(&format!("/api/cameras/{id}/images?limit=201"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin
            .get(&format!("/api/cameras/{id}/images?limit=ten"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin
            .get(&format!("/api/cameras/{id}/images?before=999999"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        origin.get("/api/cameras/999/images").await,
        StatusCode::NOT_FOUND,
    )
    .await;
});

on_both!(concurrent_identical_uploads_store_one_image, |origin| {
    let (id, token) = origin.create_camera("Roof").await;
    let jpeg = common::jpeg(640, 480, 5);
    let uploads = (0..6).map(|_| origin.capture(id, &token, jpeg.clone()));
    let statuses: Vec<StatusCode> = futures::future::join_all(uploads)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK));
    let camera: Value = origin
        .get(&format!("/api/cameras/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera["image_count"], 1);
    let captured = origin
        .events_after(0)
        .await
        .into_iter()
        .filter(|e| e.1 == "image_captured")
        .count();
    assert_eq!(captured, 1);
});
