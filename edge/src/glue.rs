//! Where the Worker's JS-backed types meet `http`'s: the client's request read once, responses
//! built from `http` parts, and the clock.

use std::time::{Duration, SystemTime};

use http::header::HeaderMap;
use http::StatusCode;
use worker::{Date, Headers, Request, Response, ResponseBody};

use crate::error::AppError;
use crate::origin::Origin;
use crate::plan::{self, Route};

/// The time now, from the Worker's clock (which only advances across I/O).
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(Date::now().as_millis())
}

/// A Worker's header list as an `http` map.
///
/// Field values are byte strings: the runtime hands each byte as one character (U+0000 to
/// U+00FF), so obs-text (RFC 9110 §5.5, say an entity tag with a byte above 0x7F) comes back as
/// the same bytes. workers-rs's own conversion panics on such a value (a 500); a field this
/// cannot represent is left out instead.
pub fn header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        let (Ok(name), Some(bytes)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            latin1_bytes(&value),
        ) else {
            continue;
        };
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            map.append(name, value);
        }
    }
    map
}

/// A JS byte string's bytes; `None` if a character is beyond U+00FF.
fn latin1_bytes(value: &str) -> Option<Vec<u8>> {
    value
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// An `http` map as a Worker's header list, each byte of a value one character (the inverse of
/// [`header_map`]), so obs-text reaches the client as the origin sent it.
pub fn headers(map: &HeaderMap) -> Headers {
    let headers = Headers::new();
    for (name, value) in map {
        let text: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
        // The name and value are valid by construction; the runtime refuses nothing here.
        let _ = headers.append(name.as_str(), &text);
    }
    headers
}

/// A response from `http` parts.
pub fn response(status: StatusCode, headers: &HeaderMap, body: ResponseBody) -> Response {
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
