//! The origin's one error type, mapped once to an RFC 9457 problem document.
//!
//! Handlers and services return [`Result`]; client errors carry a status and a detail a user
//! can act on, and everything else becomes a logged 500 whose body says nothing internal.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use timelapser_core::Problem;

/// `Result` with the origin's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or a token that is nobody's.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 403: a valid token that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request (head and body) did not arrive within the time allowed.
    #[error("the request did not arrive within the {0} s allowed")]
    RequestTimeout(u64),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 412: If-Match or If-Unmodified-Since failed.
    #[error("the resource has changed since the validator in the request was obtained")]
    PreconditionFailed,
    /// 413: the body is larger than allowed.
    #[error("the body is larger than the {limit} bytes allowed")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// 415: a media type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but unusable (an image that does not decode, an unknown status).
    #[error("{0}")]
    Unprocessable(String),
    /// 507: the media disk is short of space and nothing is left to prune.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 503: a dependency is unavailable (ffmpeg missing, database down).
    #[error("{0}")]
    Unavailable(String),
    /// 500: a database failure; logged, never shown.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// 500: anything else unexpected; logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Recovers an error shared by coalesced callers (moka's single-flight hands each waiter
    /// an `Arc` of the loader's error).
    pub fn from_shared(shared: std::sync::Arc<Error>) -> Self {
        match std::sync::Arc::try_unwrap(shared) {
            Ok(error) => error,
            Err(shared) => match &*shared {
                Error::BadRequest(m) => Error::BadRequest(m.clone()),
                Error::Unauthorized => Error::Unauthorized,
                Error::Forbidden(m) => Error::Forbidden(m.clone()),
                Error::NotFound(m) => Error::NotFound(m.clone()),
                Error::RequestTimeout(s) => Error::RequestTimeout(*s),
                Error::Conflict(m) => Error::Conflict(m.clone()),
                Error::PreconditionFailed => Error::PreconditionFailed,
                Error::PayloadTooLarge { limit } => Error::PayloadTooLarge { limit: *limit },
                Error::UnsupportedMediaType(m) => Error::UnsupportedMediaType(m.clone()),
                Error::Unprocessable(m) => Error::Unprocessable(m.clone()),
                Error::Unavailable(m) => Error::Unavailable(m.clone()),
                Error::InsufficientStorage(m) => Error::InsufficientStorage(m.clone()),
                other @ (Error::Database(_) | Error::Internal(_)) => {
                    Error::Internal(anyhow::anyhow!("{other}"))
                }
            },
        }
    }

    /// This error as a 507 when what failed was a write to a full disk (the file system's
    /// ENOSPC, SQLite's SQLITE_FULL, PostgreSQL's disk_full), as a 503 when the media's object
    /// store failed (try again later); otherwise itself.
    pub fn or_insufficient_storage(self) -> Self {
        if let Error::Internal(e) = &self {
            if let Some(store) = e
                .chain()
                .find_map(|cause| cause.downcast_ref::<crate::media::StoreUnavailable>())
            {
                tracing::warn!(error = %store, "the media store failed a write");
                return Error::Unavailable(
                    "the media store does not answer; the capture was not stored (try again)"
                        .to_owned(),
                );
            }
        }
        let full = match &self {
            Error::Internal(e) => e.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            }),
            Error::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("13" | "53100"))
            }
            Error::Database(sqlx::Error::Io(io)) => io.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        };
        if full {
            tracing::warn!(error = %self, "a write found the disk full");
            Error::InsufficientStorage(
                "the media disk is full; the capture was not stored".to_owned(),
            )
        } else {
            self
        }
    }

    /// A 404 for an entity: "camera 7 does not exist".
    pub fn not_found(entity: &str, id: impl std::fmt::Display) -> Self {
        Error::NotFound(format!("{entity} {id} does not exist"))
    }
}

/// Builds a problem+json response (also used for 404s of unknown routes and 405s).
pub fn problem_response(status: StatusCode, detail: String) -> Response {
    problem_document(&Problem::new(status, detail))
}

/// The response of a problem document: core's body and fields.
pub fn problem_document(problem: &Problem) -> Response {
    let mut response = (problem.status(), problem.to_json()).into_response();
    response.headers_mut().extend(Problem::fields());
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Error::Database(e) => {
                tracing::error!(error = %e, "database error");
                "the server could not complete the request; it has been logged".to_owned()
            }
            Error::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "the server could not complete the request; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = problem_response(status, detail);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"timelapser\""),
            );
        }
        response
    }
}
