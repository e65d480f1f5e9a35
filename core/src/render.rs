//! What a render is asked for (`POST /api/timelapses/{id}/videos`) and the rules that make
//! videos on their own (`/api/cameras/{id}/render-rules`): validation naming the field, the
//! frame rate a duration asks for, the content address of a render, and when a rule is due.
//!
//! The origin turns [`RenderOptions`] into an ffmpeg command; everything that decides *which*
//! video a request means lives here, so the same request always means the same video.
//! Time is always a parameter: nothing here reads a clock.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Frames per second when a request names neither `fps` nor `duration_seconds`.
pub const DEFAULT_FPS: u32 = 24;
/// The frame rates a request may name.
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=120;
/// A rate derived from `duration_seconds` is clamped to this range: fewer than one frame a
/// second is a slide show, more than 60 is more than any screen shows.
pub const DERIVED_FPS_RANGE: (f64, f64) = (1.0, 60.0);
/// The longest video a request may ask for: a day.
pub const MAX_DURATION_SECONDS: f64 = 86_400.0;
/// The largest `every_nth`.
pub const MAX_EVERY_NTH: u32 = 100_000;

/// Quality presets: the encoder's quality (CRF), speed preset and the largest height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Quick to make, small: 480 lines, CRF 30, `ultrafast`.
    Draft,
    /// The default: 720 lines, CRF 23, `veryfast`.
    #[default]
    Standard,
    /// 1080 lines, CRF 18, `medium`.
    High,
}

impl Preset {
    /// libx264's constant rate factor (lower is better and larger).
    pub fn crf(self) -> u32 {
        match self {
            Preset::Draft => 30,
            Preset::Standard => 23,
            Preset::High => 18,
        }
    }

    /// libx264's speed preset.
    pub fn encoder_preset(self) -> &'static str {
        match self {
            Preset::Draft => "ultrafast",
            Preset::Standard => "veryfast",
            Preset::High => "medium",
        }
    }

    /// The largest height; frames are scaled down to it, never up.
    pub fn max_height(self) -> u32 {
        match self {
            Preset::Draft => 480,
            Preset::Standard => 720,
            Preset::High => 1080,
        }
    }

    /// The video's size for frames of `width` x `height`: at most [`Preset::max_height`]
    /// lines, the frames' aspect ratio, even dimensions (H.264 in yuv420p needs them).
    pub fn output_size(self, width: u32, height: u32) -> (u32, u32) {
        let even = |n: u64| ((n.max(2) / 2) * 2) as u32;
        let (width, height) = (u64::from(width.max(1)), u64::from(height.max(1)));
        let out_height = height.min(u64::from(self.max_height()));
        let out_width = (width * out_height + height / 2) / height;
        (even(out_width), even(out_height))
    }

    /// The name in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Draft => "draft",
            Preset::Standard => "standard",
            Preset::High => "high",
        }
    }
}

/// What may be drawn over the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlay {
    /// Each frame's capture time, in the site's time zone.
    Time,
    /// The camera's name.
    Camera,
}

/// The body of `POST /api/timelapses/{id}/videos`, as sent: every field optional, unknown
/// fields refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    /// `draft`, `standard` (default) or `high`.
    pub preset: Option<Preset>,
    /// Frames per second (1 to 120); not with `duration_seconds`.
    pub fps: Option<u32>,
    /// The video's length: the frame rate is derived from the frame count.
    pub duration_seconds: Option<f64>,
    /// Every n-th frame only (1: all).
    pub every_nth: Option<u32>,
    /// Frames captured at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Frames captured before this instant.
    pub to: Option<DateTime<Utc>>,
    /// What to draw over the frames.
    pub overlay: Option<Vec<Overlay>>,
    /// Even out the brightness between frames (ffmpeg's `deflicker`).
    pub deflicker: Option<bool>,
}

/// A render's options, checked and normalised: what `Video.options` shows, and what the
/// content address of a render covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderOptions {
    /// The quality preset.
    pub preset: Preset,
    /// Frames per second asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Length asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Every n-th frame (1: all).
    pub every_nth: u32,
    /// Frames captured at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Frames captured before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Overlays, sorted, each once.
    #[serde(default)]
    pub overlay: Vec<Overlay>,
    /// Deflickered.
    #[serde(default)]
    pub deflicker: bool,
    /// The time zone overlay times are shown in (set by the origin: the site's, when the
    /// time is drawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            preset: Preset::Standard,
            fps: None,
            duration_seconds: None,
            every_nth: 1,
            from: None,
            to: None,
            overlay: Vec::new(),
            deflicker: false,
            timezone: None,
        }
    }
}

