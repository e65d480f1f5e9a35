//! Webhooks against receivers on real sockets: deliveries are signed (the HMAC recomputed
//! here, independently of core) and carry the right event; a receiver answering 500 is retried
//! with backoff until it answers 200; a receiver that hangs times out and is retried while
//! captures and another webhook go on; bad bodies and strangers change nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{problem, TestOrigin, ADMIN};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

/// Everything waits at most this long.
const WAIT: Duration = Duration::from_secs(30);

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: bytes::Bytes,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} field"))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How a receiver answers.
#[derive(Clone)]
enum Answer {
    /// These statuses in turn, then 200 for ever.
    Statuses(Vec<u16>),
    /// Never: the request is read and the response never comes.
    Hang,
}

/// A receiver on 127.0.0.1: what it got, in order.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answer: Answer) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(answer));
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    log.lock().unwrap().push(Received {
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let status = match &mut *script.lock().unwrap() {
                        Answer::Hang => None,
                        Answer::Statuses(statuses) if statuses.is_empty() => Some(200),
                        Answer::Statuses(statuses) => Some(statuses.remove(0)),
                    };
                    match status {
                        Some(status) => AxumStatus::from_u16(status).unwrap(),
                        None => std::future::pending().await,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests have arrived; returns them.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {count} requests at {}; {} arrived",
                self.url,
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn create_webhook(origin: &TestOrigin, body: Value) -> Value {
    let response = origin
        .client
        .post(origin.url("/api/webhooks"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn admin_get(origin: &TestOrigin, path: &str) -> reqwest::Response {
    origin
        .client
        .get(origin.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
}

/// A webhook's delivery log.
async fn deliveries(origin: &TestOrigin, webhook: i64) -> Vec<Value> {
    let response = admin_get(origin, &format!("/api/webhooks/{webhook}/deliveries")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Waits until a webhook's delivery log satisfies `done`; returns it.
async fn wait_for_log(
    origin: &TestOrigin,
    webhook: i64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = deliveries(origin, webhook).await;
        if done(&log) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}; the log of webhook {webhook} is {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn report_status(origin: &TestOrigin, camera: i64, token: &str, status: &str) {
    let response = origin
        .client
        .put(origin.url(&format!("/api/cameras/{camera}/status")))
        .bearer_auth(token)
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Checks a delivery's signature the way the README tells receivers to: HMAC-SHA256 keyed
/// with the secret over `"<t>.<body>"`, hex, and `t` within five minutes of now.
fn assert_signed(request: &Received, secret: &str) {
    let field = request.header("timelapser-signature");
    let (t, v1) = field
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("not t=...,v1=...: {field}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    assert_eq!(v1, hex::encode(mac.finalize().into_bytes()), "{field}");
    let t: i64 = t.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - t).abs() <= 300, "t={t} is not near now ({now})");
    // Core's verifier agrees, and refuses another secret.
    let tolerance = timelapser_core::webhooks::DEFAULT_TOLERANCE;
    assert_eq!(
        timelapser_core::webhooks::verify(field, secret.as_bytes(), &request.body, now, tolerance),
        Ok(t)
    );
    assert!(timelapser_core::webhooks::verify(
        field,
        b"another secret, 16+",
        &request.body,
        now,
        tolerance
    )
    .is_err());
}

/// Adds a person and signs them in; their session cookie (`tl_session=...`).
async fn signed_in(origin: &TestOrigin, name: &str, role: &str) -> String {
    let password = "a long enough password";
    let added = origin
        .client
        .post(origin.url("/api/users"))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": name, "password": password, "role": role }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(origin.url("/login")).send().await.unwrap();
    let cookie = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .unwrap()
    };
    let sign_in_cookie = cookie(&form, "tl_sign_in");
    let csrf = sign_in_cookie.split_once('=').unwrap().1.to_owned();
    let signed = client
        .post(origin.url("/login"))
        .header("cookie", &sign_in_cookie)
        .form(&[("name", name), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    cookie(&signed, "tl_session")
}

on_both!(deliveries_are_signed_and_say_what_happened, |origin| {
    let receiver = Receiver::start(Answer::Statuses(vec![])).await;
    let secret = "whsec_a-secret-the-test-knows";
    let webhook = create_webhook(
        origin,
        json!({
            "url": receiver.url,
            "secret": secret,
            "events": ["camera_offline", "camera_online", "video_ready"],
        }),
    )
    .await;
    let webhook_id = webhook["id"].as_i64().unwrap();
    assert_eq!(webhook["secret"], secret);
    // Subscribed to something else only: gets none of these.
    let other = Receiver::start(Answer::Statuses(vec![])).await;
    let other_id = create_webhook(
        origin,
        json!({ "url": other.url, "events": ["storage_pressure"] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();

    let (camera, token) = origin.create_camera("Roof").await;
    let timelapse = origin
        .client
        .post(origin.url(&format!("/api/cameras/{camera}/timelapses")))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "Spring" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    report_status(origin, camera, &token, "offline").await;
    for seed in 0..3 {
        let jpeg = timelapser_origin::demo::synthetic_frame(64, 48, seed % 2, seed);
        assert_eq!(
            origin.capture(camera, &token, jpeg).await.status(),
            StatusCode::CREATED
        );
    }
    let render = origin
        .client
        .post(origin.url(&format!("/api/timelapses/{timelapse}/videos")))
        .bearer_auth(ADMIN)
        .json(&json!({ "fps": 10 }))
        .send()
        .await
        .unwrap();
    assert_eq!(render.status(), StatusCode::ACCEPTED);

    let got = receiver.wait_for(3).await;
    let log = origin.events_after(0).await;
    let logged_id = |name: &str| log.iter().find(|e| e.1 == name).unwrap().0;
    let offline_id = log
        .iter()
        .find(|e| e.1 == "camera_status_changed" && e.2["status"] == "offline")
        .unwrap()
        .0;
    let online_id = log
        .iter()
        .find(|e| e.1 == "camera_status_changed" && e.2["status"] == "online")
        .unwrap()
        .0;
    let mut events = Vec::new();
    for request in &got {
        assert_signed(request, secret);
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json();
        assert_eq!(request.header("timelapser-event"), body["event"]);
        assert_eq!(
            request.header("timelapser-delivery"),
            body["id"].to_string()
        );
        assert!(body["created_at"].is_string());
        events.push((body["event"].as_str().unwrap().to_owned(), body));
    }
    events.sort_by_key(|(_, body)| body["event_id"].as_i64());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["camera_offline", "camera_online", "video_ready"]);
    let (_, offline) = &events[0];
    assert_eq!(offline["event_id"], offline_id);
    assert_eq!(offline["data"]["camera_id"], camera);
    assert_eq!(offline["data"]["status"], "offline");
    assert_eq!(events[1].1["event_id"], online_id);
    let (_, ready) = &events[2];
    assert_eq!(ready["event_id"], logged_id("video_ready"));
    assert_eq!(ready["data"]["video"]["status"], "ready");
    assert_eq!(ready["data"]["video"]["timelapse_id"], timelapse);
    assert!(ready["data"]["video"]["url"]
        .as_str()
        .unwrap()
        .starts_with("/media/videos/"));

    // The delivery log: newest first, each delivered at its first attempt.
    let log = wait_for_log(origin, webhook_id, "three deliveries", |log| {
        log.len() == 3 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let logged: Vec<&str> = log.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(logged, ["video_ready", "camera_online", "camera_offline"]);
    for delivery in &log {
        assert_eq!(delivery["attempt_count"], 1);
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["delivered_at"].is_string());
        assert!(delivery["next_attempt_at"].is_null());
        assert_eq!(delivery["attempts"][0]["status_code"], 200);
        assert!(delivery["attempts"][0]["error"].is_null());
    }
    assert!(deliveries(origin, other_id).await.is_empty());
    assert!(other.received().is_empty());

    // Reads never show the secret, and are kept by no shared cache.
    let listed = admin_get(origin, "/api/webhooks").await;
    assert_eq!(
        common::header(listed.headers(), "cache-control"),
        "private, no-cache"
    );
    let text = listed.text().await.unwrap();
    assert!(!text.contains(secret), "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        listed[0]["events"],
        json!(["video_ready", "camera_offline", "camera_online"])
    );

    // A webhook created now is sent what happens from now on, not what happened before.
    let late = Receiver::start(Answer::Statuses(vec![])).await;
    let late_id = create_webhook(
        origin,
        json!({ "url": late.url, "events": ["camera_offline", "camera_online", "video_ready"] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    report_status(origin, camera, &token, "offline").await;
    let got = late.wait_for(1).await;
    assert_eq!(got[0].json()["event"], "camera_offline");
    receiver.wait_for(4).await;
    // Its deliveries are made together with the first webhook's, in one transaction per
    // batch of the log: this one is all it has.
    let log = deliveries(origin, late_id).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(late.received().len(), 1);

    // The console shows an operator the webhooks and their last deliveries; a viewer neither
    // sees them nor may read the API.
    let operator = signed_in(origin, "olga", "operator").await;
    let console = origin
        .get_with("/console", &[("cookie", operator.as_str())])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        console.contains(&format!("data-webhook-id=\"{webhook_id}\"")),
        "{console}"
    );
    assert!(console.contains(&receiver.url));
    assert!(console.contains("delivered"));
    assert!(console.contains("id=\"new-webhook\""));
    assert!(!console.contains(secret), "the secret is never shown again");
    let viewer = signed_in(origin, "vera", "viewer").await;
    let console = origin
        .get_with("/console", &[("cookie", viewer.as_str())])
        .await
        .text()
        .await
        .unwrap();
    assert!(console.contains("Signed in as"));
    assert!(!console.contains("new-webhook") && !console.contains(&receiver.url));
    let refused = origin
        .get_with("/api/webhooks", &[("cookie", viewer.as_str())])
        .await;
    problem(refused, StatusCode::FORBIDDEN).await;
});

on_both!(
    a_receiver_answering_500_is_retried_with_backoff,
    |options| {
        options.webhook_delivery.backoff_base = Duration::from_millis(100);
    },
    |origin| {
        let receiver = Receiver::start(Answer::Statuses(vec![500, 500, 200])).await;
        let webhook = create_webhook(
            origin,
            json!({ "url": receiver.url, "events": ["camera_offline"] }),
        )
        .await;
        let (camera, token) = origin.create_camera("Roof").await;
        report_status(origin, camera, &token, "offline").await;

        let got = receiver.wait_for(3).await;
        // The same delivery and the same bytes each time, signed afresh.
        let secret = webhook["secret"].as_str().unwrap();
        for request in &got {
            assert_signed(request, secret);
            assert_eq!(request.body, got[0].body);
            assert_eq!(
                request.header("timelapser-delivery"),
                got[0].header("timelapser-delivery")
            );
        }
        // Backoff: 1 then 3 times the base between attempts.
        assert!(got[1].at - got[0].at >= Duration::from_millis(100));
        assert!(got[2].at - got[1].at >= Duration::from_millis(300));

        let webhook_id = webhook["id"].as_i64().unwrap();
        let log = wait_for_log(origin, webhook_id, "the delivery", |log| {
            log.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        assert_eq!(log.len(), 1);
        let delivery = &log[0];
        assert_eq!(delivery["event"], "camera_offline");
        assert_eq!(delivery["attempt_count"], 3);
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["last_error"].is_null());
        assert!(delivery["next_attempt_at"].is_null());
        assert!(delivery["delivered_at"].is_string());
        let statuses: Vec<i64> = delivery["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(statuses, [500, 500, 200]);
        let attempts = delivery["attempts"].as_array().unwrap();
        for (n, attempt) in attempts.iter().enumerate() {
            assert_eq!(attempt["attempt"], n as i64 + 1);
        }
        assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
        assert!(attempts[2]["error"].is_null());
        assert_eq!(receiver.received().len(), 3, "nothing after the 200");
    }
);

/// How long the hanging receiver is waited for.
const HANG_TIMEOUT: Duration = Duration::from_secs(3);

on_both!(
    a_hanging_receiver_times_out_and_delays_nothing_else,
    |options| {
        options.webhook_delivery.timeout = HANG_TIMEOUT;
        options.webhook_delivery.backoff_base = Duration::from_millis(50);
    },
    |origin| {
        let hanging = Receiver::start(Answer::Hang).await;
        let healthy = Receiver::start(Answer::Statuses(vec![])).await;
        let stuck = create_webhook(
            origin,
            json!({ "url": hanging.url, "events": ["camera_offline"] }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let fine = create_webhook(
            origin,
            json!({ "url": healthy.url, "events": ["camera_offline"] }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let (camera, token) = origin.create_camera("Roof").await;
        report_status(origin, camera, &token, "offline").await;

        let hang_began = hanging.wait_for(1).await[0].at;
        // The other webhook is delivered while the first one hangs.
        healthy.wait_for(1).await;
        wait_for_log(origin, fine, "the healthy delivery", |log| {
            log.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        assert!(hang_began.elapsed() < HANG_TIMEOUT);
        let log = deliveries(origin, stuck).await;
        assert_eq!(log[0]["status"], "pending");
        assert!(
            log[0]["attempts"].as_array().unwrap().is_empty(),
            "still in flight"
        );

        // Captures are taken at their usual pace meanwhile.
        let mut slowest = Duration::ZERO;
        for seed in 0..20 {
            let started = Instant::now();
            let response = origin
                .capture(camera, &token, common::jpeg(64, 48, seed))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            slowest = slowest.max(started.elapsed());
        }
        assert!(
            hang_began.elapsed() < HANG_TIMEOUT,
            "the captures outlasted the hang ({:?}); the test proves nothing",
            hang_began.elapsed()
        );
        assert!(
            slowest < Duration::from_secs(1),
            "a capture took {slowest:?}"
        );

        // The hanging attempt ends at its timeout, is recorded, and is made again.
        let log = wait_for_log(origin, stuck, "the timed-out attempt", |log| {
            log.first()
                .is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty())
        })
        .await;
        let attempt = &log[0]["attempts"][0];
        assert!(attempt["status_code"].is_null());
        assert!(
            attempt["error"].as_str().unwrap().contains("timed out"),
            "{attempt}"
        );
        let took = attempt["duration_ms"].as_u64().unwrap();
        let timeout = HANG_TIMEOUT.as_millis() as u64;
        assert!(
            (timeout..timeout + 2000).contains(&took),
            "the attempt took {took} ms"
        );
        hanging.wait_for(2).await;
        let delivery = &deliveries(origin, stuck).await[0];
        assert_eq!(delivery["status"], "pending");
        assert_eq!(healthy.received().len(), 1);
    }
);

on_both!(bad_bodies_and_strangers_change_nothing, |origin| {
    let post = |body: Value, token: Option<&str>| {
        let mut request = origin.client.post(origin.url("/api/webhooks")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let good = json!({ "url": "http://127.0.0.1:9/hook", "events": ["video_ready"] });
    for (body, field) in [
        (
            json!({ "url": "ftp://example.org/", "events": ["video_ready"] }),
            "url",
        ),
        (
            json!({ "url": "not a url", "events": ["video_ready"] }),
            "url",
        ),
        (
            json!({ "url": "http://:80/hook", "events": ["video_ready"] }),
            "url",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": ["video_progress"] }),
            "events",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": [] }),
            "events",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": "video_ready" }),
            "events",
        ),
        (json!({ "events": ["video_ready"] }), "url"),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": ["video_ready"], "secret": "short" }),
            "secret",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": ["video_ready"], "colour": "red" }),
            "colour",
        ),
    ] {
        let response = post(body.clone(), Some(ADMIN)).await.unwrap();
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    let malformed = origin
        .client
        .post(origin.url("/api/webhooks"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;

    // Never public, and not a camera's.
    let (camera, token) = origin.create_camera("Roof").await;
    problem(
        post(good.clone(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        post(good.clone(), Some(token.as_str())).await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(origin.get("/api/webhooks").await, StatusCode::UNAUTHORIZED).await;
    let as_camera = origin
        .client
        .get(origin.url("/api/webhooks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    problem(as_camera, StatusCode::FORBIDDEN).await;
    let listed: Value = admin_get(origin, "/api/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "nothing was stored");

    // A good one: 201, its secret this once, never stored by a cache.
    let created = post(good.clone(), Some(ADMIN)).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        common::header(created.headers(), "cache-control"),
        "private, no-store"
    );
    let location = common::header(created.headers(), "location").to_owned();
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/webhooks/{id}"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["enabled"], true);
    let shown: Value = admin_get(origin, &location).await.json().await.unwrap();
    assert!(shown.get("secret").is_none());
    assert_eq!(shown["url"], "http://127.0.0.1:9/hook");

    // A bad change changes nothing; a good one changes what it names.
    let patch = |body: Value| {
        origin
            .client
            .patch(origin.url(&location))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let refused = patch(json!({ "events": ["camera_online", "nope"] }))
        .await
        .unwrap();
    problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let refused = patch(json!({ "url": "gopher://x" })).await.unwrap();
    problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let as_camera = origin
        .client
        .patch(origin.url(&location))
        .bearer_auth(&token)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    problem(as_camera, StatusCode::FORBIDDEN).await;
    let unchanged: Value = admin_get(origin, &location).await.json().await.unwrap();
    assert_eq!(unchanged, shown);
    let changed = patch(json!({ "events": ["camera_online"], "enabled": false }))
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["events"], json!(["camera_online"]));
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["url"], shown["url"]);

    // Unknown ids and bad limits.
    problem(
        admin_get(origin, "/api/webhooks/999").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        admin_get(origin, "/api/webhooks/999/deliveries").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        admin_get(origin, &format!("{location}/deliveries?limit=0")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let delete = |path: String, token: &str| {
        origin
            .client
            .delete(origin.url(&path))
            .bearer_auth(token)
            .send()
    };
    problem(
        delete(location.clone(), token.as_str()).await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        delete(location.clone(), ADMIN).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    problem(
        delete(location.clone(), ADMIN).await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let _ = camera;
});

/// Two replicas on one PostgreSQL: one dispatches (the job lock), both may send, and each
/// event reaches the receiver once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_send_each_delivery_once() {
    let origin = TestOrigin::start(common::Backend::Postgres).await;
    let replica = origin.replica().await;
    let receiver = Receiver::start(Answer::Statuses(vec![])).await;
    let webhook = create_webhook(
        &origin,
        json!({ "url": receiver.url, "events": ["camera_offline", "camera_online"] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (camera, token) = origin.create_camera("Roof").await;
    // Half the changes through each replica.
    let replica_base = format!("http://{}", replica.addr);
    for n in 0..10 {
        let base = if n % 2 == 0 {
            &origin.base
        } else {
            &replica_base
        };
        let status = if n % 2 == 0 { "offline" } else { "online" };
        let response = origin
            .client
            .put(format!("{base}/api/cameras/{camera}/status"))
            .bearer_auth(&token)
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let log = wait_for_log(&origin, webhook, "ten deliveries", |log| {
        log.len() == 10 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert!(log.iter().all(|d| d["attempt_count"] == 1), "{log:#?}");
    let got = receiver.received();
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("timelapser-delivery"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (10, 10));
    replica.shutdown().await.unwrap();
    origin.finish().await;
}

/// A pending delivery survives a restart: the next attempt is made by the new process.
mod a_pending_delivery_survives_a_restart {
    use super::*;

    async fn run(backend: common::Backend) {
        let origin = TestOrigin::start_with(backend, |options| {
            // Long enough for the restart to come first.
            options.webhook_delivery.backoff_base = Duration::from_secs(2);
        })
        .await;
        let receiver = Receiver::start(Answer::Statuses(vec![500])).await;
        let webhook = create_webhook(
            &origin,
            json!({ "url": receiver.url, "events": ["camera_offline"] }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let (camera, token) = origin.create_camera("Roof").await;
        report_status(&origin, camera, &token, "offline").await;
        wait_for_log(&origin, webhook, "the first attempt", |log| {
            log.first()
                .is_some_and(|d| d["attempts"].as_array().unwrap().len() == 1)
        })
        .await;
        let origin = origin.restart().await;
        let restarted = Instant::now();
        let log = wait_for_log(&origin, webhook, "the delivery", |log| {
            log.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        let statuses: Vec<&Value> = log[0]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["status_code"])
            .collect();
        assert_eq!(statuses, [500, 200]);
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert!(
            got[1].at > restarted,
            "the new process made the second attempt"
        );
        origin.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(common::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(common::Backend::Postgres).await;
    }
}
