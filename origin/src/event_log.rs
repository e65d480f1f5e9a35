//! The durable event log and its publication in order.
//!
//! Every event is appended to the `events` table in the transaction of the change it
//! describes, so a crash loses neither. [`EventLog::commit`] commits such a transaction and
//! publishes its events on the bus in id order, exactly once:
//!
//! - On SQLite (one process), writers are serialised by the writer lock; the publication lock
//!   is taken before that lock is released, so events are published in commit order, which is
//!   id order.
//! - On PostgreSQL, several replicas share the log. Writers are serialised by an advisory lock,
//!   so ids commit in increasing order; each replica publishes by reading the log after the
//!   last id it published ([`EventLog::catch_up`]), after its own commits and whenever
//!   `LISTEN timelapser_events` wakes it for another replica's commit. No cluster protocol:
//!   the database's order is the order.
//!
//! Ids may have gaps (a rolled-back transaction consumes one); readers never rely on ids being
//! contiguous, only increasing.

use std::sync::Arc;
use std::time::Duration;

use timelapser_core::events::Event;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::bus::{EventBus, LoggedEvent};
use crate::db::{self, Backend, Db, WriteTx};
use crate::error::Result;

/// The NOTIFY channel that wakes the other replicas.
pub const CHANNEL: &str = "timelapser_events";

/// How many events one catch-up reads at a time.
const BATCH: i64 = 500;

/// The log's publisher.
#[derive(Clone)]
pub struct EventLog {
    db: Db,
    bus: EventBus,
    /// The id of the last event published by this process.
    published: Arc<Mutex<i64>>,
}

impl EventLog {
    /// Starts publishing after the newest event already logged (history is for resumes, not
    /// for republication).
    pub async fn open(db: Db, bus: EventBus) -> anyhow::Result<Self> {
        let mut conn = db.pool().acquire().await?;
        let (_, newest) = db::events::bounds(&mut conn).await?;
        Ok(Self {
            db,
            bus,
            published: Arc::new(Mutex::new(newest.unwrap_or(0))),
        })
    }

    /// The bus events are published on.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The id of the last event this process published.
    pub async fn last_published(&self) -> i64 {
        *self.published.lock().await
    }

    /// Subscribes to the bus and returns, atomically with it, the id of the last event
    /// published before the subscription: every later event arrives on the receiver.
    pub async fn subscribe(&self) -> (tokio::sync::broadcast::Receiver<Arc<LoggedEvent>>, i64) {
        let published = self.published.lock().await;
        (self.bus.subscribe(), *published)
    }

    /// Commits a write transaction whose `events` were appended to the log, then publishes
    /// them (and, on PostgreSQL, anything other replicas committed before them) in order.
    pub async fn commit(&self, mut tx: WriteTx, events: Vec<LoggedEvent>) -> Result<()> {
        if events.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        if self.db.backend() == Backend::Postgres {
            // Delivered on commit, to every replica listening (this one too, harmlessly).
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        // Taken before the writer lock is released by the commit, so no later writer can
        // publish before these events.
        let mut published = self.published.lock().await;
        tx.commit().await?;
        match self.db.backend() {
            Backend::Sqlite => {
                if let Some(last) = events.last().and_then(|e| e.id) {
                    *published = last;
                }
                self.bus.publish(events);
            }
            Backend::Postgres => self.catch_up_locked(&mut published).await?,
        }
        Ok(())
    }

    /// Publishes whatever the log holds after the last published id.
    pub async fn catch_up(&self) -> Result<()> {
        let mut published = self.published.lock().await;
        self.catch_up_locked(&mut published).await
    }

    async fn catch_up_locked(&self, published: &mut i64) -> Result<()> {
        let mut conn = self.db.pool().acquire().await?;
        loop {
            let rows = db::events::after(&mut conn, *published, BATCH).await?;
            let full = rows.len() as i64 == BATCH;
            let mut batch = Vec::with_capacity(rows.len());
            for row in rows {
                *published = row.id;
                match Event::from_parts(&row.name, &row.payload) {
                    Ok(event) => batch.push(LoggedEvent::new(row.id, event)),
                    Err(e) => {
                        tracing::error!(id = row.id, error = %e, "unreadable event in the log; skipped")
                    }
                }
            }
            self.bus.publish(batch);
            if !full {
                return Ok(());
            }
        }
    }

    /// Appends one event in its own transaction and publishes it (for events with no other
    /// change to commit: stats, health).
    pub async fn append(&self, event: Event) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let logged = crate::services::log_event(&mut tx, event, db::to_micros(db::now())).await?;
        self.commit(tx, vec![logged]).await
    }

    /// On PostgreSQL: listens for other replicas' commits and publishes them; also catches up
    /// every few seconds in case a notification was lost while reconnecting.
    pub fn spawn_listener(&self, shutdown: CancellationToken) {
        if self.db.backend() != Backend::Postgres {
            return;
        }
        let log = self.clone();
        tokio::spawn(async move {
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match sqlx::postgres::PgListener::connect(log.db.url()).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; retrying");
                        } else {
                            // Anything committed while we were not listening.
                            let _ = log.catch_up().await;
                            loop {
                                tokio::select! {
                                    _ = shutdown.cancelled() => return,
                                    notification = listener.try_recv() => match notification {
                                        Ok(_) => {
                                            if let Err(e) = log.catch_up().await {
                                                tracing::warn!(error = %e, "catching up with the event log failed");
                                            }
                                        }
                                        Err(e) => {
                                            tracing::warn!(error = %e, "event listener lost its connection");
                                            break;
                                        }
                                    },
                                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                                        let _ = log.catch_up().await;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for events; retrying"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    /// Deletes events older than the retention age and beyond the retention count, keeping at
    /// least the newest event so resumes can tell what was pruned.
    pub async fn prune(&self, keep: i64, max_age: Duration) -> Result<u64> {
        let cutoff =
            db::to_micros(db::now()) - i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX);
        let mut tx = self.db.begin_write().await?;
        let deleted = db::events::prune(&mut tx, cutoff, keep.max(1)).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
