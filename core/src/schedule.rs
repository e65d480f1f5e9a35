//! A camera's capture schedule: when a camera host captures a frame. The origin stores and
//! validates it (`GET`/`PUT /api/cameras/{id}/schedule`); the agent evaluates it. Both use
//! these rules, so they cannot disagree about whether an instant is in the window.
//!
//! - Frames are taken on a grid: every `interval_seconds`, aligned to the Unix epoch (so two
//!   agents, or one restarted, pick the same instants).
//! - Daily windows are wall-clock times in the camera's IANA time zone; a window whose end is
//!   before its start runs overnight. No windows: all day.
//! - A sun window keeps captures between sunrise and sunset (or civil dawn and dusk) at the
//!   camera's latitude and longitude, each moved by an offset in minutes; where the sun does not
//!   rise (polar night) there is no window, where it does not set (polar day) the whole day is.
//! - Both kinds of window apply together; a paused schedule captures nothing.
//!
//! Time is always a parameter: nothing here reads a clock.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The longest interval between frames: a day.
pub const MAX_INTERVAL_SECONDS: u32 = 86_400;

/// The largest sun offset, in minutes either way.
pub const MAX_SUN_OFFSET_MINUTES: i32 = 720;

/// How far ahead [`Schedule::next_capture`] looks for an instant in the window.
pub const LOOKAHEAD: Duration = Duration::days(3);

/// A camera's capture schedule, as `GET /api/cameras/{id}/schedule` represents it.
///
/// Unknown keys inside `windows` and `sun` are refused; the top level is flattened into
/// [`crate::resources::CameraSchedule`], so the origin checks its keys against
/// [`Schedule::FIELDS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Seconds between frames, 1 to 86400.
    pub interval_seconds: u32,
    /// The IANA time zone of the daily windows (`Europe/Paris`).
    pub timezone: String,
    /// Daily windows; empty: all day.
    #[serde(default)]
    pub windows: Vec<DailyWindow>,
    /// Only between sunrise and sunset, when set.
    #[serde(default)]
    pub sun: Option<SunWindow>,
    /// Nothing is captured while paused.
    #[serde(default)]
    pub paused: bool,
}

/// A daily window, `HH:MM` to `HH:MM` local time (end before start: overnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyWindow {
    /// Start, inclusive.
    #[serde(with = "hh_mm")]
    pub start: NaiveTime,
    /// End, exclusive.
    #[serde(with = "hh_mm")]
    pub end: NaiveTime,
}

/// Captures between sunrise and sunset (or civil dawn and dusk) at a place.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SunWindow {
    /// Degrees north, -90 to 90.
    pub latitude: f64,
    /// Degrees east, -180 to 180.
    pub longitude: f64,
    /// Minutes added to sunrise (negative: before it).
    #[serde(default)]
    pub sunrise_offset_minutes: i32,
    /// Minutes added to sunset (positive: after it).
    #[serde(default)]
    pub sunset_offset_minutes: i32,
    /// Civil dawn and dusk (sun 6° below the horizon) instead of sunrise and sunset.
    #[serde(default)]
    pub civil_twilight: bool,
}

/// Why a schedule is refused: the field, and what it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// The offending field (`sun.latitude`, `windows[1]`, ...).
    pub field: String,
    /// What it must be.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field: field.into(),
        message: message.into(),
    }
}

/// The sun's window on one local day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SunSpan {
    /// From the first instant to the second.
    Between(DateTime<Utc>, DateTime<Utc>),
    /// The sun does not set (polar day): all day.
    AllDay,
    /// The sun does not rise (polar night): never.
    Never,
}

