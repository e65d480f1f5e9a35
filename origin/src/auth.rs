//! Bearer tokens: generated at random, stored only as SHA-256 hashes, compared in constant
//! time. Tokens carry 256 bits of entropy, so a fast hash is enough: there is no password to
//! guess, only a hash to leak, and a leaked hash opens nothing.
//!
//! Who a request is comes from its head alone ([`Principal::of`]): routes name what they
//! need as an extractor (`routes::auth`), which runs before any body is read.

use std::path::Path;

use anyhow::Context;
use axum::http::{HeaderMap, Method};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use timelapser_core::paths::is_sha256_hex;

use crate::accounts::{self, Role};
use crate::db::{self, Db};
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

pub use timelapser_core::credentials::bearer;

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
                is_sha256_hex(&hash),
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
}

/// Who presented a request's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No token, or one that is nobody's.
    Anonymous,
    /// The admin token.
    Admin,
    /// A camera's token.
    Camera(i64),
    /// A signed-in user (the session cookie; on a state-changing request, with the session's
    /// CSRF token).
    User {
        /// The user's id.
        id: i64,
        /// What the user may do.
        role: Role,
    },
}

/// Whom a read is answered for: everyone (and so, through the edge, every shared cache), or
/// signed-in people (an operator's session or a viewer's, or the admin token), who also see
/// private cameras. A camera's token sees what everyone sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Anyone: only public cameras, and responses a shared cache may store.
    #[default]
    Public,
    /// Signed in: every camera, and responses only the person's browser keeps.
    SignedIn,
}

impl Audience {
    /// Whether this audience may see a camera that is public or not.
    pub fn sees(self, public: bool) -> bool {
        public || self == Audience::SignedIn
    }

    /// The policy a representation is sent with to this audience: core's public kind, or
    /// its signed-in counterpart (never stored by a shared cache).
    pub fn kind(
        self,
        kind: timelapser_core::policy::ContentKind,
    ) -> timelapser_core::policy::ContentKind {
        match self {
            Audience::Public => kind,
            Audience::SignedIn => kind.signed_in(),
        }
    }
}

impl Principal {
    /// Whom this principal's reads are answered for.
    pub fn audience(self) -> Audience {
        match self {
            Principal::Admin | Principal::User { .. } => Audience::SignedIn,
            Principal::Camera(_) | Principal::Anonymous => Audience::Public,
        }
    }

    /// Identifies who made a request: the bearer of its token (one indexed query for a
    /// non-admin token), else the user of its session cookie. A state-changing request made
    /// with a session must carry the session's CSRF token (`X-CSRF-Token`), else 403: a
    /// cookie alone never changes anything.
    pub async fn of(
        db: &Db,
        admin: &AdminToken,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Self> {
        let Some(token) = bearer(headers) else {
            let Some((_, user)) = accounts::signed_in(db, headers).await? else {
                return Ok(Principal::Anonymous);
            };
            if !method.is_safe() && !accounts::csrf_header_matches(headers, &user.csrf_token) {
                return Err(Error::Forbidden(
                    "a change made with a session needs the session's CSRF token in X-CSRF-Token \
                     (GET /api/session gives it)"
                        .into(),
                ));
            }
            return Ok(Principal::User {
                id: user.id,
                role: user.role,
            });
        };
        if admin.verify(token) {
            return Ok(Principal::Admin);
        }
        let mut conn = db.pool().acquire().await?;
        Ok(
            match db::cameras::id_by_token_hash(&mut conn, &hash_token(token)).await? {
                Some(id) => Principal::Camera(id),
                None => Principal::Anonymous,
            },
        )
    }

    /// 401 unless this is the admin or an operator; 403 for a camera's token or a viewer
    /// (authenticated, not allowed).
    pub fn require_admin(self) -> Result<()> {
        match self {
            Principal::Admin
            | Principal::User {
                role: Role::Operator,
                ..
            } => Ok(()),
            Principal::User {
                role: Role::Viewer, ..
            } => Err(Error::Forbidden("a viewer may not change anything".into())),
            Principal::Camera(_) => Err(Error::Forbidden(
                "a camera token may not do this; use the admin token".into(),
            )),
            Principal::Anonymous => Err(Error::Unauthorized),
        }
    }

    /// As [`Self::require_camera`], with the admin and operators allowed too.
    pub async fn require_camera_or_admin(self, db: &Db, camera_id: i64) -> Result<()> {
        match self {
            Principal::Admin
            | Principal::User {
                role: Role::Operator,
                ..
            } => Ok(()),
            other => other.require_camera(db, camera_id).await,
        }
    }

    /// 401 without a valid token; 403 with the admin token or another camera's token; 404
    /// when the token is valid but the camera does not exist.
    pub async fn require_camera(self, db: &Db, camera_id: i64) -> Result<()> {
        match self {
            Principal::Camera(id) if id == camera_id => Ok(()),
            Principal::Anonymous => Err(Error::Unauthorized),
            Principal::Admin | Principal::Camera(_) | Principal::User { .. } => {
                let mut conn = db.pool().acquire().await?;
                if db::cameras::exists(&mut conn, camera_id).await? {
                    Err(Error::Forbidden(format!(
                        "this token may not act for camera {camera_id}"
                    )))
                } else {
                    Err(Error::not_found("camera", camera_id))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_the_admin_passes_require_admin() {
        assert!(Principal::Admin.require_admin().is_ok());
        assert!(matches!(
            Principal::Camera(1).require_admin(),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            Principal::Anonymous.require_admin(),
            Err(Error::Unauthorized)
        ));
    }
}
