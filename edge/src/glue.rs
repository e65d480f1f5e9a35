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
pub fn header_map(headers: &Headers) -> HeaderMap {
    HeaderMap::from(headers)
}

/// A response from `http` parts.
pub fn response(status: StatusCode, headers: &HeaderMap, body: ResponseBody) -> Response {
    Response::builder()
        .with_status(status.as_u16())
        .with_headers(Headers::from(headers))
        .body(body)
}

/// A client's request as every route reads it.
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
        })
    }

    /// Whether it asks for the fields only.
    pub fn is_head(&self) -> bool {
        self.method == http::Method::HEAD
    }
}
