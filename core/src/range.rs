//! Range requests (RFC 9110 §14) and If-Range (§13.1.5).
//!
//! [`evaluate`] takes a request's method, headers and the representation's length and
//! validators, and says whether to send the whole representation (200), one part of it (206
//! with [`ByteRange::content_range`]) or nothing (416 with [`unsatisfied_content_range`]).
//!
//! Timelapser serves a single part per response. A request for several ranges of which more
//! than one is satisfiable is answered with the whole representation, which §14.2 allows ("a
//! server MAY ignore the Range header field") and which spares clients multipart parsing.

use http::{header, HeaderMap, HeaderValue, Method};

use crate::conditional::{to_http_date_resolution, Validators};
use crate::etag::EntityTag;
use crate::syntax::{parse_digits_saturating, split_list, trim_ows};

/// One `range-spec` of the `bytes` unit (RFC 9110 §14.1.1), as written by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

/// Why a Range field is not a `bytes` ranges-specifier this server honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRange {
    /// A unit other than `bytes`; §14.2 says to ignore the field.
    #[error("unsupported range unit")]
    UnsupportedUnit,
    /// Not `bytes=` followed by a valid range-set.
    #[error("malformed byte range")]
    Malformed,
}

/// Parses a Range field value: `bytes=0-99`, `bytes=100-`, `bytes=-500`, or a list of them.
/// The unit is case-insensitive (RFC 9110 §14.1) and whitespace around the list's commas is
/// allowed (§5.6.1).
pub fn parse_range(value: &[u8]) -> Result<Vec<RangeSpec>, InvalidRange> {
    let eq = value
        .iter()
        .position(|&b| b == b'=')
        .ok_or(InvalidRange::Malformed)?;
    let (unit, set) = (&value[..eq], &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Err(if crate::syntax::is_token(unit) {
            InvalidRange::UnsupportedUnit
        } else {
            InvalidRange::Malformed
        });
    }
    let specs = split_list(set)
        .into_iter()
        .map(parse_range_spec)
        .collect::<Result<Vec<_>, _>>()?;
    if specs.is_empty() {
        return Err(InvalidRange::Malformed);
    }
    Ok(specs)
}

fn parse_range_spec(spec: &[u8]) -> Result<RangeSpec, InvalidRange> {
    let dash = spec
        .iter()
        .position(|&b| b == b'-')
        .ok_or(InvalidRange::Malformed)?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    let digits = |s: &[u8]| parse_digits_saturating(s).ok_or(InvalidRange::Malformed);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(InvalidRange::Malformed),
        (true, false) => Ok(RangeSpec::Suffix(digits(last)?)),
        (false, true) => Ok(RangeSpec::From(digits(first)?)),
        (false, false) => {
            let (first, last) = (digits(first)?, digits(last)?);
            // §14.1.1: a range-spec is invalid if last-pos < first-pos.
            if last < first {
                Err(InvalidRange::Malformed)
            } else {
                Ok(RangeSpec::FromTo(first, last))
            }
        }
    }
}

/// A satisfiable range resolved against a representation's length: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub first: u64,
    /// Offset of the last byte, inclusive.
    pub last: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    #[allow(clippy::len_without_is_empty)] // a satisfiable range is never empty
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// `Content-Range: bytes first-last/complete-length` (RFC 9110 §14.4).
    pub fn content_range(&self, complete_length: u64) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            self.first, self.last, complete_length
        ))
        .expect("digits are a valid header value")
    }

    /// The range as a half-open `start..end` for slicing.
    pub fn as_std_range(&self) -> std::ops::Range<u64> {
        self.first..self.last + 1
    }
}

/// `Content-Range: bytes */complete-length`, sent with 416 (RFC 9110 §14.4, §15.5.17).
pub fn unsatisfied_content_range(complete_length: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes */{complete_length}"))
        .expect("digits are a valid header value")
}

impl RangeSpec {
    /// Resolves the spec against `length`, or `None` when it is unsatisfiable (§14.1.1: an
    /// int-range is satisfiable if first-pos < length; a suffix-range if its length is > 0).
    pub fn resolve(self, length: u64) -> Option<ByteRange> {
        match self {
            RangeSpec::FromTo(first, last) if first < length => Some(ByteRange {
                first,
                last: last.min(length - 1),
            }),
            RangeSpec::From(first) if first < length => Some(ByteRange {
                first,
                last: length - 1,
            }),
            RangeSpec::Suffix(n) if n > 0 && length > 0 => Some(ByteRange {
                first: length - n.min(length),
                last: length - 1,
            }),
            _ => None,
        }
    }
}

/// What to send for a request that may carry Range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeResponse {
    /// 200 with the whole representation (no Range, Range ignored, or If-Range not matching).
    Full,
    /// 206 with this part and `Content-Range`.
    Partial(ByteRange),
    /// 416 with `Content-Range: bytes */length`.
    Unsatisfiable,
}

