//! The in-process event bus: every committed event goes through here, to the synchronous
//! subscribers first (the cache invalidation service, so a write's response is never followed
//! by a stale read) and then to the asynchronous ones (SSE streams) over a broadcast channel.
//!
//! Events are published in the order of their ids, exactly once per process; see
//! [`crate::event_log`] for how that order is kept across writers and replicas.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use timelapser_core::events::Event;
use tokio::sync::broadcast;

/// Who may read an event on the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Readers {
    /// Everyone.
    Everyone,
    /// Signed-in people only: an event of a private camera.
    SignedIn,
    /// The public only: its own view of a change signed-in people see otherwise (a camera
    /// that turned private leaves the public gallery; the numbers of the public cameras).
    Anonymous,
}

impl Readers {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Readers::Everyone => "everyone",
            Readers::SignedIn => "signed_in",
            Readers::Anonymous => "anonymous",
        }
    }

    /// From the stored name; an unknown one is read as signed-in only (never leaked).
    pub fn parse(s: &str) -> Self {
        match s {
            "everyone" => Readers::Everyone,
            "anonymous" => Readers::Anonymous,
            _ => Readers::SignedIn,
        }
    }

    /// The readers of an event of a camera that is public or not.
    pub fn of_camera(public: bool) -> Self {
        if public {
            Readers::Everyone
        } else {
            Readers::SignedIn
        }
    }

    /// Whether a stream for `audience` shows it.
    pub fn include(self, audience: crate::auth::Audience) -> bool {
        use crate::auth::Audience;
        matches!(
            (self, audience),
            (Readers::Everyone, _)
                | (Readers::SignedIn, Audience::SignedIn)
                | (Readers::Anonymous, Audience::Public)
        )
    }
}

/// An event as logged: its id in the event log (none for an ephemeral event that could not be
/// logged, such as "the database is down") and the event.
#[derive(Debug)]
pub struct LoggedEvent {
    /// The event log id (the SSE `id:`).
    pub id: Option<i64>,
    /// The event.
    pub event: Event,
    /// Who may read it.
    pub readers: Readers,
    /// Its id on the public stream, when the public may read it: the public's ids are their
    /// own dense sequence, so no gap in them tells of events only signed-in people see.
    pub public_id: Option<i64>,
    frame: OnceLock<Bytes>,
    public_frame: OnceLock<Bytes>,
}

impl LoggedEvent {
    /// An event with its log id.
    pub fn new(id: i64, event: Event) -> Self {
        Self {
            id: Some(id),
            event,
            readers: Readers::Everyone,
            public_id: None,
            frame: OnceLock::new(),
            public_frame: OnceLock::new(),
        }
    }

    /// The same event with its public id.
    pub fn with_public_id(mut self, public_id: Option<i64>) -> Self {
        self.public_id = public_id;
        self
    }

    /// The same event, for other readers.
    pub fn for_readers(mut self, readers: Readers) -> Self {
        self.readers = readers;
        self
    }

    /// An event that is not in the log (it cannot be resumed).
    pub fn ephemeral(event: Event) -> Self {
        Self {
            id: None,
            event,
            readers: Readers::Everyone,
            public_id: None,
            frame: OnceLock::new(),
            public_frame: OnceLock::new(),
        }
    }

    /// The event-stream frame, encoded once however many clients receive it.
    pub fn frame(&self) -> Bytes {
        self.frame.get_or_init(|| self.encode(self.id)).clone()
    }

    /// The frame for the public stream: `id:` is the public id (none for an event that has
    /// none, which the public stream never sends anyway).
    pub fn public_frame(&self) -> Bytes {
        self.public_frame
            .get_or_init(|| self.encode(self.public_id))
            .clone()
    }

    /// The frame of a stream, public or not.
    pub fn frame_for(&self, public_ids: bool) -> Bytes {
        if public_ids {
            self.public_frame()
        } else {
            self.frame()
        }
    }

    fn encode(&self, id: Option<i64>) -> Bytes {
        let frame = match id {
            Some(id) => self.event.to_frame(id as u64),
            None => timelapser_core::events::encode_event(
                None,
                Some(self.event.name()),
                &self.event.data(),
            )
            .expect("catalogue names are identifiers"),
        };
        Bytes::from(frame)
    }
}

impl PartialEq for LoggedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.event == other.event && self.readers == other.readers
    }
}

/// Something that must see every event before anyone else does.
pub trait EventHandler: Send + Sync {
    /// Handles one event; must not block.
    fn handle(&self, event: &Event);
}

/// The bus.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<LoggedEvent>>,
    handlers: Arc<Vec<Arc<dyn EventHandler>>>,
}

impl EventBus {
    /// A bus whose broadcast keeps `capacity` events for slow receivers; a receiver further
    /// behind than that is told it lagged and catches up from the event log.
    pub fn new(capacity: usize, handlers: Vec<Arc<dyn EventHandler>>) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            handlers: Arc::new(handlers),
        }
    }

    /// Publishes events, in order. Callers keep the log's order (see `event_log`).
    pub fn publish(&self, events: impl IntoIterator<Item = LoggedEvent>) {
        for logged in events {
            for handler in self.handlers.iter() {
                handler.handle(&logged.event);
            }
            // No receivers is fine: nobody is listening.
            let _ = self.sender.send(Arc::new(logged));
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LoggedEvent>> {
        self.sender.subscribe()
    }

    /// How many receivers are subscribed (SSE clients and internal subscribers).
    pub fn receiver_count(&self) -> usize {
        self.sender.receiver_count()
    }
}
