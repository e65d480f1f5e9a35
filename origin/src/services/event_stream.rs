//! The live event stream of `GET /api/events` (API.md "Events"), served by the route
//! (`routes::events`) and by the lean path of [`crate::serve`].
//!
//! A stream is: `retry:`, then (when resuming) the logged events after `Last-Event-ID` read
//! from the database in order, then live events from the bus. The bus receiver is subscribed
//! before the log is read, and every event is forwarded only if its id is above the last id
//! sent, so the seam has no gap and no repeat. A client that falls behind the bus's buffer is
//! caught up from the log the same way; one whose resume point was pruned gets `resync`.
//! Heartbeat comments keep idle connections open; shutdown ends every stream cleanly so
//! clients reconnect (with their Last-Event-ID) to whichever origin is up.
//!
//! Resumes and catch-ups are bounded: a client further behind than `sse_max_replay` events
//! gets `resync` instead of the log (a `Last-Event-ID: 1` must not stream the whole log to
//! anyone who asks), and log reads for replays take a permit of the event log, so a crowd of
//! resuming clients cannot starve other requests of the database.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use timelapser_core::events::{encode_comment, encode_retry, Event, EVENT_NAMES};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::auth::Audience;
use crate::bus::{LoggedEvent, Readers};
use crate::db;
use crate::error::{Error, Result};
use crate::state::AppState;

/// Events read from the log per step of a replay.
const REPLAY_BATCH: i64 = 200;

/// The filters' limits are core's: the edge's fan-out reads queries by the same rules.
pub use timelapser_core::stream_query::{MAX_FILTER_BYTES, MAX_FILTER_CAMERAS};

/// What a client asks of `GET /api/events`: its query, and its Last-Event-ID (the header
/// wins over `?last_event_id=`).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct StreamRequest {
    /// Where to resume.
    pub last_event_id: Option<String>,
    /// `?camera_id=1,2`.
    pub camera_id: Option<String>,
    /// `?types=a,b`.
    pub types: Option<String>,
    /// Whom the stream is for (not from the query: from the request's credentials).
    #[serde(skip)]
    pub audience: Audience,
    /// The camera whose token opened the stream: its own events are sent even when it is
    /// private.
    #[serde(skip)]
    pub own_camera: Option<i64>,
}

impl StreamRequest {
    /// The request of a query string and a `Last-Event-ID` field value, which wins over
    /// `?last_event_id=`. A query that is not `key=value` pairs is a 400.
    pub fn new(query: &str, last_event_id: Option<&[u8]>) -> Result<Self> {
        let mut request: StreamRequest = serde_urlencoded::from_str(query)
            .map_err(|e| Error::BadRequest(format!("invalid query: {e}")))?;
        if let Some(id) = last_event_id {
            request.last_event_id = Some(String::from_utf8_lossy(id).into_owned());
        }
        Ok(request)
    }
}

/// `?camera_id=1,2` and `?types=a,b`, and who is listening.
#[derive(Debug)]
struct Filter {
    cameras: Option<HashSet<i64>>,
    types: Option<HashSet<&'static str>>,
    audience: Audience,
    own_camera: Option<i64>,
}

impl Filter {
    fn parse(
        cameras: Option<&str>,
        types: Option<&str>,
        audience: Audience,
        own_camera: Option<i64>,
    ) -> Result<Self> {
        for (name, list) in [("camera_id", cameras), ("types", types)] {
            if list.is_some_and(|l| l.len() > MAX_FILTER_BYTES) {
                return Err(Error::BadRequest(format!(
                    "{name} may be at most {MAX_FILTER_BYTES} bytes long"
                )));
            }
        }
        let cameras = cameras
            .map(|list| {
                list.split(',')
                    .map(|id| {
                        id.trim().parse::<i64>().map_err(|_| {
                            Error::BadRequest(format!(
                                "camera_id must be a comma-separated list of ids, not {id:?}"
                            ))
                        })
                    })
                    .collect::<Result<HashSet<_>>>()
            })
            .transpose()?;
        if cameras
            .as_ref()
            .is_some_and(|c| c.len() > MAX_FILTER_CAMERAS)
        {
            return Err(Error::BadRequest(format!(
                "camera_id may name at most {MAX_FILTER_CAMERAS} cameras"
            )));
        }
        let types = types
            .map(|list| {
                list.split(',')
                    .map(|name| {
                        EVENT_NAMES
                            .iter()
                            .copied()
                            .find(|known| *known == name.trim())
                            .ok_or_else(|| {
                                Error::BadRequest(format!(
                                    "unknown event type {name:?}; types are {}",
                                    EVENT_NAMES.join(", ")
                                ))
                            })
                    })
                    .collect::<Result<HashSet<_>>>()
            })
            .transpose()?;
        Ok(Self {
            cameras,
            types,
            audience,
            own_camera,
        })
    }

