//! People who sign in: users with a role, argon2id passwords, sessions kept in the database
//! (so every replica honours them) and sign-in attempts throttled per account and per address.
//!
//! A session id is 256 random bits that live only in the person's `HttpOnly` cookie; the
//! database keeps its SHA-256, as for tokens. Each session has its own CSRF token, which every
//! state-changing request made with the session must carry (`X-CSRF-Token`, or the `csrf`
//! field of a form). A session ends after [`SESSION_IDLE`] without a request, and after
//! [`SESSION_LIFETIME`] whatever happens; signing in always makes a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::HeaderMap;

use crate::auth::{generate_token, hash_token, hashes_equal};
use crate::db::{self, Db};
use crate::error::{Error, Result};

pub use timelapser_core::credentials::{cookie, SESSION_COOKIE, SIGN_IN_COOKIE};

/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);

/// A session ends this long after sign-in, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a session's last use is written (not on every request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sees private cameras; changes nothing.
    Viewer,
    /// Changes things.
    Operator,
}

impl Role {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// From its name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The argon2id PHC string of a password (argon2's defaults: 19 MiB, 2 passes, a random salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("making a salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string())
}

/// Whether `password` matches a stored PHC string (argon2 compares in constant time).
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so that an unknown name costs
/// the same time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").expect("hashing works"))
}

/// Creates a user (`timelapser-origin user add`, and the console).
pub async fn add_user(db: &Db, name: &str, role: Role, password: &str) -> Result<i64> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(Error::Unprocessable(
            "a user name is 1 to 64 characters, without control characters".into(),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::Unprocessable(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(Error::Internal)?;
    let mut tx = db.begin_write().await?;
    let id = db::users::insert(
        &mut tx,
        name,
        role.as_str(),
        &hash,
        db::to_micros(db::now()),
    )
    .await?;
    tx.commit().await?;
    id.ok_or_else(|| Error::Conflict(format!("a user named {name:?} exists")))
}

/// A signed-in request's user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// The user's id.
    pub id: i64,
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// A new session: the id for the cookie, and the CSRF token.
pub struct NewSession {
    /// Goes into the cookie only.
    pub id: String,
    /// For state-changing requests.
    pub csrf_token: String,
}

/// Why a sign-in failed.
#[derive(Debug)]
pub enum SignInError {
    /// Unknown name or wrong password (the two are not told apart).
    Wrong,
    /// Too many failures lately; try again after this long.
    Throttled(Duration),
    /// The server failed.
    Server(Error),
}

impl From<Error> for SignInError {
    fn from(e: Error) -> Self {
        SignInError::Server(e)
    }
}

impl From<sqlx::Error> for SignInError {
    fn from(e: sqlx::Error) -> Self {
        SignInError::Server(e.into())
    }
}

/// Checks a name and password and opens a new session.
pub async fn sign_in(
    db: &Db,
    throttle: &Throttle,
    name: &str,
    password: &str,
    address: IpAddr,
) -> std::result::Result<NewSession, SignInError> {
    let keys = [format!("user:{name}"), format!("address:{address}")];
    if let Some(wait) = keys.iter().filter_map(|k| throttle.wait(k)).max() {
        return Err(SignInError::Throttled(wait));
    }
    let user = {
        let mut conn = db.pool().acquire().await?;
        db::users::by_name(&mut conn, name).await?
    };
    let stored = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let Some(user) = user.filter(|_| matches) else {
        for key in &keys {
            throttle.failed(key);
        }
        return Err(SignInError::Wrong);
    };
    throttle.succeeded(&keys[0]);
    let session = NewSession {
        id: generate_token("tl_session"),
        csrf_token: generate_token("tl_csrf"),
    };
    let mut tx = db.begin_write().await?;
    db::users::insert_session(
        &mut tx,
        &hash_token(&session.id),
        user.id,
        &session.csrf_token,
        db::to_micros(db::now()),
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

/// The user of a session id, if the session exists and has not expired (an expired one is
/// deleted). Its last use is recorded at most once a minute.
pub async fn session_user(db: &Db, session_id: &str) -> Result<Option<SessionUser>> {
    let id_hash = hash_token(session_id);
    let row = {
        let mut conn = db.pool().acquire().await?;
        db::users::session(&mut conn, &id_hash).await?
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let now = db::to_micros(db::now());
    let micros = |d: Duration| d.as_micros() as i64;
    if now - row.last_seen_at > micros(SESSION_IDLE)
        || now - row.created_at > micros(SESSION_LIFETIME)
    {
        end_session(db, session_id).await?;
        return Ok(None);
    }
    if now - row.last_seen_at > micros(TOUCH_EVERY) {
        let mut tx = db.begin_write().await?;
        db::users::touch_session(&mut tx, &id_hash, now).await?;
        tx.commit().await?;
    }
    let role = Role::parse(&row.role).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "user {} has role {:?}",
            row.user_id,
            row.role
        ))
    })?;
    Ok(Some(SessionUser {
        id: row.user_id,
        name: row.name,
        role,
        csrf_token: row.csrf_token,
    }))
}

/// The session a request's cookie names and its user, if it is a live session.
pub async fn signed_in<'a>(
    db: &Db,
    headers: &'a HeaderMap,
) -> Result<Option<(&'a str, SessionUser)>> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(session_user(db, id).await?.map(|user| (id, user)))
}

