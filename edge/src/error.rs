//! What the edge answers itself when it cannot serve a request: one RFC 9457 problem document
//! per cause, never a Worker exception.

use http::StatusCode;
use timelapser_core::Problem;
use worker::{Response, ResponseBody};

use crate::glue;
use crate::origin::OriginError;
use crate::plan;

/// Why the edge could not serve a request.
#[derive(Debug)]
pub enum AppError {
    /// The request's URL cannot be read or sent on (400).
    BadRequest(String),
    /// An operational endpoint: operators ask the origin itself, never through the edge (404).
    Operational(String),
    /// A media path that names no media file (404).
    NoSuchMedia(String),
    /// The origin failed (502, or 504 when it did not answer in time).
    Origin(OriginError),
    /// The Cache API failed; the detail says what was being done (502).
    Storage(String),
    /// A purge without the purge token (401), or to an edge with purging off (404).
    PurgeRefused(StatusCode, &'static str),
    /// A purge with another method than POST (405).
    PurgeMethod,
}

impl AppError {
    /// The problem document that says so.
    pub fn problem(&self) -> Problem {
        match self {
            AppError::BadRequest(why) => Problem::new(StatusCode::BAD_REQUEST, why.as_str()),
            AppError::Operational(path) => Problem::new(
                StatusCode::NOT_FOUND,
                format!("{path} is not served through the edge"),
            ),
            AppError::NoSuchMedia(path) => {
                Problem::new(StatusCode::NOT_FOUND, format!("no media at {path}"))
            }
            AppError::Origin(OriginError::Timeout) => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the origin did not answer in time",
            ),
            AppError::Origin(OriginError::Unreachable(why)) => Problem::new(
                StatusCode::BAD_GATEWAY,
                format!("the origin cannot be reached: {why}"),
            ),
            AppError::Storage(detail) => Problem::new(StatusCode::BAD_GATEWAY, detail.as_str()),
            AppError::PurgeRefused(status, why) => Problem::new(*status, *why),
            AppError::PurgeMethod => {
                Problem::new(StatusCode::METHOD_NOT_ALLOWED, "a purge is a POST")
            }
        }
    }
}

impl From<OriginError> for AppError {
    fn from(e: OriginError) -> Self {
        AppError::Origin(e)
    }
}

impl From<AppError> for Response {
    fn from(e: AppError) -> Response {
        let problem = e.problem();
        let body = problem.to_json();
        let answer = plan::problem_answer(problem);
        glue::response(answer.status, &answer.fields, ResponseBody::Body(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn each_cause_is_its_own_status_and_says_what_failed() {
        let cases = [
            (AppError::BadRequest("bad URL".into()), 400, "bad URL"),
            (
                AppError::Operational("/metrics".into()),
                404,
                "/metrics is not served through the edge",
            ),
            (AppError::Origin(OriginError::Timeout), 504, "origin"),
            (
                AppError::Origin(OriginError::Unreachable("connection refused".into())),
                502,
                "origin cannot be reached: connection refused",
            ),
            (
                AppError::Storage("reading the stored range failed".into()),
                502,
                "stored range",
            ),
        ];
        for (error, status, detail) in cases {
            let problem = error.problem();
            assert_eq!(problem.status, status, "{error:?}");
            assert!(problem.detail.contains(detail), "{problem:?}");
        }
    }
}
