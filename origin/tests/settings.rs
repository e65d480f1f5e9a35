//! Settings and preferences: private short caching, timestamp tags, If-Match on writes.

mod common;

use common::{header, problem, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(settings_are_private_cached_and_validated, |origin| {
    let r = origin.get("/api/settings").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), "private, max-age=300");
    let etag = header(r.headers(), "etag").to_owned();
    let settings: Value = r.json().await.unwrap();
    // The timestamp tag is "<secs>.<micros>" of updated_at.
    let updated_at =
        chrono::DateTime::parse_from_rfc3339(settings["updated_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        etag,
        format!(
            "\"{}.{:06}\"",
            updated_at.timestamp(),
            updated_at.timestamp_subsec_micros()
        )
    );
    assert_eq!(settings["offline_after_seconds"], 120);
    let r = origin
        .get_with("/api/settings", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(r.headers(), "cache-control"), "private, max-age=300");
    assert_eq!(header(r.headers(), "etag"), etag);
});

on_both!(settings_writes_honour_if_match, |origin| {
    let etag = header(origin.get("/api/settings").await.headers(), "etag").to_owned();
    let put = |if_match: Option<&str>, body: &str, token: Option<&str>| {
        let mut r = origin
            .client
            .put(origin.url("/api/settings"))
            .body(body.to_owned());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        r.send()
    };
    let before = origin.last_event_id().await;
    problem(
        put(Some(&etag), r#"{"offline_after_seconds": 60}"#, None)
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        put(
            Some(&etag),
            r#"{"offline_after_seconds": "soon"}"#,
            Some(ADMIN),
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(Some(&etag), r#"{"offline_after_seconds": 0}"#, Some(ADMIN))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(Some(&etag), r#"{"colour": "blue"}"#, Some(ADMIN))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(Some(&etag), r#"[1, 2]"#, Some(ADMIN)).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        put(Some(&etag), r#"{"offline"#, Some(ADMIN)).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        put(
            Some("\"1.000000\""),
            r#"{"offline_after_seconds": 60}"#,
            Some(ADMIN),
        )
        .await
        .unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    problem(
        put(
            Some(&format!("W/{etag}")),
            r#"{"offline_after_seconds": 60}"#,
            Some(ADMIN),
        )
        .await
        .unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        origin.last_event_id().await,
        before,
        "rejected writes log nothing"
    );
    let unchanged: Value = origin.get("/api/settings").await.json().await.unwrap();
    assert_eq!(unchanged["offline_after_seconds"], 120);

    let r = put(
        Some(&etag),
        r#"{"offline_after_seconds": 60, "site_name": "Timelapser"}"#,
        Some(ADMIN),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_etag = header(r.headers(), "etag").to_owned();
    assert_ne!(new_etag, etag);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["offline_after_seconds"], 60);
    // Only the key that changed is reported, with the new tag.
    let events = origin.events_after(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "settings_updated");
    assert_eq!(events[0].2["keys"], json!(["offline_after_seconds"]));
    assert_eq!(events[0].2["etag"], new_etag);
    // The old tag is now stale: 412, and a read with it gets the new settings.
    problem(
        put(Some(&etag), r#"{"offline_after_seconds": 30}"#, Some(ADMIN))
            .await
            .unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    let r = origin
        .get_with("/api/settings", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "etag"), new_etag);
    // Without If-Match the write is unconditional.
    let r = put(None, r#"{"timezone": "Europe/Paris"}"#, Some(ADMIN))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A write that changes nothing keeps the tag and logs nothing.
    let current = header(r.headers(), "etag").to_owned();
    let last = origin.last_event_id().await;
    let r = put(
        Some(&current),
        r#"{"timezone": "Europe/Paris"}"#,
        Some(ADMIN),
    )
    .await
    .unwrap();
    assert_eq!(header(r.headers(), "etag"), current);
    assert_eq!(origin.last_event_id().await, last);
});

on_both!(preferences_are_for_the_admin_only, |origin| {
    problem(
        origin.get("/api/preferences").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let r = origin
        .client
        .get(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), "private, max-age=300");
    let etag = header(r.headers(), "etag").to_owned();
    let r = origin
        .client
        .put(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .header("if-match", &etag)
        .json(&json!({"display_timezone": "Europe/Paris", "dashboard_layout": {"columns": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let prefs: Value = r.json().await.unwrap();
    assert_eq!(prefs["dashboard_layout"]["columns"], 3);
    let r = origin
        .client
        .put(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .header("if-match", &etag)
        .json(&json!({"display_timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PRECONDITION_FAILED).await;
    let r = origin
        .client
        .put(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .body(format!("{{\"big\": \"{}\"}}", "x".repeat(70_000)))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Declaring 3 MiB: still a problem document, from the head. Only the head and the body's
    // first bytes are sent: a client still writing 3 MiB when the server answers and closes
    // may get a broken pipe instead of the answer.
    let head = format!(
        "PUT /api/preferences HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"big\": \"xxxx",
        3 << 20
    );
    let r = common::raw_request(origin.addr, head.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.head);
    let current: Value = origin
        .client
        .get(origin.url("/api/preferences"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["display_timezone"], "Europe/Paris");
});
