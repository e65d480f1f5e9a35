//! Bearer tokens: generated at random, stored only as SHA-256 hashes, compared in constant
//! time. Tokens carry 256 bits of entropy, so a fast hash is enough: there is no password to
//! guess, only a hash to leak, and a leaked hash opens nothing.

use std::path::Path;

use anyhow::Context;
use axum::http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db;
use crate::error::{Error, Result};

/// A new random token with a readable prefix (`tl_admin_...`, `tl_cam_...`).
pub fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two stored hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The bearer token of a request, if any (`Authorization: Bearer <token>`, scheme
/// case-insensitive as RFC 9110 §11.1 says).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The admin token, as its hash.
#[derive(Clone)]
pub struct AdminToken {
    hash: String,
}

/// The file in the data directory holding the generated admin token's hash.
const ADMIN_TOKEN_FILE: &str = "admin-token.sha256";

impl AdminToken {
    /// From the configured token, or the one generated on first start (only its hash is kept;
    /// the token itself is returned once so it can be shown to the operator).
    pub fn load_or_generate(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> anyhow::Result<(Self, Option<String>)> {
        if let Some(token) = configured {
            anyhow::ensure!(
                token.len() >= 16,
                "the admin token must be at least 16 characters"
            );
            return Ok((
                Self {
                    hash: hash_token(token),
                },
                None,
            ));
        }
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        if let Ok(stored) = std::fs::read_to_string(&path) {
            let hash = stored.trim().to_owned();
            anyhow::ensure!(
                crate::media::is_sha256_hex(&hash),
                "{} does not hold a SHA-256 hash; delete it to generate a new admin token",
                path.display()
            );
            return Ok((Self { hash }, None));
        }
        let token = generate_token("tl_admin");
        std::fs::write(&path, format!("{}\n", hash_token(&token)))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok((
            Self {
                hash: hash_token(&token),
            },
            Some(token),
        ))
    }

    /// Whether `token` is the admin token.
    pub fn verify(&self, token: &str) -> bool {
        hashes_equal(&hash_token(token), &self.hash)
    }

    /// 401 unless the request carries the admin token; 403 for another valid-looking token.
    pub fn require(&self, headers: &HeaderMap) -> Result<()> {
        match bearer(headers) {
            None => Err(Error::Unauthorized),
            Some(token) if self.verify(token) => Ok(()),
            Some(_) => Err(Error::Unauthorized),
        }
    }
}

/// Authorizes a camera host for camera `camera_id`: 401 without a valid token, 403 with the
/// admin token or another camera's token, 404 when the camera does not exist.
pub async fn require_camera(
    db: &db::Db,
    admin: &AdminToken,
    headers: &HeaderMap,
    camera_id: i64,
) -> Result<()> {
    let token = bearer(headers).ok_or(Error::Unauthorized)?;
    let presented = hash_token(token);
    let mut conn = db.pool().acquire().await?;
    let Some(stored) = db::cameras::token_hash(&mut conn, camera_id).await? else {
        // Do not reveal which cameras exist to requests without a valid token.
        if admin.verify(token)
            || db::cameras::id_by_token_hash(&mut conn, &presented)
                .await?
                .is_some()
        {
            return Err(Error::not_found("camera", camera_id));
        }
        return Err(Error::Unauthorized);
    };
    if hashes_equal(&presented, &stored) {
        return Ok(());
    }
    if admin.verify(token)
        || db::cameras::id_by_token_hash(&mut conn, &presented)
            .await?
            .is_some()
    {
        return Err(Error::Forbidden(format!(
            "this token may not act for camera {camera_id}"
        )));
    }
    Err(Error::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token("tl_cam");
        assert!(a.starts_with("tl_cam_") && a.len() == 7 + 64);
        assert_ne!(a, generate_token("tl_cam"));
        assert!(hashes_equal(&hash_token(&a), &hash_token(&a)));
        assert!(!hashes_equal(&hash_token(&a), &hash_token("x")));
    }

    #[test]
    fn admin_token_is_generated_once_and_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, shown) = AdminToken::load_or_generate(None, dir.path()).unwrap();
        let token = shown.expect("first start shows the token");
        assert!(admin.verify(&token));
        let stored = std::fs::read_to_string(dir.path().join(ADMIN_TOKEN_FILE)).unwrap();
        assert!(!stored.contains(&token));
        let (again, shown) = AdminToken::load_or_generate(None, dir.path()).unwrap();
        assert!(shown.is_none());
        assert!(again.verify(&token));
        assert!(AdminToken::load_or_generate(Some("short"), dir.path()).is_err());
    }
}
