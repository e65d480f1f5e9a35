//! What to answer a GET or HEAD from a representation: the one decision of RFC 9110 §13.2.2
//! (preconditions) and §14 (ranges) that the origin and the edge both carry out.
//!
//! [`answer`] takes the method, the request's fields and the [`Selected`] representation (its
//! fields, validators, length and whether it offers byte ranges) and returns the [`Answer`]:
//! the status, every field to send, and which bytes (none, all, one part, or a problem
//! document). The origin writes that answer from its files and memory, the edge from the
//! Cache API; neither decides anything about 304, 206, 412 or 416 itself.

use std::borrow::Cow;
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use crate::conditional::{last_modified_value, Precondition, Preconditions, Validators};
use crate::etag::EntityTag;
use crate::policy::ContentKind;
use crate::problem::Problem;
use crate::range::{self, ByteRange, RangeResponse};

/// `Accept-Ranges: bytes` (RFC 9110 §14.3).
const BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// The fields a 304 carries when the 200 would have them: RFC 9110 §15.4.5 requires
/// Content-Location, Date, ETag, Vary, Cache-Control and Expires; Last-Modified is the one
/// other field it allows, to guide caches that validate by date.
const NOT_MODIFIED_FIELDS: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::LAST_MODIFIED,
];

/// The representation a request selected, as far as the answer depends on it.
#[derive(Clone, Debug)]
pub struct Selected<'a> {
    /// The fields a 200 carries besides framing (Cache-Control, ETag, Last-Modified,
    /// Content-Type, ...); Content-Length and Content-Range are the answer's to set.
    fields: HeaderMap,
    etag: Option<Cow<'a, EntityTag>>,
    last_modified: Option<SystemTime>,
    length: Option<u64>,
    ranges: bool,
    send_last_modified: bool,
}

impl<'a> Selected<'a> {
    /// A representation of a kind of content: its Cache-Control, and whether it sends
    /// Last-Modified and offers byte ranges, come from the kind's [`crate::policy`].
    pub fn of_kind(kind: ContentKind) -> Self {
        let policy = kind.policy();
        let mut fields = HeaderMap::with_capacity(6);
        fields.insert(header::CACHE_CONTROL, kind.cache_control());
        if policy.ranges {
            fields.insert(header::ACCEPT_RANGES, BYTES);
        }
        Self {
            fields,
            etag: None,
            last_modified: None,
            length: None,
            ranges: policy.ranges,
            send_last_modified: policy.last_modified,
        }
    }

    /// A stored complete response's fields (a shared cache's entry): the validators are read
    /// from them, and byte ranges are answered from it whenever its length is known (RFC 9110
    /// §14.2: a cache holding the whole representation may answer a part of it), unless it is
    /// content-coded (its bytes are then not the ones a range names once decoded) or the origin
    /// said `Accept-Ranges: none`.
    pub fn from_fields(mut fields: HeaderMap, length: Option<u64>) -> Selected<'static> {
        let etag = fields
            .get(header::ETAG)
            .and_then(|v| EntityTag::parse(v.as_bytes()).ok())
            .map(Cow::Owned);
        // RFC 9111 §4.3.2: without Last-Modified, If-Modified-Since is evaluated against the
        // stored response's Date (it was current then); nothing is sent as Last-Modified.
        let last_modified = fields
            .get(header::LAST_MODIFIED)
            .or_else(|| fields.get(header::DATE))
            .and_then(|v| crate::syntax::parse_http_date(v.as_bytes()));
        let coded = fields
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let refused = fields
            .get(header::ACCEPT_RANGES)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"none"));
        let ranges = length.is_some() && !coded && !refused;
        fields.remove(header::CONTENT_LENGTH);

        Selected {
            fields,
            etag,
            last_modified,
            length,
            ranges,
            send_last_modified: true,
        }
    }

    /// Its entity tag.
    pub fn etag(self, etag: &'a EntityTag) -> Self {
        let value = etag.to_header_value();
        self.etag_with_value(etag, value)
    }

    /// Its entity tag, with the field value already made (hot paths keep it).
    pub fn etag_with_value(mut self, etag: &'a EntityTag, value: HeaderValue) -> Self {
        self.fields.insert(header::ETAG, value);
        self.etag = Some(Cow::Borrowed(etag));
        self
    }

    /// Its modification time, sent as Last-Modified (and so If-Modified-Since honoured) when
    /// the kind's policy says so.
    pub fn last_modified(self, modified: SystemTime) -> Self {
        let value = last_modified_value(modified);
        self.last_modified_with_value(modified, value)
    }

    /// Its modification time, with the field value already made.
    pub fn last_modified_with_value(mut self, modified: SystemTime, value: HeaderValue) -> Self {
        if self.send_last_modified {
            self.fields.insert(header::LAST_MODIFIED, value);
            self.last_modified = Some(modified);
        }
        self
    }

    /// Its length in bytes, when known (ranges need it).
    pub fn length(mut self, length: u64) -> Self {
        self.length = Some(length);
        self
    }

    /// Another field the 200 carries (Content-Type, Vary, ...).
    pub fn field(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.fields.insert(name, value);
        self
    }

    /// The fields a 200 would carry.
    pub fn fields(&self) -> &HeaderMap {
        &self.fields
    }

    /// Its validators, for evaluating preconditions.
    pub fn validators(&self) -> Validators<'_> {
        Validators::new(self.etag.as_deref(), self.last_modified)
    }
}

