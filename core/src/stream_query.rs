//! What a client asks of `GET /api/events` (API.md "Events"): its filters (`?camera_id=1,2`,
//! `?types=a,b`) and its resume point (`Last-Event-ID`, or `?last_event_id=`), read by the
//! origin's rules, and the filters in one canonical form.
//!
//! The canonical form is what lets many clients share one stream: `camera_id=2,1,1` and
//! `types=b,a&camera_id=1,2` ask for the same events as `camera_id=1,2&types=a,b` (the origin
//! reads both lists as sets), so the edge fans one upstream stream out to all of them. A query
//! this module cannot put in canonical form without changing its meaning (a repeated key, an
//! id that is no integer, an unknown type, a list beyond the origin's limits) is one the origin
//! answers with a 400 problem: [`StreamQuery::parse`] refuses it, and the caller forwards it
//! untouched for the origin to explain.

use std::collections::BTreeSet;

use crate::events::EVENT_NAMES;

/// The most cameras a `camera_id` filter may name (the origin refuses more).
pub const MAX_FILTER_CAMERAS: usize = 100;

/// The longest `camera_id` or `types` list the origin accepts, in bytes.
pub const MAX_FILTER_BYTES: usize = 2048;

/// The request field that names the resume point (HTML §9.2.4).
pub const LAST_EVENT_ID: &str = "last-event-id";

/// A stream request's filters and resume point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamQuery {
    /// `?camera_id=`: the cameras whose events are sent (system-wide events pass too).
    pub cameras: Option<BTreeSet<i64>>,
    /// `?types=`: the event names sent.
    pub types: Option<BTreeSet<&'static str>>,
    /// `?last_event_id=`, as given (the `Last-Event-ID` field wins over it:
    /// [`StreamQuery::resume_point`]).
    pub last_event_id: Option<String>,
}

/// Why a query has no canonical form: the origin answers it with a 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a stream query the origin accepts: {0}")]
pub struct NotCanonical(pub String);

impl StreamQuery {
    /// Reads a query string (`application/x-www-form-urlencoded`, as the origin does). Keys other
    /// than `camera_id`, `types` and `last_event_id` are ignored, as the origin ignores them.
    pub fn parse(query: &str) -> Result<Self, NotCanonical> {
        let mut cameras = None;
        let mut types = None;
        let mut last_event_id = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "camera_id" => &mut cameras,
                "types" => &mut types,
                "last_event_id" => &mut last_event_id,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(NotCanonical(format!("{key} is given twice")));
            }
        }
        Ok(Self {
            cameras: cameras.as_deref().map(camera_list).transpose()?,
            types: types.as_deref().map(type_list).transpose()?,
            last_event_id,
        })
    }

    /// The filters in canonical form: `camera_id=1,2&types=a,b`, each list sorted without
    /// repeats, either left out when absent; empty when there is no filter.
    pub fn canonical_filter(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cameras) = &self.cameras {
            let ids: Vec<String> = cameras.iter().map(i64::to_string).collect();
            parts.push(format!("camera_id={}", ids.join(",")));
        }
        if let Some(types) = &self.types {
            let names: Vec<&str> = types.iter().copied().collect();
            parts.push(format!("types={}", names.join(",")));
        }
        parts.join("&")
    }

    /// Where the client resumes: the `Last-Event-ID` field's value when it sent one, else
    /// `?last_event_id=` (the origin's precedence).
    pub fn resume_point<'a>(&'a self, last_event_id_field: Option<&'a str>) -> Option<&'a str> {
        last_event_id_field.or(self.last_event_id.as_deref())
    }
}

fn check_length(name: &str, list: &str) -> Result<(), NotCanonical> {
    if list.len() > MAX_FILTER_BYTES {
        return Err(NotCanonical(format!(
            "{name} is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    Ok(())
}

fn camera_list(list: &str) -> Result<BTreeSet<i64>, NotCanonical> {
    check_length("camera_id", list)?;
    let cameras = list
        .split(',')
        .map(|id| {
            id.trim()
                .parse::<i64>()
                .map_err(|_| NotCanonical(format!("camera id {id:?} is no integer")))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if cameras.len() > MAX_FILTER_CAMERAS {
        return Err(NotCanonical(format!(
            "camera_id names more than {MAX_FILTER_CAMERAS} cameras"
        )));
    }
    Ok(cameras)
}

fn type_list(list: &str) -> Result<BTreeSet<&'static str>, NotCanonical> {
    check_length("types", list)?;
    list.split(',')
        .map(|name| {
            EVENT_NAMES
                .iter()
                .copied()
                .find(|known| *known == name.trim())
                .ok_or_else(|| NotCanonical(format!("unknown event type {name:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn canonical(query: &str) -> Result<String, NotCanonical> {
        StreamQuery::parse(query).map(|q| q.canonical_filter())
    }

    #[test]
    fn the_same_filters_have_one_form() {
        let cases = [
            ("", ""),
            ("camera_id=2,1,1", "camera_id=1,2"),
            ("camera_id=%201%20,2", "camera_id=1,2"),
            ("camera_id=1%2C2", "camera_id=1,2"),
            (
                "types=image_captured,camera_updated&camera_id=2,1",
                "camera_id=1,2&types=camera_updated,image_captured",
            ),
            ("types=resync,resync", "types=resync"),
            // Keys the origin ignores (a cache buster) select no other stream.
            ("v=123&camera_id=7&v=124", "camera_id=7"),
            ("last_event_id=41&types=resync", "types=resync"),
        ];
        for (query, expected) in cases {
            assert_eq!(canonical(query).as_deref(), Ok(expected), "{query:?}");
        }
    }

    #[test]
    fn what_the_origin_refuses_has_no_canonical_form() {
        let long = format!("camera_id={}", vec!["1"; 1100].join(","));
        let many = format!(
            "camera_id={}",
            (0..=MAX_FILTER_CAMERAS)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        for query in [
            "camera_id=",
            "camera_id=1,,2",
            "camera_id=x",
            "camera_id=1&camera_id=2",
            "types=nothing",
            "types=",
            "last_event_id=1&last_event_id=2",
            long.as_str(),
            many.as_str(),
        ] {
            assert!(StreamQuery::parse(query).is_err(), "{query:?}");
        }
        let at_limit = format!(
            "camera_id={}",
            (1..=MAX_FILTER_CAMERAS)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(StreamQuery::parse(&at_limit).is_ok());
    }

    #[test]
    fn the_field_wins_over_the_query() {
        let query = StreamQuery::parse("last_event_id=5").unwrap();
        assert_eq!(query.resume_point(None), Some("5"));
        assert_eq!(query.resume_point(Some("9")), Some("9"));
        let none = StreamQuery::parse("").unwrap();
        assert_eq!(none.resume_point(None), None);
    }
}
