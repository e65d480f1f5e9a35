//! The origin's API as the agent uses it (API.md): captures, status, the camera's schedule and
//! its event stream. Every call names the camera and carries its token.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};
use timelapser_core::resources::{CameraSchedule, CameraStatus};

use crate::config::{Camera, Token};
use crate::net;

/// How long the origin has to answer an upload (a large frame on a slow uplink).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the origin has to answer anything else.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How the origin took a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// 201: a new image.
    Created,
    /// 200: the same bytes were already stored for this camera (a retried upload).
    AlreadyStored,
}

/// Why an upload did not go through.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Try again later: the origin is unreachable, overloaded or failing.
    #[error("{0}")]
    Retry(String),
    /// The origin refuses the camera (its token, or the camera is gone): retried, since an
    /// operator may fix it, but it says what to fix.
    #[error("{0}")]
    Refused(String),
    /// The origin refuses this frame for good (not an image, too large, a capture time out of
    /// its window).
    #[error("{0}")]
    Rejected(String),
}

/// What a schedule request found.
#[derive(Clone, Debug)]
pub enum ScheduleFetch {
    /// 200: the schedule and its entity tag.
    Fetched {
        /// The schedule.
        schedule: CameraSchedule,
        /// Its `ETag`.
        etag: Option<String>,
    },
    /// 304: unchanged since the entity tag sent.
    NotModified,
}

/// A camera's client of the origin.
#[derive(Clone, Debug)]
pub struct OriginClient {
    http: reqwest::Client,
    /// The origin's base URL.
    base: Url,
    camera_id: i64,
    token: Token,
}

impl OriginClient {
    /// The client of a configured camera.
    pub fn new(camera: &Camera) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("timelapser-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            http,
            base: camera.origin.clone(),
            camera_id: camera.camera_id,
            token: camera.token.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// `POST /api/cameras/{id}/captures` with the frame's capture time.
    pub async fn upload(
        &self,
        jpeg: Bytes,
        captured_at: DateTime<Utc>,
    ) -> Result<Uploaded, UploadError> {
        let response = self
            .http
            .post(self.url(&format!("/api/cameras/{}/captures", self.camera_id)))
            .bearer_auth(&self.token.0)
            .header(CONTENT_TYPE, "image/jpeg")
            .header(
                "Capture-Time",
                captured_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
            .timeout(UPLOAD_TIMEOUT)
            .body(jpeg)
            .send()
            .await
            .map_err(|e| UploadError::Retry(format!("origin: {}", net::describe(&e))))?;
        let status = response.status();
        match status {
            StatusCode::CREATED => return Ok(Uploaded::Created),
            StatusCode::OK => return Ok(Uploaded::AlreadyStored),
            _ => {}
        }
        let detail = response
            .bytes()
            .await
            .ok()
            .and_then(|body| net::problem_detail(&body));
        let said = |what: &str| match &detail {
            Some(detail) => format!("origin: {what} ({status}: {detail})"),
            None => format!("origin: {what} ({status})"),
        };
        Err(match status {
            StatusCode::UNAUTHORIZED => UploadError::Refused(said("the camera's token is refused")),
            StatusCode::FORBIDDEN => UploadError::Refused(said("the token is not this camera's")),
            StatusCode::NOT_FOUND => {
                UploadError::Refused(said(&format!("camera {} does not exist", self.camera_id)))
            }
            StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::BAD_REQUEST => UploadError::Rejected(said("frame refused")),
            _ => UploadError::Retry(said("upload failed")),
        })
    }

    /// `PUT /api/cameras/{id}/status`.
    pub async fn put_status(&self, status: CameraStatus, message: &str) -> Result<(), String> {
        let response = self
            .http
            .put(self.url(&format!("/api/cameras/{}/status", self.camera_id)))
            .bearer_auth(&self.token.0)
            .timeout(REQUEST_TIMEOUT)
            .json(&serde_json::json!({ "status": status, "message": message }))
            .send()
            .await
            .map_err(|e| format!("origin: {}", net::describe(&e)))?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let detail = response
            .bytes()
            .await
            .ok()
            .and_then(|body| net::problem_detail(&body));
        Err(match detail {
            Some(detail) => format!("origin: status refused ({status}: {detail})"),
            None => format!("origin: status refused ({status})"),
        })
    }

    /// `GET /api/cameras/{id}/schedule`, conditional on `etag`.
    pub async fn schedule(&self, etag: Option<&str>) -> Result<ScheduleFetch, String> {
        let mut request = self
            .http
            .get(self.url(&format!("/api/cameras/{}/schedule", self.camera_id)))
            .bearer_auth(&self.token.0)
            .timeout(REQUEST_TIMEOUT);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("origin: {}", net::describe(&e)))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(ScheduleFetch::NotModified);
        }
        if !status.is_success() {
            let detail = response
                .bytes()
                .await
                .ok()
                .and_then(|body| net::problem_detail(&body));
            return Err(match (status, detail) {
                (StatusCode::NOT_FOUND, _) => format!(
                    "origin: no schedule for camera {} (404): the camera does not exist, or the \
                     origin predates schedules",
                    self.camera_id
                ),
                (_, Some(detail)) => format!("origin: schedule refused ({status}: {detail})"),
                (_, None) => format!("origin: schedule refused ({status})"),
            });
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let schedule = response
            .json::<CameraSchedule>()
            .await
            .map_err(|e| format!("origin: the schedule does not parse: {e}"))?;
        Ok(ScheduleFetch::Fetched { schedule, etag })
    }

    /// `GET /api/events` for this camera's `types`, resuming after `last_event_id`. Returns
    /// once the stream's head has arrived (from then on no event is missed).
    pub async fn events(
        &self,
        types: &[&str],
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .get(self.url(&format!(
                "/api/events?camera_id={}&types={}",
                self.camera_id,
                types.join(",")
            )))
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .map_err(|_| "origin: the event stream did not open in time".to_owned())?
            .map_err(|e| format!("origin: {}", net::describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "origin: the event stream was refused ({})",
                response.status()
            ));
        }
        Ok(response)
    }
}