/// Which bytes an answer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// None (304).
    Empty,
    /// The whole representation (200; for HEAD the carrier sends the fields only).
    Whole,
    /// One part of it (206).
    Part(ByteRange),
    /// A problem document instead (412, 416).
    Problem(Problem),
}

/// The answer to a GET or HEAD: status, fields and content.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// Every field to send (framing aside: Content-Length is set where the length is known).
    pub fields: HeaderMap,
    /// Which bytes to send.
    pub content: Content,
}

impl Answer {
    /// A problem document answer (with the fields every problem carries).
    pub fn problem(problem: Problem) -> Self {
        let mut fields = Problem::fields();
        let body_length = problem.to_json().len() as u64;
        fields.insert(header::CONTENT_LENGTH, HeaderValue::from(body_length));
        Self {
            status: problem.status(),
            fields,
            content: Content::Problem(problem),
        }
    }

    /// The number of body bytes this answer sends for a GET.
    pub fn body_length(&self, whole: u64) -> u64 {
        match &self.content {
            Content::Empty => 0,
            Content::Whole => whole,
            Content::Part(part) => part.len(),
            Content::Problem(problem) => problem.to_json().len() as u64,
        }
    }
}

/// The detail of a 412.
pub const PRECONDITION_FAILED: &str =
    "the resource has changed since the validator in the request was obtained";

/// Decides the answer to `method` with the `request`'s fields from `selected`: its
/// preconditions first (RFC 9110 §13.2.2: 304 or 412), then Range (§14.2: 206 or 416, or the
/// whole representation when Range is absent, malformed, of another unit, not matched by
/// If-Range, or not offered by the representation).
pub fn answer(method: &Method, request: &HeaderMap, selected: Selected<'_>) -> Answer {
    let validators = selected.validators();
    match Preconditions::from_headers(request).evaluate(method, &validators) {
        Precondition::NotModified => return not_modified(selected.fields),
        Precondition::Failed => {
            return Answer::problem(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                PRECONDITION_FAILED,
            ))
        }
        Precondition::Proceed => {}
    }
    let range = match (selected.ranges, selected.length) {
        (true, Some(length)) => range::evaluate(method, request, length, &validators),
        _ => RangeResponse::Full,
    };
    let Selected {
        mut fields, length, ..
    } = selected;
    match range {
        RangeResponse::Full => {
            if let Some(length) = length {
                fields.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            Answer {
                status: StatusCode::OK,
                fields,
                content: Content::Whole,
            }
        }
        RangeResponse::Partial(part) => {
            let complete = length.expect("ranges are resolved against a known length");
            fields.insert(header::CONTENT_RANGE, part.content_range(complete));
            fields.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
            Answer {
                status: StatusCode::PARTIAL_CONTENT,
                fields,
                content: Content::Part(part),
            }
        }
        RangeResponse::Unsatisfiable => {
            let complete = length.expect("ranges are resolved against a known length");
            let mut answer = Answer::problem(Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the representation is {complete} bytes long"),
            ));
            answer.fields.insert(
                header::CONTENT_RANGE,
                range::unsatisfied_content_range(complete),
            );
            answer
        }
    }
}

