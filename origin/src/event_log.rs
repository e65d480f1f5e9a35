//! The durable event log and its publication in order.
//!
//! Every event is appended to the `events` table in the transaction of the change it
//! describes, so a crash loses neither. [`EventLog::commit`] commits such a transaction and
//! publishes its events on the bus in id order, exactly once:
//!
//! - On SQLite (one process), writers are serialised by the writer lock; the publication lock
//!   is taken before that lock is released, so events are published in commit order, which is
//!   id order.
//! - On PostgreSQL, several replicas share the log. Writers are serialised by an advisory lock
//!   held from before their first insert to their commit, so ids commit in increasing order.
//!   A committing writer reads, on its own transaction's connection and before committing,
//!   whatever other replicas logged after the last id this process published: all of it has
//!   smaller ids than its own and is already committed (its writers held the lock). It then
//!   commits and publishes those events and its own, in id order, with no I/O left to fail
//!   after the commit and no second pool connection to wait for. `LISTEN timelapser_events`
//!   wakes idle replicas to read the log the same way ([`EventLog::catch_up`]). No cluster
//!   protocol: the database's order is the order.
//!
//! Ids may have gaps (a rolled-back transaction consumes one); readers never rely on ids being
//! contiguous, only increasing.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use timelapser_core::events::Event;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::bus::{EventBus, LoggedEvent, Readers};
use crate::db::{self, Backend, Db, WriteTx};
use crate::error::Result;

/// The NOTIFY channel that wakes the other replicas.
pub const CHANNEL: &str = "timelapser_events";

/// How many events one catch-up reads at a time.
const BATCH: i64 = 500;

/// Appends `event` to the event log inside the caller's write transaction; publish it with
/// [`EventLog::commit`]. An event of a private camera is for signed-in readers only (the
/// camera is read in the same transaction, so a change of visibility committed before is
/// seen).
pub async fn log_event(
    conn: &mut AnyConnection,
    event: Event,
    now: i64,
) -> std::result::Result<LoggedEvent, sqlx::Error> {
    let readers = match event.camera_id() {
        Some(camera_id) => Readers::of_camera(
            db::cameras::is_public(conn, camera_id)
                .await?
                .unwrap_or(true),
        ),
        None => Readers::Everyone,
    };
    log_event_for(conn, event, readers, now).await
}

/// As [`log_event`], for the given readers.
pub async fn log_event_for(
    conn: &mut AnyConnection,
    event: Event,
    readers: Readers,
    now: i64,
) -> std::result::Result<LoggedEvent, sqlx::Error> {
    let (id, public_id) = db::events::append(
        conn,
        event.name(),
        &event.data(),
        event.camera_id(),
        readers.as_str(),
        readers.include(crate::auth::Audience::Public),
        now,
    )
    .await?;
    Ok(LoggedEvent::new(id, event)
        .for_readers(readers)
        .with_public_id(public_id))
}

/// A row of the log as the event it records, with its readers and public id; `None` (and an
/// error in the log) for a row that cannot be read.
pub fn read_row(row: db::events::EventRow) -> Option<LoggedEvent> {
    match Event::from_parts(&row.name, &row.payload) {
        Ok(event) => Some(
            LoggedEvent::new(row.id, event)
                .for_readers(Readers::parse(&row.readers))
                .with_public_id(row.public_id),
        ),
        Err(e) => {
            tracing::error!(id = row.id, error = %e, "unreadable event in the log; skipped");
            None
        }
    }
}

/// The logged events after `after` (and before `before`, when given), in id order; an
/// unreadable row is logged and skipped.
async fn read_after(
    conn: &mut AnyConnection,
    mut after: i64,
    before: Option<i64>,
) -> Result<Vec<LoggedEvent>> {
    let mut events = Vec::new();
    loop {
        let rows = db::events::after(conn, after, BATCH).await?;
        let full = rows.len() as i64 == BATCH;
        for row in rows {
            if before.is_some_and(|before| row.id >= before) {
                return Ok(events);
            }
            after = row.id;
            events.extend(read_row(row));
        }
        if !full {
            return Ok(events);
        }
    }
}

/// Replays (resumes, catch-ups) reading the log at once; the others wait their turn, so
/// resuming clients never hold more than this many database connections.
const CONCURRENT_REPLAYS: usize = 2;

/// The log's publisher.
#[derive(Clone)]
pub struct EventLog {
    db: Db,
    bus: EventBus,
    /// The id of the last event published by this process.
    published: Arc<Mutex<i64>>,
    replays: Arc<tokio::sync::Semaphore>,
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
            replays: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_REPLAYS)),
        })
    }

    /// A turn to read the log for a replay (held while reading one batch).
    pub async fn replay_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.replays
            .clone()
            .acquire_owned()
            .await
            .expect("the replay semaphore is never closed")
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
    /// Once the commit succeeds nothing can fail: publication is in memory.
    pub async fn commit(&self, mut tx: WriteTx, events: Vec<LoggedEvent>) -> Result<()> {
        let Some(first) = events.first().and_then(|e| e.id) else {
            tx.commit().await?;
            return Ok(());
        };
        // Taken before the writer lock is released by the commit, so no later writer can
        // publish before these events.
        let mut published = self.published.lock().await;
        let mut earlier = Vec::new();
        if self.db.backend() == Backend::Postgres {
            // Delivered on commit, to every replica listening (this one too, harmlessly).
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
            // Other replicas' events below ours, read on this connection (see the module docs).
            earlier = read_after(&mut tx, *published, Some(first)).await?;
        }
        tx.commit().await?;
        if let Some(last) = events.last().and_then(|e| e.id) {
            *published = last;
        }
        self.bus.publish(earlier.into_iter().chain(events));
        Ok(())
    }

    /// Publishes whatever the log holds after the last published id (another replica's
    /// commits, when NOTIFY wakes this one).
    pub async fn catch_up(&self) -> Result<()> {
        // The connection first, then the lock: a committer holding the lock never waits
        // for a connection this holds.
        let mut conn = self.db.pool().acquire().await?;
        let mut published = self.published.lock().await;
        let batch = read_after(&mut conn, *published, None).await?;
        if let Some(last) = batch.last().and_then(|e| e.id) {
            *published = last;
        }
        self.bus.publish(batch);
        Ok(())
    }

    /// Appends one event in its own transaction and publishes it (for events with no other
    /// change to commit: stats, health).
    pub async fn append(&self, event: Event) -> Result<()> {
        self.append_for(event, Readers::Everyone).await
    }

    /// As [`Self::append`], for the given readers.
    pub async fn append_for(&self, event: Event, readers: Readers) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let logged = log_event_for(&mut tx, event, readers, db::to_micros(db::now())).await?;
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
