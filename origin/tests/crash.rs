//! Crash safety: the origin process is killed (SIGKILL) mid-upload and while uploads are in
//! flight; after a restart there is no row without its files, no partial file where readers
//! can see it, and the temp folder is empty.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Backend, ADMIN};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest;
use timelapser_support::{OriginCommand, OriginProcess};

/// The origin binary on a free port, without an operations listener (`--ops-listen off`, as
/// OriginCommand starts it: test processes running at once would collide on its port).
async fn spawn(data_dir: &Path, database_url: Option<&str>) -> OriginProcess {
    let mut origin = OriginCommand::new(env!("CARGO_BIN_EXE_timelapser-origin"), data_dir)
        .expect("a free port")
        .admin_token(ADMIN)
        // Whatever this machine's disk holds, these tests are not about its free space.
        .args(["--min-free-bytes", "0", "--min-free-percent", "0"])
        .quiet()
        .ready_within(Duration::from_secs(30));
    if let Some(url) = database_url {
        origin = origin.database_url(url);
    }
    origin.start().await.expect("starting the origin binary")
}

/// Waits until the peer's kernel has every byte written to `socket` (nothing left in its send
/// queue), so the origin has the partial upload in hand when it is killed.
fn wait_until_delivered(socket: &TcpStream) {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut unsent: libc::c_int = 0;
        // SIOCOUTQ (= TIOCOUTQ): bytes not yet acknowledged by the peer.
        let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut unsent) };
        assert_eq!(rc, 0, "ioctl(SIOCOUTQ)");
        if unsent == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{unsent} bytes still unsent after 30 s"
        );
        std::thread::yield_now();
    }
}

fn kill(origin: OriginProcess) {
    origin.kill().unwrap(); // SIGKILL: no shutdown code runs
}

/// Every file under media/ is complete (its bytes hash to its name) for originals, and
/// decodable for thumbnails; tmp/ is empty.
fn assert_media_consistent(data_dir: &Path) {
    // The restarted origin sweeps files no row refers to (an interrupted upload's) while this
    // looks: a file that is gone was swept, not partial.
    let read = |path: &Path| match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        read => Some(read.unwrap()),
    };
    for entry in std::fs::read_dir(data_dir.join("media/images")).unwrap() {
        let path = entry.unwrap().path();
        let Some(bytes) = read(&path) else { continue };
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            name,
            "partial original {}",
            path.display()
        );
    }
    for entry in std::fs::read_dir(data_dir.join("media/thumbnails")).unwrap() {
        let path = entry.unwrap().path();
        let Some(bytes) = read(&path) else { continue };
        image::load_from_memory(&bytes)
            .unwrap_or_else(|e| panic!("partial thumbnail {}: {e}", path.display()));
    }
    assert_eq!(
        std::fs::read_dir(data_dir.join("tmp")).unwrap().count(),
        0,
        "tmp/ emptied at start-up"
    );
}

/// A database for a test's origin: SQLite in its data directory (`None`), or a fresh
/// PostgreSQL database (its URL and name, to drop at the end).
async fn database_for(backend: Backend) -> (Option<String>, Option<String>) {
    match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let (url, name) = common::fresh_postgres_database().await;
            (Some(url), Some(name))
        }
    }
}

