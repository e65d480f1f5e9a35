//! Conditional requests (RFC 9110 §13): the four preconditions and their evaluation order.
//!
//! [`Preconditions::from_headers`] reads If-Match, If-None-Match, If-Modified-Since and
//! If-Unmodified-Since from a request; [`Preconditions::evaluate`] applies them to the
//! resource's current [`Validators`] in the order of RFC 9110 §13.2.2 and says whether to
//! perform the method, answer 304, or answer 412. If-Range belongs to [`crate::range`].
//!
//! Malformed fields follow the RFC where it speaks and fail safe where it does not (as Go's
//! net/http does): an invalid date is ignored (§13.1.3, §13.1.4); an If-None-Match that does
//! not parse matches nothing, so the full response is sent; an If-Match that does not parse
//! fails, so a write the client meant to be conditional is never performed blindly.

use std::time::SystemTime;

use http::{header, HeaderMap, HeaderValue, Method};

use crate::etag::EntityTag;
use crate::syntax::split_list;

/// The value of If-Match or If-None-Match: `"*" / #entity-tag` (RFC 9110 §13.1.1, §13.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntityTagCondition {
    /// `*`: any current representation.
    Any,
    /// A list of one or more entity tags.
    Tags(Vec<EntityTag>),
    /// A field that is neither `*` nor a list of entity tags.
    Malformed,
}

impl EntityTagCondition {
    /// Parses every field line of the header into one condition (lines combine as a list,
    /// RFC 9110 §5.3). `None` when the header is absent.
    pub fn from_headers(headers: &HeaderMap, name: header::HeaderName) -> Option<Self> {
        let mut lines = headers.get_all(name).iter().peekable();
        lines.peek()?;
        Some(Self::parse_lines(lines.map(HeaderValue::as_bytes)))
    }

    /// Parses one field value.
    pub fn parse(value: &[u8]) -> Self {
        Self::parse_lines(std::iter::once(value))
    }

    fn parse_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut tags = Vec::new();
        let mut any = false;
        for member in lines.flat_map(split_list) {
            if member == b"*" {
                any = true;
            } else {
                match EntityTag::parse(member) {
                    Ok(tag) => tags.push(tag),
                    Err(_) => return Self::Malformed,
                }
            }
        }
        match (any, tags.is_empty()) {
            // "*" is only valid on its own.
            (true, true) => Self::Any,
            (false, false) => Self::Tags(tags),
            _ => Self::Malformed,
        }
    }
}

/// The request's preconditions, parsed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// If-Match (RFC 9110 §13.1.1).
    pub if_match: Option<EntityTagCondition>,
    /// If-None-Match (RFC 9110 §13.1.2).
    pub if_none_match: Option<EntityTagCondition>,
    /// If-Modified-Since (RFC 9110 §13.1.3); `None` also when invalid, which §13.1.3 says to
    /// ignore.
    pub if_modified_since: Option<SystemTime>,
    /// If-Unmodified-Since (RFC 9110 §13.1.4); `None` also when invalid (ignored, §13.1.4).
    pub if_unmodified_since: Option<SystemTime>,
}

/// The validators of the selected representation as it is now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Validators<'a> {
    /// Whether a current representation exists (for `*` and for 404 targets).
    pub exists: bool,
    /// Its entity tag, if it has one.
    pub etag: Option<&'a EntityTag>,
    /// Its modification time, if it has one.
    pub last_modified: Option<SystemTime>,
}

impl<'a> Validators<'a> {
    /// An existing representation with the given validators.
    pub fn new(etag: Option<&'a EntityTag>, last_modified: Option<SystemTime>) -> Self {
        Self {
            exists: true,
            etag,
            last_modified,
        }
    }

    /// No current representation (the target does not exist).
    pub fn none() -> Self {
        Self::default()
    }
}

/// What the preconditions decide (RFC 9110 §13.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Perform the method (and then consider Range for a GET).
    Proceed,
    /// 304 Not Modified: the client's stored representation is current (GET/HEAD only).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Parses an HTTP-date from exactly one field line: §13.1.3 and §13.1.4 ignore a field with
/// more than one member, and an invalid date.
fn single_http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    crate::syntax::parse_http_date(first.as_bytes())
}

