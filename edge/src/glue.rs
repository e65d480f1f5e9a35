//! Where the Worker's JS-backed types meet `http`'s: the client's request read once, responses
//! built from `http` parts, and the clock.

use std::time::{Duration, SystemTime};

use http::header::HeaderMap;
use http::StatusCode;
use worker::{Date, Headers, Request, Response, ResponseBody};

use crate::error::AppError;
use crate::origin::Origin;
use crate::plan::{self, Route};

/// Waits at most `limit` for `work`: `None` when it took longer (it is then dropped).
pub async fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> Option<T> {
    use futures::FutureExt;
    let work = work.fuse();
    let timeout = worker::Delay::from(limit).fuse();
    futures::pin_mut!(work, timeout);
    futures::select! {
        done = work => Some(done),
        _ = timeout => None,
    }
}

/// The time now, from the Worker's clock (which only advances across I/O).
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(Date::now().as_millis())
}

/// A Worker's header list as an `http` map.
///
/// The runtime hands field values over as text: bytes that are valid UTF-8 as those characters
/// (so obs-text such as `"café"` in UTF-8 survives, RFC 9110 §5.5), other bytes as U+FFFD
/// (workerd decodes them before any Worker runs). Each value is kept as its UTF-8 bytes;
/// workers-rs's own conversion would panic on such a value when writing it back (a 500).
pub fn header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// An `http` map as a Worker's header list: the inverse of [`header_map`] (values that are
/// not UTF-8, which only this edge could have made, are written with U+FFFD as the runtime
/// would).
pub fn headers(map: &HeaderMap) -> Headers {
    let headers = Headers::new();
    for (name, value) in map {
        let text = String::from_utf8_lossy(value.as_bytes());
        // The name and value are valid by construction; the runtime refuses nothing here.
        let _ = headers.append(name.as_str(), &text);
    }
    headers
}

/// A response from `http` parts. The runtime only makes responses with a status of 200 to 599;
/// anything else (an interim status) is answered as the origin's failure, never a panic.
pub fn response(status: StatusCode, headers: &HeaderMap, body: ResponseBody) -> Response {
    if !(200..=599).contains(&status.as_u16()) {
        return AppError::Origin(crate::origin::OriginError::Unreachable(format!(
            "it answered with status {}, which cannot be sent on",
            status.as_u16()
        )))
        .into();
    }
    Response::builder()
        .with_status(status.as_u16())
        .with_headers(self::headers(headers))
        .body(body)
}

/// A client's request as every route reads it.
#[derive(Clone)]
pub struct Incoming {
    /// How the edge treats it.
    pub route: Route,
    /// Its method.
    pub method: http::Method,
    /// Its fields.
    pub headers: HeaderMap,
    /// Its path, as the origin would route it.
    pub path: String,
    /// The Cache API key of what it asks for: this edge's URL of its [`plan::target`].
    pub key: String,
    /// This edge's origin as the client named it (`https://example.org`): the start of every
    /// Cache API key.
    pub site: String,
    /// The origin's URL of the same.
    pub upstream: String,
    /// The client's URL.
    pub url: url::Url,
}

impl Incoming {
    /// Reads a request's method, fields and URL, and classifies it.
    pub fn read(req: &Request, origin: &Origin) -> Result<Self, AppError> {
        let url = req.url().map_err(|e| AppError::BadRequest(e.to_string()))?;
        let method =
            http::Method::from_bytes(req.inner().method().as_bytes()).unwrap_or(http::Method::GET);
        let headers = header_map(req.headers());
        let route = plan::route(&method, url.path(), &headers);
        let target = plan::target(route, url.path(), url.query());
        let site = url.origin().ascii_serialization();
        Ok(Self {
            route,
            method,
            headers,
            path: url.path().to_owned(),
            key: format!("{site}{target}"),
            site,
            upstream: origin.url(&target),
            url,
        })
    }

    /// Whether it asks for the fields only.
    pub fn is_head(&self) -> bool {
        self.method == http::Method::HEAD
    }

    /// Whether it carries Authorization (RFC 9111 §3.5).
    pub fn is_authorized(&self) -> bool {
        self.headers.contains_key(http::header::AUTHORIZATION)
    }
}
