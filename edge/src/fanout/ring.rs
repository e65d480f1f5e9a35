//! The events a fan-out keeps so that a reconnecting viewer resumes at the edge, and the
//! decision of where each viewer's stream comes from.
//!
//! Ids are the event log's public ids: increasing, but a filtered stream has gaps (the events
//! of other cameras and types). So the ring cannot tell from the ids it holds whether it holds
//! every event after a viewer's `Last-Event-ID`; it tracks that instead, as the *floor*: the
//! lowest id after which every event of the stream is held. The floor is where the upstream
//! stream started (a resume point, or the first event of a fresh stream, since what came before
//! is unknown), raised to each evicted id and reset by a `resync`. A resume at an id from the
//! floor to the newest is answered from the ring; anything else goes to the origin, which
//! replays from its log or sends `resync`.

use std::collections::VecDeque;

/// How many events a fan-out keeps for resumes.
pub const CAPACITY: usize = 1024;

/// The last events of one upstream stream, as frames ready to send.
#[derive(Debug)]
pub struct EventRing {
    capacity: usize,
    events: VecDeque<(u64, String)>,
    /// Every event with an id above this is in `events`; `None` until known.
    floor: Option<u64>,
    /// The newest id received (or the resume point the stream started from).
    newest: Option<u64>,
}

impl EventRing {
    /// An empty ring keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: VecDeque::new(),
            floor: None,
            newest: None,
        }
    }

    /// The upstream starts afresh: from the resume point `from` it asked the origin for, which
    /// then sends every event after it (or `resync`), or from the present when `None`.
    pub fn restart(&mut self, from: Option<u64>) {
        self.events.clear();
        self.floor = from;
        self.newest = from;
    }

    /// The id to resume the upstream from after it broke: the newest one received, so the
    /// origin sends exactly what came after it.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Keeps an event received from upstream. Returns whether to send it on: an event without
    /// an id (not in the log) is sent but not kept; one at or below the newest id is a repeat
    /// and dropped.
    pub fn push(&mut self, id: Option<u64>, frame: &str) -> bool {
        let Some(id) = id else {
            return true;
        };
        if self.newest.is_some_and(|newest| id <= newest) {
            return false;
        }
        // A fresh stream: what came before its first event is unknown.
        self.floor.get_or_insert(id);
        self.newest = Some(id);
        self.events.push_back((id, frame.to_owned()));
        if self.events.len() > self.capacity {
            if let Some((evicted, _)) = self.events.pop_front() {
                self.floor = self.floor.max(Some(evicted));
            }
        }
        true
    }

    /// The origin sent `resync` (the events after the upstream's resume point are gone): what
    /// is kept says nothing about what came before; the stream continues after `id`, the
    /// resync's own id when it has one.
    pub fn resync(&mut self, id: Option<u64>) {
        self.restart(id);
    }

    /// The frames of every event after `last_event_id`, when the ring holds them all; `None`
    /// when it cannot tell (an id below the floor or above the newest, or no integer).
    pub fn after(&self, last_event_id: &str) -> Option<Vec<&str>> {
        let resume: u64 = last_event_id.trim().parse().ok()?;
        let (floor, newest) = (self.floor?, self.newest?);
        if resume < floor || resume > newest {
            return None;
        }
        Some(
            self.events
                .iter()
                .filter(|(id, _)| *id > resume)
                .map(|(_, frame)| frame.as_str())
                .collect(),
        )
    }
}

/// Where a fan-out's upstream stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// None: no viewer, or the first connection failed.
    Idle,
    /// The first connection is being made, from this resume point.
    Connecting(Option<u64>),
    /// Open, or being reconnected after it broke (from the ring's newest id, so nothing is lost).
    Open,
}

/// Where a viewer's stream comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Open the upstream from this resume point, and wait for it.
    Start(Option<u64>),
    /// Wait for the upstream being opened.
    Wait,
    /// Join now: these frames first, then the live events.
    Join(Vec<&'a str>),
    /// Send it to the origin as is: the edge cannot prove it has every event it missed.
    Origin,
}

