//! Beyond one machine: two origins (replicas A and B) on one PostgreSQL database, sharing
//! their media in an S3-protocol bucket (s3s-fs on loopback), behind the edge in `wrangler
//! dev` whose origin is B. What A accepts, the edge serves from B; a viewer connected through
//! the edge sees every event once, in order, while both replicas restart in turn.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use timelapser_core::events::EventStreamParser;
use timelapser_origin::media::MediaLocation;
use timelapser_support::s3::S3Server;
use timelapser_tests::{root, Edge, Origin};
use tokio::sync::mpsc;

const BUCKET: &str = "media";
const WAIT: Duration = Duration::from_secs(60);

/// One database, one bucket.
struct Shared {
    database_url: String,
    database: String,
    s3: S3Server,
    _storage: tempfile::TempDir,
}

impl Shared {
    async fn start() -> Self {
        let admin = std::env::var("TIMELAPSER_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let database = format!(
            "tl_replicas_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let storage = tempfile::tempdir().unwrap();
        let s3 = S3Server::start(&root(), storage.path(), &[BUCKET])
            .await
            .expect("starting s3s-fs");
        Self {
            database_url: format!("{base}/{database}"),
            database,
            s3,
            _storage: storage,
        }
    }

    /// A replica on the shared database and bucket, on `listen` (port 0: a free one).
    async fn replica(&self, listen: SocketAddr) -> Origin {
        let settings = self.s3.settings();
        Origin::start_with(|o| {
            o.listen = listen;
            o.database_url = Some(self.database_url.clone());
            o.media = Some(MediaLocation::S3 {
                bucket: BUCKET.into(),
                prefix: String::new(),
                settings,
            });
        })
        .await
        .expect("a replica starts")
    }

    /// Stops `replica` and starts it again on the same address.
    async fn restart(&self, mut replica: Origin) -> Origin {
        let addr = replica.addr;
        replica.stop().await.unwrap();
        self.replica(addr).await
    }

    async fn finish(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(
            &std::env::var("TIMELAPSER_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        )
        .await
        {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_on_one_replica_is_served_through_the_edge_by_the_other() {
    let shared = Shared::start().await;
    let a = shared.replica(any_port()).await;
    let b = shared.replica(any_port()).await;
    let edge = Edge::start(&b.base, 10_000).await.unwrap();
    let (camera, token) = a.create_camera("Roof").await.unwrap();
    let image = a.capture(camera, &token, 11).await.unwrap();
    let url = image["url"].as_str().unwrap().to_owned();
    let expected = timelapser_tests::frame(11);

    let client = Client::new();
    let r = client.get(edge.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), expected);
    assert_eq!(
        b.requests("/media/{folder}/{file}", "GET", 200)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        a.requests("/media/{folder}/{file}", "GET", 200)
            .await
            .unwrap(),
        0
    );
    // Stored by the edge: the second viewer costs B nothing.
    let r = client.get(edge.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), expected);
    assert_eq!(
        b.requests("/media/{folder}/{file}", "GET", 200)
            .await
            .unwrap(),
        1
    );
    drop(edge);
    drop((a, b));
    shared.finish().await;
}

/// A viewer as a browser's EventSource is: when its stream ends it connects again (after the
/// `retry:` delay, here 200 ms) with `Last-Event-ID`. Sends every event's (id, image id).
fn viewer(url: String, seen: mpsc::UnboundedSender<(u64, i64)>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = Client::new();
        let mut last_id: Option<String> = None;
        loop {
            let mut request = client.get(&url);
            if let Some(id) = &last_id {
                request = request.header("last-event-id", id.as_str());
            }
            if let Ok(response) = request.send().await {
                if response.status() == StatusCode::OK {
                    let mut parser = EventStreamParser::new();
                    let mut stream = response.bytes_stream();
                    while let Some(Ok(chunk)) = stream.next().await {
                        for event in parser.push(&chunk) {
                            if event.event == "resync" {
                                panic!("the viewer was told to resync: {}", event.data);
                            }
                            let data: Value = serde_json::from_str(&event.data).unwrap();
                            let id: u64 = event.last_event_id.parse().unwrap();
                            last_id = Some(event.last_event_id.clone());
                            if seen
                                .send((id, data["image"]["id"].as_i64().unwrap()))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_both_replicas_loses_no_event_for_a_viewer() {
    let shared = Shared::start().await;
    let mut a = shared.replica(any_port()).await;
    let mut b = shared.replica(any_port()).await;
    let edge = Edge::start(&b.base, 10_000).await.unwrap();
    let (camera, token) = a.create_camera("Roof").await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = viewer(edge.url("/api/events?types=image_captured"), tx);

    let mut captured = Vec::new();
    let mut seed = 0;
    let mut capture_on = |origin: &Origin| {
        seed += 1;
        let (base, token) = (origin.base.clone(), token.clone());
        let seed = seed;
        async move {
            let image: Value = Client::new()
                .post(format!("{base}/api/cameras/{camera}/captures"))
                .bearer_auth(token)
                .header("content-type", "image/jpeg")
                .body(timelapser_tests::frame(seed))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            image["id"].as_i64().unwrap()
        }
    };
    // The viewer is connected once it has the first event.
    captured.push(capture_on(&a).await);
    let first = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let mut seen = vec![first];

    // A restarts while B takes the captures; then B (the edge's origin) restarts while A does.
    a = shared.restart(a).await;
    for _ in 0..3 {
        captured.push(capture_on(&b).await);
    }
    let b_addr = b.addr;
    b.stop().await.unwrap();
    for _ in 0..3 {
        captured.push(capture_on(&a).await);
    }
    b = shared.replica(b_addr).await;
    for _ in 0..3 {
        captured.push(capture_on(&b).await);
    }

    let deadline = Instant::now() + WAIT;
    while seen.len() < captured.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(event)) => seen.push(event),
            _ => panic!("the viewer saw {seen:?}, not all of {captured:?}"),
        }
    }
    // Nothing more arrives: no event twice.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "an event arrived twice"
    );
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    let images: Vec<i64> = seen.iter().map(|(_, image)| *image).collect();
    assert_eq!(images, captured);
    watcher.abort();
    drop(edge);
    drop((a, b));
    shared.finish().await;
}
