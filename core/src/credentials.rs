//! What makes a request someone's: `Authorization`, or one of the system's own cookies (the
//! console's session, the sign-in form's). The edge never stores an answer to a request with
//! the system's cookies nor answers one from storage; one with Authorization is stored only when
//! the response allows it (RFC 9111 §3.5, `cache_control::shared_storability`). Any other
//! cookie (a site's analytics, another app on the same domain) says nothing about who may see a
//! public response, so it neither bypasses the cache nor reaches the origin on a request whose
//! answer may be stored.

use http::{header, HeaderMap};

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "tl_session";

/// The sign-in form's double-submit cookie.
pub const SIGN_IN_COOKIE: &str = "tl_sign_in";

/// The system's own cookies.
pub const COOKIES: [&str; 2] = [SESSION_COOKIE, SIGN_IN_COOKIE];

/// The value of the request's cookie `name` (`Cookie: a=1; b=2`, RFC 6265 §5.4), if set and
/// not empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(n, v)| (n.trim() == name && !v.trim().is_empty()).then(|| v.trim()))
}

/// The bearer token of a request, if any (`Authorization: Bearer <token>`, scheme
/// case-insensitive as RFC 9110 §11.1 says).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request carries one of the system's own cookies ([`COOKIES`]): a signed-in
/// person's session or sign-in form.
pub fn carries_session(headers: &HeaderMap) -> bool {
    COOKIES.iter().any(|name| cookie(headers, name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    fn with_cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = with_cookies(&["a=1; tl_session=abc", "b=2"]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "tl_sess"), None);
        assert_eq!(
            cookie(&with_cookies(&["tl_session="]), SESSION_COOKIE),
            None
        );
    }

    #[test]
    fn only_the_systems_cookies_are_a_session() {
        let cases: [(&[&str], bool); 6] = [
            (&[], false),
            (&["_ga=GA1.1.1234; theme=dark"], false),
            (&["tl_session=abc"], true),
            (&["_ga=1; tl_sign_in=xyz"], true),
            (&["xtl_session=abc"], false),
            (&["tl_session="], false),
        ];
        for (cookies, expected) in cases {
            assert_eq!(
                carries_session(&with_cookies(cookies)),
                expected,
                "{cookies:?}"
            );
        }
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(!carries_session(&bearer), "Authorization is no session");
    }
}