/// Every image's original and thumbnail is served (200).
async fn assert_images_serve(client: &reqwest::Client, base: &str, images: &[Value]) {
    for image in images {
        for key in ["url", "thumbnail_url"] {
            let r = client
                .get(format!("{base}{}", image[key].as_str().unwrap()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", image[key]);
        }
    }
}

async fn run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_name) = database_for(backend).await;
    let client = reqwest::Client::new();
    let origin = spawn(dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    let created: Value = client
        .post(format!("{base}/api/cameras"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Roof"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["camera"]["id"].as_i64().unwrap();
    let token = created["token"].as_str().unwrap().to_owned();

    // 1. Killed mid-upload: half of the body sent.
    let body = common::jpeg(1920, 1080, 1);
    let mut socket = TcpStream::connect(origin.addr).unwrap();
    write!(
        socket,
        "POST /api/cameras/{id}/captures HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    socket.write_all(&body[..body.len() / 2]).unwrap();
    socket.flush().unwrap();
    wait_until_delivered(&socket);
    kill(origin);
    drop(socket);

    let origin = spawn(dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    let camera: Value = client
        .get(format!("{base}/api/cameras/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        camera["image_count"], 0,
        "no row for the interrupted upload"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("media/images"))
            .unwrap()
            .count(),
        0
    );
    assert_media_consistent(dir.path());

    // 2. Killed while many uploads are in flight.
    let uploads: Vec<_> = (0..12)
        .map(|seed| {
            let client = client.clone();
            let url = format!("{base}/api/cameras/{id}/captures");
            let token = token.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "image/jpeg")
                    .body(common::jpeg(1280, 720, 100 + seed))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    // Killed once some uploads have committed and others are still in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let camera: Value = client
            .get(format!("{base}/api/cameras/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let committed = camera["image_count"].as_u64().unwrap();
        if committed >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {committed} of 12 uploads committed within 60 s"
        );
        tokio::task::yield_now().await;
    }
    kill(origin);
    let mut accepted = 0;
    for upload in uploads {
        if let Ok(Ok(status)) = upload.await {
            if status == StatusCode::CREATED {
                accepted += 1;
            }
        }
    }

    let origin = spawn(dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    let page: Value = client
        .get(format!("{base}/api/cameras/{id}/images?limit=200"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert!(
        items.len() >= accepted,
        "every accepted capture survived ({} < {accepted})",
        items.len()
    );
    let camera: Value = client
        .get(format!("{base}/api/cameras/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        camera["image_count"].as_u64().unwrap() as usize,
        items.len()
    );
    // No row without its files, and the files serve.
    assert_images_serve(&client, &base, items).await;
    assert_media_consistent(dir.path());
    kill(origin);
    if let Some(name) = pg_name {
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

/// A direct connection to the origin's database (the test's own, beside the process).
async fn database(dir: &Path, url: Option<&str>) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = url.map_or_else(
        || format!("sqlite://{}", dir.join("timelapser.db").display()),
        str::to_owned,
    );
    sqlx::AnyConnection::connect(&url).await.unwrap()
}

async fn count(conn: &mut sqlx::AnyConnection, sql: &str, id: i64) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).bind(id).fetch_one(conn).await.unwrap();
    n
}

/// Every image row has both its files: what a crash may never break.
async fn assert_no_row_without_its_files(conn: &mut sqlx::AnyConnection, dir: &Path) {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT sha256 FROM images")
        .fetch_all(conn)
        .await
        .unwrap();
    for (sha,) in rows {
        for folder in ["images", "thumbnails"] {
            assert!(
                dir.join(format!("media/{folder}/{sha}.jpg")).exists(),
                "a row without its {folder} file: {sha}"
            );
        }
    }
}

/// Holds back every writer of the origin (a write transaction on SQLite, the writers'
/// advisory lock on PostgreSQL) so the test can kill it between two batches.
async fn block_writers(conn: &mut sqlx::AnyConnection, backend: Backend) {
    match backend {
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_lock(1414287443)") // "TLPS", the writers' key
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
}

async fn release_writers(conn: &mut sqlx::AnyConnection, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => "ROLLBACK",
        Backend::Postgres => "SELECT pg_advisory_unlock_all()",
    };
    sqlx::query(sql).execute(conn).await.unwrap();
}

/// Captures `n` small distinct frames, eight at a time, dated `at`.
async fn fill(base: &str, camera: i64, token: &str, n: u32, at: Option<&str>) {
    use futures::StreamExt;
    let client = reqwest::Client::new();
    futures::stream::iter(0..n)
        .map(|seed| {
            let client = client.clone();
            let url = format!("{base}/api/cameras/{camera}/captures");
            let token = token.to_owned();
            let at = at.map(str::to_owned);
            async move {
                let mut request = client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "image/jpeg")
                    .body(common::jpeg(32, 24, 1_000 + seed));
                if let Some(at) = at {
                    request = request.header("capture-time", at);
                }
                let status = request.send().await.unwrap().status();
                assert!(status.is_success(), "capture {seed}: {status}");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// Waits until `sql` (bound to `id`) counts fewer than `below` rows, then blocks the writers
/// and checks rows are still left: the kill lands between two batches.
async fn catch_mid_way(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    sql: &str,
    id: i64,
    below: i64,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(conn, sql, id).await >= below {
        assert!(Instant::now() < deadline, "nothing was deleted within 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    block_writers(conn, backend).await;
    let left = count(conn, sql, id).await;
    assert!(left > 0, "the deletion finished before the kill");
}

/// Kills the origin (its writers held back mid-way), checks that no row lacks its files, and
/// starts it again on the same data.
async fn kill_and_restart(
    origin: OriginProcess,
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    dir: &Path,
    url: Option<&str>,
) -> OriginProcess {
    kill(origin);
    release_writers(conn, backend).await;
    assert_no_row_without_its_files(conn, dir).await;
    spawn(dir, url).await
}

/// Waits (at most 60 s) until `sql`, bound to `id`, counts nothing.
async fn wait_for_none(conn: &mut sqlx::AnyConnection, sql: &str, id: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(conn, sql, id).await > 0 {
        assert!(
            Instant::now() < deadline,
            "{what} did not finish within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn killed_mid_delete(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_name) = database_for(backend).await;
    let origin = spawn(dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    let client = reqwest::Client::new();
    let (doomed, doomed_token) = timelapser_support::api::create_camera(&base, ADMIN, "Doomed")
        .await
        .unwrap();
    let (kept, kept_token) = timelapser_support::api::create_camera(&base, ADMIN, "Kept")
        .await
        .unwrap();
    let (old, old_token) = timelapser_support::api::create_camera(&base, ADMIN, "Old")
        .await
        .unwrap();
    const FRAMES: u32 = 1_200; // three batches of deletion
    fill(&base, doomed, &doomed_token, FRAMES, None).await;
    // The kept camera's three frames are bytes the doomed one has too.
    for seed in 0..3 {
        let frame = common::jpeg(48, 32, 5_000 + seed);
        for (camera, token) in [(doomed, &doomed_token), (kept, &kept_token)] {
            let r = common::capture(&client, &base, camera, token, frame.clone()).await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    fill(&base, old, &old_token, FRAMES, Some(&two_days_ago)).await;
    let mut conn = database(dir.path(), url.as_deref()).await;
    const IMAGES: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM images WHERE camera_id = $1";

    // 1. Killed while a camera is being deleted in the background.
    let r = client
        .delete(format!("{base}/api/cameras/{doomed}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    catch_mid_way(&mut conn, backend, IMAGES, doomed, i64::from(FRAMES) + 3).await;
    let origin = kill_and_restart(origin, &mut conn, backend, dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    // It finishes: the camera's row goes.
    const CAMERA: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM cameras WHERE id = $1";
    wait_for_none(&mut conn, CAMERA, doomed, "the camera's deletion").await;

    // 2. Killed during a large retention prune.
    let r = client
        .put(format!("{base}/api/cameras/{old}/retention"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "images_days": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    catch_mid_way(&mut conn, backend, IMAGES, old, i64::from(FRAMES)).await;
    let origin = kill_and_restart(origin, &mut conn, backend, dir.path(), url.as_deref()).await;
    let base = format!("http://{}", origin.addr);
    wait_for_none(&mut conn, IMAGES, old, "retention").await;
    // The queue is worked off, and no file is left that no row refers to.
    const QUEUED: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM file_removals WHERE id > $1";
    wait_for_none(&mut conn, QUEUED, 0, "the file removals").await;
    let rows: std::collections::BTreeSet<String> =
        sqlx::query_as::<_, (String,)>("SELECT sha256 FROM images")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
    for folder in ["images", "thumbnails"] {
        let files: std::collections::BTreeSet<String> =
            std::fs::read_dir(dir.path().join("media").join(folder))
                .unwrap()
                .map(|e| {
                    let name = e.unwrap().file_name().to_string_lossy().into_owned();
                    name.trim_end_matches(".jpg").to_owned()
                })
                .collect();
        assert_eq!(files, rows, "{folder}: files and rows agree");
    }
    assert_eq!(rows.len(), 3, "the kept camera's three frames");
    // The kept camera's frames (bytes the doomed camera had too) still serve.
    let page: Value = client
        .get(format!("{base}/api/cameras/{kept}/images"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_images_serve(&client, &base, page["items"].as_array().unwrap()).await;
    assert_media_consistent(dir.path());
    drop(conn);
    kill(origin);
    if let Some(name) = pg_name {
        common::drop_postgres_database(&name).await;
    }
}

#[tokio::test]
async fn sqlite_killed_mid_delete() {
    killed_mid_delete(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_killed_mid_delete() {
    killed_mid_delete(Backend::Postgres).await;
}
