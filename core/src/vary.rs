//! Secondary cache keys (RFC 9111 §4.1): a response with `Vary` was selected by the request
//! fields it names, so a cache stores it per combination of those fields' values and reuses it
//! only for a request whose values match. `Vary: *` matches no request.
//!
//! Values are compared after the normalisations §4.1 allows: the lines of a field are combined
//! into one list (RFC 9110 §5.3), whitespace around list members is dropped, and a field that is
//! absent matches only absence (an empty value is not absence).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::syntax::split_list;

/// What a response's `Vary` says its selection depended on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vary {
    /// Nothing: any request for the URI matches.
    Nothing,
    /// These request fields (lower-case, sorted, each once).
    Fields(Vec<HeaderName>),
    /// `*`: something outside the request fields; no request matches (§4.1).
    Anything,
}

impl Vary {
    /// Reads every `Vary` line of a response. Members that are not field names are ignored.
    pub fn of(response_headers: &HeaderMap) -> Self {
        let mut names = Vec::new();
        for line in response_headers.get_all(header::VARY) {
            for member in split_list(line.as_bytes()) {
                if member == b"*" {
                    return Vary::Anything;
                }
                if let Ok(name) = HeaderName::from_bytes(member) {
                    names.push(name);
                }
            }
        }
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        if names.is_empty() {
            Vary::Nothing
        } else {
            Vary::Fields(names)
        }
    }

    /// The field names as one `Vary` value (to keep beside a stored response); `None` for
    /// [`Vary::Nothing`].
    pub fn to_header_value(&self) -> Option<HeaderValue> {
        match self {
            Vary::Nothing => None,
            Vary::Anything => Some(HeaderValue::from_static("*")),
            Vary::Fields(names) => {
                let joined = names
                    .iter()
                    .map(HeaderName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                HeaderValue::from_str(&joined).ok()
            }
        }
    }

    /// The secondary key of a request: a digest of the normalised values of the fields this
    /// response varies on (the empty string when it varies on nothing). Two requests match
    /// exactly when their keys are equal. `None` for [`Vary::Anything`], which nothing matches.
    pub fn secondary_key(&self, request_headers: &HeaderMap) -> Option<String> {
        let names = match self {
            Vary::Nothing => return Some(String::new()),
            Vary::Anything => return None,
            Vary::Fields(names) => names,
        };
        let mut digest = Sha256::new();
        for name in names {
            digest.update(name.as_str().as_bytes());
            let mut lines = request_headers.get_all(name).iter().peekable();
            if lines.peek().is_none() {
                // Absent differs from every value, the empty one included.
                digest.update(b"\0absent\0");
                continue;
            }
            digest.update(b":");
            let mut first = true;
            for line in lines {
                for member in split_list(line.as_bytes()) {
                    if !std::mem::take(&mut first) {
                        digest.update(b",");
                    }
                    digest.update(member);
                }
            }
            digest.update(b"\0");
        }
        Some(format!("{:x}", digest.finalize()))
    }

    /// A name for the variant of the response stored for `primary` (its URL's cache key) that
    /// a request selects, unique to `generation` (which the cache changes whenever it forgets
    /// the URL, so older variants are never found again); `None` for [`Vary::Anything`].
    pub fn variant_name(
        &self,
        primary: &str,
        generation: &str,
        request_headers: &HeaderMap,
    ) -> Option<String> {
        let secondary = self.secondary_key(request_headers)?;
        let mut digest = Sha256::new();
        for part in [primary, generation, &secondary] {
            digest.update(part.as_bytes());
            digest.update(b"\0");
        }
        Some(format!("{:x}", digest.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn key(vary: &[(&str, &str)], request: &[(&str, &str)]) -> Option<String> {
        Vary::of(&headers(vary)).secondary_key(&headers(request))
    }

    #[test]
    fn rfc9111_4_1_vary_names_are_case_insensitive_sorted_and_combined() {
        let vary = Vary::of(&headers(&[
            ("vary", "Accept-Language, accept"),
            ("vary", "ACCEPT"),
        ]));
        assert_eq!(
            vary,
            Vary::Fields(vec![header::ACCEPT, header::ACCEPT_LANGUAGE])
        );
        assert_eq!(vary.to_header_value().unwrap(), "accept, accept-language");
        assert_eq!(Vary::of(&headers(&[("vary", "")])), Vary::Nothing);
        assert_eq!(
            Vary::of(&headers(&[])).secondary_key(&headers(&[])),
            Some(String::new())
        );
    }

    #[test]
    fn rfc9111_4_1_requests_match_on_the_selecting_fields_only() {
        let vary = [("vary", "accept-language")];
        let fr = key(&vary, &[("accept-language", "fr"), ("accept", "a")]);
        assert_eq!(
            fr,
            key(&vary, &[("accept-language", "fr"), ("accept", "b")])
        );
        assert_ne!(fr, key(&vary, &[("accept-language", "de")]));
        // Normalised: lines combined, whitespace around members dropped.
        let two = key(&vary, &[("accept-language", "fr, de")]);
        assert_eq!(
            two,
            key(
                &vary,
                &[("accept-language", "fr"), ("accept-language", "de")]
            )
        );
        assert_eq!(two, key(&vary, &[("accept-language", "fr ,de")]));
        // Absent matches only absent; empty is a value.
        let absent = key(&vary, &[]);
        assert_ne!(absent, key(&vary, &[("accept-language", "")]));
        assert_ne!(absent, fr);
        // The order of the names in Vary does not matter.
        let request = [("a", "1"), ("b", "2")];
        assert_eq!(
            key(&[("vary", "a, b")], &request),
            key(&[("vary", "b, a")], &request)
        );
        // A value cannot pose as another field's.
        assert_ne!(
            key(&[("vary", "a, b")], &[("a", "1,b:2")]),
            key(&[("vary", "a, b")], &[("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn rfc9111_4_1_vary_star_never_matches() {
        assert_eq!(Vary::of(&headers(&[("vary", "accept, *")])), Vary::Anything);
        assert_eq!(key(&[("vary", "*")], &[]), None);
        assert_eq!(Vary::Anything.variant_name("k", "1", &headers(&[])), None);
    }

    #[test]
    fn rfc9111_4_1_variant_names_differ_by_url_generation_and_selecting_fields() {
        let vary = Vary::of(&headers(&[("vary", "accept")]));
        let json = headers(&[("accept", "application/json")]);
        let name = |primary, generation, request: &HeaderMap| {
            vary.variant_name(primary, generation, request).unwrap()
        };
        let first = name("https://a/x", "1", &json);
        assert_eq!(first, name("https://a/x", "1", &json));
        assert_eq!(first.len(), 64);
        assert_ne!(first, name("https://a/y", "1", &json));
        assert_ne!(first, name("https://a/x", "2", &json));
        assert_ne!(
            first,
            name("https://a/x", "1", &headers(&[("accept", "text/html")]))
        );
    }
}
