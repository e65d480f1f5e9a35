//! Accounts and sessions: users created with `timelapser-origin user add` (argon2id), signing in
//! through `/login` (a double-submit CSRF cookie, a new session id each time, HttpOnly and
//! SameSite cookies), the API used with a session (its CSRF token needed for every change; a
//! viewer changes nothing), signing out, and failed sign-ins throttled.

mod common;

use common::{problem, Backend, TestOrigin};
use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use timelapser_origin::accounts::{self, Role};

/// A client that shows redirects instead of following them.
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` fields of a response.
fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value a `Set-Cookie` gives to `name`.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).iter().find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (n, v) = pair.split_once('=')?;
        (n == name).then(|| v.to_owned())
    })
}

/// `GET /login`: the form's CSRF value (also set as the sign-in cookie).
async fn sign_in_form(origin: &TestOrigin) -> String {
    let response = client().get(origin.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "private, no-store");
    let cookie = set_cookies(response.headers())
        .into_iter()
        .find(|c| c.starts_with("tl_sign_in="))
        .expect("a sign-in cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let value = cookie_value(response.headers(), "tl_sign_in").unwrap();
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{value}\"")),
        "the form carries the cookie's value:\n{html}"
    );
    value
}

/// `POST /login` with the form's fields, the sign-in cookie if given.
async fn post_sign_in(
    origin: &TestOrigin,
    cookie: Option<&str>,
    csrf: &str,
    name: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = client()
        .post(origin.url("/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("name", name), ("password", password), ("csrf", csrf)])
                .unwrap(),
        );
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("tl_sign_in={cookie}"));
    }
    request.send().await.unwrap()
}

/// Signs in; returns the session id from the cookie.
async fn sign_in(origin: &TestOrigin, name: &str, password: &str) -> String {
    let csrf = sign_in_form(origin).await;
    let response = post_sign_in(origin, Some(&csrf), &csrf, name, password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console");
    let cookie = set_cookies(response.headers())
        .into_iter()
        .find(|c| c.starts_with("tl_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    cookie_value(response.headers(), "tl_session").unwrap()
}

/// `GET /api/session` with a session cookie.
async fn session(origin: &TestOrigin, session: &str) -> reqwest::Response {
    client()
        .get(origin.url("/api/session"))
        .header(COOKIE, format!("tl_session={session}"))
        .send()
        .await
        .unwrap()
}

/// `POST /api/cameras` with a session cookie and, if given, a CSRF token.
async fn create_camera(
    origin: &TestOrigin,
    session: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(origin.url("/api/cameras"))
        .header(COOKIE, format!("tl_session={session}"))
        .json(&json!({ "name": "made in the console" }));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().await.unwrap()
}

async fn camera_count(origin: &TestOrigin) -> usize {
    let cameras: Value = origin.get("/api/cameras").await.json().await.unwrap();
    cameras["items"]
        .as_array()
        .map_or_else(|| cameras.as_array().unwrap().len(), |items| items.len())
}

on_both!(
    users_sign_in_use_the_api_with_their_csrf_token_and_sign_out,
    |origin| {
        let db = &origin.state().db;
        accounts::add_user(db, "olga", Role::Operator, "operator password 1")
            .await
            .unwrap();
        accounts::add_user(db, "victor", Role::Viewer, "viewer password 1")
            .await
            .unwrap();
        let stored: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'olga'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("operator password"));

        // A wrong password: the form again, no session.
        let csrf = sign_in_form(origin).await;
        let wrong = post_sign_in(origin, Some(&csrf), &csrf, "olga", "not her password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(cookie_value(wrong.headers(), "tl_session"), None);
        assert!(wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong name or password."));
        // A cross-site form post: no sign-in cookie (SameSite=Strict), or another value.
        let forged = post_sign_in(origin, None, &csrf, "olga", "operator password 1").await;
        assert_eq!(cookie_value(forged.headers(), "tl_session"), None);
        problem(forged, StatusCode::FORBIDDEN).await;
        let forged = post_sign_in(
            origin,
            Some(&csrf),
            "guessed",
            "olga",
            "operator password 1",
        )
        .await;
        problem(forged, StatusCode::FORBIDDEN).await;
        // A form without its fields: a problem document, no session.
        let r = client()
            .post(origin.url("/login"))
            .header(COOKIE, format!("tl_sign_in={csrf}"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("name=olga")
            .send()
            .await
            .unwrap();
        assert_eq!(cookie_value(r.headers(), "tl_session"), None);
        problem(r, StatusCode::BAD_REQUEST).await;
        // Both refused from the head, before any body is read: a body over the 64 KiB limit
        // gets the same 403 and 401, not 413.
        for (path, status) in [
            ("/login", StatusCode::FORBIDDEN),
            ("/logout", StatusCode::UNAUTHORIZED),
        ] {
            let r = client()
                .post(origin.url(path))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(vec![b'a'; 100 * 1024])
                .send()
                .await
                .unwrap();
            problem(r, status).await;
        }

        // Each sign-in makes a new session id.
        let first = sign_in(origin, "olga", "operator password 1").await;
        let olga = sign_in(origin, "olga", "operator password 1").await;
        assert_ne!(first, olga);
        let response = session(origin, &olga).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CACHE_CONTROL], "private, no-store");
        let me: Value = response.json().await.unwrap();
        assert_eq!(
            (me["name"].as_str(), me["role"].as_str()),
            (Some("olga"), Some("operator"))
        );
        let csrf_token = me["csrf_token"].as_str().unwrap().to_owned();

        // A cookie alone changes nothing; with the session's CSRF token, an operator may.
        let before = camera_count(origin).await;
        problem(
            create_camera(origin, &olga, None).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            create_camera(origin, &olga, Some("tl_csrf_wrong")).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(camera_count(origin).await, before);
        let created = create_camera(origin, &olga, Some(&csrf_token)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(camera_count(origin).await, before + 1);

        // A viewer changes nothing, CSRF token or not.
        let victor = sign_in(origin, "victor", "viewer password 1").await;
        let viewer: Value = session(origin, &victor).await.json().await.unwrap();
        assert_eq!(viewer["role"], "viewer");
        let refused = create_camera(origin, &victor, viewer["csrf_token"].as_str()).await;
        let body = problem(refused, StatusCode::FORBIDDEN).await;
        assert!(
            body["detail"].as_str().unwrap().contains("viewer"),
            "{body}"
        );
        assert_eq!(camera_count(origin).await, before + 1);

        // Signing out needs the CSRF token, ends the session and clears the cookie.
        let sign_out = |csrf: String| {
            client()
                .post(origin.url("/logout"))
                .header(COOKIE, format!("tl_session={olga}"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("csrf={csrf}"))
                .send()
        };
        problem(
            sign_out("tl_csrf_wrong".into()).await.unwrap(),
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(session(origin, &olga).await.status(), StatusCode::OK);
        let out = sign_out(csrf_token.clone()).await.unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            cookie_value(out.headers(), "tl_session").as_deref(),
            Some("")
        );
        problem(session(origin, &olga).await, StatusCode::UNAUTHORIZED).await;
        problem(
            create_camera(origin, &olga, Some(&csrf_token)).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        // The earlier session of the same user is another session: still valid.
        assert_eq!(session(origin, &first).await.status(), StatusCode::OK);
    }
);

on_both!(
    failed_sign_ins_are_throttled_per_account_and_address,
    |origin| {
        accounts::add_user(
            &origin.state().db,
            "olga",
            Role::Operator,
            "operator password 1",
        )
        .await
        .unwrap();
        let csrf = sign_in_form(origin).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let response = post_sign_in(origin, Some(&csrf), &csrf, "olga", "guess").await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=900).contains(&wait), "Retry-After: {wait}");
            }
            statuses.push(response.status().as_u16());
        }
        assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
        assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
        // While throttled, even the right password is refused, and no session is made.
        let right = post_sign_in(origin, Some(&csrf), &csrf, "olga", "operator password 1").await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(cookie_value(right.headers(), "tl_session"), None);
        // The same address trying another account is throttled too.
        let other = post_sign_in(origin, Some(&csrf), &csrf, "someone", "guess").await;
        assert_eq!(other.status(), StatusCode::TOO_MANY_REQUESTS);
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(origin.state().db.pool())
            .await
            .unwrap();
        assert_eq!(sessions, 0);
    }
);

/// `timelapser-origin user add`, as an operator types it: the password from a file; a taken
/// name and a short password refused with a message; the user then signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_creates_a_user_who_can_sign_in() {
    let origin = TestOrigin::start(Backend::Sqlite).await;
    let password = origin.dir.path().join("password");
    std::fs::write(&password, "a long enough password\n").unwrap();
    let add = |name: &str, role: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_timelapser-origin"))
            .args(["user", "add", name, "--role", role, "--password-file"])
            .arg(&password)
            .arg("--data-dir")
            .arg(origin.dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let created = add("ann", "operator");
    assert!(created.status.success(), "{created:?}");
    assert!(String::from_utf8_lossy(&created.stdout).contains("user \"ann\" (operator) created"));
    let again = add("ann", "viewer");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );
    let bad_role = add("bob", "admin");
    assert!(!bad_role.status.success());
    std::fs::write(&password, "short\n").unwrap();
    let short = add("bob", "viewer");
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"),
        "{short:?}"
    );
    let session_id = sign_in(&origin, "ann", "a long enough password").await;
    let me: Value = session(&origin, &session_id).await.json().await.unwrap();
    assert_eq!(me["role"], "operator");
    origin.finish().await;
}

/// A request with a session cookie and, if given, its CSRF token.
fn with_session(
    request: reqwest::RequestBuilder,
    session: &str,
    csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = request.header(COOKIE, format!("tl_session={session}"));
    match csrf {
        Some(csrf) => request.header("x-csrf-token", csrf),
        None => request,
    }
}

on_both!(
    the_console_is_for_signed_in_people_and_operators_add_people,
    |origin| {
        let db = &origin.state().db;
        accounts::add_user(db, "olga", Role::Operator, "operator password 1")
            .await
            .unwrap();
        accounts::add_user(db, "victor", Role::Viewer, "viewer password 1")
            .await
            .unwrap();
        // Without a session: to the sign-in page.
        for path in ["/console", "/console/cameras/1"] {
            let r = client().get(origin.url(path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(r.headers()[LOCATION], "/login");
        }
        origin.create_camera("Roof").await;
        let olga = sign_in(origin, "olga", "operator password 1").await;
        let olga_csrf = session(origin, &olga).await.json::<Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned();
        // An operator's console: hers alone (her CSRF token is in it), with the forms.
        let r = with_session(client().get(origin.url("/console")), &olga, None)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "private, no-store");
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("data-csrf=\"{olga_csrf}\"")));
        for form in [
            "id=\"new-camera\"",
            "id=\"settings\"",
            "id=\"new-user\"",
            "Roof",
        ] {
            assert!(html.contains(form), "{form}");
        }
        let r = with_session(client().get(origin.url("/console/cameras/1")), &olga, None)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        for form in [
            "id=\"rename\"",
            "id=\"visibility\"",
            "id=\"schedule\"",
            "id=\"start-timelapse\"",
        ] {
            assert!(html.contains(form), "{form}");
        }
        let r = with_session(client().get(origin.url("/console/cameras/9")), &olga, None)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::NOT_FOUND).await;

        // She adds a person; bad ones change nothing.
        let add = |body: Value, csrf: Option<&str>, who: &str| {
            with_session(client().post(origin.url("/api/users")), who, csrf).json(&body)
        };
        let r = add(
            json!({"name": "wanda", "password": "a long password", "role": "viewer"}),
            Some(&olga_csrf),
            &olga,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()[CACHE_CONTROL], "private, no-store");
        let created: Value = r.json().await.unwrap();
        assert_eq!(
            (created["name"].as_str(), created["role"].as_str()),
            (Some("wanda"), Some("viewer"))
        );
        for (body, status) in [
            (
                json!({"name": "wanda", "password": "another long one", "role": "viewer"}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"name": "xena", "password": "a long password", "role": "admin"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"name": "yuri", "password": "short", "role": "viewer"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"name": "zoe", "role": "viewer"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            problem(
                add(body, Some(&olga_csrf), &olga).send().await.unwrap(),
                status,
            )
            .await;
        }
        // Without the CSRF token: 403.
        let r = add(
            json!({"name": "mallory", "password": "a long password", "role": "operator"}),
            None,
            &olga,
        )
        .send()
        .await
        .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
        // The new viewer signs in: she sees the console without its forms, and may add nobody.
        let wanda = sign_in(origin, "wanda", "a long password").await;
        let wanda_csrf = session(origin, &wanda).await.json::<Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let html = with_session(client().get(origin.url("/console")), &wanda, None)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Roof")
                && !html.contains("id=\"new-camera\"")
                && !html.contains("id=\"new-user\"")
        );
        let r = add(
            json!({"name": "mallory", "password": "a long password", "role": "operator"}),
            Some(&wanda_csrf),
            &wanda,
        )
        .send()
        .await
        .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
        let r = with_session(client().get(origin.url("/api/users")), &wanda, None)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::FORBIDDEN).await;
        // The list: names and roles, never a password hash.
        let r = with_session(client().get(origin.url("/api/users")), &olga, None)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        assert!(!text.contains("argon2"), "{text}");
        let people: Value = serde_json::from_str(&text).unwrap();
        let names: Vec<&str> = people
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["olga", "victor", "wanda"]);
    }
);
