//! Signing in and out: `GET /login` (the form), `POST /login`, `POST /logout`, and
//! `GET /api/session` (who is signed in, and the session's CSRF token for the API).
//!
//! The sign-in form is protected against cross-site posts by a double submit: `GET /login`
//! sets a random value in an `HttpOnly`, `SameSite=Strict` cookie and the same value in the
//! form; `POST /login` needs both, equal. A cross-site form cannot read the value, and its
//! request does not carry the cookie. Everything here is `private, no-store`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use timelapser_core::policy::ContentKind;

use super::auth::SignedIn;
use super::pages::{layout, site, Site};
use super::RawBody;
use crate::accounts::{self, SignInError, SESSION_COOKIE, SESSION_LIFETIME, SIGN_IN_COOKIE};
use crate::auth::{generate_token, hashes_equal};
use crate::error::{Error, Result};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(sign_in_page).post(sign_in))
        .route("/logout", post(sign_out))
        .route("/api/session", get(session))
}

pub(super) const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// Whether the request reached the site over https (directly, or through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite`, `Secure` over https.
fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .expect("cookie values are tokens")
}

/// A redirect after signing in or out, setting or clearing cookies; never stored anywhere.
pub(super) fn see_other(
    location: &'static str,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(location));
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Credentials.cache_control(),
    );
    for cookie in cookies {
        h.append(header::SET_COOKIE, cookie);
    }
    response
}

/// A response of one person's: never stored anywhere.
pub(super) fn personal(status: StatusCode, content_type: HeaderValue, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(
        header::CACHE_CONTROL,
        ContentKind::Credentials.cache_control(),
    );
    response
}

fn sign_in_markup(site: &Site, csrf: &str, message: Option<&str>) -> Markup {
    layout(
        site,
        "Sign in",
        "login",
        None,
        crate::auth::Audience::Public,
        html! {
            h2 { "Sign in" }
            @if let Some(message) = message {
                p.error role="alert" { (message) }
            }
            form.sign-in method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Name " input name="name" autocomplete="username" required; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The sign-in form, with a fresh double-submit value.
async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let site = site(&state).await?;
    let csrf = generate_token("tl_form");
    let mut response = personal(
        StatusCode::OK,
        HTML,
        sign_in_markup(&site, &csrf, None).into_string(),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SIGN_IN_COOKIE, &csrf, "/login", "Strict", 3600),
    );
    Ok(response)
}

/// Who is signing in, for the per-address throttle: `CF-Connecting-IP` when Cloudflare (the
/// edge) says, else the connection's peer. The header can be forged by a client that reaches
/// the origin directly; that only spares it the per-address limit, never the per-account one,
/// whereas counting the edge's own address would make everyone behind it share one limit.
fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The sign-in form's double-submit cookie, required from the head (403 without it, before
/// the form is read): a cross-site post does not carry it.
struct SignInCookie(String);

impl FromRequestParts<AppState> for SignInCookie {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Error> {
        accounts::cookie(&parts.headers, SIGN_IN_COOKIE)
            .map(|value| SignInCookie(value.to_owned()))
            .ok_or_else(|| {
                Error::Forbidden(
                    "the sign-in form did not come from this site (load /login and try again)"
                        .into(),
                )
            })
    }
}

#[derive(Deserialize)]
struct SignInForm {
    name: String,
    password: String,
    csrf: String,
}

/// Checks the form; on success a new session (a new id at every sign-in) and a redirect.
async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    SignInCookie(expected): SignInCookie,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let form: SignInForm = serde_urlencoded::from_bytes(&body).map_err(|e| {
        Error::BadRequest(format!("expected a form with name, password and csrf: {e}"))
    })?;
    if !hashes_equal(&expected, &form.csrf) {
        return Err(Error::Forbidden(
            "the sign-in form did not come from this site (load /login and try again)".into(),
        ));
    }
    let address = client_address(&headers, peer.map(|Extension(c)| c.0));
    match accounts::sign_in(
        &state.db,
        &state.throttle,
        &form.name,
        &form.password,
        address,
    )
    .await
    {
        Ok(session) => Ok(see_other(
            "/console",
            [
                set_cookie(
                    &headers,
                    SESSION_COOKIE,
                    &session.id,
                    "/",
                    "Lax",
                    SESSION_LIFETIME.as_secs(),
                ),
                set_cookie(&headers, SIGN_IN_COOKIE, "", "/login", "Strict", 0),
            ],
        )),
        Err(SignInError::Wrong) => Ok(personal(
            StatusCode::UNAUTHORIZED,
            HTML,
            sign_in_markup(
                &site(&state).await?,
                &expected,
                Some("Wrong name or password."),
            )
            .into_string(),
        )),
        Err(SignInError::Throttled(wait)) => {
            let seconds = wait.as_secs().max(1);
            let mut response = personal(
                StatusCode::TOO_MANY_REQUESTS,
                HTML,
                sign_in_markup(
                    &site(&state).await?,
                    &expected,
                    Some(&format!(
                        "Too many failed sign-ins. Try again in {seconds} s."
                    )),
                )
                .into_string(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
        Err(SignInError::Server(e)) => Err(e),
    }
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf: String,
}

/// Ends the session (the form carries its CSRF token) and clears the cookie.
async fn sign_out(
    State(state): State<AppState>,
    SignedIn { session_id, user }: SignedIn,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let form: SignOutForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| Error::BadRequest(format!("expected a form with csrf: {e}")))?;
    if !hashes_equal(&form.csrf, &user.csrf_token) {
        return Err(Error::Forbidden(
            "signing out needs the session's CSRF token".into(),
        ));
    }
    accounts::end_session(&state.db, &session_id).await?;
    Ok(see_other(
        "/login",
        [set_cookie(&headers, SESSION_COOKIE, "", "/", "Lax", 0)],
    ))
}

/// Who is signed in: `{name, role, csrf_token}`; 401 without a session.
async fn session(SignedIn { user, .. }: SignedIn) -> Result<Response> {
    let body = serde_json::json!({
        "id": user.id,
        "name": user.name,
        "role": user.role.as_str(),
        "csrf_token": user.csrf_token,
    });
    personal_json(StatusCode::OK, &body)
}

/// JSON of one person's (a session, people): never stored anywhere.
pub(super) fn personal_json(status: StatusCode, value: &impl serde::Serialize) -> Result<Response> {
    let body = serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))?;
    Ok(personal(status, super::respond::JSON, body))
}