/// Resolves parsed specs against a length: one satisfiable range gives [`RangeResponse::Partial`];
/// none gives [`RangeResponse::Unsatisfiable`]; several give [`RangeResponse::Full`].
pub fn resolve(specs: &[RangeSpec], length: u64) -> RangeResponse {
    let mut satisfiable = specs.iter().filter_map(|spec| spec.resolve(length));
    match (satisfiable.next(), satisfiable.next()) {
        (None, _)
            if length == 0
                && specs
                    .iter()
                    .all(|s| matches!(s, RangeSpec::Suffix(n) if *n > 0)) =>
        {
            // §14.1.1: on an empty representation a non-zero suffix-range is satisfiable, but
            // it selects nothing that Content-Range could express; send the (empty) whole.
            RangeResponse::Full
        }
        (None, _) => RangeResponse::Unsatisfiable,
        (Some(range), None) => RangeResponse::Partial(range),
        (Some(_), Some(_)) => RangeResponse::Full,
    }
}

/// If-Range (RFC 9110 §13.1.5): true when the validator the client holds is the current one.
/// An entity tag must match by strong comparison (a weak tag never matches); a date must be an
/// exact match of the Last-Modified the server would send. A malformed field never matches.
pub fn if_range_matches(value: &HeaderValue, current: &Validators<'_>) -> bool {
    let value = trim_ows(value.as_bytes());
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match (EntityTag::parse(value), current.etag) {
            (Ok(held), Some(etag)) => held.strong_eq(etag),
            _ => false,
        };
    }
    let date = crate::syntax::parse_http_date(value);
    match (date, current.last_modified) {
        (Some(held), Some(modified)) => held == to_http_date_resolution(modified),
        _ => false,
    }
}

