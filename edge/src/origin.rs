//! The origin the edge fronts: where it is, and a fetch that waits for its response headers only
//! so long.

use std::time::Duration;

use futures::FutureExt;
use http::header::HeaderMap;
use timelapser_core::cache_control::ResponseTiming;
use worker::{web_sys, AbortController, Delay, Env, Fetch, Request, Response};

use crate::glue::now;
use crate::interim;

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
        // Built with web_sys: workers-rs's `Method` turns any method it does not list (MKCOL,
        // PROPPATCH, ...) into GET, and a write forwarded as a GET is a different request.
        let init = web_sys::RequestInit::new();
        init.set_method(method.as_str());
        init.set_headers(crate::glue::headers(headers).as_ref());
        init.set_redirect(web_sys::RequestRedirect::Manual);
        if let Some(body) = &body {
            init.set_body(body);
        }
        let request = web_sys::Request::new_with_str_and_init(url, &init)
            .map(Request::from)
            .map_err(|e| OriginError::Unreachable(format!("{e:?}")))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let request_time = now();
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal).fuse();
        let timeout = Delay::from(self.timeout).fuse();
        futures::pin_mut!(send, timeout);
        let response = futures::select! {
            sent = send => match sent {
                Ok(response) => response,
                Err(e) => return Err(OriginError::Unreachable(e.to_string())),
            },
            _ = timeout => {
                controller.abort();
                return Err(OriginError::Timeout);
            }
        };
        let response = if response.status_code() < 200 {
            let bounded = crate::glue::within(self.timeout, after_interim(response)).await;
            bounded.ok_or(OriginError::Timeout)??
        } else {
            response
        };
        let timing = ResponseTiming {
            request_time,
            response_time: now(),
        };
        Ok((response, timing))
    }
}

/// The final response the runtime handed over as the body of an interim one.
async fn after_interim(mut interim: Response) -> Result<Response, OriginError> {
    let status = interim.status_code();
    let bytes = interim.bytes().await.unwrap_or_default();
    let Some(last) = interim::final_response(&bytes) else {
        return Err(OriginError::Unreachable(format!(
            "the origin sent an interim response ({status}) and no final response after it"
        )));
    };
    Ok(crate::glue::response(
        last.status,
        &last.headers,
        worker::ResponseBody::Body(last.body),
    ))
}
