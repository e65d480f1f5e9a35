//! Webhooks: the contract between the origin, which POSTs a signed JSON body to an operator's
//! URL when something happens, and the receiver, which checks the signature.
//!
//! - [`WebhookEvent`]: what a webhook may subscribe to, and [`WebhookEvent::of`], which
//!   events of the log ([`crate::events::Event`]) are delivered as which.
//! - [`Payload`]: the body, `{"id", "event", "event_id", "created_at", "data"}`; `data` is the
//!   logged event's payload as the event stream carries it.
//! - [`sign`] and [`verify`]: `Timelapser-Signature: t=<unix seconds>,v1=<hex>` where the hex
//!   is HMAC-SHA256 (RFC 2104, FIPS 180-4) keyed with the webhook's secret over
//!   `"<t>.<body>"`, the body's exact bytes. The timestamp is inside the MAC, so a receiver
//!   that refuses timestamps older than a few minutes ([`DEFAULT_TOLERANCE`]) cannot be
//!   replayed an old delivery; the delivery id ([`DELIVERY`]) lets it drop a repeat within the
//!   window (an attempt whose answer was lost is sent again with the same id).
//! - [`retry_delay`]: the backoff between attempts; after [`MAX_ATTEMPTS`] a delivery fails.
//! - [`Webhook`], [`Delivery`], [`Attempt`]: the JSON of `/api/webhooks` and its delivery log.
//!
//! Time is a parameter everywhere (`now` in Unix seconds), as in the rest of this crate.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderName;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::events::Event;
use crate::resources::CameraStatus;

/// `Timelapser-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE: HeaderName = HeaderName::from_static("timelapser-signature");

/// `Timelapser-Event`: the [`WebhookEvent`] name, so a receiver can route before parsing.
pub const EVENT: HeaderName = HeaderName::from_static("timelapser-event");

/// `Timelapser-Delivery`: the delivery id, the same on every attempt of one delivery.
pub const DELIVERY: HeaderName = HeaderName::from_static("timelapser-delivery");

/// How far a signature's timestamp may be from the receiver's clock by default (five
/// minutes, as Stripe's libraries use): older is refused as a replay.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The signature scheme's version tag in [`SIGNATURE`].
const SCHEME: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// What a webhook may subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A render finished (`video_ready`).
    VideoReady,
    /// A render failed (`video_failed`).
    VideoFailed,
    /// A camera went offline (`camera_status_changed` to `offline`).
    CameraOffline,
    /// A camera came online (`camera_status_changed` to `online`: its first capture, or back
    /// after being offline or in error).
    CameraOnline,
    /// The media disk is short of space, or a size cap reached into a running timelapse
    /// (`storage_pressure`).
    StoragePressure,
}

impl WebhookEvent {
    /// Every webhook event, in the order documented.
    pub const ALL: [Self; 5] = [
        Self::VideoReady,
        Self::VideoFailed,
        Self::CameraOffline,
        Self::CameraOnline,
        Self::StoragePressure,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VideoReady => "video_ready",
            Self::VideoFailed => "video_failed",
            Self::CameraOffline => "camera_offline",
            Self::CameraOnline => "camera_online",
            Self::StoragePressure => "storage_pressure",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The webhook event a logged event is delivered as, if any.
    pub fn of(event: &Event) -> Option<Self> {
        match event {
            Event::VideoReady { .. } => Some(Self::VideoReady),
            Event::VideoFailed { .. } => Some(Self::VideoFailed),
            Event::CameraStatusChanged { status, .. } => match status {
                CameraStatus::Offline => Some(Self::CameraOffline),
                CameraStatus::Online => Some(Self::CameraOnline),
                CameraStatus::Unknown | CameraStatus::Error => None,
            },
            Event::StoragePressure { .. } => Some(Self::StoragePressure),
            _ => None,
        }
    }
}

impl std::fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of a delivery. The same bytes are sent on every attempt (only the signature's
/// timestamp changes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// The delivery id (also in [`DELIVERY`]).
    pub id: i64,
    /// What happened.
    pub event: WebhookEvent,
    /// The id of the logged event (the event stream's `id:`): increasing, so a receiver can
    /// order deliveries, which may arrive out of order.
    pub event_id: i64,
    /// When the event was logged.
    pub created_at: DateTime<Utc>,
    /// The logged event's payload (API.md "Event names and payloads"): `{video}` for the
    /// video events, `{camera_id, status, message, at}` for the camera ones,
    /// `{camera_id, free_bytes, threshold_bytes, images_pruned, exhausted, message}` for
    /// storage pressure.
    pub data: serde_json::Value,
}

impl Payload {
    /// The JSON body.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload serializes")
    }
}

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The [`SIGNATURE`] field value of `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},{SCHEME}={}", hex_encode(&digest))
}

/// Why a signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=<digits>,v1=<64 hex digits>[,...]`.
    #[error("the signature field is not t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    /// The timestamp is further from now than the tolerance: a replay, or a clock far off.
    #[error("the signature's timestamp is {age} s from now, more than the {tolerance} s allowed")]
    Stale {
        /// Seconds between the timestamp and now.
        age: u64,
        /// Seconds allowed.
        tolerance: u64,
    },
    /// No `v1` signature matches the body and the secret.
    #[error("no signature matches the body")]
    Mismatch,
}

