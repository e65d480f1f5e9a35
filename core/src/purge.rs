//! Purging the edge: how the origin tells the edge to forget responses it stored, when what
//! was public stops being public (a camera turned private). Media is stored by the edge for a
//! year without asking again, so this is the only way a stored copy stops being served.
//!
//! `POST /.well-known/timelapser/purge` to the edge, `Authorization: Bearer <purge token>`,
//! with a JSON body `{"paths": ["/media/images/<sha256>.jpg", ...]}` (at most
//! [`MAX_PATHS`] paths, each a path of this site without a query); the edge answers
//! `{"purged": <how many were stored>}`. The edge holds only the SHA-256 of the token
//! (`PURGE_TOKEN_SHA256`), compared in constant time, so its configuration opens nothing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Where the edge takes purges (never forwarded to the origin).
pub const PATH: &str = "/.well-known/timelapser/purge";

/// The most paths one purge names.
pub const MAX_PATHS: usize = 1000;

/// The longest path a purge may name.
pub const MAX_PATH_LEN: usize = 2048;

/// What a purge asks the edge to forget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Paths of this site, as the edge stores them (media without a query).
    pub paths: Vec<String>,
}

/// What the edge answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// How many of the paths were stored (and are no longer).
    pub purged: usize,
}

impl PurgeRequest {
    /// Parses and checks a purge body; the error says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let request: PurgeRequest = serde_json::from_slice(body)
            .map_err(|e| format!("expected {{\"paths\": [\"/...\", ...]}}: {e}"))?;
        if request.paths.len() > MAX_PATHS {
            return Err(format!("a purge names at most {MAX_PATHS} paths"));
        }
        if let Some(bad) = request.paths.iter().find(|p| !is_purgeable(p)) {
            return Err(format!(
                "{bad:?} is not a path of this site (it starts with / and has no query or fragment)"
            ));
        }
        Ok(request)
    }
}

/// A path a purge may name: absolute, no query or fragment, no control characters, bounded.
pub fn is_purgeable(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_PATH_LEN
        && !path.contains(['?', '#'])
        && !path.chars().any(char::is_control)
}

/// The SHA-256 of a token, hex: what the edge is configured with.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `presented` is the token whose SHA-256 is `expected_sha256` (hex, either case),
/// compared in constant time.
pub fn token_matches(presented: &str, expected_sha256: &str) -> bool {
    let expected = expected_sha256.trim().to_ascii_lowercase();
    let actual = token_sha256(presented);
    expected.len() == actual.len() && bool::from(actual.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_purge_names_paths_of_this_site_only() {
        let ok = PurgeRequest::parse(br#"{"paths": ["/media/images/a.jpg", "/cameras/2"]}"#);
        assert_eq!(ok.unwrap().paths.len(), 2);
        for bad in [
            &br#"{"paths": ["https://elsewhere.example/x"]}"#[..],
            br#"{"paths": ["//elsewhere.example/x"]}"#,
            br#"{"paths": ["/api/cameras?x=1"]}"#,
            br#"{"paths": ["/a\nb"]}"#,
            br#"{"paths": "/x"}"#,
            br#"{"paths": [], "all": true}"#,
            b"not json",
        ] {
            assert!(
                PurgeRequest::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = serde_json::to_vec(&PurgeRequest {
            paths: vec!["/x".into(); MAX_PATHS + 1],
        })
        .unwrap();
        assert!(PurgeRequest::parse(&many).is_err());
    }

    #[test]
    fn the_token_is_checked_against_its_hash() {
        let hash = token_sha256("purge-token-0123456789");
        assert_eq!(hash.len(), 64);
        assert!(token_matches("purge-token-0123456789", &hash));
        assert!(token_matches(
            "purge-token-0123456789",
            &hash.to_uppercase()
        ));
        assert!(!token_matches("purge-token-012345678", &hash));
        assert!(!token_matches("purge-token-0123456789", ""));
    }
}
