//! `events::EventStreamParser` and `events::encode_event` (HTML §9.2 "Server-sent events").
//!
//! Invariants:
//! - chunking invariance: the stream fed whole, fed split at an input-derived point, and fed
//!   in input-derived fixed-size chunks gives the same events, the same last event ID and the
//!   same reconnection time; `finish` never yields an event;
//! - every dispatched event has a non-empty type;
//! - `encode_event` refuses exactly the `id`s with CR, LF or NUL and the `event`s with CR or
//!   LF; what it accepts parses back (whole and byte by byte) to one event with the data's line
//!   breaks normalised to LF, the event name (or `message`) and the id;
//! - `encode_comment` yields no event and `encode_retry` sets the reconnection time.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use timelapser_core::events::{
    encode_comment, encode_event, encode_retry, EventStreamParser, InvalidField, MessageEvent,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    split: u16,
    chunk: u8,
    retry: u64,
    id: Option<&'a str>,
    event: Option<&'a str>,
    data: &'a str,
    stream: &'a [u8],
}

struct Outcome {
    events: Vec<MessageEvent>,
    last_event_id: String,
    reconnection_time: Option<u64>,
}

fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = EventStreamParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk));
    }
    let out = Outcome {
        events,
        last_event_id: parser.last_event_id().to_owned(),
        reconnection_time: parser.reconnection_time(),
    };
    // `finish` only says whether a partial event was discarded: it never dispatches (its type
    // says so since it returns a bool).
    let _discarded = parser.finish();
    out
}

fn assert_same(a: &Outcome, b: &Outcome, how: &str) {
    assert_eq!(a.events, b.events, "events differ when fed {how}");
    assert_eq!(
        a.last_event_id, b.last_event_id,
        "last event id differs when fed {how}"
    );
    assert_eq!(
        a.reconnection_time, b.reconnection_time,
        "reconnection time differs when fed {how}"
    );
}

fuzz_target!(|input: Input<'_>| {
    // Chunking invariance.
    let stream = input.stream;
    let whole = feed([stream]);
    for event in &whole.events {
        assert!(!event.event.is_empty());
    }
    let split = usize::from(input.split) % (stream.len() + 1);
    let (a, b) = stream.split_at(split);
    assert_same(&whole, &feed([a, b]), &format!("split at {split}"));
    assert_same(&whole, &feed([a, &[][..], b, &[][..]]), "with empty chunks");
    let size = usize::from(input.chunk % 8) + 1;
    assert_same(
        &whole,
        &feed(stream.chunks(size)),
        &format!("in chunks of {size}"),
    );

    // Encoder → parser round trip.
    let id_bad = input.id.is_some_and(|id| id.contains(['\r', '\n', '\0']));
    let event_bad = input.event.is_some_and(|e| e.contains(['\r', '\n']));
    match encode_event(input.id, input.event, input.data) {
        Ok(frame) => {
            assert!(!id_bad && !event_bad);
            let expected = MessageEvent {
                event: match input.event {
                    Some(e) if !e.is_empty() => e.to_owned(),
                    _ => "message".to_owned(),
                },
                data: input.data.replace("\r\n", "\n").replace('\r', "\n"),
                last_event_id: input.id.unwrap_or_default().to_owned(),
            };
            let parsed = feed([frame.as_bytes()]);
            assert_eq!(parsed.events, vec![expected], "frame {frame:?}");
            assert_same(&parsed, &feed(frame.as_bytes().chunks(1)), "byte by byte");
        }
        Err(InvalidField::LineBreak(field)) => {
            assert!(
                (field == "id" && id_bad) || (field == "event" && event_bad),
                "refused {field}"
            );
        }
        Err(InvalidField::Nul) => assert!(input.id.is_some_and(|id| id.contains('\0'))),
    }

    let comment = feed([encode_comment(input.data).as_bytes()]);
    assert!(comment.events.is_empty(), "a comment dispatched an event");
    let retry = feed([encode_retry(input.retry).as_bytes()]);
    assert_eq!(retry.reconnection_time, Some(input.retry));
});
