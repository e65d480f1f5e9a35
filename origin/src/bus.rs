//! The in-process event bus: every committed event goes through here, to the synchronous
//! subscribers first (the cache invalidation service, so a write's response is never followed
//! by a stale read) and then to the asynchronous ones (SSE streams) over a broadcast channel.

use std::sync::Arc;

use timelapser_core::events::Event;
use tokio::sync::broadcast;

/// An event as logged: its id in the event log and the event.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// The event log id (the SSE `id:`).
    pub id: i64,
    /// The event.
    pub event: Event,
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
    /// A bus whose broadcast keeps `capacity` events for slow receivers.
    pub fn new(capacity: usize, handlers: Vec<Arc<dyn EventHandler>>) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            handlers: Arc::new(handlers),
        }
    }

    /// Publishes committed events, in order.
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
}