/// Ends a session (signing out).
pub async fn end_session(db: &Db, session_id: &str) -> Result<()> {
    let mut tx = db.begin_write().await?;
    db::users::delete_session(&mut tx, &hash_token(session_id)).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a state-changing request carries the session's CSRF token (in `X-CSRF-Token`).
pub fn csrf_header_matches(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| hashes_equal(given, expected))
}

/// Failed sign-ins remembered per key (an account, an address): after [`FREE_FAILURES`]
/// failures within [`FAILURE_WINDOW`], each attempt must wait, 1 s doubling per further
/// failure up to [`MAX_WAIT`]. In memory, per origin: a replica throttles what it sees.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failures allowed before attempts must wait.
pub const FREE_FAILURES: u32 = 5;
/// Failures older than this are forgotten.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Keys remembered at most (the oldest are forgotten first beyond it).
const MAX_KEYS: usize = 100_000;

impl Throttle {
    /// How long an attempt for `key` must still wait, if it must.
    pub fn wait(&self, key: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.get(key)?;
        if f.count < FREE_FAILURES || f.last.elapsed() > FAILURE_WINDOW {
            return None;
        }
        let wait = Duration::from_secs(1 << (f.count - FREE_FAILURES).min(20)).min(MAX_WAIT);
        wait.checked_sub(f.last.elapsed()).filter(|w| !w.is_zero())
    }

    fn failed(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, f| f.last.elapsed() <= FAILURE_WINDOW);
        }
        let entry = failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        if entry.last.elapsed() > FAILURE_WINDOW {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = Instant::now();
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stored_as_argon2id_and_verified() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterz"));
        assert!(!verify_password(
            "not a phc string",
            "correct horse battery"
        ));
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn attempts_wait_after_five_failures_and_a_success_clears_the_account() {
        let throttle = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.wait("user:ann"), None);
            throttle.failed("user:ann");
        }
        let first = throttle
            .wait("user:ann")
            .expect("throttled after five failures");
        assert!(first <= Duration::from_secs(1));
        for _ in 0..5 {
            throttle.failed("user:ann");
        }
        let later = throttle.wait("user:ann").expect("still throttled");
        assert!(
            later > Duration::from_secs(16) && later <= Duration::from_secs(32),
            "{later:?}"
        );
        assert_eq!(throttle.wait("user:bob"), None);
        throttle.succeeded("user:ann");
        assert_eq!(throttle.wait("user:ann"), None);
    }
}