/// Checks a [`SIGNATURE`] field against the body received (its exact bytes, before any
/// parsing) and the webhook's secret, at `now` (Unix seconds): the timestamp must be within
/// `tolerance` of now, and one of its `v1` signatures must match, compared in constant time.
/// Returns the timestamp. Unknown schemes (`v0=`, a future `v2=`) are ignored.
pub fn verify(
    field: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in field.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if timestamp.is_none() && is_digits(value) => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "t" => return Err(SignatureError::Malformed),
            SCHEME => signatures.push(hex_decode(value).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now.abs_diff(timestamp);
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            age,
            tolerance: tolerance.as_secs(),
        });
    }
    let expected = mac(secret, timestamp, body);
    // verify_slice compares in constant time; each candidate gets a fresh clone.
    if signatures
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit())
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Attempts made before a delivery is given up as failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// The delays after each failed attempt, in units of the base delay: with the default base
/// of 10 s, 10 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h (about ten hours in all).
const BACKOFF: [u32; MAX_ATTEMPTS as usize - 1] = [1, 3, 12, 60, 360, 1080, 2160];

/// The default base delay of [`retry_delay`].
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(10);

/// How long to wait after `attempts` attempts have failed before the next one; `None` once
/// [`MAX_ATTEMPTS`] have been made (the delivery has failed).
pub fn retry_delay(attempts: u32, base: Duration) -> Option<Duration> {
    let step = attempts.checked_sub(1)? as usize;
    BACKOFF.get(step).map(|units| base.saturating_mul(*units))
}

/// A webhook as `/api/webhooks` represents it (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// Where deliveries are POSTed (`http` or `https`).
    pub url: String,
    /// What it is sent.
    pub events: Vec<WebhookEvent>,
    /// Whether it is sent anything (a disabled webhook gets no new deliveries; pending ones
    /// wait).
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The answer to `POST /api/webhooks`: the webhook and its secret, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet answered 2xx; another attempt is due at `next_attempt_at`.
    Pending,
    /// Answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// How long until the answer (or the error).
    pub duration_ms: u64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything (a status other than 2xx, a timeout, a refused
    /// connection).
    pub error: Option<String>,
}