/// Decides 200 / 206 / 416 for a request whose preconditions already passed.
///
/// Range applies to GET only (§14.2); it is ignored when malformed or of another unit
/// (§14.2), and when If-Range is present and does not match (§13.1.5).
pub fn evaluate(
    method: &Method,
    headers: &HeaderMap,
    length: u64,
    current: &Validators<'_>,
) -> RangeResponse {
    if method != Method::GET {
        return RangeResponse::Full;
    }
    let mut ranges = headers.get_all(header::RANGE).iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return RangeResponse::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        if !if_range_matches(if_range, current) {
            return RangeResponse::Full;
        }
    }
    match parse_range(range.as_bytes()) {
        Ok(specs) => resolve(&specs, length),
        Err(_) => RangeResponse::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use RangeResponse::{Full, Partial, Unsatisfiable};

    fn r(first: u64, last: u64) -> RangeResponse {
        Partial(ByteRange { first, last })
    }

    fn resolve_str(value: &str, length: u64) -> RangeResponse {
        match parse_range(value.as_bytes()) {
            Ok(specs) => resolve(&specs, length),
            Err(_) => Full,
        }
    }

    #[test]
    fn parses_the_three_forms() {
        // RFC 9110 §14.1.1: int-range, int-range without last-pos, suffix-range.
        assert_eq!(
            parse_range(b"bytes=0-499"),
            Ok(vec![RangeSpec::FromTo(0, 499)])
        );
        assert_eq!(parse_range(b"bytes=9500-"), Ok(vec![RangeSpec::From(9500)]));
        assert_eq!(parse_range(b"bytes=-500"), Ok(vec![RangeSpec::Suffix(500)]));
        assert_eq!(
            parse_range(b"BYTES=0-0, -1"),
            Ok(vec![RangeSpec::FromTo(0, 0), RangeSpec::Suffix(1)])
        );
    }

    #[test]
    fn rejects_malformed_ranges() {
        for bad in [
            "bytes=",
            "bytes=-",
            "bytes=5-4",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes 0-1",
            "=0-1",
            "bytes=0x1-2",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes=,",
            "b ytes=0-1",
        ] {
            assert_eq!(
                parse_range(bad.as_bytes()),
                Err(InvalidRange::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            parse_range(b"items=0-1"),
            Err(InvalidRange::UnsupportedUnit)
        );
    }

    #[test]
    fn resolution_table() {
        // (Range, length, outcome) after RFC 9110 §14.1.1 and the examples of §14.1.2.
        let table = [
            ("bytes=0-499", 10_000, r(0, 499)),
            ("bytes=500-999", 10_000, r(500, 999)),
            ("bytes=-500", 10_000, r(9500, 9999)),
            ("bytes=9500-", 10_000, r(9500, 9999)),
            ("bytes=0-0", 10_000, r(0, 0)),
            ("bytes=-1", 10_000, r(9999, 9999)),
            ("bytes=0-99999", 10_000, r(0, 9999)), // last-pos clamped
            ("bytes=-20000", 10_000, r(0, 9999)),  // suffix longer than the whole
            ("bytes=10000-", 10_000, Unsatisfiable), // first-pos == length
            ("bytes=10000-10001", 10_000, Unsatisfiable),
            ("bytes=-0", 10_000, Unsatisfiable), // zero suffix
            ("bytes=0-0", 0, Unsatisfiable),     // nothing in an empty representation
            ("bytes=-5", 0, Full),
            ("bytes=0-1,5-6", 10, Full), // several parts: whole representation
            ("bytes=0-1,50-60", 10, r(0, 1)), // one satisfiable part of two
            ("bytes=50-60,70-", 10, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=0-99999999999999999999999", 10, r(0, 9)),
            ("bytes=5-4", 10, Full), // invalid spec: ignore the field
            ("lines=0-1", 10, Full), // unknown unit: ignore the field
        ];
        for (value, length, expected) in table {
            assert_eq!(resolve_str(value, length), expected, "{value} of {length}");
        }
    }

    #[test]
    fn content_range_formats() {
        // RFC 9110 §14.4.
        let range = ByteRange {
            first: 0,
            last: 499,
        };
        assert_eq!(range.content_range(1234), "bytes 0-499/1234");
        assert_eq!(range.len(), 500);
        assert_eq!(range.as_std_range(), 0..500);
        assert_eq!(unsatisfied_content_range(1234), "bytes */1234");
    }

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

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn eval(method: Method, pairs: &[(&str, &str)]) -> RangeResponse {
        let tag = EntityTag::strong("abc").unwrap();
        let modified = httpdate::parse_http_date(LM).unwrap();
        evaluate(
            &method,
            &headers(pairs),
            100,
            &Validators::new(Some(&tag), Some(modified)),
        )
    }

    #[test]
    fn range_applies_to_get_only() {
        // RFC 9110 §14.2: GET is the only method for which range handling is defined.
        assert_eq!(eval(Method::GET, &[("range", "bytes=0-9")]), r(0, 9));
        assert_eq!(eval(Method::HEAD, &[("range", "bytes=0-9")]), Full);
        assert_eq!(eval(Method::POST, &[("range", "bytes=0-9")]), Full);
        assert_eq!(eval(Method::GET, &[]), Full);
    }

    #[test]
    fn two_range_fields_are_ignored() {
        assert_eq!(
            eval(
                Method::GET,
                &[("range", "bytes=0-9"), ("range", "bytes=1-2")]
            ),
            Full
        );
    }

    #[test]
    fn if_range_table() {
        // RFC 9110 §13.1.5: strong comparison for tags; exact match for dates.
        let table = [
            ("\"abc\"", r(0, 9)),
            ("W/\"abc\"", Full),
            ("\"abd\"", Full),
            (LM, r(0, 9)),
            ("Sun, 06 Nov 1994 08:49:38 GMT", Full),
            ("Sun, 06 Nov 1994 08:49:36 GMT", Full),
            ("garbage", Full),
            ("\"abc", Full),
        ];
        for (if_range, expected) in table {
            assert_eq!(
                eval(
                    Method::GET,
                    &[("range", "bytes=0-9"), ("if-range", if_range)]
                ),
                expected,
                "{if_range}"
            );
        }
    }

    #[test]
    fn if_range_without_range_is_ignored() {
        assert_eq!(eval(Method::GET, &[("if-range", "\"zzz\"")]), Full);
    }

    #[test]
    fn unsatisfiable_range_behind_a_matching_if_range_is_416() {
        assert_eq!(
            eval(
                Method::GET,
                &[("range", "bytes=100-"), ("if-range", "\"abc\"")]
            ),
            Unsatisfiable
        );
    }

    #[test]
    fn if_range_date_without_last_modified_never_matches() {
        let tag = EntityTag::strong("abc").unwrap();
        let h = headers(&[("range", "bytes=0-9"), ("if-range", LM)]);
        assert_eq!(
            evaluate(&Method::GET, &h, 100, &Validators::new(Some(&tag), None)),
            Full
        );
    }

    proptest! {
        #[test]
        fn prop_partial_ranges_lie_within_the_representation(value in "bytes=[0-9]{0,4}-[0-9]{0,4}(,[0-9]{0,3}-[0-9]{0,3})?", length in 0u64..5000) {
            if let Partial(range) = resolve_str(&value, length) {
                prop_assert!(range.first <= range.last);
                prop_assert!(range.last < length);
            }
        }

        #[test]
        fn prop_format_parse_round_trip(first in 0u64..u64::MAX / 2, len in 0u64..1000, suffix: bool) {
            let (text, spec) = if suffix {
                (format!("bytes=-{len}"), RangeSpec::Suffix(len))
            } else {
                (format!("bytes={first}-{}", first + len), RangeSpec::FromTo(first, first + len))
            };
            prop_assert_eq!(parse_range(text.as_bytes()), Ok(vec![spec]));
        }

        #[test]
        fn prop_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = parse_range(&bytes);
        }
    }
}
