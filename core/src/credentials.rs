//! What makes a request someone's: `Authorization`, or one of the system's own cookies (the
//! console's session, the sign-in form's). A shared cache never stores an answer to such a
//! request nor answers one from storage. Any other cookie (a site's analytics, another app on
//! the same domain) says nothing about who may see a public response, so it neither bypasses
//! the cache nor reaches the origin on a request whose answer may be stored.

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

/// Whether the request carries credentials: `Authorization`, or one of [`COOKIES`].
pub fn carries_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || COOKIES.iter().any(|name| cookie(headers, name).is_some())
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
    fn only_authorization_and_the_systems_cookies_are_credentials() {
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
                carries_credentials(&with_cookies(cookies)),
                expected,
                "{cookies:?}"
            );
        }
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(carries_credentials(&bearer));
    }
}
