//! Pure data access: SQL and rows, nothing of HTTP or caching.
//!
//! One set of queries serves SQLite (the embedded default) and PostgreSQL through sqlx's `Any`
//! driver; the two schemas live in `migrations/{sqlite,postgres}` and differ only in how ids
//! are generated. Times are stored as microseconds since the epoch, the resolution of the
//! timestamp entity tags, so what the database holds is exactly what validators are made of.
//!
//! Writes go through [`Db::begin_write`], which serialises writers in two steps: first an
//! in-process FIFO mutex, taken *before* a pool connection (so writers queue in memory, never
//! by holding connections the committer and the readers need), then, on PostgreSQL, a
//! transaction-scoped advisory lock that orders the replicas' writers. One writer at a time
//! is SQLite's rule anyway (taking the mutex up front avoids `SQLITE_BUSY` on lock upgrades);
//! on PostgreSQL it makes event ids commit in increasing order across every replica: a writer
//! takes its ids while holding the lock and keeps it until its commit.

pub mod camera_documents;
pub mod cameras;
pub mod edge_purges;
pub mod events;
pub mod file_removals;
pub mod images;
pub mod key_values;
pub mod media;
pub mod render_rules;
pub mod timelapses;
pub mod users;
pub mod videos;
pub mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file in the data directory.
    Sqlite,
    /// PostgreSQL, shared by replicas.
    Postgres,
}

/// The database: a pool and the writer lock.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    write_lock: Arc<Mutex<()>>,
    url: String,
}

/// A write transaction holding the writer lock until it commits or drops.
pub struct WriteTx {
    /// The transaction.
    pub tx: Transaction<'static, Any>,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits and releases the writer lock.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Periodic jobs that run on one replica at a time (their advisory lock keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum JobKey {
    /// Retention ("TLRT").
    Retention = 0x544C_5254,
    /// Emptying cameras marked for deletion ("TLCD").
    CameraDeletion = 0x544C_4344,
    /// Dispatching logged events to webhooks ("TLWH").
    Webhooks = 0x544C_5748,
    /// Marking silent cameras offline ("TLOF").
    OfflineSweep = 0x544C_4F46,
    /// Pruning the event log ("TLEP").
    EventPruning = 0x544C_4550,
    /// Removing media files no row refers to ("TLMS").
    MediaSweep = 0x544C_4D53,
}

/// A held job lock ([`Db::try_job_lock`]).
pub struct JobLock {
    conn: Option<sqlx::pool::PoolConnection<Any>>,
    key: i64,
}

impl JobLock {
    /// Releases the lock.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // A connection that may still hold the lock must not go back to the pool.
                drop(conn.detach());
            }
        }
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        // Not released (a panic, a cancelled task): closing the connection frees the lock.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

/// The advisory lock key that serialises writers on PostgreSQL ("TLPS" in ASCII).
const POSTGRES_WRITER_LOCK: i64 = 0x544C_5053;

impl Db {
    /// Connects, applies SQLite's pragmas (WAL, busy timeout, foreign keys) and runs the
    /// migrations of the backend.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("DATABASE_URL must be a sqlite: or postgres: URL, not {url:?}");
        };
        let options = AnyConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {url:?}"))?;
        if backend == Backend::Postgres {
            // One direct attempt first: the pool retries until its acquire timeout and then
            // says only "pool timed out", where the server's own answer ("connection
            // refused", "password authentication failed") is what the operator needs.
            let probe = sqlx::AnyConnection::connect_with(&options)
                .await
                .with_context(|| format!("cannot connect to the database at {}", redact(url)))?;
            probe.close().await.ok();
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to the database at {}", redact(url)))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .context("running database migrations")?;
        Ok(Self {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
            url: url.to_owned(),
        })
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the pool was opened with (for LISTEN connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begins a write transaction, holding the writer lock (see the module docs).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let writer = Some(self.write_lock.clone().lock_owned().await);
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(POSTGRES_WRITER_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx {
            tx,
            _writer: writer,
        })
    }

    /// Takes the cluster-wide lock of a periodic job, if no other process holds it: on
    /// PostgreSQL a session-level advisory lock on a connection of its own (released by
    /// [`JobLock::release`], or by the server when the process dies), so one replica at a
    /// time runs the job; on SQLite (one process per file) always.
    pub async fn try_job_lock(&self, job: JobKey) -> Result<Option<JobLock>, sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(Some(JobLock { conn: None, key: 0 }));
        }
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
            .bind(job as i64)
            .fetch_one(&mut *conn)
            .await?;
        let taken: bool = sqlx::Row::try_get(&row, "taken")?;
        Ok(taken.then(|| JobLock {
            conn: Some(conn),
            key: job as i64,
        }))
    }

    /// Runs `job` if no other process is running it (see [`Db::try_job_lock`]); `Ok(None)`
    /// when another replica holds its lock, and this round is theirs. Taking the lock fails
    /// as the job would.
    pub async fn run_once<T, E: From<sqlx::Error>>(
        &self,
        key: JobKey,
        job: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<Option<T>, E> {
        let Some(lock) = self.try_job_lock(key).await? else {
            return Ok(None);
        };
        let done = job.await;
        lock.release().await;
        done.map(Some)
    }

    /// Whether the database answers (for /healthz).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs `SELECT EXISTS (<query>) AS present` with one bound parameter. SQLite answers an
/// integer, PostgreSQL a boolean; both become a `bool`.
pub(crate) async fn exists(
    conn: &mut sqlx::AnyConnection,
    query: &str,
    parameter: impl for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Send,
) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query(&format!("SELECT EXISTS ({query}) AS present"))
        .bind(parameter)
        .fetch_one(conn)
        .await?;
    row.try_get::<bool, _>("present")
        .or_else(|_| row.try_get::<i64, _>("present").map(|n| n != 0))
}

/// Hides a password in a URL for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Microseconds since the epoch, as stored.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant of a stored time.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The current time at the stored resolution, so what is returned equals what is read back.
pub fn now() -> DateTime<Utc> {
    from_micros(to_micros(Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn micros_round_trip() {
        let t = now();
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
