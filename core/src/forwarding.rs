//! What a proxy forwards and how it reports what its cache did.
//!
//! - Hop-by-hop fields (RFC 9110 §7.6.1) belong to one connection and are never forwarded.
//! - [`CacheStatus`] is reported on every response from the edge, in the
//!   `x-timelapser-cache` field (one word, like CF-Cache-Status) and in the standard
//!   `Cache-Status` field of RFC 9211.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `x-timelapser-cache`: HIT, MISS, REVALIDATED, STALE or BYPASS.
pub const CACHE_STATUS_HEADER: &str = "x-timelapser-cache";

/// The name the edge gives itself in `Cache-Status` (RFC 9211 §2).
pub const CACHE_NAME: &str = "timelapser-edge";

/// Fields that are hop-by-hop whatever `Connection` says (RFC 9110 §7.6.1, and the
/// non-standard ones still seen in the wild).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// Removes hop-by-hop fields, including every field named in `Connection` (RFC 9110 §7.6.1).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| crate::syntax::split_list(v.as_bytes()))
        .filter_map(|name| HeaderName::from_bytes(name).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether a field is hop-by-hop by itself (without looking at `Connection`).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// What the edge's cache did for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from storage without contacting the origin.
    Hit,
    /// Not in storage (or not storable): fetched from the origin.
    Miss,
    /// In storage but stale: validated with the origin, which answered 304.
    Revalidated,
    /// In storage, stale, origin failing: served within `stale-if-error`.
    Stale,
    /// In storage, stale within `stale-while-revalidate` (RFC 5861 §3): served at once while
    /// the origin revalidates it in the background.
    Updating,
    /// Not a cacheable exchange (writes, the event stream, requests with credentials).
    Bypass,
}

impl CacheStatus {
    /// The one-word form.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// Parses the one-word form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Hit,
            Self::Miss,
            Self::Revalidated,
            Self::Stale,
            Self::Updating,
            Self::Bypass,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// The RFC 9211 `Cache-Status` member for this outcome.
    pub fn cache_status_value(self) -> HeaderValue {
        let value = match self {
            CacheStatus::Hit => format!("{CACHE_NAME}; hit"),
            CacheStatus::Miss => format!("{CACHE_NAME}; fwd=miss"),
            CacheStatus::Revalidated => format!("{CACHE_NAME}; fwd=stale; fwd-status=304"),
            CacheStatus::Stale => format!("{CACHE_NAME}; hit; detail=stale-if-error"),
            CacheStatus::Updating => format!("{CACHE_NAME}; hit; detail=stale-while-revalidate"),
            CacheStatus::Bypass => format!("{CACHE_NAME}; fwd=bypass"),
        };
        HeaderValue::from_str(&value).expect("ASCII")
    }

    /// Sets both status fields on a response's headers.
    pub fn apply(self, headers: &mut HeaderMap) {
        headers.insert(
            HeaderName::from_static(CACHE_STATUS_HEADER),
            HeaderValue::from_static(self.as_str()),
        );
        headers.insert(
            HeaderName::from_static("cache-status"),
            self.cache_status_value(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn hop_by_hop_fields_and_those_named_in_connection_are_removed() {
        // RFC 9110 §7.6.1.
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("etag", "\"a\""),
            ("cache-control", "no-cache"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["etag", "cache-control"]);
        assert!(is_hop_by_hop("Transfer-Encoding"));
        assert!(!is_hop_by_hop("etag"));
    }

    #[test]
    fn cache_status_in_both_forms() {
        let mut h = HeaderMap::new();
        CacheStatus::Revalidated.apply(&mut h);
        assert_eq!(h[CACHE_STATUS_HEADER], "REVALIDATED");
        assert_eq!(
            h["cache-status"],
            "timelapser-edge; fwd=stale; fwd-status=304"
        );
        for s in ["HIT", "MISS", "REVALIDATED", "STALE", "BYPASS"] {
            assert_eq!(CacheStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(CacheStatus::parse("hit"), None);
    }
}
