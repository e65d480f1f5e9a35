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
    for entry in std::fs::read_dir(data_dir.join("media/images")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
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
        image::load_from_memory(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("partial thumbnail {}: {e}", path.display()));
    }
    assert_eq!(
        std::fs::read_dir(data_dir.join("tmp")).unwrap().count(),
        0,
        "tmp/ emptied at start-up"
    );
}

async fn run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_name) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let (url, name) = common::fresh_postgres_database().await;
            (Some(url), Some(name))
        }
    };
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
    for image in items {
        // No row without its files, and the files serve.
        for key in ["url", "thumbnail_url"] {
            let r = client
                .get(format!("{base}{}", image[key].as_str().unwrap()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", image[key]);
        }
    }
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
