//! The `users` and `sessions` tables.

use sqlx::{AnyConnection, Row};

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Sign-in name.
    pub name: String,
    /// `viewer` or `operator`.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Inserts a user; returns its id, or `None` when the name is taken.
pub async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    role: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(role)
    .bind(password_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// Every user's id, name and role, by name (for the console; no password hashes).
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, name, role FROM users ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?, r.try_get("role")?)))
        .collect()
}

/// A user by sign-in name.
pub async fn by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, role, password_hash FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(UserRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            password_hash: r.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// A session as stored, with its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The user.
    pub user_id: i64,
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Sign-in, micros.
    pub created_at: i64,
    /// Last request, micros.
    pub last_seen_at: i64,
}

/// Stores a new session.
pub async fn insert_session(
    conn: &mut AnyConnection,
    id_hash: &str,
    user_id: i64,
    csrf_token: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(csrf_token)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A session by the hash of its id, with its user.
pub async fn session(
    conn: &mut AnyConnection,
    id_hash: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.user_id, u.name, u.role, s.csrf_token, s.created_at, s.last_seen_at \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(SessionRow {
            user_id: r.try_get("user_id")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            csrf_token: r.try_get("csrf_token")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
        })
    })
    .transpose()
}

/// Records a session's use.
pub async fn touch_session(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}
