//! The origin the edge fronts: where it is, and a fetch that waits for its response headers only
//! so long.

use std::time::Duration;

use futures::FutureExt;
use http::header::HeaderMap;
use timelapser_core::cache_control::ResponseTiming;
use worker::{AbortController, Delay, Env, Fetch, Request, RequestInit, RequestRedirect, Response};

use crate::glue::now;

/// Where the origin is when the `ORIGIN` variable is not set.
const DEFAULT_ORIGIN: &str = "http://127.0.0.1:8000";

/// How long the edge waits for the origin's response headers (`ORIGIN_TIMEOUT_MS`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the origin did instead of answering.
#[derive(Debug)]
pub enum OriginError {
    /// It did not answer in time.
    Timeout,
    /// It could not be reached.
    Unreachable(String),
}

/// The origin, as this Worker's variables configure it.
#[derive(Clone)]
pub struct Origin {
    base: String,
    /// How long to wait for its response headers.
    pub timeout: Duration,
}

impl Origin {
    /// From the `ORIGIN` and `ORIGIN_TIMEOUT_MS` variables.
    pub fn from_env(env: &Env) -> Self {
        let base = env
            .var("ORIGIN")
            .map(|v| v.to_string())
            .unwrap_or_else(|_| DEFAULT_ORIGIN.to_owned());
        let timeout = env
            .var("ORIGIN_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// Its URL for a path and query.
    pub fn url(&self, target: &str) -> String {
        format!("{}{target}", self.base)
    }

    /// Sends a request; waits at most the timeout for its response headers (the body then
    /// streams for as long as it takes).
    pub async fn fetch(
        &self,
        method: &http::Method,
        url: &str,
        headers: &HeaderMap,
        body: Option<worker::wasm_bindgen::JsValue>,
    ) -> Result<(Response, ResponseTiming), OriginError> {
        let mut init = RequestInit::new();
        init.with_method(worker::Method::from(method.as_str().to_owned()))
            .with_headers(crate::glue::headers(headers))
            .with_redirect(RequestRedirect::Manual);
        if body.is_some() {
            init.with_body(body);
        }
        let request = Request::new_with_init(url, &init)
            .map_err(|e| OriginError::Unreachable(e.to_string()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let request_time = now();
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal).fuse();
        let timeout = Delay::from(self.timeout).fuse();
        futures::pin_mut!(send, timeout);
        futures::select! {
            sent = send => match sent {
                Ok(response) => Ok((response, ResponseTiming { request_time, response_time: now() })),
                Err(e) => Err(OriginError::Unreachable(e.to_string())),
            },
            _ = timeout => {
                controller.abort();
                Err(OriginError::Timeout)
            }
        }
    }
}