/// One event to one webhook, as its delivery log (`GET /api/webhooks/{id}/deliveries`) shows
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery id ([`DELIVERY`], [`Payload::id`]).
    pub id: i64,
    /// The webhook.
    pub webhook_id: i64,
    /// What happened.
    pub event: WebhookEvent,
    /// The logged event's id.
    pub event_id: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempt_count: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the receiver answered 2xx.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last attempt's status code, if it got one.
    pub last_status_code: Option<u16>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// When the delivery was created (the event was dispatched).
    pub created_at: DateTime<Utc>,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign(SECRET, 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn a_signature_verifies_within_the_tolerance() {
        let body = br#"{"id":1}"#;
        let field = sign(SECRET, 1_000, body);
        assert_eq!(
            verify(&field, SECRET, body, 1_000, DEFAULT_TOLERANCE),
            Ok(1_000)
        );
        assert_eq!(
            verify(&field, SECRET, body, 1_300, DEFAULT_TOLERANCE),
            Ok(1_000)
        );
        assert_eq!(
            verify(&field, SECRET, body, 700, DEFAULT_TOLERANCE),
            Ok(1_000)
        );
        assert_eq!(
            verify(&field, SECRET, body, 1_301, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale {
                age: 301,
                tolerance: 300
            })
        );
    }

    #[test]
    fn another_body_secret_or_timestamp_is_refused() {
        let body = br#"{"id":1}"#;
        let field = sign(SECRET, 1_000, body);
        let refuse = |field: &str, secret: &[u8], body: &[u8]| {
            verify(field, secret, body, 1_000, DEFAULT_TOLERANCE)
        };
        assert_eq!(
            refuse(&field, SECRET, br#"{"id":2}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            refuse(&field, b"other", body),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is inside the MAC: moving it forward does not make an old delivery new.
        let moved = field.replacen("t=1000", "t=1001", 1);
        assert_eq!(
            verify(&moved, SECRET, body, 1_001, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_signatures_and_unknown_schemes_are_allowed() {
        let body = b"x";
        let good = sign(SECRET, 5, body);
        let v1 = good.split_once(",v1=").unwrap().1;
        let rotated = format!("t=5,v1={},v0=abc,v1={v1}", "0".repeat(64));
        assert_eq!(verify(&rotated, SECRET, body, 5, DEFAULT_TOLERANCE), Ok(5));
    }

    #[test]
    fn malformed_fields_are_refused() {
        for field in [
            "",
            "t=5",
            "v1=00",
            "t=,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=-5,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=5,t=6,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=5,v1=zz00000000000000000000000000000000000000000000000000000000000000",
            "t=5,v1=00",
            "t=5;v1=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(
                verify(field, SECRET, b"", 5, DEFAULT_TOLERANCE),
                Err(SignatureError::Malformed),
                "{field:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_then_gives_up() {
        let base = DEFAULT_BACKOFF_BASE;
        let delays: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n, base).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [10, 30, 120, 600, 3600, 10_800, 21_600]);
        assert_eq!(retry_delay(MAX_ATTEMPTS, base), None);
        assert_eq!(
            retry_delay(0, base),
            None,
            "no attempt made, nothing to wait for"
        );
        assert_eq!(
            retry_delay(2, Duration::from_millis(50)),
            Some(Duration::from_millis(150))
        );
    }

    #[test]
    fn log_events_map_to_webhook_events() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let status = |status| Event::CameraStatusChanged {
            camera_id: 1,
            status,
            message: None,
            at,
        };
        assert_eq!(
            WebhookEvent::of(&status(CameraStatus::Offline)),
            Some(WebhookEvent::CameraOffline)
        );
        assert_eq!(
            WebhookEvent::of(&status(CameraStatus::Online)),
            Some(WebhookEvent::CameraOnline)
        );
        assert_eq!(WebhookEvent::of(&status(CameraStatus::Error)), None);
        assert_eq!(
            WebhookEvent::of(&Event::StoragePressure {
                camera_id: None,
                free_bytes: 1,
                threshold_bytes: 2,
                images_pruned: 0,
                exhausted: true,
                message: String::new(),
            }),
            Some(WebhookEvent::StoragePressure)
        );
        assert_eq!(
            WebhookEvent::of(&Event::Resync {
                reason: String::new()
            }),
            None
        );
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
            assert_eq!(
                serde_json::to_value(event).unwrap(),
                serde_json::json!(event.as_str())
            );
        }
        assert_eq!(WebhookEvent::parse("video_progress"), None);
    }

    #[test]
    fn the_payload_has_the_documented_shape() {
        let payload = Payload {
            id: 7,
            event: WebhookEvent::CameraOffline,
            event_id: 42,
            created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            data: serde_json::json!({"camera_id": 1}),
        };
        let body: serde_json::Value = serde_json::from_slice(&payload.to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": 7,
                "event": "camera_offline",
                "event_id": 42,
                "created_at": "2023-11-14T22:13:20Z",
                "data": {"camera_id": 1}
            })
        );
    }
}
