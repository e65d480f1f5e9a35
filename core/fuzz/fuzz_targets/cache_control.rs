//! `CacheControl::parse` and its canonical form (RFC 9111 §5.2).
//!
//! Invariants:
//! - parse never panics, and neither does `to_header_value` of what it parsed (the canonical
//!   form is always a valid header value);
//! - round trip of the canonical form: `CacheControl::parse(cc.to_string())` equals `cc`;
//! - the canonical form is a fixed point: formatting the re-parsed value gives the same text;
//! - `from_headers` of the input as one line equals `parse` of it;
//! - delta-seconds never exceed `DELTA_SECONDS_MAX`.
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use timelapser_core::cache_control::DELTA_SECONDS_MAX;
use timelapser_core::CacheControl;

fuzz_target!(|data: &[u8]| {
    let cc = CacheControl::parse(data);

    for age in [
        cc.max_age,
        cc.s_maxage,
        cc.min_fresh,
        cc.stale_while_revalidate,
        cc.stale_if_error,
        cc.max_stale.flatten(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(age.as_secs() <= DELTA_SECONDS_MAX);
    }

    let canonical = cc.to_string();
    let value = cc.to_header_value();
    assert_eq!(value.as_bytes(), canonical.as_bytes());

    let reparsed = CacheControl::parse(canonical.as_bytes());
    assert_eq!(
        reparsed,
        cc,
        "round trip failed\n  input:     {:?}\n  canonical: {:?}",
        String::from_utf8_lossy(data),
        canonical
    );
    assert_eq!(
        reparsed.to_string(),
        canonical,
        "canonical form is not a fixed point"
    );

    if let Ok(line) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, line);
        assert_eq!(CacheControl::from_headers(&headers).as_ref(), Some(&cc));
    }
});
