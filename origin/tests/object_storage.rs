//! Media in an S3-compatible object store: s3s-fs, a real S3-protocol server on loopback
//! (installed from crates.io by `cargo xtask test`), spoken to over signed HTTP by the origin's
//! `object_store` client. Captures, thumbnails and videos become objects and are served with
//! ranges; a store that fails a write leaves nothing behind; replicas on one PostgreSQL
//! database sharing the bucket serve each other's media and never render one video twice; a
//! replica killed mid-render is taken over by another once its lease runs out.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{header, Backend, SseClient, TestOrigin, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;
use timelapser_origin::media::MediaLocation;
use timelapser_support::s3::S3Server;
use timelapser_support::{OriginCommand, OriginProcess};

const BUCKET: &str = "timelapser-media";
const PREFIX: &str = "site-a";
const WAIT: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh S3 server with the bucket made.
struct Bucket {
    server: Option<S3Server>,
    _storage: tempfile::TempDir,
}

impl Bucket {
    async fn start() -> Self {
        let storage = tempfile::tempdir().unwrap();
        let server = S3Server::start(&workspace(), storage.path(), &[BUCKET])
            .await
            .expect("starting s3s-fs");
        Self {
            server: Some(server),
            _storage: storage,
        }
    }

    fn server(&self) -> &S3Server {
        self.server.as_ref().unwrap()
    }

    fn location(&self) -> MediaLocation {
        MediaLocation::S3 {
            bucket: BUCKET.into(),
            prefix: PREFIX.into(),
            settings: self.server().settings(),
        }
    }

    /// The bytes of the object `folder/file` under the prefix, if it exists.
    fn object(&self, folder: &str, file: &str) -> Option<Vec<u8>> {
        let path = self
            .server()
            .object_file(BUCKET, &format!("{PREFIX}/{folder}/{file}"));
        std::fs::read(path).ok()
    }