/// Why a request is refused: the field, and what it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The offending field.
    pub field: &'static str,
    /// What it must be.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

impl RenderRequest {
    /// Checks every field; the first one wrong is the error.
    pub fn validate(self) -> Result<RenderOptions, FieldError> {
        if let Some(fps) = self.fps {
            if !FPS_RANGE.contains(&fps) {
                return Err(invalid(
                    "fps",
                    format!(
                        "must be between {} and {}",
                        FPS_RANGE.start(),
                        FPS_RANGE.end()
                    ),
                ));
            }
        }
        if let Some(duration) = self.duration_seconds {
            if self.fps.is_some() {
                return Err(invalid(
                    "duration_seconds",
                    "give fps or duration_seconds, not both (the frame rate is derived from the duration)",
                ));
            }
            if !(duration.is_finite() && duration > 0.0 && duration <= MAX_DURATION_SECONDS) {
                return Err(invalid(
                    "duration_seconds",
                    format!("must be more than 0 and at most {MAX_DURATION_SECONDS}"),
                ));
            }
        }
        let every_nth = self.every_nth.unwrap_or(1);
        if !(1..=MAX_EVERY_NTH).contains(&every_nth) {
            return Err(invalid(
                "every_nth",
                format!("must be between 1 and {MAX_EVERY_NTH}"),
            ));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(invalid("to", "must be after from"));
            }
        }
        let mut overlay = self.overlay.unwrap_or_default();
        overlay.sort();
        overlay.dedup();
        Ok(RenderOptions {
            preset: self.preset.unwrap_or_default(),
            fps: self.fps,
            duration_seconds: self.duration_seconds,
            every_nth,
            from: self.from,
            to: self.to,
            overlay,
            deflicker: self.deflicker.unwrap_or(false),
            timezone: None,
        })
    }
}

impl RenderOptions {
    /// The frame rate of a video of `frames` frames: `fps` as asked; for a duration, the
    /// frame count over it (to a thousandth, so the length is right within a frame), clamped
    /// to [`DERIVED_FPS_RANGE`]; else [`DEFAULT_FPS`].
    pub fn frame_rate(&self, frames: u64) -> f64 {
        match (self.fps, self.duration_seconds) {
            (Some(fps), _) => f64::from(fps),
            (None, Some(duration)) => {
                let (low, high) = DERIVED_FPS_RANGE;
                let rate = (frames.max(1) as f64 / duration).clamp(low, high);
                (rate * 1000.0).round() / 1000.0
            }
            (None, None) => f64::from(DEFAULT_FPS),
        }
    }

    /// Whether a frame at `index` (0-based, in capture order within the range) is used.
    pub fn takes(&self, index: usize) -> bool {
        index.is_multiple_of(self.every_nth.max(1) as usize)
    }
}

/// Everything that decides a video's bytes besides its options: what the overlays show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayText<'a> {
    /// The time zone capture times are shown in.
    pub timezone: &'a str,
    /// The camera's name.
    pub camera: &'a str,
}

