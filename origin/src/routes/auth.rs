//! Authorisation as extractors: a handler names who may call it in its signature, and the
//! check runs from the request head, before any body is read.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Path;
use crate::auth::{Audience, Principal};
use crate::error::Error;
use crate::state::AppState;

/// The request carries the admin token (401 without a valid token, 403 with a camera's).
#[derive(Clone, Copy, Debug)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        Principal::of(&state.db, &state.admin, &parts.method, &parts.headers)
            .await?
            .require_admin()?;
        Ok(AdminAuth)
    }
}

/// The request carries the token of the camera its path names (`/api/cameras/{id}/...`):
/// 401 without a valid token, 403 with another camera's or the admin's, 404 when the
/// camera does not exist (told only to a valid token).
#[derive(Clone, Copy, Debug)]
pub struct CameraAuth {
    /// The camera.
    pub camera_id: i64,
}

impl FromRequestParts<AppState> for CameraAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let Path(camera_id) = Path::<i64>::from_request_parts(parts, state).await?;
        let principal =
            Principal::of(&state.db, &state.admin, &parts.method, &parts.headers).await?;
        if let Err(e) = principal.require_camera(&state.db, camera_id).await {
            state
                .metrics
                .record(|| metrics::counter!("camera_requests_refused_total").increment(1));
            return Err(e);
        }
        Ok(CameraAuth { camera_id })
    }
}

/// The request carries the token of the camera its path names, or the admin token (what a
/// camera's agent and an operator may both read).
#[derive(Clone, Copy, Debug)]
pub struct CameraOrAdmin {
    /// The camera.
    pub camera_id: i64,
}

impl FromRequestParts<AppState> for CameraOrAdmin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let Path(camera_id) = Path::<i64>::from_request_parts(parts, state).await?;
        Principal::of(&state.db, &state.admin, &parts.method, &parts.headers)
            .await?
            .require_camera_or_admin(&state.db, camera_id)
            .await?;
        Ok(CameraOrAdmin { camera_id })
    }
}

/// The request carries the cookie of a live session (401 otherwise): the session's own
/// routes (`/api/session`, `/logout`), decided from the head before any body is read.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// The session id (from the cookie).
    pub session_id: String,
    /// Its user.
    pub user: crate::accounts::SessionUser,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match crate::accounts::signed_in(&state.db, &parts.headers).await? {
            Some((id, user)) => Ok(SignedIn {
                session_id: id.to_owned(),
                user,
            }),
            None => Err(Error::Unauthorized),
        }
    }
}

/// Whom an event stream is for: its [`Audience`], and the camera whose token opened it (a
/// camera host follows its own camera's events, `schedule_updated` above all, even when the
/// camera is private).
#[derive(Clone, Copy, Debug)]
pub struct StreamViewer {
    /// Public or signed in.
    pub audience: Audience,
    /// The camera of a camera token.
    pub camera: Option<i64>,
}

impl FromRequestParts<AppState> for StreamViewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let principal = reader(parts, state).await;
        Ok(StreamViewer {
            audience: principal.audience(),
            camera: match principal {
                Principal::Camera(id) => Some(id),
                _ => None,
            },
        })
    }
}

/// Whom a read is for ([`Audience`]): signed in with a session or the admin token, or the
/// public. Never refuses: a read of something private answers 404 to the public instead.
#[derive(Clone, Copy, Debug)]
pub struct Viewer(pub Audience);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        Ok(Viewer(reader(parts, state).await.audience()))
    }
}

/// Who is reading: the request's principal, or the public when its credentials are not
/// valid (a read is then answered as for anyone, never refused).
async fn reader(parts: &Parts, state: &AppState) -> Principal {
    Principal::of(&state.db, &state.admin, &parts.method, &parts.headers)
        .await
        .unwrap_or(Principal::Anonymous)
}
