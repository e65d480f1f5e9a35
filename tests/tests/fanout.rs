//! The public's event streams fanned out at the edge (edge/src/fanout.rs), end to end: a real
//! origin behind the Worker and its Durable Objects in `wrangler dev`, a thousand real viewers.
//! One stack for the suite, one phase after another, each with its own deadline.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use reqwest::Client;
use serde_json::Value;
use timelapser_core::events::{EventStreamParser, MessageEvent};
use timelapser_support::free_port;
use timelapser_tests::{Edge, Origin};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Viewers of the shared stream.
const VIEWERS: usize = 1000;

/// The origin's event-stream route, as its metrics label it.
const EVENTS: &str = "/api/events";

/// The edge's heartbeat interval in this suite (15 s in production).
const HEARTBEAT_MS: &str = "1000";

/// One client of `/api/events`: the events it received, in order, and the comments.
struct Viewer {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    parser: EventStreamParser,
    events: Vec<MessageEvent>,
    /// Comment lines (heartbeats) received.
    comments: usize,
    /// The first byte of the line being read, if any yet.
    line_start: Option<u8>,
    retry: bool,
}

impl Viewer {
    async fn open(client: &Client, url: &str, last_event_id: Option<&str>) -> Result<Self> {
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Self::of(request).await
    }

    async fn of(request: reqwest::RequestBuilder) -> Result<Self> {
        let response = request.send().await?;
        ensure!(response.status() == 200, "{}", response.status());
        for (name, value) in [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache, no-transform"),
            ("x-accel-buffering", "no"),
        ] {
            ensure!(
                response.headers().get(name).is_some_and(|v| v == value),
                "{name} of {:?}",
                response.headers()
            );
        }
        ensure!(!response
            .headers()
            .contains_key("x-timelapser-fanout-forward"));
        Ok(Self {
            body: response.bytes_stream().boxed(),
            parser: EventStreamParser::new(),
            events: Vec::new(),
            comments: 0,
            line_start: None,
            retry: false,
        })
    }

    fn take(&mut self, chunk: &[u8]) {
        self.events.extend(self.parser.push(chunk));
        self.retry |= self.parser.reconnection_time().is_some();
        for &byte in chunk {
            match (byte, self.line_start) {
                (b'\n', Some(b':')) => {
                    self.comments += 1;
                    self.line_start = None;
                }
                (b'\n', _) => self.line_start = None,
                (_, None) => self.line_start = Some(byte),
                _ => {}
            }
        }
    }

    /// Reads until `done` holds; fails at `deadline` or when the stream ends.
    async fn read_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) -> Result<()> {
        while !done(self) {
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .context("the deadline passed")?
                .context("the stream ended")??;
            self.take(&chunk);
        }
        Ok(())
    }

    /// The ids of the images of the `image_captured` events received, in order, after checking
    /// that the event ids increase.
    fn images(&self) -> Result<Vec<i64>> {
        let mut last = 0u64;
        let mut images = Vec::new();
        for event in &self.events {
            ensure!(event.event == "image_captured", "{event:?}");
            let id: u64 = event.last_event_id.parse()?;
            ensure!(id > last, "ids out of order: {last} then {id}");
            last = id;
            let data: Value = serde_json::from_str(&event.data)?;
            images.push(data["image"]["id"].as_i64().context("the image's id")?);
        }
        Ok(images)
    }
}