    /// System-wide events pass a camera filter; `resync` passes every filter; an event is
    /// sent only to its readers (the public never sees a private camera's).
    fn passes(&self, event: &Event, readers: Readers) -> bool {
        if matches!(event, Event::Resync { .. }) {
            return true;
        }
        // A camera's host sees its own camera as signed-in people do (not the public's view
        // of it), and everything else as the public does.
        let own = self.own_camera.is_some() && event.camera_id() == self.own_camera;
        let readable = if own {
            readers != Readers::Anonymous
        } else {
            readers.include(self.audience)
        };
        if !readable {
            return false;
        }
        let type_ok = self.types.as_ref().is_none_or(|t| t.contains(event.name()));
        let camera_ok = match (&self.cameras, event.camera_id()) {
            (Some(cameras), Some(id)) => cameras.contains(&id),
            _ => true,
        };
        type_ok && camera_ok
    }
}

enum Phase {
    /// Nothing sent yet; the client's Last-Event-ID, if any.
    Start(Option<String>),
    /// Reading the log after `last_sent`.
    Replay,
    /// Forwarding the bus.
    Live,
    /// Ended.
    Done,
}

/// One client's event stream: the chunks of its response body, in order.
pub struct EventStream {
    phase: Phase,
    /// The id of the last event sent or skipped; nothing at or below it is sent again.
    last_sent: i64,
    receiver: broadcast::Receiver<Arc<LoggedEvent>>,
    filter: Filter,
    /// Whether the stream's ids are the public ids (the public's stream), else log ids.
    public_ids: bool,
    heartbeat: Interval,
    state: AppState,
}

