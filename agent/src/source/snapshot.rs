//! HTTP snapshot cameras: one GET per scheduled instant, with HTTP authentication as IP
//! cameras use it — Basic (RFC 7617) or Digest (RFC 7616, SHA-256 preferred over MD5). The
//! credentials go only in answer to the camera's challenge, and a digest challenge is reused
//! (its `nc` counting up) until the camera asks again.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use digest_auth::{AuthContext, WwwAuthenticateHeader};
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use super::mjpeg::is_complete_jpeg;
use super::{Frame, Source, SourceError};
use crate::config::Credentials;
use crate::net;

/// The longest a snapshot request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest snapshot accepted.
const MAX_SNAPSHOT_BYTES: usize = 32 << 20;

const KIND: &str = "HTTP snapshot";

/// The scheme the camera asked for.
#[derive(Clone, Debug)]
enum Challenge {
    Basic,
    Digest(Box<WwwAuthenticateHeader>),
}

/// A snapshot URL.
pub struct SnapshotSource {
    client: reqwest::Client,
    url: Url,
    credentials: Option<Credentials>,
    challenge: Option<Challenge>,
}

impl SnapshotSource {
    /// A source for `url` (without credentials in it).
    pub fn new(url: Url, credentials: Option<Credentials>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            client,
            url,
            credentials,
            challenge: None,
        }
    }

    /// One snapshot, checked to be a whole JPEG.
    pub async fn fetch(&mut self) -> Result<Bytes, SourceError> {
        // A remembered challenge is answered at once; if the camera has moved on (a new
        // nonce), it challenges again and gets one more try.
        let mut response = self.get().await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            if self.credentials.is_none() {
                return Err(SourceError(format!(
                    "{KIND}: the camera asks for a user name and password (401 Unauthorized); \
                     set username and password_file"
                )));
            }
            self.challenge = Some(pick_challenge(response.headers())?);
            response = self.get().await?;
        }
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            // Answered a challenge just received: the credentials are wrong.
            self.challenge = None;
            return Err(SourceError(format!(
                "{KIND}: wrong credentials (401 Unauthorized)"
            )));
        }
        if !status.is_success() {
            return Err(SourceError(format!("{KIND}: the camera answered {status}")));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no Content-Type")
            .to_owned();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_SNAPSHOT_BYTES as u64)
        {
            return Err(SourceError(format!(
                "{KIND}: the snapshot is larger than {} MiB",
                MAX_SNAPSHOT_BYTES >> 20
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| SourceError(format!("{KIND}: {}", net::describe(&e))))?;
        if !is_complete_jpeg(&body) {
            return Err(SourceError(format!(
                "{KIND}: the camera answered {content_type} ({} bytes), not a JPEG",
                body.len()
            )));
        }
        Ok(body)
    }

    async fn get(&mut self) -> Result<reqwest::Response, SourceError> {
        let mut request = self.client.get(self.url.clone());
        if let (Some(challenge), Some(credentials)) = (&mut self.challenge, &self.credentials) {
            request = request.header(
                AUTHORIZATION,
                authorization(challenge, credentials, &self.url)?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| SourceError(format!("{KIND}: {}", net::describe(&e))))
    }
}

/// The strongest scheme the camera offers: Digest with SHA-256, Digest (MD5), Basic.
fn pick_challenge(headers: &reqwest::header::HeaderMap) -> Result<Challenge, SourceError> {
    let mut basic = false;
    let mut digests = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(value) = value.to_str() else { continue };
        let scheme = value.split_whitespace().next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("digest") {
            match WwwAuthenticateHeader::parse(value) {
                Ok(header) => digests.push(header),
                Err(e) => tracing::debug!("unusable digest challenge: {e}"),
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        }
    }
    digests.sort_by_key(|d| {
        !matches!(
            d.algorithm.algo,
            digest_auth::AlgorithmType::SHA2_256 | digest_auth::AlgorithmType::SHA2_512_256
        )
    });
    match digests.into_iter().next() {
        Some(digest) => Ok(Challenge::Digest(Box::new(digest))),
        None if basic => Ok(Challenge::Basic),
        None => Err(SourceError(format!(
            "{KIND}: the camera asks for authentication (401) in a scheme this agent does not \
             speak (neither Basic nor Digest)"
        ))),
    }
}

/// The `Authorization` value answering `challenge`.
fn authorization(
    challenge: &mut Challenge,
    credentials: &Credentials,
    url: &Url,
) -> Result<String, SourceError> {
    match challenge {
        Challenge::Basic => {
            use base64::Engine as _;
            let pair = format!("{}:{}", credentials.username, credentials.password);
            Ok(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
        Challenge::Digest(header) => {
            let uri = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let context = AuthContext::new(
                credentials.username.as_str(),
                credentials.password.as_str(),
                uri,
            );
            header
                .respond(&context)
                .map(|answer| answer.to_header_string())
                .map_err(|e| {
                    SourceError(format!(
                        "{KIND}: cannot answer the camera's digest challenge: {e}"
                    ))
                })
        }
    }
}

impl Source for SnapshotSource {
    fn capture(&mut self, at: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Frame>, SourceError>> {
        Box::pin(async move {
            let jpeg = self.fetch().await?;
            Ok(vec![Frame {
                jpeg,
                captured_at: at,
                file: None,
            }])
        })
    }
}
