//! `cache_control::shared_storability`, `shared_freshness_lifetime`, `current_age` (and the
//! reuse / stale helpers built on them) with arbitrary request and response fields
//! (RFC 9111 §3, §4.2, RFC 5861).
//!
//! Invariants, besides "no panic":
//! - anything but GET is `MethodNotCacheable`;
//! - `Storable` never comes with `no-store` (request or response), `private`, or `Set-Cookie`;
//! - the freshness lifetime is `s-maxage`, else `max-age`, when present (so at most 2^31 s);
//! - `age_value` is at most 2^31 s, and `current_age` is at least the resident time
//!   (`now - response_time`) and at least `age_value`;
//! - `Fresh` only when not `no-cache` and the age is below the lifetime; serving stale is
//!   never allowed when `no-cache`, `must-revalidate`, `proxy-revalidate` or `s-maxage` is
//!   present.
//!
//! Times are kept within ±2^32 s of a fixed instant (~136 years): `current_age` adds
//! `Duration`s, which overflow only for instants hundreds of billions of years apart.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use timelapser_core::cache_control::{
    age_value, current_age, may_serve_stale_if_error, may_serve_stale_while_revalidate,
    shared_freshness_lifetime, shared_reuse, shared_storability, ResponseTiming, Reuse,
    SharedDirectives, Storability, DELTA_SECONDS_MAX,
};
use timelapser_core::CacheControl;

static NAMES: [HeaderName; 11] = [
    header::CACHE_CONTROL,
    HeaderName::from_static("cdn-cache-control"),
    header::AUTHORIZATION,
    header::SET_COOKIE,
    header::VARY,
    header::EXPIRES,
    header::DATE,
    header::AGE,
    header::PRAGMA,
    header::LAST_MODIFIED,
    header::ETAG,
];

#[derive(Arbitrary, Debug)]
struct Field<'a> {
    name: u8,
    value: &'a [u8],
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    status: u16,
    /// Offsets, in seconds, from a fixed instant (2024-01-01T00:00:00Z).
    request_time: i32,
    response_delay: i32,
    resident: i32,
    nanos: u32,
    age: u32,
    request: Vec<Field<'a>>,
    response: Vec<Field<'a>>,
}

const BASE: u64 = 1_704_067_200;

fn at(offset: i64, nanos: u32) -> SystemTime {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(BASE);
    let t = if offset >= 0 {
        base + Duration::from_secs(offset.unsigned_abs())
    } else {
        base - Duration::from_secs(offset.unsigned_abs())
    };
    t + Duration::from_nanos(u64::from(nanos % 1_000_000_000))
}

fn headers(fields: &[Field<'_>]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for field in fields {
        let Some(name) = NAMES.get(usize::from(field.name) % (NAMES.len() + 2)) else {
            // An arbitrary name, from the first bytes of the value.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&field.value[..field.value.len() / 2]),
                HeaderValue::from_bytes(&field.value[field.value.len() / 2..]),
            ) {
                map.append(name, value);
            }
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(field.value) {
            map.append(name.clone(), value);
        }
    }
    map
}

fuzz_target!(|input: Input<'_>| {
    let method = match input.method % 5 {
        0 | 1 => Method::GET,
        2 => Method::HEAD,
        3 => Method::POST,
        _ => Method::PUT,
    };
    let status = StatusCode::from_u16(100 + input.status % 900).unwrap();
    let request = headers(&input.request);
    let response = headers(&input.response);
    let request_cc = CacheControl::from_headers(&request).unwrap_or_default();
    // The directives in force: CDN-Cache-Control's when valid (RFC 9213), else Cache-Control's.
    let directives = SharedDirectives::of(&response);
    let cc = directives.cc.clone();

    let verdict = shared_storability(&method, &request, status, &response);
    if method != Method::GET {
        assert_eq!(verdict, Storability::MethodNotCacheable);
    }
    if verdict == Storability::Storable {
        assert!(
            !request_cc.no_store && !cc.no_store,
            "{verdict:?} with no-store"
        );
        assert!(!directives.private(), "{verdict:?} with private");
        assert!(!response.contains_key(header::SET_COOKIE));
        assert!(status != StatusCode::PARTIAL_CONTENT && status != StatusCode::NOT_MODIFIED);
    }

    let lifetime = shared_freshness_lifetime(status, &response);
    if let Some(explicit) = cc.s_maxage.or(cc.max_age) {
        assert_eq!(lifetime, explicit);
        assert!(lifetime.as_secs() <= DELTA_SECONDS_MAX);
    }

    let request_time = at(i64::from(input.request_time), input.nanos);
    let response_time = at(
        i64::from(input.request_time) + i64::from(input.response_delay),
        input.nanos / 3,
    );
    let now = at(
        i64::from(input.request_time) + i64::from(input.response_delay) + i64::from(input.resident),
        input.nanos / 7,
    );
    let timing = ResponseTiming {
        request_time,
        response_time,
    };
    let declared_age = age_value(&response);
    assert!(declared_age.as_secs() <= DELTA_SECONDS_MAX);
    let age = current_age(&response, timing, now);
    assert!(age >= now.duration_since(response_time).unwrap_or_default());
    assert!(age >= declared_age);

    for age in [
        age,
        Duration::from_secs(u64::from(input.age)),
        Duration::ZERO,
    ] {
        if shared_reuse(status, &response, age) == Reuse::Fresh {
            assert!(!directives.no_cache() && age < lifetime);
        }
        let forbidden = directives.no_cache()
            || cc.must_revalidate
            || cc.proxy_revalidate
            || cc.s_maxage.is_some();
        let swr = may_serve_stale_while_revalidate(status, &response, age);
        let sie = may_serve_stale_if_error(status, &response, age);
        if forbidden {
            assert!(!swr && !sie);
        }
        if swr {
            assert!(cc.stale_while_revalidate.is_some());
        }
        if sie {
            assert!(cc.stale_if_error.is_some());
        }
    }
});