/// Reads every viewer until it has `count` events (each in its own task), then checks that
/// each received exactly `expected`'s images, in order; returns them.
async fn receive_all(
    viewers: Vec<Viewer>,
    count: usize,
    expected: &[i64],
    within: Duration,
) -> Result<Vec<Viewer>> {
    let deadline = Instant::now() + within;
    let mut readers = JoinSet::new();
    for (n, mut viewer) in viewers.into_iter().enumerate() {
        readers.spawn(async move {
            let read = viewer
                .read_until(deadline, |v| v.events.len() >= count)
                .await;
            (n, viewer, read)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = readers.join_next().await {
        let (n, viewer, read) = joined?;
        read.with_context(|| format!("viewer {n} has {} of {count} events", viewer.events.len()))?;
        let images = viewer.images()?;
        ensure!(images == expected, "viewer {n}: {images:?} != {expected:?}");
        done.push((n, viewer));
    }
    done.sort_by_key(|(n, _)| *n);
    Ok(done.into_iter().map(|(_, v)| v).collect())
}

async fn capture(origin: &Origin, camera: i64, token: &str, seed: u32) -> Result<i64> {
    let image = origin.capture(camera, token, seed).await?;
    image["id"].as_i64().context("the image's id")
}

async fn event_streams(origin: &Origin) -> Result<u64> {
    origin.requests(EVENTS, "GET", 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publics_event_streams_are_fanned_out_at_the_edge() -> Result<()> {
    let mut origin = Origin::start().await?;
    let edge = Edge::start_on(
        &origin.base,
        10_000,
        free_port()?,
        &[("EVENTS_HEARTBEAT_MS", HEARTBEAT_MS)],
    )
    .await?;
    let (camera, token) = origin.create_camera("Fan-out").await?;
    // The lists in another order and with a repeat: the same filter, so the same stream.
    let spellings = [
        format!("{EVENTS}?camera_id={camera}&types=image_captured"),
        format!("{EVENTS}?types=image_captured,image_captured&camera_id={camera},{camera}"),
    ];
    let client = Client::builder().pool_max_idle_per_host(0).build()?;
    let before = event_streams(&origin).await?;

    // A thousand viewers cost the origin one stream.
    let started = std::time::Instant::now();
    let opened: Vec<Result<Viewer>> = futures::stream::iter(0..VIEWERS)
        .map(|n| {
            let url = edge.url(&spellings[n % spellings.len()]);
            let client = client.clone();
            async move { Viewer::open(&client, &url, None).await }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let viewers = opened.into_iter().collect::<Result<Vec<_>>>()?;
    eprintln!("{VIEWERS} viewers connected in {:?}", started.elapsed());
    let mut images = Vec::new();
    for seed in 0..5 {
        images.push(capture(&origin, camera, &token, seed).await?);
    }
    let started = std::time::Instant::now();
    let mut viewers = receive_all(viewers, 5, &images, Duration::from_secs(60)).await?;
    eprintln!(
        "5 events reached {VIEWERS} viewers in {:?}",
        started.elapsed()
    );
    assert!(viewers.iter().all(|v| v.retry), "each viewer got retry:");
    let streams = event_streams(&origin).await? - before;
    assert!(
        (1..=2).contains(&streams),
        "{VIEWERS} viewers cost the origin {streams} event streams"
    );
    let ids: Vec<String> = viewers[0]
        .events
        .iter()
        .map(|e| e.last_event_id.clone())
        .collect();

    // Heartbeats reach viewers while nothing happens.
    let deadline = Instant::now() + Duration::from_secs(10);
    for viewer in viewers.iter_mut().take(20) {
        let seen = viewer.comments;
        viewer
            .read_until(deadline, |v| v.comments > seen)
            .await
            .context("a heartbeat")?;
        assert_eq!(viewer.events.len(), 5, "a heartbeat is no event");
    }

    // A resume the ring holds is answered at the edge, by the header or the query.
    let before = event_streams(&origin).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resumed = Viewer::open(&client, &edge.url(&spellings[1]), Some(&ids[1])).await?;
    resumed
        .read_until(deadline, |v| v.events.len() >= 3)
        .await?;
    assert_eq!(resumed.images()?, images[2..]);
    let query = format!("{}&last_event_id={}", spellings[0], ids[3]);
    let mut by_query = Viewer::open(&client, &edge.url(&query), None).await?;
    by_query
        .read_until(deadline, |v| !v.events.is_empty())
        .await?;
    assert_eq!(by_query.images()?, images[4..]);
    assert_eq!(
        event_streams(&origin).await?,
        before,
        "resumes from the ring cost the origin nothing"
    );

    // One from before the fan-out's first event is the origin's: replayed from its log.
    let first: u64 = ids[0].parse()?;
    let old = (first - 1).to_string();
    let mut replayed = Viewer::open(&client, &edge.url(&spellings[0]), Some(&old)).await?;
    replayed
        .read_until(deadline, |v| v.events.len() >= 5)
        .await?;
    assert_eq!(replayed.images()?, images);
    assert_eq!(event_streams(&origin).await?, before + 1);

    // With credentials (here the camera's own token, which also sees it when private), a stream
    // of the origin's own, never the shared one.
    let mut own = Viewer::of(
        client
            .get(edge.url(&spellings[0]))
            .bearer_auth(&token)
            .header("last-event-id", &ids[3]),
    )
    .await?;
    own.read_until(deadline, |v| !v.events.is_empty()).await?;
    assert_eq!(own.images()?, images[4..]);
    assert_eq!(event_streams(&origin).await?, before + 2);
    drop((replayed, resumed, by_query, own));

    // A rolling restart of the origin: the viewers stay connected and lose nothing, not even
    // what happened before the fan-out was back.
    origin.restart().await?;
    let restarted = std::time::Instant::now();
    for seed in 5..8 {
        images.push(capture(&origin, camera, &token, seed).await?);
    }
    let reconnected_before = event_streams(&origin).await? > 0;
    let viewers = receive_all(viewers, 8, &images, Duration::from_secs(60))
        .await
        .context("after the restart")?;
    eprintln!(
        "the restart's events reached {} viewers {:?} after it (the fan-out reconnected {} them)",
        viewers.len(),
        restarted.elapsed(),
        if reconnected_before {
            "before"
        } else {
            "after"
        }
    );
    let streams = event_streams(&origin).await?;
    if streams > 2 {
        bail!("after the restart, the viewers cost the origin {streams} event streams");
    }
    Ok(())
}