/// A 304 with the fields of RFC 9110 §15.4.5 that the 200 would have carried.
fn not_modified(representation: HeaderMap) -> Answer {
    Answer {
        status: StatusCode::NOT_MODIFIED,
        fields: not_modified_fields(&representation),
        content: Content::Empty,
    }
}

/// The fields of a 200 that its 304 carries (RFC 9110 §15.4.5).
pub fn not_modified_fields(representation: &HeaderMap) -> HeaderMap {
    let mut fields = HeaderMap::with_capacity(NOT_MODIFIED_FIELDS.len());
    for name in NOT_MODIFIED_FIELDS {
        for value in representation.get_all(&name) {
            fields.append(name.clone(), value.clone());
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn media(tag: &EntityTag) -> Selected<'_> {
        Selected::of_kind(ContentKind::ImmutableMedia)
            .etag(tag)
            .last_modified(httpdate::parse_http_date(LM).unwrap())
            .length(100)
            .field(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"))
    }

    fn names(fields: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = fields.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn a_full_answer_carries_every_field_and_the_length() {
        let tag = EntityTag::strong("abc").unwrap();
        let answer = answer(&Method::GET, &HeaderMap::new(), media(&tag));
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.content, Content::Whole);
        assert_eq!(
            names(&answer.fields),
            [
                "accept-ranges",
                "cache-control",
                "content-length",
                "content-type",
                "etag",
                "last-modified"
            ]
        );
        assert_eq!(answer.fields["etag"], "\"abc\"");
        assert_eq!(answer.fields["last-modified"], LM);
        assert_eq!(answer.fields["content-length"], "100");
        assert_eq!(
            answer.fields["cache-control"],
            "public, max-age=31536000, immutable, stale-if-error=86400"
        );
    }

    #[test]
    fn the_table_of_answers() {
        use Content::{Empty, Part, Whole};
        let tag = EntityTag::strong("abc").unwrap();
        let part = |first, last| Part(ByteRange { first, last });
        type Fields<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Fields, u16, Content); 10] = [
            (&[], 200, Whole),
            (&[("if-none-match", "\"abc\"")], 304, Empty),
            (&[("if-none-match", "W/\"abc\"")], 304, Empty),
            (&[("if-modified-since", LM)], 304, Empty),
            (&[("range", "bytes=0-9")], 206, part(0, 9)),
            (&[("range", "bytes=-10")], 206, part(90, 99)),
            (
                &[("range", "bytes=0-9"), ("if-range", "\"old\"")],
                200,
                Whole,
            ),
            (
                &[("range", "bytes=0-9"), ("if-range", "\"abc\"")],
                206,
                part(0, 9),
            ),
            (&[("range", "bytes=9-0")], 200, Whole),
            (&[("range", "items=0-9")], 200, Whole),
        ];
        for (fields, status, content) in cases {
            let got = answer(&Method::GET, &request(fields), media(&tag));
            assert_eq!(
                (got.status.as_u16(), got.content),
                (status, content),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn a_part_says_which_bytes_of_how_many() {
        let tag = EntityTag::strong("abc").unwrap();
        let got = answer(
            &Method::GET,
            &request(&[("range", "bytes=10-19")]),
            media(&tag),
        );
        assert_eq!(got.fields["content-range"], "bytes 10-19/100");
        assert_eq!(got.fields["content-length"], "10");
        assert_eq!(got.fields["accept-ranges"], "bytes");
    }

    #[test]
    fn a_304_carries_the_fields_of_rfc_9110_15_4_5_and_no_others() {
        let tag = EntityTag::strong("abc").unwrap();
        let got = answer(
            &Method::GET,
            &request(&[("if-none-match", "\"abc\"")]),
            media(&tag).field(header::VARY, HeaderValue::from_static("accept")),
        );
        assert_eq!(got.status, StatusCode::NOT_MODIFIED);
        assert_eq!(
            names(&got.fields),
            ["cache-control", "etag", "last-modified", "vary"]
        );
    }

    #[test]
    fn failed_preconditions_and_unsatisfiable_ranges_are_problems() {
        let tag = EntityTag::strong("abc").unwrap();
        let got = answer(
            &Method::GET,
            &request(&[("if-match", "\"zzz\"")]),
            media(&tag),
        );
        assert_eq!(got.status, StatusCode::PRECONDITION_FAILED);
        assert!(matches!(got.content, Content::Problem(ref p) if p.status == 412));
        assert_eq!(got.fields["content-type"], "application/problem+json");
        assert_eq!(got.fields["cache-control"], "no-store");
        let got = answer(
            &Method::GET,
            &request(&[("range", "bytes=100-")]),
            media(&tag),
        );
        assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(got.fields["content-range"], "bytes */100");
        let body_length = got.body_length(100);
        assert_eq!(
            got.fields["content-length"],
            body_length.to_string().as_str()
        );
    }

    #[test]
    fn kinds_without_ranges_or_dates_ignore_them() {
        let tag = EntityTag::strong("v1").unwrap();
        let json = || {
            Selected::of_kind(ContentKind::Collection)
                .etag(&tag)
                .last_modified(httpdate::parse_http_date(LM).unwrap())
                .length(10)
        };
        let got = answer(&Method::GET, &request(&[("range", "bytes=0-1")]), json());
        assert_eq!((got.status, got.content), (StatusCode::OK, Content::Whole));
        assert!(got.fields.get("last-modified").is_none());
        assert!(got.fields.get("accept-ranges").is_none());
        // If-Modified-Since means nothing without Last-Modified.
        let got = answer(&Method::GET, &request(&[("if-modified-since", LM)]), json());
        assert_eq!(got.status, StatusCode::OK);
        let got = answer(
            &Method::HEAD,
            &request(&[("if-none-match", "\"v1\"")]),
            json(),
        );
        assert_eq!(got.status, StatusCode::NOT_MODIFIED);
        assert_eq!(names(&got.fields), ["cache-control", "etag"]);
    }

    #[test]
    fn stored_fields_answer_as_the_origin_would() {
        let stored = request(&[
            ("etag", "\"abc\""),
            ("last-modified", LM),
            ("accept-ranges", "bytes"),
            ("cache-control", "public, max-age=31536000, immutable"),
            ("content-type", "image/jpeg"),
            ("content-length", "100"),
            ("date", LM),
        ]);
        let ask = |pairs: &[(&str, &str)]| {
            answer(
                &Method::GET,
                &request(pairs),
                Selected::from_fields(stored.clone(), Some(100)),
            )
        };
        assert_eq!(ask(&[]).status, StatusCode::OK);
        assert_eq!(ask(&[]).fields["content-length"], "100");
        let not_modified = ask(&[("if-none-match", "\"abc\"")]);
        assert_eq!(
            names(&not_modified.fields),
            ["cache-control", "date", "etag", "last-modified"]
        );
        assert_eq!(
            ask(&[("if-modified-since", LM)]).status,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            ask(&[("range", "bytes=0-9")]).content,
            Content::Part(ByteRange { first: 0, last: 9 })
        );
        // RFC 9110 §14.2: any stored complete response of known length answers ranges...
        let part = |fields: &[(&str, &str)], length| {
            answer(
                &Method::GET,
                &request(&[("range", "bytes=0-1")]),
                Selected::from_fields(request(fields), length),
            )
            .content
        };
        let json = [("etag", "\"j\"")];
        assert_eq!(
            part(&json, Some(10)),
            Content::Part(ByteRange { first: 0, last: 1 })
        );
        // RFC 9111 §4.3.2: without Last-Modified, If-Modified-Since is judged by Date.
        let dated = |ims: &str| {
            answer(
                &Method::GET,
                &request(&[("if-modified-since", ims)]),
                Selected::from_fields(request(&[("date", LM)]), Some(10)),
            )
        };
        assert_eq!(dated(LM).status, StatusCode::NOT_MODIFIED);
        assert!(dated(LM).fields.get("last-modified").is_none());
        assert_eq!(
            dated("Sat, 01 Jan 2000 00:00:00 GMT").status,
            StatusCode::OK
        );
        // ... but not one of unknown length, a content-coded one, or one the origin refuses.
        assert_eq!(part(&json, None), Content::Whole);
        assert_eq!(
            part(&[("content-encoding", "gzip")], Some(10)),
            Content::Whole
        );
        assert_eq!(part(&[("accept-ranges", "none")], Some(10)), Content::Whole);
    }
}
