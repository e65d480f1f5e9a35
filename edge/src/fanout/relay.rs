//! The origin's event stream read as events and written again as frames for viewers: core's
//! parser and encoder (HTML §9.2), so what the edge sends is what the origin meant, whatever
//! chunks the bytes arrived in. Comments (the origin's heartbeats) and `retry:` are not relayed:
//! the fan-out sends its own, to each viewer.

use timelapser_core::events::{encode_event, EventStreamParser};

/// The name of the event that tells clients to reload (API.md "Events").
pub const RESYNC: &str = "resync";

/// One event from upstream, ready to send on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// Its id, when it has one (an event the origin could not log has none).
    pub id: Option<u64>,
    /// Whether it is `resync`: what came before it no longer continues.
    pub resync: bool,
    /// The frame: `id:` (when it had one), `event:`, `data:`, blank line.
    pub frame: String,
}

/// Reads one upstream connection's bytes.
#[derive(Debug, Default)]
pub struct Relay {
    parser: EventStreamParser,
    last_id: String,
}

impl Relay {
    /// At the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reconnection time the origin asked for (`retry:`), once it has.
    pub fn retry(&self) -> Option<u64> {
        self.parser.reconnection_time()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Relayed> {
        let mut relayed = Vec::new();
        for event in self.parser.push(bytes) {
            // The parser carries the last id over to events without one; the origin's ids
            // increase, so an event had its own `id:` exactly when the id changed.
            let own_id = event.last_event_id != self.last_id;
            self.last_id.clone_from(&event.last_event_id);
            let id = own_id.then_some(event.last_event_id.as_str());
            // The parser's values hold no line break, so the encoder refuses none of them.
            if let Ok(frame) = encode_event(id, Some(&event.event), &event.data) {
                relayed.push(Relayed {
                    id: id.and_then(|id| id.parse().ok()),
                    resync: event.event == RESYNC,
                    frame,
                });
            }
        }
        relayed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timelapser_core::events::{encode_comment, encode_retry, Event};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn events_are_relayed_as_the_origin_framed_them_whatever_the_chunks() {
        let resync = Event::Resync {
            reason: "gone".into(),
        };
        let stream = format!(
            "{}{}{}{}{}",
            encode_retry(2000),
            "id: 7\nevent: camera_deleted\ndata: {\"camera_id\":1}\n\n",
            encode_comment(""),
            "event: health_changed\ndata: {\"component\":\"database\"}\n\n",
            resync.to_frame(9),
        );
        for chunk_size in [1, 2, 5, 13, stream.len()] {
            let mut relay = Relay::new();
            let mut relayed = Vec::new();
            for chunk in stream.as_bytes().chunks(chunk_size) {
                relayed.extend(relay.push(chunk));
            }
            assert_eq!(relay.retry(), Some(2000));
            assert_eq!(
                relayed,
                vec![
                    Relayed {
                        id: Some(7),
                        resync: false,
                        frame: "id: 7\nevent: camera_deleted\ndata: {\"camera_id\":1}\n\n".into(),
                    },
                    Relayed {
                        id: None,
                        resync: false,
                        frame: "event: health_changed\ndata: {\"component\":\"database\"}\n\n"
                            .into(),
                    },
                    Relayed {
                        id: Some(9),
                        resync: true,
                        frame: resync.to_frame(9),
                    },
                ],
                "chunks of {chunk_size}"
            );
        }
    }

    #[test]
    fn a_resync_without_an_id_has_none() {
        let mut relay = Relay::new();
        let relayed = relay.push(b"event: resync\ndata: {\"reason\":\"x\"}\n\n");
        assert_eq!(relayed.len(), 1);
        assert!(relayed[0].resync);
        assert_eq!(relayed[0].id, None);
        assert!(!relayed[0].frame.contains("id:"));
    }
}
