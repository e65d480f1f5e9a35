//! The storage lifecycle: retention (with the origin's clock set by the test), deletes that
//! never leave a row without its file nor a file without a row, shared bytes, and a real
//! small file system that fills up: captures prune the oldest frames, then get 507 once
//! nothing is prunable, and resume when space is freed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{problem, TestOrigin, ADMIN};
use reqwest::header::ETAG;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

const WAIT: Duration = Duration::from_secs(20);

async fn admin(
    origin: &TestOrigin,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = origin
        .client
        .request(method, origin.url(path))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn delete(origin: &TestOrigin, path: &str) -> reqwest::Response {
    admin(origin, reqwest::Method::DELETE, path, None).await
}

async fn capture_at(
    origin: &TestOrigin,
    camera: i64,
    token: &str,
    seed: u32,
    at: Option<DateTime<Utc>>,
) -> Value {
    capture_jpeg(origin, camera, token, common::jpeg(160, 90, seed), at).await
}

async fn capture_jpeg(
    origin: &TestOrigin,
    camera: i64,
    token: &str,
    jpeg: Vec<u8>,
    at: Option<DateTime<Utc>>,
) -> Value {
    let mut request = origin
        .client
        .post(origin.url(&format!("/api/cameras/{camera}/captures")))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(jpeg);
    if let Some(at) = at {
        request = request.header("capture-time", at.to_rfc3339());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn start_timelapse(origin: &TestOrigin, camera: i64, name: &str) -> i64 {
    let r = admin(
        origin,
        reqwest::Method::POST,
        &format!("/api/cameras/{camera}/timelapses"),
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn stop_timelapse(origin: &TestOrigin, timelapse: i64) {
    let r = admin(
        origin,
        reqwest::Method::POST,
        &format!("/api/timelapses/{timelapse}/stop"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn protect(origin: &TestOrigin, timelapse: i64, protected: bool) -> Value {
    let r = admin(
        origin,
        reqwest::Method::PATCH,
        &format!("/api/timelapses/{timelapse}"),
        Some(json!({ "protected": protected })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The ids of a camera's images, as the API lists them (signed in: every camera).
async fn image_ids(origin: &TestOrigin, camera: i64) -> BTreeSet<i64> {
    let r = origin
        .get_with(
            &format!("/api/cameras/{camera}/images?limit=200"),
            &[("authorization", &format!("Bearer {ADMIN}"))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// Every image row's hash (all cameras), from the database.
async fn stored_hashes(origin: &TestOrigin) -> BTreeSet<String> {
    let mut conn = origin.state().db.pool().acquire().await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT sha256 FROM images")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

fn hashes_on_disk(data_dir: &Path, folder: &str) -> BTreeSet<String> {
    std::fs::read_dir(data_dir.join("media").join(folder))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .split('.')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Files and rows agree: an original and a thumbnail for every row, nothing else, and no
/// removal left queued. Waits (at most 20 s) for a background deletion's files, which go
/// after its rows' transaction commits.
async fn assert_files_match_rows(origin: &TestOrigin) {
    let data_dir = &origin.state().config.data_dir;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = stored_hashes(origin).await;
        let mut conn = origin.state().db.pool().acquire().await.unwrap();
        let (queued,): (i64,) =
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM file_removals")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        let originals = hashes_on_disk(data_dir, "images");
        let thumbnails = hashes_on_disk(data_dir, "thumbnails");
        if queued == 0 && originals == rows && thumbnails == rows {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 20 s: {queued} removals queued; rows {rows:?}, originals {originals:?}, \
             thumbnails {thumbnails:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn deleted_ids(log: &[(i64, String, Value)], reason: &str) -> BTreeSet<i64> {
    log.iter()
        .filter(|e| e.1 == "images_deleted" && e.2["reason"] == reason)
        .flat_map(|e| e.2["image_ids"].as_array().unwrap().clone())
        .map(|id| id.as_i64().unwrap())
        .collect()
}

/// Runs a retention sweep now, once the one a change woke has finished (on PostgreSQL a
/// sweep already under way makes another return `None`).
async fn sweep(origin: &TestOrigin) -> timelapser_origin::services::storage::RetentionReport {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(report) = timelapser_origin::services::storage::apply_retention(origin.state())
            .await
            .unwrap()
        {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "another sweep ran for 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both!(
    retention_takes_exactly_the_expected_frames,
    |options| {
        // Only the sweeps the test asks for (the one at start-up finds nothing).
        options.retention_interval = Duration::from_secs(3600);
    },
    |origin| {
        let now = Utc::now();
        let day = chrono::Duration::days(1);
        let (a, a_token) = origin.create_camera("Harbour").await;
        let (b, b_token) = origin.create_camera("Orchard").await;
        // A: two old frames outside any timelapse; a protected timelapse; a stopped one; a
        // running one. B: an old frame and a new one, and its own policy: keep forever.
        let old1 = capture_at(origin, a, &a_token, 1, Some(now - day * 9)).await;
        let old2 = capture_at(origin, a, &a_token, 2, Some(now - day * 8)).await;
        let kept = start_timelapse(origin, a, "Kept").await;
        let p1 = capture_at(origin, a, &a_token, 3, None).await;
        let p2 = capture_at(origin, a, &a_token, 4, None).await;
        stop_timelapse(origin, kept).await;
        assert_eq!(protect(origin, kept, true).await["protected"], true);
        let done = start_timelapse(origin, a, "Done").await;
        let d1 = capture_at(origin, a, &a_token, 5, None).await;
        stop_timelapse(origin, done).await;
        let running = start_timelapse(origin, a, "Running").await;
        let r1 = capture_at(origin, a, &a_token, 6, None).await;
        let b_old = capture_at(origin, b, &b_token, 7, Some(now - day * 9)).await;
        let b_new = capture_at(origin, b, &b_token, 8, None).await;
        let id = |v: &Value| v["id"].as_i64().unwrap();

        let r = admin(
            origin,
            reqwest::Method::PUT,
            &format!("/api/cameras/{b}/retention"),
            Some(json!({ "images_days": 0 })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let policy: Value = r.json().await.unwrap();
        assert_eq!(policy["images_days"], 0);
        assert!(policy["images_max_bytes"].is_null(), "the site's");
        // A bad policy is a 422 naming the field, and changes nothing.
        let r = admin(
            origin,
            reqwest::Method::PUT,
            &format!("/api/cameras/{b}/retention"),
            Some(json!({ "images_days": "a week" })),
        )
        .await;
        assert!(problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["detail"]
            .as_str()
            .unwrap()
            .contains("images_days"));

        let images_etag = origin
            .get(&format!("/api/cameras/{a}/images"))
            .await
            .headers()[ETAG]
            .clone();
        let before = origin.log_newest().await;
        // The site keeps 3 days: the sweep it wakes takes A's two old frames, not B's.
        assert_eq!(
            origin
                .put_settings(json!({ "retention_images_days": 3 }))
                .await
                .status(),
            StatusCode::OK
        );
        let expected_first: BTreeSet<i64> = [id(&old1), id(&old2)].into();
        origin
            .wait_for_log("the site's retention", |log| {
                deleted_ids(&log[before as usize..], "retention") == expected_first
            })
            .await;
        assert_eq!(
            image_ids(origin, a).await,
            [id(&p1), id(&p2), id(&d1), id(&r1)].into()
        );
        assert_eq!(image_ids(origin, b).await, [id(&b_old), id(&b_new)].into());
        assert_ne!(
            origin
                .get(&format!("/api/cameras/{a}/images"))
                .await
                .headers()[ETAG],
            images_etag,
            "the collection's tag follows the delete"
        );
        assert_files_match_rows(origin).await;

        // Five days on: the stopped timelapse's frame goes; the protected and the running
        // timelapses' stay; B keeps everything.
        origin.state().clock.set(now + day * 5);
        let before = origin.log_newest().await;
        let report = sweep(origin).await;
        assert_eq!(report.expired.images, 1);
        assert_eq!(
            image_ids(origin, a).await,
            [id(&p1), id(&p2), id(&r1)].into()
        );
        assert_eq!(image_ids(origin, b).await, [id(&b_old), id(&b_new)].into());
        let log = origin.log_after(before).await;
        let deleted: Vec<_> = log.iter().filter(|e| e.1 == "images_deleted").collect();
        assert_eq!(deleted.len(), 1, "{log:?}");
        assert_eq!(deleted[0].2["image_ids"], json!([id(&d1)]));
        assert_eq!(deleted[0].2["image_count"], 3);
        assert_eq!(deleted[0].2["latest_image"]["id"], id(&r1));
        let camera: Value = origin
            .get(&format!("/api/cameras/{a}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(camera["image_count"], 3);
        let timelapse: Value = origin
            .get(&format!("/api/timelapses/{done}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(timelapse["image_count"], 0, "the timelapse's count follows");
        assert_files_match_rows(origin).await;

        // A size cap of one byte: nothing else is prunable, so it reaches into the running
        // timelapse, and says so; the protected frames stay.
        let r = admin(
            origin,
            reqwest::Method::PUT,
            &format!("/api/cameras/{a}/retention"),
            Some(json!({ "images_max_bytes": 1 })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        // The policy's change wakes the sweeper.
        origin
            .wait_for_log("storage_pressure for the size cap", |log| {
                log.iter().any(|e| {
                    e.1 == "storage_pressure"
                        && e.2["camera_id"] == a
                        && e.2["images_pruned"] == 1
                        && e.2["message"]
                            .as_str()
                            .unwrap()
                            .contains("running timelapse")
                })
            })
            .await;
        assert_eq!(image_ids(origin, a).await, [id(&p1), id(&p2)].into());
        let running: Value = origin
            .get(&format!("/api/timelapses/{running}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(running["image_count"], 0);
        assert_files_match_rows(origin).await;
    }
);

on_both!(deletes_remove_rows_and_their_files_only, |origin| {
    let (a, a_token) = origin.create_camera("North").await;
    let (b, b_token) = origin.create_camera("South").await;
    // The same bytes captured by both cameras: one file, two rows.
    let shared = common::jpeg(160, 90, 42);
    let shared_a = capture_jpeg(origin, a, &a_token, shared.clone(), None).await;
    let shared_b = capture_jpeg(origin, b, &b_token, shared, None).await;
    assert_eq!(shared_a["sha256"], shared_b["sha256"]);
    let now = Utc::now();
    let minute = chrono::Duration::minutes(1);
    let early = capture_at(origin, a, &a_token, 10, Some(now - minute * 30)).await;
    let middle1 = capture_at(origin, a, &a_token, 11, Some(now - minute * 20)).await;
    let middle2 = capture_at(origin, a, &a_token, 12, Some(now - minute * 15)).await;
    let id = |v: &Value| v["id"].as_i64().unwrap();

    // Without the admin token every storage write is 401, before any body is read; an
    // oversized policy is 413; nothing changes.
    let t = 1; // no timelapse needed: the token is checked first
    for (method, path) in [
        (
            reqwest::Method::DELETE,
            format!("/api/images/{}", id(&early)),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/cameras/{a}/images?from=2026-01-01T00:00:00Z"),
        ),
        (reqwest::Method::PUT, format!("/api/cameras/{a}/retention")),
        (reqwest::Method::PATCH, format!("/api/timelapses/{t}")),
        (reqwest::Method::DELETE, format!("/api/timelapses/{t}")),
    ] {
        let r = origin
            .client
            .request(method.clone(), origin.url(&path))
            .bearer_auth(&a_token)
            .json(&json!({ "protected": true }))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
        let r = origin
            .client
            .request(method, origin.url(&path))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
    }
    let r = origin
        .client
        .put(origin.url(&format!("/api/cameras/{a}/retention")))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 65 * 1024])
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(image_ids(origin, a).await.len(), 4);
    let policy: Value = admin(
        origin,
        reqwest::Method::GET,
        &format!("/api/cameras/{a}/retention"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(policy["images_days"].is_null(), "unchanged: {policy}");

    // What each camera stores, and the days left, for signed-in people only.
    let bearer = format!("Bearer {ADMIN}");
    let stats: Value = origin
        .get_with("/api/dashboard/stats", &[("authorization", &bearer)])
        .await
        .json()
        .await
        .unwrap();
    let storage = &stats["storage"];
    assert!(storage["free_bytes"].as_u64().unwrap() > 0);
    assert!(
        storage["days_left"].is_u64(),
        "frames were captured today: {storage}"
    );
    let north = storage["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera_id"] == a)
        .unwrap();
    assert_eq!(north["images"], 4);
    let originals: u64 = [&shared_a, &early, &middle1, &middle2]
        .iter()
        .map(|i| i["bytes"].as_u64().unwrap())
        .sum();
    assert!(
        north["bytes"].as_u64().unwrap() > originals,
        "originals and thumbnails"
    );
    let public: Value = origin
        .get("/api/dashboard/stats")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        public.get("storage").is_none(),
        "the public is told nothing of the disk"
    );
    let page = origin
        .get_with("/dashboard", &[("authorization", &bearer)])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("data-storage-camera=\"{a}\"")));
    assert!(page.contains("left at this rate"));

    // One image.
    let before = origin.log_newest().await;
    let r = delete(origin, &format!("/api/images/{}", id(&early))).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        origin.get(early["url"].as_str().unwrap()).await.status(),
        StatusCode::NOT_FOUND
    );
    let log = origin.log_after(before).await;
    let event = log.iter().find(|e| e.1 == "images_deleted").unwrap();
    assert_eq!(event.2["reason"], "requested");
    assert_eq!(event.2["image_ids"], json!([id(&early)]));
    let r = delete(origin, &format!("/api/images/{}", id(&early))).await;
    problem(r, StatusCode::NOT_FOUND).await;

    // A range: bad ones are 422 and change nothing.
    let range = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "/api/cameras/{a}/images?from={}&to={}",
            urlencode(&from.to_rfc3339()),
            urlencode(&to.to_rfc3339())
        )
    };
    for bad in [format!("/api/cameras/{a}/images"), range(now, now - minute)] {
        let r = delete(origin, &bad).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let r = delete(origin, &format!("/api/cameras/{a}/images?from=yesterday")).await;
    problem(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(image_ids(origin, a).await.len(), 3);
    let r = delete(origin, &range(now - minute * 25, now - minute * 10)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], 2);
    assert_eq!(image_ids(origin, a).await, [id(&shared_a)].into());
    for gone in [&middle1, &middle2] {
        assert_eq!(
            origin
                .get(gone["thumbnail_url"].as_str().unwrap())
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_files_match_rows(origin).await;

    // Timelapses: a protected frame cannot be deleted alone; a running timelapse cannot be
    // deleted; one deleted keeping its frames leaves them to the camera; one deleted with
    // its frames takes them.
    let t1 = start_timelapse(origin, b, "Keep frames").await;
    let k1 = capture_at(origin, b, &b_token, 20, None).await;
    let r = delete(origin, &format!("/api/timelapses/{t1}")).await;
    problem(r, StatusCode::CONFLICT).await;
    stop_timelapse(origin, t1).await;
    protect(origin, t1, true).await;
    let r = delete(origin, &format!("/api/images/{}", id(&k1))).await;
    problem(r, StatusCode::CONFLICT).await;
    let r = delete(origin, &format!("/api/timelapses/{t1}?frames=keep")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        origin.get(&format!("/api/timelapses/{t1}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(image_ids(origin, b).await.contains(&id(&k1)));
    let t2 = start_timelapse(origin, b, "Take frames").await;
    let f1 = capture_at(origin, b, &b_token, 21, None).await;
    let f2 = capture_at(origin, b, &b_token, 22, None).await;
    stop_timelapse(origin, t2).await;
    let before = origin.log_newest().await;
    let r = delete(origin, &format!("/api/timelapses/{t2}?frames=delete")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let ids = image_ids(origin, b).await;
    assert!(!ids.contains(&id(&f1)) && !ids.contains(&id(&f2)));
    let log = origin.log_after(before).await;
    assert!(log
        .iter()
        .any(|e| e.1 == "timelapse_deleted" && e.2["frames_deleted"] == true));
    assert_eq!(
        deleted_ids(&log, "timelapse_deleted"),
        [id(&f1), id(&f2)].into()
    );
    assert_files_match_rows(origin).await;

    // The camera that shares bytes with another is deleted: at once gone from every read,
    // its files removed in the background, the other camera's copy still served.
    let r = delete(origin, &format!("/api/cameras/{a}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        origin.get(&format!("/api/cameras/{a}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = origin.capture(a, &a_token, common::jpeg(160, 90, 99)).await;
    assert!(
        r.status() == StatusCode::UNAUTHORIZED || r.status() == StatusCode::NOT_FOUND,
        "a deleted camera's token uploads nothing: {}",
        r.status()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut conn = origin.state().db.pool().acquire().await.unwrap();
        let (left,): (i64,) =
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM cameras WHERE id = $1")
                .bind(a)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the camera's row is still there after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for key in ["url", "thumbnail_url"] {
        assert_eq!(
            origin.get(shared_b[key].as_str().unwrap()).await.status(),
            StatusCode::OK,
            "the other camera's {key} still serves"
        );
    }
    assert_files_match_rows(origin).await;
});

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A tmpfs of `size` mounted on a folder of its own, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "this test mounts a {size} tmpfs as the data directory: it needs root \
             (CAP_SYS_ADMIN), as `cargo xtask test` runs here ({status})"
        );
        Self { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Every original is whole (its bytes hash to its name), every thumbnail decodes, and
/// nothing is left in tmp/.
fn assert_no_partial_file(data_dir: &Path) {
    for entry in std::fs::read_dir(data_dir.join("media/images")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            path.file_stem().unwrap().to_string_lossy(),
            "partial original {}",
            path.display()
        );
    }
    for entry in std::fs::read_dir(data_dir.join("media/thumbnails")).unwrap() {
        let path = entry.unwrap().path();
        image::load_from_memory(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("partial thumbnail {}: {e}", path.display()));
    }
    assert_eq!(std::fs::read_dir(data_dir.join("tmp")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_disk_prunes_then_refuses_then_recovers() {
    // 24 MiB, 6 MiB of it kept free: 18 MiB of frames, the database and its journal.
    let disk = SmallDisk::mount("24m");
    let data_dir = disk.dir.path().to_path_buf();
    let origin = TestOrigin::start_with(common::Backend::Sqlite, |options| {
        options.data_dir = data_dir.clone();
        options.min_free = timelapser_origin::state::MinFree {
            bytes: 6 * 1024 * 1024,
            percent: 0,
        };
        options.retention_interval = Duration::from_secs(3600);
    })
    .await;
    let (camera, token) = origin.create_camera("Cliff").await;
    // One picture, made distinct per capture by a JPEG comment (generating each in a debug
    // build would take most of the test's time).
    let picture = common::jpeg(1280, 720, 1);
    let frame = |seed: u32| {
        let note = format!("frame {seed}");
        let mut jpeg = picture[..2].to_vec(); // SOI
        jpeg.extend_from_slice(&[0xFF, 0xFE]); // COM
        jpeg.extend_from_slice(&((note.len() + 2) as u16).to_be_bytes());
        jpeg.extend_from_slice(note.as_bytes());
        jpeg.extend_from_slice(&picture[2..]);
        jpeg
    };
    let frame_bytes = frame(1).len();
    // Enough frames to fill the disk twice over: every capture succeeds, the oldest go.
    let total = 2 * 18 * 1024 * 1024 / frame_bytes + 10;
    let mut first_ids = Vec::new();
    for seed in 0..total as u32 {
        let r = origin.capture(camera, &token, frame(seed)).await;
        assert_eq!(r.status(), StatusCode::CREATED, "capture {seed} of {total}");
        if seed < 3 {
            first_ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
        }
    }
    let log = origin.log_after(0).await;
    let pruned = deleted_ids(&log, "disk_pressure");
    assert!(
        first_ids.iter().all(|id| pruned.contains(id)),
        "the oldest frames were pruned first"
    );
    assert!(log
        .iter()
        .any(|e| e.1 == "storage_pressure" && e.2["exhausted"] == false));
    assert_no_partial_file(&data_dir);

    // Everything left is protected: captures into the protected, running timelapse fill the
    // disk until nothing is prunable, and then get 507 and write nothing.
    let timelapse = start_timelapse(&origin, camera, "Storm").await;
    protect(&origin, timelapse, true).await;
    let mut refused = None;
    for seed in 10_000..10_000 + total as u32 {
        let r = origin.capture(camera, &token, frame(seed)).await;
        if r.status() == StatusCode::INSUFFICIENT_STORAGE {
            refused = Some((seed, problem(r, StatusCode::INSUFFICIENT_STORAGE).await));
            break;
        }
        assert_eq!(r.status(), StatusCode::CREATED, "capture {seed}");
    }
    let (seed, document) = refused.expect("a 507 once every frame is protected");
    assert!(document["detail"].as_str().unwrap().contains("threshold"));
    let camera_then: Value = origin
        .get(&format!("/api/cameras/{camera}"))
        .await
        .json()
        .await
        .unwrap();
    let files_then = hashes_on_disk(&data_dir, "images");
    // Refused again: nothing written, no row, no file.
    let r = origin.capture(camera, &token, frame(seed + 1)).await;
    problem(r, StatusCode::INSUFFICIENT_STORAGE).await;
    let camera_now: Value = origin
        .get(&format!("/api/cameras/{camera}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(camera_now["image_count"], camera_then["image_count"]);
    // Refused only once every frame left is the protected timelapse's.
    let storm: Value = origin
        .get(&format!("/api/timelapses/{timelapse}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(storm["image_count"].as_u64().unwrap() > 0);
    assert_eq!(storm["image_count"], camera_now["image_count"]);
    assert_eq!(hashes_on_disk(&data_dir, "images"), files_then);
    assert_no_partial_file(&data_dir);
    origin
        .wait_for_log("storage_pressure, exhausted", |log| {
            log.iter()
                .any(|e| e.1 == "storage_pressure" && e.2["exhausted"] == true)
        })
        .await;

    // Space is freed (the timelapse stops and goes, with its frames): capture resumes.
    stop_timelapse(&origin, timelapse).await;
    let r = delete(
        &origin,
        &format!("/api/timelapses/{timelapse}?frames=delete"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = origin.capture(camera, &token, frame(seed + 2)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_files_match_rows(&origin).await;
    assert_no_partial_file(&data_dir);
    origin.finish().await;
    drop(disk);
}