/// The content address of a render: SHA-256 over its frames (their content hashes, in order),
/// its options, the frame rate and whatever the overlays draw. Two requests with the same
/// address ask for the same video.
pub fn render_key<'a>(
    frames: impl IntoIterator<Item = &'a str>,
    options: &RenderOptions,
    frame_rate: f64,
    text: &OverlayText<'_>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"timelapser-render-v1\n");
    for frame in frames {
        hasher.update(frame.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(format!(
        "preset={} rate={frame_rate:.3} deflicker={}\n",
        options.preset.as_str(),
        options.deflicker
    ));
    for overlay in &options.overlay {
        match overlay {
            Overlay::Time => hasher.update(format!("time={}\n", text.timezone)),
            Overlay::Camera => hasher.update(format!("camera={}\n", text.camera)),
        }
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How often a rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Every day: the previous day's frames.
    Daily,
    /// Every week on `weekday`: the previous seven days' frames.
    Weekly,
}

/// A rule that renders a camera's frames on its own, as `/api/cameras/{id}/render-rules`
/// represents it (without `id`, which the origin adds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRule {
    /// Daily or weekly.
    pub period: Period,
    /// For weekly rules: the day (`monday` ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<WeekdayName>,
    /// Local time of day it runs at, `HH:MM` in the site's time zone.
    pub at: String,
    /// The quality preset.
    #[serde(default)]
    pub preset: Preset,
    /// Frames per second (not with `duration_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Length of each video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Overlays.
    #[serde(default)]
    pub overlay: Vec<Overlay>,
    /// Deflickered.
    #[serde(default)]
    pub deflicker: bool,
    /// Paused when false.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A day of the week, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum WeekdayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl WeekdayName {
    /// chrono's weekday.
    pub fn weekday(self) -> Weekday {
        match self {
            WeekdayName::Monday => Weekday::Mon,
            WeekdayName::Tuesday => Weekday::Tue,
            WeekdayName::Wednesday => Weekday::Wed,
            WeekdayName::Thursday => Weekday::Thu,
            WeekdayName::Friday => Weekday::Fri,
            WeekdayName::Saturday => Weekday::Sat,
            WeekdayName::Sunday => Weekday::Sun,
        }
    }
}

/// One run of a rule: when it was due and the frames it covers (`[from, to)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRun {
    /// The instant the run was due.
    pub due: DateTime<Utc>,
    /// Frames captured at or after this.
    pub from: DateTime<Utc>,
    /// Frames captured before this.
    pub to: DateTime<Utc>,
}

impl RenderRule {
    /// Checks the rule; the first field wrong is the error.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.time_of_day()?;
        match (self.period, self.weekday) {
            (Period::Weekly, None) => {
                return Err(invalid("weekday", "a weekly rule names its weekday"))
            }
            (Period::Daily, Some(_)) => {
                return Err(invalid("weekday", "only weekly rules have a weekday"))
            }
            _ => {}
        }
        self.request(None, None).validate().map(|_| ())
    }

    fn time_of_day(&self) -> Result<NaiveTime, FieldError> {
        NaiveTime::parse_from_str(&self.at, "%H:%M")
            .map_err(|_| invalid("at", "must be a time of day as HH:MM (24-hour)"))
    }

    /// The render request of one run.
    pub fn request(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> RenderRequest {
        RenderRequest {
            preset: Some(self.preset),
            fps: self.fps,
            duration_seconds: self.duration_seconds,
            every_nth: None,
            from,
            to,
            overlay: Some(self.overlay.clone()),
            deflicker: Some(self.deflicker),
        }
    }

    /// The latest run due at or before `now` (in `tz`): a daily rule's is today's `at` if
    /// that has passed, else yesterday's, covering the local day before it; a weekly rule's is
    /// the last `weekday` at `at`, covering the seven days before it. `None` for an invalid
    /// rule.
    pub fn last_run(&self, now: DateTime<Utc>, tz: Tz) -> Option<RuleRun> {
        let at = self.time_of_day().ok()?;
        let today = now.with_timezone(&tz).date_naive();
        let days_back = |date: NaiveDate| -> i64 {
            match (self.period, self.weekday) {
                (Period::Weekly, Some(day)) => i64::from(
                    (7 + date.weekday().num_days_from_monday()
                        - day.weekday().num_days_from_monday())
                        % 7,
                ),
                _ => 0,
            }
        };
        let span = match self.period {
            Period::Daily => 1,
            Period::Weekly => 7,
        };
        // Today's (or this week's) run, else the one a period before.
        let mut date = today - Duration::days(days_back(today));
        for _ in 0..2 {
            let due = local(tz, date, at)?;
            if due <= now {
                let to = local(tz, date, NaiveTime::MIN)?;
                let from = local(tz, date - Duration::days(span), NaiveTime::MIN)?;
                return Some(RuleRun { due, from, to });
            }
            date -= Duration::days(span);
        }
        None
    }
}

impl RenderRule {
    /// The keys of a rule's representation that a client cannot set (ignored in a PUT body).
    pub const READ_ONLY: [&'static str; 7] = [
        "id",
        "camera_id",
        "last_run_at",
        "last_result",
        "next_run_at",
        "created_at",
        "updated_at",
    ];

    /// The next run due after `now`.
    pub fn next_run(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let at = self.time_of_day().ok()?;
        let today = now.with_timezone(&tz).date_naive();
        (0..=8)
            .map(|days| today + Duration::days(days))
            .filter(|date| match (self.period, self.weekday) {
                (Period::Weekly, Some(day)) => date.weekday() == day.weekday(),
                _ => true,
            })
            .filter_map(|date| local(tz, date, at))
            .find(|due| *due > now)
    }
}