impl EventStream {
    /// A stream for a client's request. A bad filter is a 400.
    pub async fn open(state: AppState, request: StreamRequest) -> Result<Self> {
        let filter = Filter::parse(
            request.camera_id.as_deref(),
            request.types.as_deref(),
            request.audience,
            request.own_camera,
        )?;
        let resume = request.last_event_id;
        let public_ids = request.audience == Audience::Public && request.own_camera.is_none();
        // Subscribe before reading anything from the log: see the module docs.
        let (receiver, published) = state.events.subscribe().await;
        let mut heartbeat = tokio::time::interval_at(
            Instant::now() + state.config.sse_heartbeat,
            state.config.sse_heartbeat,
        );
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            phase: Phase::Start(resume),
            last_sent: published,
            receiver,
            filter,
            public_ids,
            heartbeat,
            state,
        })
    }

    /// The next chunk of the body, or `None` to end the stream.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Start(resume) => {
                    let mut chunk = BytesMut::from(
                        encode_retry(self.state.config.sse_retry.as_millis() as u64).as_bytes(),
                    );
                    match resume {
                        None => self.phase = Phase::Live,
                        Some(resume) => match Box::pin(self.resume_point(&resume)).await {
                            Ok(Some(after)) => {
                                self.last_sent = after;
                                self.phase = Phase::Replay;
                            }
                            Ok(None) => {
                                chunk.extend_from_slice(&Box::pin(self.resync("the events after your last event id are no longer retained")).await);
                                self.phase = Phase::Live;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot read the event log for a resume");
                                return None;
                            }
                        },
                    }
                    return Some(chunk.freeze());
                }
                // The database paths are boxed: an idle stream then holds only the small live-phase
                // state, not the largest future sqlx can build (that made a connection cost 43 KiB).
                Phase::Replay => match Box::pin(self.replay_batch()).await {
                    Ok((chunk, more)) => {
                        self.phase = if more { Phase::Replay } else { Phase::Live };
                        if !chunk.is_empty() {
                            return Some(chunk);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot replay the event log; ending the stream");
                        return None;
                    }
                },
                Phase::Live => {
                    self.phase = Phase::Live;
                    let shutdown = self.state.shutdown.clone();
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => {
                            self.phase = Phase::Done;
                            return Some(Bytes::from(encode_comment("server shutting down; reconnect")));
                        }
                        received = self.receiver.recv() => match received {
                            Ok(logged) => {
                                if let Some(id) = logged.id {
                                    if id <= self.last_sent {
                                        continue;
                                    }
                                    self.last_sent = id;
                                }
                                if self.filter.passes(&logged.event, logged.readers) {
                                    self.heartbeat.reset();
                                    return Some(logged.frame_for(self.public_ids));
                                }
                            }
                            Err(RecvError::Lagged(missed)) => {
                                // Too slow for the shared buffer: catch up from the log.
                                tracing::debug!(missed, "SSE client lagged; replaying from the log");
                                self.state.metrics.record(|| metrics::counter!("sse_lagged_total").increment(1));
                                self.phase = Phase::Replay;
                            }
                            Err(RecvError::Closed) => {
                                self.phase = Phase::Done;
                                return None;
                            }
                        },
                        _ = self.heartbeat.tick() => return Some(Bytes::from_static(b":\n\n")),
                    }
                }
            }
        }
    }

    /// Where to resume after `Last-Event-ID`, or `None` when the client must resync (the id
    /// is not one of ours, or events after it were pruned).
    async fn resume_point(&self, resume: &str) -> Result<Option<i64>> {
        let Ok(given) = resume.trim().parse::<i64>() else {
            return Ok(None);
        };
        let mut conn = self.state.db.pool().acquire().await?;
        // The public's ids are their own sequence: found in the log, or resync.
        let after = match (self.public_ids, given) {
            (false, _) | (true, 0) => given,
            (true, public_id) => match db::events::id_of_public(&mut conn, public_id).await? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let pruned = db::events::pruned_through(&mut conn).await?;
        let (_, newest) = db::events::bounds(&mut conn).await?;
        let newest = newest.unwrap_or(0);
        if after < pruned || after < 0 || after > newest || self.too_far_behind(after, newest) {
            return Ok(None);
        }
        Ok(Some(after))
    }

    /// Whether a client at `at` is more events behind `newest` than a replay may send.
    fn too_far_behind(&self, at: i64, newest: i64) -> bool {
        newest.saturating_sub(at) > self.state.config.sse_max_replay
    }

    /// A `resync` frame carrying the newest id, so the client resumes from the present.
    async fn resync(&mut self, reason: &str) -> Bytes {
        let newest = self.state.events.last_published().await.max(self.last_sent);
        self.last_sent = newest;
        let event = Event::Resync {
            reason: reason.to_owned(),
        };
        // The public's id of the same place: its newest public event up to there.
        let id = if self.public_ids {
            match self.state.db.pool().acquire().await {
                Ok(mut conn) => db::events::public_id_through(&mut conn, newest)
                    .await
                    .unwrap_or(0),
                Err(_) => 0,
            }
        } else {
            newest
        };
        if id > 0 {
            LoggedEvent::new(id, event).frame()
        } else {
            LoggedEvent::ephemeral(event).frame()
        }
    }

    /// One batch of the log after `last_sent`, filtered; whether more may follow.
    async fn replay_batch(&mut self) -> Result<(Bytes, bool)> {
        let _permit = self.state.events.replay_permit().await;
        if self.too_far_behind(self.last_sent, self.state.events.last_published().await) {
            return Ok((
                self.resync("too many events were missed to replay them; reload")
                    .await,
                false,
            ));
        }
        let mut conn = self.state.db.pool().acquire().await?;
        if db::events::pruned_through(&mut conn).await? > self.last_sent {
            drop(conn);
            return Ok((
                self.resync("events you missed are no longer retained")
                    .await,
                false,
            ));
        }
        let rows = db::events::after(&mut conn, self.last_sent, REPLAY_BATCH).await?;
        let more = rows.len() as i64 == REPLAY_BATCH;
        let mut chunk = BytesMut::new();
        for row in rows {
            self.last_sent = row.id;
            if let Some(logged) = crate::event_log::read_row(row) {
                if self.filter.passes(&logged.event, logged.readers) {
                    chunk.extend_from_slice(&logged.frame_for(self.public_ids));
                }
            }
        }
        Ok((chunk.freeze(), more))
    }
}
