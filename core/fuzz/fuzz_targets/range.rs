//! `range::parse_range`, `range::resolve` and `range::evaluate` with If-Range (RFC 9110 §14,
//! §13.1.5).
//!
//! Invariants:
//! - a parsed Range is a non-empty list, and every `first-last` has first <= last;
//! - against every length tried (one from the input, 0, 1, u64::MAX and the boundaries of each
//!   spec), a `Partial` range has first <= last < length, its `len`, `as_std_range` and
//!   `Content-Range` are consistent, and it is the only satisfiable spec;
//!   `Unsatisfiable` means no spec is satisfiable; `Full` means several are, or the
//!   representation is empty and every spec is a non-zero suffix;
//! - `evaluate` answers `Full` to anything but GET; for GET with one Range line it answers
//!   exactly `resolve(parse_range(..))` when If-Range is absent or matches, and `Full` when
//!   If-Range does not match or Range does not parse.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use http::{header, HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use timelapser_core::range::{self, RangeResponse, RangeSpec};
use timelapser_core::{EntityTag, Validators};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    length: u64,
    if_range: Option<&'a [u8]>,
    range: &'a [u8],
}

/// Sun, 06 Nov 1994 08:49:37 GMT.
const LM_SECS: u64 = 784_111_777;

fn lengths(input_length: u64, specs: &[RangeSpec]) -> Vec<u64> {
    let mut out = vec![input_length, 0, 1, 2, u64::MAX];
    for spec in specs {
        let points = match *spec {
            RangeSpec::FromTo(a, b) => vec![a, b],
            RangeSpec::From(a) => vec![a],
            RangeSpec::Suffix(n) => vec![n],
        };
        for p in points {
            out.extend([p.saturating_sub(1), p, p.saturating_add(1)]);
        }
    }
    out
}

fn check_resolution(specs: &[RangeSpec], length: u64) {
    let satisfiable: Vec<_> = specs.iter().filter_map(|s| s.resolve(length)).collect();
    for r in &satisfiable {
        assert!(r.first <= r.last && r.last < length, "{r:?} of {length}");
    }
    match range::resolve(specs, length) {
        RangeResponse::Partial(r) => {
            assert!(r.first <= r.last, "{specs:?} of {length}: {r:?}");
            assert!(r.last < length, "{specs:?} of {length}: {r:?}");
            assert_eq!(satisfiable, vec![r]);
            assert_eq!(r.len(), r.last - r.first + 1);
            assert_eq!(r.as_std_range(), r.first..r.last + 1);
            let cr = r.content_range(length);
            assert_eq!(
                cr.to_str().unwrap(),
                format!("bytes {}-{}/{}", r.first, r.last, length)
            );
        }
        RangeResponse::Unsatisfiable => {
            assert!(satisfiable.is_empty(), "{specs:?} of {length}");
            let _ = range::unsatisfied_content_range(length);
        }
        RangeResponse::Full => {
            let empty_suffixes = length == 0
                && specs
                    .iter()
                    .all(|s| matches!(s, RangeSpec::Suffix(n) if *n > 0));
            assert!(
                satisfiable.len() >= 2 || (satisfiable.is_empty() && empty_suffixes),
                "{specs:?} of {length}"
            );
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let parsed = range::parse_range(input.range);
    if let Ok(specs) = &parsed {
        assert!(!specs.is_empty());
        for spec in specs {
            if let RangeSpec::FromTo(a, b) = spec {
                assert!(a <= b, "{spec:?}");
            }
        }
        for length in lengths(input.length, specs) {
            check_resolution(specs, length);
        }
    }

    let Ok(range_value) = HeaderValue::from_bytes(input.range) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::RANGE, range_value);
    let mut if_range_value = None;
    if let Some(bytes) = input.if_range {
        if let Ok(v) = HeaderValue::from_bytes(bytes) {
            headers.insert(header::IF_RANGE, v.clone());
            if_range_value = Some(v);
        }
    }

    let strong = EntityTag::strong("abc").unwrap();
    let weak = EntityTag::weak("abc").unwrap();
    let lm = SystemTime::UNIX_EPOCH + Duration::from_millis(LM_SECS * 1000 + 250);
    let validators = [
        Validators::new(Some(&strong), Some(lm)),
        Validators::new(Some(&weak), Some(lm)),
        Validators::new(None, None),
    ];
    for current in &validators {
        let matches = if_range_value
            .as_ref()
            .map(|v| range::if_range_matches(v, current));
        if current.etag.is_some_and(EntityTag::is_weak) && matches == Some(true) {
            // A weak validator never matches If-Range (§13.1.5) ... unless by date.
            let v = if_range_value.as_ref().unwrap().as_bytes();
            assert!(!v.trim_ascii().starts_with(b"\"") && !v.trim_ascii().starts_with(b"W/"));
        }
        if current.etag.is_none() && current.last_modified.is_none() {
            assert_ne!(matches, Some(true), "nothing to match against");
        }
        for length in [input.length, 0, 100] {
            for method in [Method::HEAD, Method::PUT, Method::POST] {
                assert_eq!(
                    range::evaluate(&method, &headers, length, current),
                    RangeResponse::Full
                );
            }
            let got = range::evaluate(&Method::GET, &headers, length, current);
            let expected = match (&parsed, matches) {
                (_, Some(false)) | (Err(_), _) => RangeResponse::Full,
                (Ok(specs), _) => range::resolve(specs, length),
            };
            assert_eq!(got, expected, "length {length}, {current:?}");
            if let RangeResponse::Partial(r) = got {
                assert!(r.first <= r.last && r.last < length);
            }
        }
    }

    // Two Range lines: the field is ignored.
    headers.append(header::RANGE, HeaderValue::from_static("bytes=0-0"));
    assert_eq!(
        range::evaluate(&Method::GET, &headers, input.length, &validators[0]),
        RangeResponse::Full
    );
});