/// Truncates to whole seconds: HTTP-dates have one-second resolution (RFC 9110 §5.6.7), so a
/// modification time is compared at that resolution.
pub fn to_http_date_resolution(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

impl Preconditions {
    /// Reads the four precondition fields of a request.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_match: EntityTagCondition::from_headers(headers, header::IF_MATCH),
            if_none_match: EntityTagCondition::from_headers(headers, header::IF_NONE_MATCH),
            if_modified_since: single_http_date(headers, header::IF_MODIFIED_SINCE),
            if_unmodified_since: single_http_date(headers, header::IF_UNMODIFIED_SINCE),
        }
    }

    /// Whether the request carries any precondition at all.
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// Evaluates the preconditions in the order of RFC 9110 §13.2.2.
    pub fn evaluate(&self, method: &Method, current: &Validators<'_>) -> Precondition {
        let get_or_head = method == Method::GET || method == Method::HEAD;
        // Step 1: If-Match; step 2: If-Unmodified-Since only when If-Match is absent.
        if let Some(condition) = &self.if_match {
            if !if_match_passes(condition, current) {
                return Precondition::Failed;
            }
        } else if let Some(since) = self.if_unmodified_since {
            if !if_unmodified_since_passes(since, current) {
                return Precondition::Failed;
            }
        }
        // Step 3: If-None-Match; step 4: If-Modified-Since only when If-None-Match is absent,
        // and only for GET and HEAD.
        if let Some(condition) = &self.if_none_match {
            if !if_none_match_passes(condition, current) {
                return if get_or_head {
                    Precondition::NotModified
                } else {
                    Precondition::Failed
                };
            }
        } else if let (true, Some(since)) = (get_or_head, self.if_modified_since) {
            if !if_modified_since_passes(since, current) {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }
}

/// RFC 9110 §13.1.1: `*` is true if a current representation exists; a list is true if any
/// member matches the current entity tag by **strong** comparison.
fn if_match_passes(condition: &EntityTagCondition, current: &Validators<'_>) -> bool {
    match condition {
        EntityTagCondition::Any => current.exists,
        EntityTagCondition::Tags(tags) => {
            current.exists
                && current
                    .etag
                    .is_some_and(|etag| tags.iter().any(|t| t.strong_eq(etag)))
        }
        EntityTagCondition::Malformed => false,
    }
}

/// RFC 9110 §13.1.2: `*` is false if a current representation exists; a list is false if any
/// member matches the current entity tag by **weak** comparison.
fn if_none_match_passes(condition: &EntityTagCondition, current: &Validators<'_>) -> bool {
    match condition {
        EntityTagCondition::Any => !current.exists,
        EntityTagCondition::Tags(tags) => {
            !(current.exists
                && current
                    .etag
                    .is_some_and(|etag| tags.iter().any(|t| t.weak_eq(etag))))
        }
        EntityTagCondition::Malformed => true,
    }
}

/// RFC 9110 §13.1.3: false if the representation has not been modified since the date. Ignored
/// (true) when the resource has no modification date.
fn if_modified_since_passes(since: SystemTime, current: &Validators<'_>) -> bool {
    match current.last_modified {
        Some(modified) if current.exists => to_http_date_resolution(modified) > since,
        _ => true,
    }
}

/// RFC 9110 §13.1.4: true if the representation has not been modified since the date. Ignored
/// (true) when the resource has no modification date.
fn if_unmodified_since_passes(since: SystemTime, current: &Validators<'_>) -> bool {
    match current.last_modified {
        Some(modified) if current.exists => to_http_date_resolution(modified) <= since,
        _ => true,
    }
}

/// The `Last-Modified` value for a modification time, at HTTP-date resolution.
pub fn last_modified_value(modified: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(modified))
        .expect("an HTTP-date is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn lm() -> SystemTime {
        httpdate::parse_http_date(LM).unwrap()
    }

    fn etag() -> EntityTag {
        EntityTag::strong("v1").unwrap()
    }

    fn eval(method: Method, headers: &[(&str, &str)]) -> Precondition {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let tag = etag();
        Preconditions::from_headers(&map)
            .evaluate(&method, &Validators::new(Some(&tag), Some(lm())))
    }

    use Precondition::{Failed, NotModified, Proceed};

    #[test]
    fn last_modified_value_is_an_http_date() {
        assert_eq!(last_modified_value(lm()), LM);
        // Sub-second parts are dropped: HTTP-dates have one-second resolution.
        assert_eq!(last_modified_value(lm() + Duration::from_millis(999)), LM);
    }

    #[test]
    fn no_preconditions_proceed() {
        assert_eq!(eval(Method::GET, &[]), Proceed);
        assert_eq!(eval(Method::PUT, &[]), Proceed);
    }

    #[test]
    fn if_none_match_table() {
        // RFC 9110 §13.1.2: weak comparison; a match means 304 for GET/HEAD, 412 otherwise.
        let cases = [
            (Method::GET, "\"v1\"", NotModified),
            (Method::HEAD, "\"v1\"", NotModified),
            (Method::GET, "W/\"v1\"", NotModified),
            (Method::GET, "\"v0\", \"v1\"", NotModified),
            (Method::GET, "\"v0\",\"v2\"", Proceed),
            (Method::GET, "*", NotModified),
            (Method::PUT, "\"v1\"", Failed),
            (Method::POST, "*", Failed),
            (Method::DELETE, "W/\"v1\"", Failed),
            (Method::PUT, "\"v0\"", Proceed),
            (Method::GET, "v1", Proceed),
            (Method::GET, "\"v1", Proceed),
            (Method::GET, "*, \"v1\"", Proceed),
            (Method::GET, " , \"v1\" ,", NotModified),
        ];
        for (method, inm, expected) in cases {
            assert_eq!(
                eval(method.clone(), &[("if-none-match", inm)]),
                expected,
                "{method} {inm}"
            );
        }
    }

    #[test]
    fn if_none_match_lines_combine() {
        // RFC 9110 §5.3: several field lines are one comma-separated list.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-none-match", "\"a\""), ("if-none-match", "\"v1\"")]
            ),
            NotModified
        );
    }

    #[test]
    fn if_match_table() {
        // RFC 9110 §13.1.1: strong comparison; false means 412 whatever the method.
        let cases = [
            (Method::PUT, "\"v1\"", Proceed),
            (Method::PUT, "W/\"v1\"", Failed),
            (Method::PUT, "\"v0\"", Failed),
            (Method::PUT, "\"v0\", \"v1\"", Proceed),
            (Method::PUT, "*", Proceed),
            (Method::GET, "\"v0\"", Failed),
            (Method::GET, "\"v1\"", Proceed),
            (Method::PUT, "garbage", Failed),
        ];
        for (method, im, expected) in cases {
            assert_eq!(
                eval(method.clone(), &[("if-match", im)]),
                expected,
                "{method} {im}"
            );
        }
    }

    #[test]
    fn if_match_star_fails_without_a_current_representation() {
        let pre = Preconditions {
            if_match: Some(EntityTagCondition::Any),
            ..Default::default()
        };
        assert_eq!(pre.evaluate(&Method::PUT, &Validators::none()), Failed);
        let pre = Preconditions {
            if_none_match: Some(EntityTagCondition::Any),
            ..Default::default()
        };
        // RFC 9110 §13.1.2: If-None-Match: * lets a PUT create only when nothing exists.
        assert_eq!(pre.evaluate(&Method::PUT, &Validators::none()), Proceed);
    }

    #[test]
    fn if_match_list_fails_for_a_representation_without_an_etag() {
        let pre = Preconditions::from_headers(&headers(&[("if-match", "\"v1\"")]));
        assert_eq!(
            pre.evaluate(&Method::PUT, &Validators::new(None, Some(lm()))),
            Failed
        );
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

    #[test]
    fn if_modified_since_table() {
        // RFC 9110 §13.1.3: 304 when not modified since; GET/HEAD only; invalid dates ignored.
        let cases = [
            (Method::GET, LM, NotModified),
            (Method::GET, AFTER, NotModified),
            (Method::GET, BEFORE, Proceed),
            (Method::HEAD, LM, NotModified),
            (Method::POST, LM, Proceed),
            (Method::PUT, AFTER, Proceed),
            (Method::GET, "yesterday", Proceed),
            (Method::GET, "Sunday, 06-Nov-94 08:49:37 GMT", NotModified), // RFC 850 form
            (Method::GET, "Sun Nov  6 08:49:37 1994", NotModified),       // asctime form
        ];
        for (method, ims, expected) in cases {
            assert_eq!(
                eval(method.clone(), &[("if-modified-since", ims)]),
                expected,
                "{method} {ims}"
            );
        }
    }

    #[test]
    fn if_modified_since_compares_at_one_second_resolution() {
        let tag = etag();
        let modified = lm() + Duration::from_millis(900);
        let pre = Preconditions::from_headers(&headers(&[("if-modified-since", LM)]));
        assert_eq!(
            pre.evaluate(&Method::GET, &Validators::new(Some(&tag), Some(modified))),
            NotModified
        );
    }

    #[test]
    fn if_modified_since_with_two_lines_is_ignored() {
        assert_eq!(
            eval(
                Method::GET,
                &[("if-modified-since", LM), ("if-modified-since", LM)]
            ),
            Proceed
        );
    }

    #[test]
    fn if_modified_since_is_ignored_without_a_modification_date() {
        let tag = etag();
        let pre = Preconditions::from_headers(&headers(&[("if-modified-since", AFTER)]));
        assert_eq!(
            pre.evaluate(&Method::GET, &Validators::new(Some(&tag), None)),
            Proceed
        );
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        // RFC 9110 §13.1.3: a recipient MUST ignore If-Modified-Since if the request contains
        // If-None-Match.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-none-match", "\"v0\""), ("if-modified-since", AFTER)]
            ),
            Proceed
        );
        assert_eq!(
            eval(
                Method::GET,
                &[("if-none-match", "\"v1\""), ("if-modified-since", BEFORE)]
            ),
            NotModified
        );
    }

    #[test]
    fn if_unmodified_since_table() {
        // RFC 9110 §13.1.4: 412 when modified after the date; any method; invalid ignored.
        let cases = [
            (Method::PUT, LM, Proceed),
            (Method::PUT, AFTER, Proceed),
            (Method::PUT, BEFORE, Failed),
            (Method::GET, BEFORE, Failed),
            (Method::PUT, "not a date", Proceed),
        ];
        for (method, ius, expected) in cases {
            assert_eq!(
                eval(method.clone(), &[("if-unmodified-since", ius)]),
                expected,
                "{method} {ius}"
            );
        }
    }

    #[test]
    fn if_match_takes_precedence_over_if_unmodified_since() {
        // RFC 9110 §13.2.2 step 2: If-Unmodified-Since only when If-Match is absent.
        assert_eq!(
            eval(
                Method::PUT,
                &[("if-match", "\"v1\""), ("if-unmodified-since", BEFORE)]
            ),
            Proceed
        );
    }

    #[test]
    fn if_match_is_evaluated_before_if_none_match() {
        // RFC 9110 §13.2.2: a failed If-Match is 412 even when If-None-Match would be 304.
        assert_eq!(
            eval(
                Method::GET,
                &[("if-match", "\"v0\""), ("if-none-match", "\"v1\"")]
            ),
            Failed
        );
        assert_eq!(
            eval(
                Method::GET,
                &[("if-match", "\"v1\""), ("if-none-match", "\"v1\"")]
            ),
            NotModified
        );
    }

    #[test]
    fn if_unmodified_since_failure_precedes_if_none_match() {
        assert_eq!(
            eval(
                Method::GET,
                &[("if-unmodified-since", BEFORE), ("if-none-match", "\"v1\"")]
            ),
            Failed
        );
    }

    #[test]
    fn condition_parse_of_single_values() {
        assert_eq!(EntityTagCondition::parse(b"*"), EntityTagCondition::Any);
        assert_eq!(
            EntityTagCondition::parse(b"\"a\", W/\"b\"").clone(),
            EntityTagCondition::Tags(vec![
                EntityTag::strong("a").unwrap(),
                EntityTag::weak("b").unwrap(),
            ])
        );
        assert_eq!(
            EntityTagCondition::parse(b""),
            EntityTagCondition::Malformed
        );
        assert_eq!(
            EntityTagCondition::parse(b"\x01"),
            EntityTagCondition::Malformed
        );
    }

    #[test]
    fn empty_preconditions_are_empty() {
        assert!(Preconditions::from_headers(&HeaderMap::new()).is_empty());
        assert!(!Preconditions::from_headers(&headers(&[("if-match", "*")])).is_empty());
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::GET),
            Just(Method::HEAD),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::DELETE)
        ]
    }

    proptest! {
        #[test]
        fn prop_not_modified_only_for_get_and_head(m in method(), inm in "[ -~]{0,20}", ims in 0u64..2_000_000_000) {
            let mut map = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&inm) { map.insert(header::IF_NONE_MATCH, v); }
            let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(ims));
            map.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_str(&date).unwrap());
            let tag = etag();
            let outcome = Preconditions::from_headers(&map).evaluate(&m, &Validators::new(Some(&tag), Some(lm())));
            if outcome == NotModified {
                prop_assert!(m == Method::GET || m == Method::HEAD);
            }
        }

        #[test]
        fn prop_matching_etag_is_never_sent_again(m in method(), opaque in "[a-z0-9]{1,10}", weak: bool) {
            // A client holding the current tag never gets the full representation on GET/HEAD
            // and never gets a non-safe method performed past If-None-Match.
            let current = EntityTag::strong(opaque.clone()).unwrap();
            let held = if weak { EntityTag::weak(opaque) } else { EntityTag::strong(opaque) }.unwrap();
            let mut map = HeaderMap::new();
            map.insert(header::IF_NONE_MATCH, held.to_header_value());
            let outcome = Preconditions::from_headers(&map).evaluate(&m, &Validators::new(Some(&current), None));
            prop_assert_ne!(outcome, Proceed);
        }

        #[test]
        fn prop_if_match_requires_strong_equality(a in "[a-z]{1,4}", b in "[a-z]{1,4}", weak: bool) {
            let current = EntityTag::strong(a.clone()).unwrap();
            let held = if weak { EntityTag::weak(b.clone()) } else { EntityTag::strong(b.clone()) }.unwrap();
            let mut map = HeaderMap::new();
            map.insert(header::IF_MATCH, held.to_header_value());
            let outcome = Preconditions::from_headers(&map).evaluate(&Method::PUT, &Validators::new(Some(&current), None));
            prop_assert_eq!(outcome == Proceed, !weak && a == b);
        }
    }
}
