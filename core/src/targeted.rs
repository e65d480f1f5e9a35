//! Targeted cache-control fields (RFC 9213): `CDN-Cache-Control` lets an origin tell the CDN
//! something other than what Cache-Control tells browsers (say, keep a page an hour at the edge
//! but revalidate it in every browser).
//!
//! A targeted field is a Structured Field Dictionary (RFC 9651, parsed by `sfv`). When a
//! response has a valid, non-empty one of this cache's [`TARGET_LIST`], its directives replace
//! Cache-Control and Expires for this cache entirely (§2.1), `no-store`, `private` and
//! `no-cache` included; an empty or unparsable one is ignored, as if absent.

use std::time::Duration;

use http::HeaderMap;
use sfv::{BareItem, Dictionary, ListEntry, Parser};

use crate::cache_control::{CacheControl, DELTA_SECONDS_MAX};

/// The targeted fields this cache obeys, in order of precedence (RFC 9213 §2.1). The edge is a
/// CDN, and `CDN-Cache-Control` is the field for every CDN (§3.1).
pub const TARGET_LIST: [&str; 1] = ["cdn-cache-control"];

/// The directives of the first valid, non-empty targeted field of [`TARGET_LIST`], as a
/// [`CacheControl`]; `None` when there is none (Cache-Control then applies).
pub fn directives(response_headers: &HeaderMap) -> Option<CacheControl> {
    TARGET_LIST.iter().find_map(|name| {
        let lines: Vec<&[u8]> = response_headers
            .get_all(*name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if lines.is_empty() {
            return None;
        }
        // RFC 9110 §5.3: several lines are one list.
        let joined = lines.join(&b", "[..]);
        let dictionary: Dictionary = Parser::new(&joined).parse().ok()?;
        (!dictionary.is_empty()).then(|| from_dictionary(&dictionary))
    })
}

/// A directive's `delta-seconds`: a non-negative Integer (RFC 9213 §2.1: directives whose value
/// is of the wrong type are ignored).
fn seconds(entry: &ListEntry) -> Option<Duration> {
    match entry {
        ListEntry::Item(item) => {
            let n = i64::from(item.bare_item.as_integer()?);
            u64::try_from(n)
                .ok()
                .map(|n| Duration::from_secs(n.min(DELTA_SECONDS_MAX)))
        }
        ListEntry::InnerList(_) => None,
    }
}

/// A flag directive: present as `name` (true) or `name=?1`; `name=?0` is absent.
fn flag(entry: &ListEntry) -> bool {
    matches!(entry, ListEntry::Item(item) if item.bare_item == BareItem::Boolean(true))
}

/// `no-cache` or `private`: a flag (the whole response), or field names as a String or an Inner
/// List of Tokens or Strings (only those fields). `None` when of another type.
fn field_names(entry: &ListEntry) -> Option<Vec<String>> {
    let name = |item: &BareItem| match item {
        BareItem::Token(t) => Some(t.as_str().to_ascii_lowercase()),
        BareItem::String(s) => Some(s.as_str().to_ascii_lowercase()),
        _ => None,
    };
    match entry {
        ListEntry::Item(item) if item.bare_item == BareItem::Boolean(true) => Some(Vec::new()),
        ListEntry::Item(item) => match &item.bare_item {
            BareItem::String(s) => Some(
                s.as_str()
                    .split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
            _ => None,
        },
        ListEntry::InnerList(list) => list.items.iter().map(|i| name(&i.bare_item)).collect(),
    }
}

fn from_dictionary(dictionary: &Dictionary) -> CacheControl {
    let mut cc = CacheControl::new();
    for (key, entry) in dictionary {
        match key.as_str() {
            "max-age" => cc.max_age = seconds(entry),
            "s-maxage" => cc.s_maxage = seconds(entry),
            "stale-while-revalidate" => cc.stale_while_revalidate = seconds(entry),
            "stale-if-error" => cc.stale_if_error = seconds(entry),
            "no-cache" => cc.no_cache = field_names(entry),
            "private" => cc.private = field_names(entry),
            "no-store" => cc.no_store = flag(entry),
            "public" => cc.public = flag(entry),
            "must-revalidate" => cc.must_revalidate = flag(entry),
            "proxy-revalidate" => cc.proxy_revalidate = flag(entry),
            "must-understand" => cc.must_understand = flag(entry),
            "no-transform" => cc.no_transform = flag(entry),
            "immutable" => cc.immutable = flag(entry),
            // §2.1: directives this cache does not know are ignored.
            _ => {}
        }
    }
    cc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache_control::{
        shared_freshness_lifetime, shared_reuse, shared_storability, Reuse, Storability,
    };
    use http::{header, HeaderValue, Method, StatusCode};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    const SECS: fn(u64) -> Duration = Duration::from_secs;
    const DATE: &str = "Thu, 01 Dec 1994 16:00:00 GMT";

    fn lifetime(pairs: &[(&str, &str)]) -> Duration {
        shared_freshness_lifetime(StatusCode::OK, &headers(pairs))
    }

    fn storability(pairs: &[(&str, &str)]) -> Storability {
        shared_storability(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            &headers(pairs),
        )
    }

    #[test]
    fn rfc9213_2_1_the_targeted_field_replaces_cache_control_and_expires() {
        let cases: &[(&[(&str, &str)], u64)] = &[
            (&[("cdn-cache-control", "max-age=3600")], 3600),
            (
                &[
                    ("cdn-cache-control", "max-age=3600"),
                    ("cache-control", "no-cache, max-age=0"),
                ],
                3600,
            ),
            (
                &[
                    ("cdn-cache-control", "max-age=60"),
                    ("cache-control", "max-age=3600"),
                ],
                60,
            ),
            // Expires is ignored too: no explicit lifetime, and no Last-Modified to guess from.
            (
                &[
                    ("cdn-cache-control", "public"),
                    ("expires", "Thu, 01 Dec 1994 17:00:00 GMT"),
                    ("date", DATE),
                ],
                0,
            ),
            (&[("cdn-cache-control", "max-age=3600, s-maxage=5")], 5),
        ];
        for (pairs, secs) in cases {
            assert_eq!(lifetime(pairs), SECS(*secs), "{pairs:?}");
        }
        // Cache-Control's no-cache does not apply: fresh at the edge for its lifetime.
        let h = headers(&[
            ("cdn-cache-control", "max-age=3600"),
            ("cache-control", "no-cache"),
        ]);
        assert_eq!(shared_reuse(StatusCode::OK, &h, SECS(10)), Reuse::Fresh);
    }

    #[test]
    fn rfc9213_2_1_no_store_private_and_no_cache_apply_to_this_cache() {
        let fresh_elsewhere = ("cache-control", "public, max-age=3600");
        assert_eq!(
            storability(&[fresh_elsewhere, ("cdn-cache-control", "no-store")]),
            Storability::NoStore
        );
        assert_eq!(
            storability(&[fresh_elsewhere, ("cdn-cache-control", "private")]),
            Storability::Private
        );
        let h = headers(&[fresh_elsewhere, ("cdn-cache-control", "no-cache")]);
        assert_eq!(
            shared_reuse(StatusCode::OK, &h, SECS(1)),
            Reuse::MustRevalidate
        );
        // And the other way round: Cache-Control's no-store is not this cache's.
        assert_eq!(
            storability(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=60")
            ]),
            Storability::Storable
        );
        // `?0` turns a flag off.
        assert_eq!(
            storability(&[("cdn-cache-control", "no-store=?0, max-age=60")]),
            Storability::Storable
        );
    }

    #[test]
    fn rfc9213_2_1_an_invalid_or_empty_targeted_field_is_ignored() {
        for field in ["", "max-age=\"3600", "max-age=3600,", "MAX-AGE=60", "(a b"] {
            let pairs = [("cdn-cache-control", field), ("cache-control", "max-age=7")];
            assert_eq!(lifetime(&pairs), SECS(7), "{field:?}");
        }
        // A valid field with a known directive of the wrong type: that directive is ignored,
        // and the field still replaces Cache-Control.
        for field in [
            "max-age=\"3600\"",
            "max-age=-5",
            "max-age=1.5",
            "max-age=(1)",
        ] {
            let pairs = [("cdn-cache-control", field), ("cache-control", "max-age=7")];
            assert_eq!(lifetime(&pairs), SECS(0), "{field:?}");
        }
        // Unknown directives and parameters are ignored.
        let pairs = [("cdn-cache-control", "foo=bar, max-age=30;x=1")];
        assert_eq!(lifetime(&pairs), SECS(30));
        // Several lines are one dictionary.
        let pairs = [
            ("cdn-cache-control", "public"),
            ("cdn-cache-control", "max-age=30"),
        ];
        assert_eq!(lifetime(&pairs), SECS(30));
    }

    #[test]
    fn rfc9213_field_names_qualify_private_and_no_cache() {
        let h = headers(&[("cdn-cache-control", "private=\"set-cookie2, x-user\"")]);
        assert_eq!(
            directives(&h).unwrap().private,
            Some(vec!["set-cookie2".to_owned(), "x-user".to_owned()])
        );
        let h = headers(&[("cdn-cache-control", "no-cache=(x-a \"X-B\")")]);
        assert_eq!(
            directives(&h).unwrap().no_cache,
            Some(vec!["x-a".to_owned(), "x-b".to_owned()])
        );
        let h = headers(&[("cdn-cache-control", "private=1")]);
        assert_eq!(directives(&h).unwrap().private, None);
    }
}