impl Schedule {
    /// The keys of a schedule document.
    pub const FIELDS: [&'static str; 5] =
        ["interval_seconds", "timezone", "windows", "sun", "paused"];

    /// Every frame at `interval_seconds`, all day, in `timezone`.
    pub fn every(interval_seconds: u32, timezone: &str) -> Self {
        Self {
            interval_seconds,
            timezone: timezone.to_owned(),
            windows: Vec::new(),
            sun: None,
            paused: false,
        }
    }

    /// Checks every field; the first one wrong is the error.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.interval_seconds) {
            return Err(invalid(
                "interval_seconds",
                format!("must be 1 to {MAX_INTERVAL_SECONDS}"),
            ));
        }
        if self.timezone.parse::<Tz>().is_err() {
            return Err(invalid(
                "timezone",
                format!(
                    "{:?} is not an IANA time zone such as \"Europe/Paris\"",
                    self.timezone
                ),
            ));
        }
        for (i, window) in self.windows.iter().enumerate() {
            if window.start == window.end {
                return Err(invalid(
                    format!("windows[{i}]"),
                    "is empty: its start and end are the same time",
                ));
            }
        }
        if let Some(sun) = &self.sun {
            if !(-90.0..=90.0).contains(&sun.latitude) {
                return Err(invalid("sun.latitude", "must be -90 to 90 degrees"));
            }
            if !(-180.0..=180.0).contains(&sun.longitude) {
                return Err(invalid("sun.longitude", "must be -180 to 180 degrees"));
            }
            for (field, offset) in [
                ("sun.sunrise_offset_minutes", sun.sunrise_offset_minutes),
                ("sun.sunset_offset_minutes", sun.sunset_offset_minutes),
            ] {
                if offset.abs() > MAX_SUN_OFFSET_MINUTES {
                    return Err(invalid(
                        field,
                        format!("must be within ±{MAX_SUN_OFFSET_MINUTES} minutes"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The schedule's time zone (UTC when it does not parse; [`Self::validate`] refuses that).
    pub fn tz(&self) -> Tz {
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// Whether a frame may be taken at `at` (any instant, on the grid or not).
    pub fn allows(&self, at: DateTime<Utc>) -> bool {
        !self.paused && self.in_daily_windows(at) && self.in_sun_window(at)
    }

    /// Whether `at` is a grid instant (a multiple of the interval since the epoch).
    pub fn on_grid(&self, at: DateTime<Utc>) -> bool {
        at.timestamp_subsec_nanos() == 0
            && at
                .timestamp()
                .rem_euclid(i64::from(self.interval_seconds.max(1)))
                == 0
    }

    /// The first grid instant after `after` at which a frame may be taken, within
    /// [`LOOKAHEAD`]; `None` when there is none (paused, or no window for days).
    pub fn next_capture(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.paused {
            return None;
        }
        let horizon = after + LOOKAHEAD;
        let mut at = self.grid_after(after);
        while at <= horizon {
            if self.allows(at) {
                return Some(at);
            }
            // Jump to where the window may open next, instead of walking the grid.
            let opening = self.next_opening(at)?;
            at = self.grid_at_or_after(opening.max(at + Duration::seconds(1)));
        }
        None
    }

    /// The first grid instant strictly after `t`.
    fn grid_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.grid_at_or_after(t + Duration::nanoseconds(1))
    }

    /// The first grid instant at or after `t`.
    fn grid_at_or_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = i64::from(self.interval_seconds.max(1));
        let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        let aligned = secs + (step - secs.rem_euclid(step)) % step;
        DateTime::from_timestamp(aligned, 0).unwrap_or(t)
    }

    /// The earliest instant after `t` at which [`Self::allows`] may turn true.
    fn next_opening(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut candidates = Vec::new();
        if !self.in_daily_windows(t) {
            candidates.push(self.next_daily_start(t)?);
        }
        if !self.in_sun_window(t) {
            candidates.push(self.next_sun_start(t)?);
        }
        // Both closed: the later of the two openings is the earliest both can be open.
        candidates.into_iter().max()
    }

    fn in_daily_windows(&self, at: DateTime<Utc>) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local = at.with_timezone(&self.tz()).time();
        self.windows.iter().any(|w| {
            if w.start < w.end {
                w.start <= local && local < w.end
            } else {
                local >= w.start || local < w.end
            }
        })
    }

    /// The next instant after `t` at which a daily window starts.
    fn next_daily_start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz = self.tz();
        let today = t.with_timezone(&tz).date_naive();
        (0..=2)
            .filter_map(|days| today.checked_add_signed(Duration::days(days)))
            .flat_map(|date| self.windows.iter().map(move |w| (date, w.start)))
            .filter_map(|(date, start)| local_instant(&tz, date, start))
            .filter(|start| *start > t)
            .min()
    }

    /// The sun's window on the local day of `at`.
    pub fn sun_span(&self, date: NaiveDate) -> Option<SunSpan> {
        let sun = self.sun?;
        Some(sun_span(&sun, date))
    }

    fn in_sun_window(&self, at: DateTime<Utc>) -> bool {
        let Some(sun) = self.sun else {
            return true;
        };
        let date = at.with_timezone(&self.tz()).date_naive();
        match sun_span(&sun, date) {
            SunSpan::AllDay => true,
            SunSpan::Never => false,
            SunSpan::Between(from, to) => from <= at && at < to,
        }
    }

    /// The next instant after `t` at which the sun window opens (within the look-ahead).
    fn next_sun_start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let sun = self.sun?;
        let tz = self.tz();
        let today = t.with_timezone(&tz).date_naive();
        (0..=LOOKAHEAD.num_days() + 1)
            .filter_map(|days| today.checked_add_signed(Duration::days(days)))
            .find_map(|date| match sun_span(&sun, date) {
                SunSpan::Between(from, _) if from > t => Some(from),
                SunSpan::AllDay => {
                    local_instant(&tz, date, NaiveTime::MIN).filter(|start| *start > t)
                }
                _ => None,
            })
    }
}

/// A local wall-clock time on a date as an instant: the earlier one when it occurs twice
/// (DST ends), the first valid time after it when it does not occur (DST starts).
fn local_instant(tz: &Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    (0..=180)
        .step_by(15)
        .find_map(|minutes| {
            tz.from_local_datetime(&(naive + Duration::minutes(minutes)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// The sun's window at a place on a day.
pub fn sun_span(sun: &SunWindow, date: NaiveDate) -> SunSpan {
    use sunrise::{Coordinates, DawnType, SolarDay, SolarEvent};
    let Some(place) = Coordinates::new(sun.latitude, sun.longitude) else {
        return SunSpan::Never;
    };
    let day = SolarDay::new(place, date);
    let (rise, set) = if sun.civil_twilight {
        (
            SolarEvent::Dawn(DawnType::Civil),
            SolarEvent::Dusk(DawnType::Civil),
        )
    } else {
        (SolarEvent::Sunrise, SolarEvent::Sunset)
    };
    match (day.event_time(rise), day.event_time(set)) {
        (Some(from), Some(to)) => SunSpan::Between(
            from + Duration::minutes(i64::from(sun.sunrise_offset_minutes)),
            to + Duration::minutes(i64::from(sun.sunset_offset_minutes)),
        ),
        // The sun neither rises nor sets: it is up all day when it stands on the pole's
        // side of the equator in that season, down all day otherwise.
        _ if sun_is_up_all_day(sun.latitude, date) => SunSpan::AllDay,
        _ => SunSpan::Never,
    }
}

/// Whether, at a latitude where the sun neither rises nor sets on `date`, it stays up: the
/// sun's declination then has the latitude's sign (summer at that pole).
fn sun_is_up_all_day(latitude: f64, date: NaiveDate) -> bool {
    // Cooper's approximation of the declination, enough to tell the season's sign.
    let day_of_year = f64::from(date.ordinal());
    let declination = -23.44 * (std::f64::consts::TAU / 365.0 * (day_of_year + 10.0)).cos();
    latitude.signum() == declination.signum()
}

/// `HH:MM` (24-hour) for daily windows.
mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M").map_err(|_| {
            serde::de::Error::custom(format!("{text:?} is not a time as HH:MM (24-hour)"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn window(start: &str, end: &str) -> DailyWindow {
        DailyWindow {
            start: hm(start),
            end: hm(end),
        }
    }

    #[test]
    fn frames_fall_on_a_grid_aligned_to_the_epoch() {
        let s = Schedule::every(10, "UTC");
        assert_eq!(
            s.next_capture(at("2026-06-01T12:00:03Z")),
            Some(at("2026-06-01T12:00:10Z"))
        );
        assert_eq!(
            s.next_capture(at("2026-06-01T12:00:10Z")),
            Some(at("2026-06-01T12:00:20Z")),
            "strictly after"
        );
        assert!(s.on_grid(at("2026-06-01T12:00:20Z")));
        assert!(!s.on_grid(at("2026-06-01T12:00:21Z")));
        let paused = Schedule {
            paused: true,
            ..Schedule::every(10, "UTC")
        };
        assert_eq!(paused.next_capture(at("2026-06-01T12:00:00Z")), None);
        assert!(!paused.allows(at("2026-06-01T12:00:00Z")));
    }

    #[test]
    fn daily_windows_are_local_time_and_may_run_overnight() {
        let s = Schedule {
            windows: vec![window("07:00", "19:00")],
            ..Schedule::every(600, "Europe/Paris")
        };
        // 07:00 in Paris in June is 05:00 UTC.
        assert!(!s.allows(at("2026-06-01T04:59:00Z")));
        assert!(s.allows(at("2026-06-01T05:00:00Z")));
        assert!(
            !s.allows(at("2026-06-01T17:00:00Z")),
            "19:00 local is the end"
        );
        assert_eq!(
            s.next_capture(at("2026-06-01T17:00:00Z")),
            Some(at("2026-06-02T05:00:00Z")),
            "jumps to the next morning"
        );
        let night = Schedule {
            windows: vec![window("22:00", "02:00")],
            ..Schedule::every(3600, "UTC")
        };
        for (time, inside) in [
            ("2026-06-01T21:59:00Z", false),
            ("2026-06-01T22:00:00Z", true),
            ("2026-06-02T01:59:00Z", true),
            ("2026-06-02T02:00:00Z", false),
        ] {
            assert_eq!(night.allows(at(time)), inside, "{time}");
        }
        assert_eq!(
            night.next_capture(at("2026-06-02T02:00:00Z")),
            Some(at("2026-06-02T22:00:00Z"))
        );
    }

    #[test]
    fn a_window_starting_in_the_dst_gap_opens_when_the_clock_allows() {
        // Paris springs forward at 02:00 on 2026-03-29: 02:30 does not exist that day.
        let s = Schedule {
            windows: vec![window("02:30", "04:00")],
            ..Schedule::every(60, "Europe/Paris")
        };
        let first = s.next_capture(at("2026-03-28T23:00:00Z")).unwrap();
        assert_eq!(first, at("2026-03-29T01:00:00Z"), "03:00 CEST");
    }

    fn place(latitude: f64, longitude: f64) -> SunWindow {
        SunWindow {
            latitude,
            longitude,
            sunrise_offset_minutes: 0,
            sunset_offset_minutes: 0,
            civil_twilight: false,
        }
    }

    fn within_two_minutes(got: DateTime<Utc>, published: &str) {
        let published = at(published);
        let gap = (got - published).num_seconds().abs();
        assert!(gap <= 120, "{got} is {gap} s from {published}");
    }

    #[test]
    fn sun_windows_match_published_tables() {
        // Published sunrise and sunset (timeanddate.com, USNO), local times converted to UTC.
        let cases = [
            // London, summer solstice: 04:43 and 21:21 BST.
            (
                place(51.5072, -0.1276),
                (2025, 6, 21),
                "2025-06-21T03:43:00Z",
                "2025-06-21T20:21:00Z",
            ),
            // London, winter solstice: 08:04 and 15:53 GMT.
            (
                place(51.5072, -0.1276),
                (2025, 12, 21),
                "2025-12-21T08:04:00Z",
                "2025-12-21T15:53:00Z",
            ),
            // New York, summer solstice: 05:25 and 20:31 EDT.
            (
                place(40.7128, -74.0060),
                (2025, 6, 21),
                "2025-06-21T09:25:00Z",
                "2025-06-22T00:31:00Z",
            ),
        ];
        for (sun, (y, m, d), rise, set) in cases {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let SunSpan::Between(from, to) = sun_span(&sun, date) else {
                panic!("the sun rises and sets at {sun:?} on {date}");
            };
            within_two_minutes(from, rise);
            within_two_minutes(to, set);
        }
    }

    #[test]
    fn polar_day_and_night_are_handled() {
        let tromso = place(69.6492, 18.9553);
        let midsummer = NaiveDate::from_ymd_opt(2026, 6, 21).unwrap();
        let midwinter = NaiveDate::from_ymd_opt(2026, 12, 21).unwrap();
        assert_eq!(sun_span(&tromso, midsummer), SunSpan::AllDay);
        assert_eq!(sun_span(&tromso, midwinter), SunSpan::Never);
        // Civil twilight still happens at midwinter noon.
        let twilight = SunWindow {
            civil_twilight: true,
            ..tromso
        };
        assert!(matches!(
            sun_span(&twilight, midwinter),
            SunSpan::Between(_, _)
        ));
        // The same in the south, in the opposite seasons.
        let mcmurdo = place(-77.85, 166.67);
        assert_eq!(sun_span(&mcmurdo, midsummer), SunSpan::Never);
        assert_eq!(sun_span(&mcmurdo, midwinter), SunSpan::AllDay);
        let s = Schedule {
            sun: Some(tromso),
            ..Schedule::every(60, "Europe/Oslo")
        };
        assert!(s.allows(at("2026-06-21T23:30:00Z")), "midnight sun");
        assert_eq!(
            s.next_capture(at("2026-12-21T12:00:00Z")),
            None,
            "no sun for days"
        );
    }

    #[test]
    fn sun_offsets_move_the_window() {
        let mut sun = place(51.5072, -0.1276);
        let date = NaiveDate::from_ymd_opt(2025, 6, 21).unwrap();
        let SunSpan::Between(rise, set) = sun_span(&sun, date) else {
            panic!()
        };
        sun.sunrise_offset_minutes = -30;
        sun.sunset_offset_minutes = 45;
        assert_eq!(
            sun_span(&sun, date),
            SunSpan::Between(rise - Duration::minutes(30), set + Duration::minutes(45))
        );
        let s = Schedule {
            sun: Some(sun),
            ..Schedule::every(60, "Europe/London")
        };
        let first = s.next_capture(at("2025-06-21T00:00:00Z")).unwrap();
        assert!(first >= rise - Duration::minutes(30));
        assert!(first < rise - Duration::minutes(29));
    }

    #[test]
    fn invalid_schedules_name_their_field() {
        let base = Schedule::every(60, "UTC");
        let cases = [
            (
                Schedule {
                    interval_seconds: 0,
                    ..base.clone()
                },
                "interval_seconds",
            ),
            (
                Schedule {
                    timezone: "Mars/Olympus".into(),
                    ..base.clone()
                },
                "timezone",
            ),
            (
                Schedule {
                    windows: vec![window("07:00", "19:00"), window("08:00", "08:00")],
                    ..base.clone()
                },
                "windows[1]",
            ),
            (
                Schedule {
                    sun: Some(place(91.0, 0.0)),
                    ..base.clone()
                },
                "sun.latitude",
            ),
            (
                Schedule {
                    sun: Some(place(0.0, -181.0)),
                    ..base.clone()
                },
                "sun.longitude",
            ),
            (
                Schedule {
                    sun: Some(SunWindow {
                        sunset_offset_minutes: 721,
                        ..place(0.0, 0.0)
                    }),
                    ..base.clone()
                },
                "sun.sunset_offset_minutes",
            ),
        ];
        for (schedule, field) in cases {
            assert_eq!(schedule.validate().unwrap_err().field, field);
        }
        assert_eq!(base.validate(), Ok(()));
    }

    #[test]
    fn the_json_of_api_md() {
        let json = serde_json::json!({
            "interval_seconds": 30,
            "timezone": "Europe/Paris",
            "windows": [{"start": "22:00", "end": "06:30"}],
            "sun": {"latitude": 48.85, "longitude": 2.35, "sunrise_offset_minutes": -20,
                    "sunset_offset_minutes": 20, "civil_twilight": true},
            "paused": false,
        });
        let s: Schedule = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(s.windows[0], window("22:00", "06:30"));
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
        let minimal: Schedule =
            serde_json::from_value(serde_json::json!({"interval_seconds": 10, "timezone": "UTC"}))
                .unwrap();
        assert_eq!(minimal, Schedule::every(10, "UTC"));
        assert!(serde_json::from_value::<DailyWindow>(
            serde_json::json!({"start": "7am", "end": "19:00"})
        )
        .is_err());
    }
}
