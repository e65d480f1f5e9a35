//! RFC 9457 problem documents: the one shape every error of the origin and the edge takes.
//!
//! `{"type","title","status","detail"}` as `application/problem+json`, never stored by any
//! cache (an error describes one moment), never a stack trace.

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::policy::ContentKind;

/// The media type of a problem document (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI identifying the problem type; `about:blank` means "see the status" (§4.2.1).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, in words a user can act on.
    pub detail: String,
}

impl Problem {
    /// A problem of type `about:blank` for `status`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// Its status (500 for a status that is not one).
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a problem serializes")
    }

    /// The fields every problem response carries: its media type, and `no-store`.
    pub fn fields() -> HeaderMap {
        let mut fields = HeaderMap::with_capacity(2);
        fields.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        fields.insert(
            header::CACHE_CONTROL,
            ContentKind::Operational.cache_control(),
        );
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_problem_is_the_rfc_9457_shape() {
        let problem = Problem::new(StatusCode::BAD_GATEWAY, "the origin cannot be reached");
        let value: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "type": "about:blank",
                "title": "Bad Gateway",
                "status": 502,
                "detail": "the origin cannot be reached",
            })
        );
        assert_eq!(problem.status(), StatusCode::BAD_GATEWAY);
        let fields = Problem::fields();
        assert_eq!(fields["content-type"], "application/problem+json");
        assert_eq!(fields["cache-control"], "no-store");
    }
}
