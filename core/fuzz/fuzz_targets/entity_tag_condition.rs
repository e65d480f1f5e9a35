//! `EntityTagCondition::parse` and `Preconditions::from_headers` / `evaluate` (RFC 9110 §13).
//!
//! Invariants:
//! - `EntityTagCondition::parse` is stable: a `Tags` list formatted back as `t1, t2, ...`
//!   parses to the same list, `Any` comes only from members that are all `*`;
//! - `from_headers` with one If-Match / If-None-Match line agrees with `parse` of that line;
//! - `evaluate` never answers 304 (NotModified) to a PUT, POST or DELETE;
//! - GET and HEAD always get the same answer;
//! - GET fails (412) only through If-Match / If-Unmodified-Since, which do not depend on the
//!   method, so a GET that fails means the PUT fails too;
//! - a request without preconditions proceeds, and a malformed If-Match always fails.
#![no_main]

use arbitrary::Arbitrary;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use timelapser_core::conditional::EntityTagCondition;
use timelapser_core::{EntityTag, Precondition, Preconditions, Validators};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    if_match: Vec<&'a [u8]>,
    if_none_match: Vec<&'a [u8]>,
    if_modified_since: Vec<&'a [u8]>,
    if_unmodified_since: Vec<&'a [u8]>,
    /// Parsed on its own with `EntityTagCondition::parse`.
    condition: &'a [u8],
}

/// Sun, 06 Nov 1994 08:49:37 GMT, the fixed Last-Modified of the validators.
const LM_SECS: u64 = 784_111_777;

fn append(map: &mut HeaderMap, name: HeaderName, values: &[&[u8]]) {
    for value in values {
        // Values a real request could not carry are skipped.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name.clone(), value);
        }
    }
}

fn check_condition(bytes: &[u8]) {
    match EntityTagCondition::parse(bytes) {
        EntityTagCondition::Tags(tags) => {
            assert!(!tags.is_empty(), "Tags is never empty");
            let joined = tags
                .iter()
                .map(EntityTag::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            assert_eq!(
                EntityTagCondition::parse(joined.as_bytes()),
                EntityTagCondition::Tags(tags),
                "formatted list {joined:?} must parse to the same tags"
            );
        }
        EntityTagCondition::Any => {
            // Every non-empty member is `*`.
            assert!(bytes.contains(&b'*'));
        }
        EntityTagCondition::Malformed => {}
    }
}

fuzz_target!(|input: Input<'_>| {
    check_condition(input.condition);

    let mut headers = HeaderMap::new();
    append(&mut headers, header::IF_MATCH, &input.if_match);
    append(&mut headers, header::IF_NONE_MATCH, &input.if_none_match);
    append(
        &mut headers,
        header::IF_MODIFIED_SINCE,
        &input.if_modified_since,
    );
    append(
        &mut headers,
        header::IF_UNMODIFIED_SINCE,
        &input.if_unmodified_since,
    );
    for line in headers.get_all(header::IF_MATCH) {
        check_condition(line.as_bytes());
    }

    let pre = Preconditions::from_headers(&headers);
    for (name, parsed) in [
        (header::IF_MATCH, &pre.if_match),
        (header::IF_NONE_MATCH, &pre.if_none_match),
    ] {
        let lines: Vec<_> = headers.get_all(&name).iter().collect();
        match lines.as_slice() {
            [] => assert!(parsed.is_none()),
            [one] => assert_eq!(
                parsed.as_ref(),
                Some(&EntityTagCondition::parse(one.as_bytes()))
            ),
            _ => assert!(parsed.is_some()),
        }
    }

    let strong = EntityTag::strong("v1").unwrap();
    let weak = EntityTag::weak("v1").unwrap();
    let lm =
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(LM_SECS * 1000 + 900);
    let validators = [
        Validators::new(Some(&strong), Some(lm)),
        Validators::new(Some(&weak), Some(lm)),
        Validators::new(Some(&strong), None),
        Validators::new(None, Some(lm)),
        Validators::none(),
    ];
    for current in &validators {
        let get = pre.evaluate(&Method::GET, current);
        let head = pre.evaluate(&Method::HEAD, current);
        assert_eq!(get, head, "GET and HEAD must agree");
        for method in [Method::PUT, Method::POST, Method::DELETE] {
            let put = pre.evaluate(&method, current);
            assert_ne!(
                put,
                Precondition::NotModified,
                "{method} answered 304 for {pre:?} against {current:?}"
            );
            if get == Precondition::Failed {
                assert_eq!(put, Precondition::Failed, "{method} against {current:?}");
            }
        }
        if pre.is_empty() {
            assert_eq!(get, Precondition::Proceed);
        }
        if pre.if_match == Some(EntityTagCondition::Malformed) {
            assert_eq!(get, Precondition::Failed);
        }
    }
});