/// Decides where the stream of a viewer that resumes after `last_event_id` (if any) comes from.
pub fn admit<'a>(
    upstream: Upstream,
    ring: &'a EventRing,
    last_event_id: Option<&str>,
) -> Admission<'a> {
    let resume = last_event_id.map(|id| id.trim().parse::<u64>());
    match (upstream, resume) {
        // A resume point that is no id: the origin answers it (`resync`).
        (_, Some(Err(_))) => Admission::Origin,
        (Upstream::Idle, resume) => Admission::Start(resume.and_then(Result::ok)),
        // A new viewer may receive the few events after the upstream's resume point: events
        // it did not see, once each, in order.
        (Upstream::Connecting(_), None) => Admission::Wait,
        (Upstream::Connecting(from), Some(Ok(id))) if from == Some(id) => Admission::Wait,
        (Upstream::Connecting(_), Some(Ok(_))) => Admission::Origin,
        (Upstream::Open, None) => Admission::Join(Vec::new()),
        (Upstream::Open, Some(Ok(_))) => match last_event_id.and_then(|id| ring.after(id)) {
            Some(frames) => Admission::Join(frames),
            None => Admission::Origin,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn frame(id: u64) -> String {
        format!("id: {id}\nevent: e\ndata: {{}}\n\n")
    }

    fn ring_with(capacity: usize, from: Option<u64>, ids: &[u64]) -> EventRing {
        let mut ring = EventRing::new(capacity);
        ring.restart(from);
        for id in ids {
            assert!(ring.push(Some(*id), &frame(*id)));
        }
        ring
    }

    fn ids(frames: Option<Vec<&str>>) -> Option<Vec<u64>> {
        frames.map(|frames| {
            frames
                .iter()
                .map(|f| f[4..f.find('\n').unwrap()].parse().unwrap())
                .collect()
        })
    }

    #[test]
    fn a_fresh_stream_answers_from_its_first_event_on() {
        // Ids with gaps, as a filtered stream has them.
        let ring = ring_with(8, None, &[10, 14, 15, 21]);
        assert_eq!(ids(ring.after("10")), Some(vec![14, 15, 21]));
        // 12 was no event of this stream, but every event after it is held.
        assert_eq!(ids(ring.after("12")), Some(vec![14, 15, 21]));
        assert_eq!(ids(ring.after(" 21 ")), Some(vec![]));
        // Before the first event: were there events of this stream between 9 and 10?
        assert_eq!(ids(ring.after("9")), None);
        // Newer than anything received: an id the edge cannot vouch for.
        assert_eq!(ids(ring.after("22")), None);
        for garbage in ["", "x", "-1", "1.5"] {
            assert_eq!(ids(ring.after(garbage)), None, "{garbage:?}");
        }
        assert_eq!(ids(EventRing::new(8).after("1")), None, "nothing known");
    }

    #[test]
    fn a_resumed_stream_answers_from_its_resume_point_on() {
        let ring = ring_with(8, Some(7), &[]);
        assert_eq!(ids(ring.after("7")), Some(vec![]));
        assert_eq!(ids(ring.after("6")), None);
        let ring = ring_with(8, Some(7), &[9]);
        assert_eq!(ids(ring.after("7")), Some(vec![9]));
        assert_eq!(ids(ring.after("8")), Some(vec![9]));
        assert_eq!(ring.newest(), Some(9));
    }

    #[test]
    fn eviction_raises_the_floor() {
        let ring = ring_with(3, None, &[1, 3, 5, 7, 9]);
        // 1 and 3 were evicted: a resume at 3 still has 5, 7 and 9.
        assert_eq!(ids(ring.after("3")), Some(vec![5, 7, 9]));
        assert_eq!(ids(ring.after("4")), Some(vec![5, 7, 9]));
        assert_eq!(ids(ring.after("2")), None, "3 was evicted");
    }

    #[test]
    fn repeats_are_dropped_and_unlogged_events_pass_unkept() {
        let mut ring = ring_with(8, None, &[4, 6]);
        assert!(!ring.push(Some(6), &frame(6)));
        assert!(!ring.push(Some(5), &frame(5)));
        assert!(ring.push(None, "event: health_changed\ndata: {}\n\n"));
        assert_eq!(ids(ring.after("4")), Some(vec![6]));
    }

    #[test]
    fn a_resync_forgets_what_came_before() {
        let mut ring = ring_with(8, Some(2), &[3, 4]);
        ring.resync(Some(40));
        assert_eq!(ids(ring.after("4")), None);
        assert_eq!(ids(ring.after("40")), Some(vec![]));
        assert!(ring.push(Some(41), &frame(41)));
        assert_eq!(ids(ring.after("40")), Some(vec![41]));
        // A resync without an id: known again from the next event.
        ring.resync(None);
        assert_eq!(ids(ring.after("41")), None);
        assert!(ring.push(Some(45), &frame(45)));
        assert_eq!(ids(ring.after("45")), Some(vec![]));
        assert_eq!(ids(ring.after("44")), None);
    }

    #[test]
    fn admission() {
        let empty = EventRing::new(8);
        assert_eq!(admit(Upstream::Idle, &empty, None), Admission::Start(None));
        assert_eq!(
            admit(Upstream::Idle, &empty, Some("12")),
            Admission::Start(Some(12))
        );
        assert_eq!(admit(Upstream::Idle, &empty, Some("x")), Admission::Origin);
        assert_eq!(
            admit(Upstream::Connecting(None), &empty, None),
            Admission::Wait
        );
        assert_eq!(
            admit(Upstream::Connecting(Some(12)), &empty, Some("12")),
            Admission::Wait
        );
        assert_eq!(
            admit(Upstream::Connecting(Some(12)), &empty, None),
            Admission::Wait
        );
        assert_eq!(
            admit(Upstream::Connecting(Some(12)), &empty, Some("11")),
            Admission::Origin
        );
        assert_eq!(
            admit(Upstream::Connecting(None), &empty, Some("11")),
            Admission::Origin
        );
        let ring = ring_with(8, None, &[10, 14]);
        assert_eq!(
            admit(Upstream::Open, &ring, None),
            Admission::Join(Vec::new())
        );
        assert_eq!(
            admit(Upstream::Open, &ring, Some("10")),
            Admission::Join(vec![frame(14).as_str()])
        );
        assert_eq!(admit(Upstream::Open, &ring, Some("9")), Admission::Origin);
        assert_eq!(admit(Upstream::Open, &ring, Some("")), Admission::Origin);
    }
}