    fn objects(&self, folder: &str) -> Vec<String> {
        let dir = self
            .server()
            .object_file(BUCKET, &format!("{PREFIX}/{folder}"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A JPEG of noise, larger than the origin keeps in memory (1 MiB), so it is served by
/// ranged GETs of the object.
fn large_jpeg(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let image = image::RgbImage::from_fn(1400, 1000, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&image)
        .unwrap();
    assert!(out.len() > 1024 * 1024, "{} bytes", out.len());
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn ffprobe_frames(path: &Path) -> String {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (cargo xtask test installs Debian's ffmpeg)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    probed["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn start_timelapse(client: &reqwest::Client, base: &str, camera: i64) -> i64 {
    let t: Value = client
        .post(format!("{base}/api/cameras/{camera}/timelapses"))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "Spring" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["id"].as_i64().unwrap()
}

async fn render(client: &reqwest::Client, base: &str, timelapse: i64, fps: u32) -> i64 {
    let r = client
        .post(format!("{base}/api/timelapses/{timelapse}/videos"))
        .bearer_auth(ADMIN)
        .json(&json!({ "fps": fps }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Waits until the video is ready (or fails the test when it fails or the deadline passes).
async fn until_ready(client: &reqwest::Client, base: &str, id: i64) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let video: Value = client
            .get(format!("{base}/api/videos/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match video["status"].as_str() {
            Some("ready") => return video,
            Some("failed") => panic!("the render failed: {video}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not ready in {WAIT:?}: {video}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Renders of `video` that started (each claim of its lease starts at progress 0), from the
/// event log.
async fn render_starts(origin: &TestOrigin, video: i64) -> usize {
    origin
        .log_after(0)
        .await
        .iter()
        .filter(|(_, name, data)| {
            name == "video_progress"
                && data["video"]["id"] == video
                && data["video"]["progress"].as_f64() == Some(0.0)
        })
        .count()
}

async fn media_lives_in_the_bucket(backend: Backend) {
    let bucket = Bucket::start().await;
    let location = bucket.location();
    let origin = TestOrigin::start_with(backend, |o| o.media = Some(location)).await;
    let (camera, token) = origin.create_camera("Roof").await;
    let timelapse = start_timelapse(&origin.client, &origin.base, camera).await;

    // A capture: its original and thumbnail are objects, nothing is on the local disk.
    let large = large_jpeg(7);
    let hash = sha256(&large);
    let r = origin.capture(camera, &token, large.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        bucket.object("images", &format!("{hash}.jpg")).as_deref(),
        Some(&large[..])
    );
    assert!(bucket
        .object("thumbnails", &format!("{hash}.jpg"))
        .is_some());
    assert!(!origin.dir.path().join("media").exists());

    // Served whole and by ranges (a ranged GET of the object: it is too large to be held in
    // memory), with its content address as its tag.
    let r = origin.get(&format!("/media/images/{hash}.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "etag"), format!("\"{hash}\""));
    assert_eq!(r.bytes().await.unwrap(), large);
    let r = origin
        .get_with(
            &format!("/media/images/{hash}.jpg"),
            &[("range", "bytes=1000000-1000999")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(r.headers(), "content-range"),
        format!("bytes 1000000-1000999/{}", large.len())
    );
    assert_eq!(r.bytes().await.unwrap(), &large[1_000_000..1_001_000]);
    let r = origin
        .get_with(
            &format!("/media/images/{hash}.jpg"),
            &[("range", "bytes=-100")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &large[large.len() - 100..]);

    // A render reads its frames from the bucket and stores its video there.
    for seed in 0..5 {
        let jpeg = common::jpeg(320, 240, seed);
        assert_eq!(
            origin.capture(camera, &token, jpeg).await.status(),
            StatusCode::CREATED
        );
    }
    let id = render(&origin.client, &origin.base, timelapse, 6).await;
    let video = until_ready(&origin.client, &origin.base, id).await;
    let video_hash = video["sha256"].as_str().unwrap();
    let object = bucket
        .server()
        .object_file(BUCKET, &format!("{PREFIX}/videos/{video_hash}.mp4"));
    assert_eq!(ffprobe_frames(&object), "6");
    let bytes = std::fs::read(&object).unwrap();
    let r = origin
        .get_with(
            &format!("/media/videos/{video_hash}.mp4"),
            &[("range", "bytes=0-99")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &bytes[..100]);
    assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());

    // Deleting the camera deletes its objects.
    let r = origin
        .client
        .delete(origin.url(&format!("/api/cameras/{camera}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + WAIT;
    while !(bucket.objects("images").is_empty()
        && bucket.objects("thumbnails").is_empty()
        && bucket.objects("videos").is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "objects left: {:?} {:?} {:?}",
            bucket.objects("images"),
            bucket.objects("thumbnails"),
            bucket.objects("videos")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    origin.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_lives_in_the_bucket_on_sqlite() {
    media_lives_in_the_bucket(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_lives_in_the_bucket_on_postgres() {
    media_lives_in_the_bucket(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_a_write_changes_nothing() {
    let mut bucket = Bucket::start().await;
    let location = bucket.location();
    let origin = TestOrigin::start_with(Backend::Sqlite, |o| o.media = Some(location)).await;
    let (camera, token) = origin.create_camera("Roof").await;
    let newest = origin.log_newest().await;
    bucket.server.take().unwrap().kill().unwrap();

    let r = origin
        .capture(camera, &token, common::jpeg(320, 240, 1))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        header(r.headers(), "content-type"),
        "application/problem+json"
    );
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("the capture was not stored"),
        "{problem}"
    );
    let images: Value = origin
        .get(&format!("/api/cameras/{camera}/images"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        images["items"].as_array().map(Vec::len),
        Some(0),
        "{images}"
    );
    let logged: Vec<String> = origin
        .log_after(newest)
        .await
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    // Only the dashboard's coalesced stats of the camera's creation may have been logged
    // since: nothing of the capture.
    assert!(
        logged.iter().all(|name| name == "stats_updated"),
        "{logged:?}"
    );
    assert!(origin.temp_files().is_empty(), "{:?}", origin.temp_files());
    origin.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bucket_is_a_clear_error_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = timelapser_origin::Options::new(dir.path().to_path_buf());
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.ops_listen = None;
    options.admin_token = Some(ADMIN.into());
    let port = timelapser_support::free_port().unwrap();
    options.media = Some(MediaLocation::S3 {
        bucket: BUCKET.into(),
        prefix: String::new(),
        settings: vec![
            ("aws_endpoint".into(), format!("http://127.0.0.1:{port}")),
            ("aws_access_key_id".into(), "k".into()),
            ("aws_secret_access_key".into(), "s".into()),
            ("aws_region".into(), "us-east-1".into()),
        ],
    });
    let error = match timelapser_origin::start(options).await {
        Ok(_) => panic!("started without its media store"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("the media bucket") && error.contains("does not answer"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_media_and_render_each_video_once() {
    let bucket = Bucket::start().await;
    let lease = Duration::from_secs(1);
    let location = bucket.location();
    let origin = TestOrigin::start_with(Backend::Postgres, |o| {
        o.media = Some(location);
        o.render_lease = lease;
    })
    .await;
    let location = bucket.location();
    let replica = origin
        .replica_with(|o| {
            o.media = Some(location);
            o.render_lease = lease;
        })
        .await;
    let replica_base = format!("http://{}", replica.addr);
    let (camera, token) = origin.create_camera("Roof").await;
    let timelapse = start_timelapse(&origin.client, &origin.base, camera).await;
    let mut hashes = Vec::new();
    for seed in 0..8 {
        let jpeg = common::jpeg(640, 360, seed);
        hashes.push(sha256(&jpeg));
        assert_eq!(
            origin.capture(camera, &token, jpeg).await.status(),
            StatusCode::CREATED
        );
    }
    // What one replica accepted, the other serves.
    let r = origin
        .client
        .get(format!("{replica_base}/media/images/{}.jpg", hashes[3]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256(&r.bytes().await.unwrap()), hashes[3]);

    // Renders queued on either replica are rendered once each, whichever claims them: both
    // look for claimable videos three times a second.
    let first = render(&origin.client, &origin.base, timelapse, 4).await;
    let second = render(&origin.client, &replica_base, timelapse, 8).await;
    for id in [first, second] {
        let video = until_ready(&origin.client, &replica_base, id).await;
        let hash = video["sha256"].as_str().unwrap();
        assert!(bucket.object("videos", &format!("{hash}.mp4")).is_some());
        assert_eq!(render_starts(&origin, id).await, 1, "video {id}");
    }
    replica.shutdown().await.unwrap();
    origin.finish().await;
}

/// The origin binary on `database_url`, with its media in `bucket` and a short lease.
async fn spawn(data_dir: &Path, database_url: &str, bucket: &Bucket, lease: u64) -> OriginProcess {
    let mut origin = OriginCommand::new(env!("CARGO_BIN_EXE_timelapser-origin"), data_dir)
        .expect("a free port")
        .admin_token(ADMIN)
        .database_url(database_url)
        .args(["--min-free-bytes", "0", "--min-free-percent", "0"])
        .args(["--media-url", &format!("s3://{BUCKET}/{PREFIX}")])
        .args(["--render-lease-seconds", &lease.to_string()])
        .quiet()
        .ready_within(Duration::from_secs(30));
    for (name, value) in bucket.server().env() {
        origin = origin.env(name, value);
    }
    origin.start().await.expect("starting the origin binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_on_a_replica_killed_mid_render_is_finished_by_another() {
    let bucket = Bucket::start().await;
    let lease = 2;
    let (database_url, database) = common::fresh_postgres_database().await;
    // Replica A, the binary, renders first.
    let a_dir = tempfile::tempdir().unwrap();
    let a = spawn(a_dir.path(), &database_url, &bucket, lease).await;
    let client = reqwest::Client::new();
    let (camera, token) = timelapser_support::api::create_camera(&a.base(), ADMIN, "Roof")
        .await
        .unwrap();
    let timelapse = start_timelapse(&client, &a.base(), camera).await;
    for seed in 0..60 {
        let jpeg = timelapser_origin::demo::synthetic_frame(1280, 720, seed % 2, seed);
        assert_eq!(
            common::capture(&client, &a.base(), camera, &token, jpeg)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let mut events = SseClient::connect(
        &format!("{}/api/events?types=video_progress", a.base()),
        None,
    )
    .await;
    let id = render(&client, &a.base(), timelapse, 2).await;
    events.until("video_progress", WAIT).await;

    // Replica B starts while A renders: A's lease keeps it off the video.
    let location = bucket.location();
    let b = TestOrigin::start_with(Backend::Sqlite, |o| {
        o.media = Some(location);
        o.render_lease = Duration::from_secs(lease);
        o.database_url = Some(database_url.clone());
    })
    .await;
    let owner = || async {
        let mut conn = b.state().db.pool().acquire().await.unwrap();
        sqlx::query_scalar::<_, Option<String>>("SELECT lease_owner FROM videos WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    let a_owner = owner().await.expect("A holds the lease while it renders");
    assert!(
        a_owner.contains(&format!("-{}-", a.id())),
        "{a_owner} is not A's"
    );
    assert_ne!(a_owner, b.state().renderer.lease_owner());

    a.kill().unwrap(); // SIGKILL to A and its ffmpeg: no shutdown code runs, the lease stays.
    let killed_at = Instant::now();
    let video = until_ready(&client, &b.base, id).await;
    // B took it over only once A's lease had run out, and rendered it from the start.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(1),
        "taken over before A's lease could run out"
    );
    assert_eq!(render_starts(&b, id).await, 2);
    let hash = video["sha256"].as_str().unwrap();
    let object = bucket
        .server()
        .object_file(BUCKET, &format!("{PREFIX}/videos/{hash}.mp4"));
    assert_eq!(ffprobe_frames(&object), "60");
    assert!(b.temp_files().is_empty(), "{:?}", b.temp_files());
    b.finish().await;
    common::drop_postgres_database(&database).await;
}
