//! The `settings` and `preferences` tables: string keys to JSON values, each row with its
//! modification time.

use sqlx::{AnyConnection, Row};

/// Which key-value table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// System settings.
    Settings,
    /// The operator's preferences.
    Preferences,
}

impl Table {
    fn select(self) -> &'static str {
        match self {
            Table::Settings => "SELECT key, value, updated_at FROM settings ORDER BY key",
            Table::Preferences => "SELECT key, value, updated_at FROM preferences ORDER BY key",
        }
    }

    fn upsert(self) -> &'static str {
        match self {
            Table::Settings => {
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
            }
            Table::Preferences => {
                "INSERT INTO preferences (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
            }
        }
    }

    fn insert_missing(self) -> &'static str {
        match self {
            Table::Settings => {
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO NOTHING"
            }
            Table::Preferences => {
                "INSERT INTO preferences (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO NOTHING"
            }
        }
    }
}

/// One stored key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value, JSON text.
    pub value: String,
    /// Modification, micros.
    pub updated_at: i64,
}

/// Every entry, by key.
pub async fn all(conn: &mut AnyConnection, table: Table) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = sqlx::query(table.select()).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                key: r.try_get("key")?,
                value: r.try_get("value")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Sets a key.
pub async fn put(
    conn: &mut AnyConnection,
    table: Table,
    key: &str,
    value: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(table.upsert())
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a key only if it is not set (seeding defaults).
pub async fn put_if_missing(
    conn: &mut AnyConnection,
    table: Table,
    key: &str,
    value: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(table.insert_missing())
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