/// A camera's rule as `/api/cameras/{id}/render-rules` and `/api/render-rules/{id}` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraRenderRule {
    /// Rule id.
    pub id: i64,
    /// Its camera.
    pub camera_id: i64,
    /// The rule.
    #[serde(flatten)]
    pub rule: RenderRule,
    /// When the last run was due (a run missed while no origin ran is made up at start).
    pub last_run_at: Option<DateTime<Utc>>,
    /// What the last run did (`video 12 queued`, `no frames ...`).
    pub last_result: Option<String>,
    /// When the next run is due.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A local wall-clock time as an instant: the earlier of two in a fold, the first instant
/// after a gap (a spring-forward hour).
fn local(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
        chrono::LocalResult::None => (1..=180).find_map(|minutes| {
            tz.from_local_datetime(&(naive + Duration::minutes(minutes)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
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

    fn request(json: &str) -> Result<RenderOptions, FieldError> {
        serde_json::from_str::<RenderRequest>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn an_empty_request_is_the_standard_video() {
        let options = request("{}").unwrap();
        assert_eq!(options, RenderOptions::default());
        assert_eq!(options.frame_rate(100), 24.0);
        assert!(serde_json::from_str::<RenderRequest>(r#"{"speed": 2}"#).is_err());
    }

    #[test]
    fn invalid_combinations_name_the_field() {
        assert_eq!(request(r#"{"fps": 0}"#).unwrap_err().field, "fps");
        assert_eq!(request(r#"{"fps": 121}"#).unwrap_err().field, "fps");
        assert_eq!(
            request(r#"{"fps": 24, "duration_seconds": 10}"#)
                .unwrap_err()
                .field,
            "duration_seconds"
        );
        assert_eq!(
            request(r#"{"duration_seconds": 0}"#).unwrap_err().field,
            "duration_seconds"
        );
        assert_eq!(
            request(r#"{"every_nth": 0}"#).unwrap_err().field,
            "every_nth"
        );
        let backwards = r#"{"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}"#;
        assert_eq!(request(backwards).unwrap_err().field, "to");
        assert!(serde_json::from_str::<RenderRequest>(r#"{"preset": "ultra"}"#).is_err());
        assert!(serde_json::from_str::<RenderRequest>(r#"{"overlay": ["logo"]}"#).is_err());
    }

    #[test]
    fn a_duration_sets_the_frame_rate_within_a_frame() {
        let options = request(r#"{"duration_seconds": 7}"#).unwrap();
        let rate = options.frame_rate(100);
        assert_eq!(rate, 14.286);
        assert!((100.0 / rate - 7.0).abs() < 1.0 / rate);
        // Too few frames for the length: the slowest sane rate; too many: the fastest.
        assert_eq!(options.frame_rate(3), 1.0);
        assert_eq!(options.frame_rate(10_000), 60.0);
    }

    #[test]
    fn every_nth_takes_the_first_of_each_group() {
        let options = request(r#"{"every_nth": 3}"#).unwrap();
        let taken: Vec<usize> = (0..10).filter(|&i| options.takes(i)).collect();
        assert_eq!(taken, [0, 3, 6, 9]);
    }

    #[test]
    fn presets_scale_down_never_up_to_even_sizes() {
        assert_eq!(Preset::Draft.output_size(1280, 720), (852, 480));
        assert_eq!(Preset::Standard.output_size(1280, 720), (1280, 720));
        assert_eq!(Preset::High.output_size(1280, 720), (1280, 720));
        assert_eq!(Preset::High.output_size(3840, 2160), (1920, 1080));
        assert_eq!(Preset::Standard.output_size(641, 361), (640, 360));
    }

    #[test]
    fn the_render_key_covers_frames_options_and_overlay_text() {
        let text = OverlayText {
            timezone: "Europe/Paris",
            camera: "Roof",
        };
        let plain = RenderOptions::default();
        let key = |frames: &[&str], options: &RenderOptions, text: &OverlayText| {
            render_key(frames.iter().copied(), options, options.frame_rate(2), text)
        };
        let base = key(&["a", "b"], &plain, &text);
        assert_eq!(base.len(), 64);
        assert_eq!(base, key(&["a", "b"], &plain, &text));
        assert_ne!(base, key(&["b", "a"], &plain, &text));
        let draft = request(r#"{"preset": "draft"}"#).unwrap();
        assert_ne!(base, key(&["a", "b"], &draft, &text));
        // Overlay text matters only when drawn.
        let paris_time = request(r#"{"overlay": ["time", "time"]}"#).unwrap();
        assert_eq!(paris_time.overlay, [Overlay::Time]);
        let other_camera = OverlayText {
            camera: "Garden",
            ..text.clone()
        };
        assert_eq!(base, key(&["a", "b"], &plain, &other_camera));
        assert_eq!(
            key(&["a", "b"], &paris_time, &text),
            key(&["a", "b"], &paris_time, &other_camera)
        );
        let utc = OverlayText {
            timezone: "UTC",
            ..text.clone()
        };
        assert_ne!(
            key(&["a", "b"], &paris_time, &text),
            key(&["a", "b"], &paris_time, &utc)
        );
    }

    fn rule(json: &str) -> RenderRule {
        let rule: RenderRule = serde_json::from_str(json).unwrap();
        rule.validate().unwrap();
        rule
    }

    #[test]
    fn a_daily_rule_runs_after_its_time_for_the_day_before() {
        let daily = rule(r#"{"period": "daily", "at": "00:10"}"#);
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 2026-11-26 00:05 in Paris (UTC+1): today's run is not due; yesterday's is.
        let run = daily.last_run(at("2026-11-25T23:05:00Z"), tz).unwrap();
        assert_eq!(run.due, at("2026-11-24T23:10:00Z"));
        assert_eq!(run.from, at("2026-11-23T23:00:00Z"));
        assert_eq!(run.to, at("2026-11-24T23:00:00Z"));
        let run = daily.last_run(at("2026-11-25T23:10:00Z"), tz).unwrap();
        assert_eq!(run.due, at("2026-11-25T23:10:00Z"));
        assert_eq!(
            (run.from, run.to),
            (at("2026-11-24T23:00:00Z"), at("2026-11-25T23:00:00Z"))
        );
    }

    #[test]
    fn a_weekly_rule_runs_on_its_day_for_the_week_before() {
        let weekly = rule(r#"{"period": "weekly", "weekday": "monday", "at": "06:00"}"#);
        let utc: Tz = "UTC".parse().unwrap();
        // Thursday 2026-11-26: the last Monday 06:00 was 2026-11-23.
        let run = weekly.last_run(at("2026-11-26T12:00:00Z"), utc).unwrap();
        assert_eq!(run.due, at("2026-11-23T06:00:00Z"));
        assert_eq!(run.from, at("2026-11-16T00:00:00Z"));
        assert_eq!(run.to, at("2026-11-23T00:00:00Z"));
        // Monday before 06:00: the Monday before.
        let run = weekly.last_run(at("2026-11-23T05:59:00Z"), utc).unwrap();
        assert_eq!(run.due, at("2026-11-16T06:00:00Z"));
    }

    #[test]
    fn the_next_run_is_the_first_after_now() {
        let daily = rule(r#"{"period": "daily", "at": "00:10"}"#);
        let utc: Tz = "UTC".parse().unwrap();
        assert_eq!(
            daily.next_run(at("2026-11-26T00:09:00Z"), utc),
            Some(at("2026-11-26T00:10:00Z"))
        );
        assert_eq!(
            daily.next_run(at("2026-11-26T00:10:00Z"), utc),
            Some(at("2026-11-27T00:10:00Z"))
        );
        let weekly = rule(r#"{"period": "weekly", "weekday": "monday", "at": "06:00"}"#);
        assert_eq!(
            weekly.next_run(at("2026-11-26T12:00:00Z"), utc),
            Some(at("2026-11-30T06:00:00Z"))
        );
    }

    #[test]
    fn rules_are_checked() {
        let bad = |json: &str| {
            serde_json::from_str::<RenderRule>(json)
                .unwrap()
                .validate()
                .unwrap_err()
                .field
        };
        assert_eq!(bad(r#"{"period": "daily", "at": "25:00"}"#), "at");
        assert_eq!(bad(r#"{"period": "weekly", "at": "01:00"}"#), "weekday");
        assert_eq!(
            bad(r#"{"period": "daily", "at": "01:00", "fps": 500}"#),
            "fps"
        );
    }
}
