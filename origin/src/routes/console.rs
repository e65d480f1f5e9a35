//! The operator console: `/console` (cameras, settings, webhooks, users) and `/console/cameras/{id}`
//! (a camera's name, visibility, schedule, timelapses, renders and videos), for signed-in
//! people; `GET`/`POST /api/users` (operators).
//!
//! The pages are server-rendered like the public ones and kept current by the same
//! EventSource. Their forms are carried out by `app.js` against the JSON API, with the
//! session's CSRF token in `X-CSRF-Token` (the token is in the page, which is `private,
//! no-store`: only this person's browser ever holds it) and, where the API validates,
//! `If-Match` with the tag the page was rendered from: an edit made elsewhere in between is a
//! 412, shown as "changed elsewhere" with the current values, never a lost update. Without a
//! session the console redirects to `/login`; a viewer sees everything and changes nothing
//! (the forms are not shown, and the API answers 403).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use timelapser_core::render::{CameraRenderRule, Overlay, Period, RenderRule};
use timelapser_core::resources::{Camera, Timelapse, TimelapseStatus, Video, VideoStatus};
use timelapser_core::webhooks::{Delivery, Webhook, WebhookEvent};

use super::account::{personal, personal_json, see_other, HTML};
use super::auth::AdminAuth;
use super::pages::{days_left_text, format_bytes, layout, site, video_facts, Site};
use super::{Json, Path};
use crate::accounts::{self, Role, SessionUser};
use crate::auth::Audience;
use crate::db;
use crate::error::{Error, Result};
use crate::services::{
    cameras, render_rules, schedules, settings, stats, storage, timelapses, webhooks,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/cameras/{id}", get(camera))
        .route("/api/users", get(list_users).post(add_user))
}

/// A console page: one person's (it holds their CSRF token), never stored anywhere.
fn console_page(markup: Markup) -> Response {
    personal(StatusCode::OK, HTML, markup.into_string())
}

/// Without a session: to the sign-in page.
fn to_sign_in() -> Response {
    see_other("/login", [])
}

/// A time in the site's zone, shown live as a relative time ("3 min ago") by `app.js`.
fn when(site: &Site, at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) data-relative title=(site.time(at)) { (site.time(at)) }
    }
}

/// The console's frame: who is signed in, signing out, and the CSRF token for `app.js`.
fn console_layout(
    site: &Site,
    user: &SessionUser,
    last_event_id: i64,
    title: &str,
    content: Markup,
) -> Markup {
    layout(
        site,
        title,
        "console",
        None,
        Audience::SignedIn,
        html! {
            div.console #console data-csrf=(user.csrf_token) data-role=(user.role.as_str())
                data-last-event-id=(last_event_id) {
                // A div: a form may not be inside a paragraph (the parser would close it).
                div.whoami {
                    "Signed in as " strong #whoami { (user.name) } " (" (user.role.as_str()) ") "
                    form.inline method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(user.csrf_token);
                        button type="submit" { "Sign out" }
                    }
                }
                (content)
            }
        },
    )
}

/// "Changed elsewhere": shown by `app.js` when a form's `If-Match` got 412, with the current
/// values and the two ways on.
fn conflict_view(what_happened: &str) -> Markup {
    html! {
        div.conflict hidden role="alert" {
            p { strong { "Changed elsewhere." } " " (what_happened) }
            dl data-role="current" {}
            button type="button" data-reapply { "Apply my changes over them" }
            " "
            button type="button" data-take-current { "Use the current values" }
        }
    }
}

/// A labelled input for one setting or preference, typed by its JSON value.
fn value_field(key: &str, value: &serde_json::Value) -> Markup {
    html! {
        label {
            (key) " "
            @match value {
                serde_json::Value::Number(n) => input type="number" name=(key) value=(n) data-type="number";,
                serde_json::Value::String(s) => input name=(key) value=(s);,
                other => input name=(key) value=(other) data-type="json";,
            }
        }
    }
}

/// "30 days", or no limit.
fn limit_text(limit: Option<u64>, unit: &str) -> String {
    limit.map_or("no limit".to_owned(), |n| format!("{n} {unit}"))
}

/// Where a form's outcome is told (errors from the API's problem documents).
fn outcome() -> Markup {
    html! { p.outcome role="status" aria-live="polite" {} }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let Some((_, user)) = accounts::signed_in(&state.db, &headers).await? else {
        return Ok(to_sign_in());
    };
    // Before anything is read: the page's stream resumes here.
    let last_event_id = state.events.last_published().await;
    let site = site(&state).await?;
    let operator = user.role == Role::Operator;
    let cameras = cameras::list(&state, Audience::SignedIn).await?;
    let cameras: &[Camera] = &cameras.value;
    let current = settings::get(&state).await?;
    // The operator's preferences (viewers have none: the API is an operator's).
    let preferences = if operator {
        Some(settings::get_preferences(&state).await?)
    } else {
        None
    };
    let users = {
        let mut conn = state.db.pool().acquire().await?;
        db::users::list(&mut conn).await?
    };
    // Webhooks are an operator's (the API answers viewers 403).
    let mut hooks: Vec<(Webhook, Vec<Delivery>)> = Vec::new();
    if operator {
        for hook in webhooks::list(&state).await?.value {
            let log = webhooks::deliveries(&state, hook.id, Some(WEBHOOK_LOG_SHOWN))
                .await?
                .value;
            hooks.push((hook, log));
        }
    }
    let content = html! {
        section aria-labelledby="console-cameras" {
            h2 #console-cameras { "Cameras" }
            table #camera-table {
                thead { tr { th scope="col" { "Camera" } th scope="col" { "Status" } th scope="col" { "Visibility" } th scope="col" { "Frames" } th scope="col" { "Last capture" } } }
                tbody {
                    @for camera in cameras {
                        tr data-camera-id=(camera.id) {
                            td { a href={ "/console/cameras/" (camera.id) } data-role="name" { (camera.name) } }
                            td { span.status.(format!("status-{}", camera.status.as_str())) data-role="status" { (camera.status.as_str()) } }
                            td data-role="visibility" { @if camera.public { "public" } @else { "private" } }
                            td data-role="count" { (camera.image_count) }
                            td { @if let Some(at) = camera.last_capture_at { (when(&site, at)) } @else { "never" } }
                        }
                    }
                }
            }
            @if operator {
                h3 { "New camera" }
                form #new-camera data-api="POST /api/cameras" data-after="token" {
                    label { "Name " input name="name" required maxlength="100"; }
                    button type="submit" { "Create camera" }
                    (outcome())
                }
                section #new-token hidden aria-live="polite" {
                    h3 { "Camera created" }
                    p { "Its upload token is shown this once. Copy it now; only its hash is kept." }
                    p { code #token-value {} " " button type="button" data-copy="#token-value" { "Copy token" } }
                    p { "A configuration for " code { "timelapser-agent" } " on the camera host (save the token in the token file):" }
                    pre #agent-config {}
                    button type="button" data-copy="#agent-config" { "Copy configuration" }
                    p { a #new-camera-link href="/console" { "Open the new camera" } }
                }
            }
        }
        section aria-labelledby="console-settings" {
            h2 #console-settings { "Settings" }
            form #settings data-api="PUT /api/settings" data-etag=(current.etag.to_string()) data-after="saved" data-conflict="/api/settings" {
                fieldset disabled[!operator] {
                    @for (key, value) in &current.value.values {
                        (value_field(key, value))
                    }
                    @if operator { button type="submit" { "Save settings" } }
                }
                (outcome())
                (conflict_view("Someone saved these settings after you opened this page. The current values:"))
            }
        }
        @if let Some(preferences) = &preferences {
            section aria-labelledby="console-preferences" {
                h2 #console-preferences { "Preferences" }
                form #preferences data-api="PUT /api/preferences" data-etag=(preferences.etag.to_string()) data-after="saved" data-conflict="/api/preferences" {
                    @for key in settings::known_preferences().filter(|k| !preferences.value.values.contains_key(*k)) {
                        label { (key) " " input name=(key) value="" data-optional placeholder="not set"; }
                    }
                    @for (key, value) in &preferences.value.values {
                        (value_field(key, value))
                    }
                    button type="submit" { "Save preferences" }
                    (outcome())
                    (conflict_view("The preferences were saved elsewhere after you opened this page. The current values:"))
                }
            }
        }
        @if operator { (webhooks_section(&site, &hooks)) }
        section aria-labelledby="console-users" {
            h2 #console-users { "People" }
            ul #users {
                @for (_, name, role) in &users { li { (name) " " span.muted { "(" (role) ")" } } }
            }
            @if operator {
                h3 { "Add a person" }
                form #new-user data-api="POST /api/users" data-after="reload" {
                    label { "Name " input name="name" required maxlength="64" autocomplete="off"; }
                    label { "Password " input type="password" name="password" required minlength="10" autocomplete="new-password"; }
                    label { "Role "
                        select name="role" {
                            option value="viewer" { "viewer (sees private cameras)" }
                            option value="operator" { "operator (changes things)" }
                        }
                    }
                    button type="submit" { "Add" }
                    (outcome())
                }
            }
        }
    };
    Ok(console_page(console_layout(
        &site,
        &user,
        last_event_id,
        "Console",
        content,
    )))
}

async fn camera(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some((_, user)) = accounts::signed_in(&state.db, &headers).await? else {
        return Ok(to_sign_in());
    };
    let last_event_id = state.events.last_published().await;
    let site = site(&state).await?;
    let operator = user.role == Role::Operator;
    let camera = cameras::get(&state, id, Audience::SignedIn).await?;
    let camera: &Camera = &camera.value;
    let schedule = schedules::get(&state, id).await?;
    let mut runs: Vec<(Timelapse, Vec<Video>)> = Vec::new();
    for timelapse in timelapses::for_camera(&state, id, Audience::SignedIn)
        .await?
        .value
    {
        let videos = timelapses::videos(&state, timelapse.id, Audience::SignedIn)
            .await?
            .value;
        runs.push((timelapse, videos));
    }
    let running = runs
        .iter()
        .any(|(t, _)| t.status == TimelapseStatus::Running);
    let retention = storage::get_retention(&state, id).await?;
    let rules = render_rules::list(&state, id).await?;
    let numbers = stats::get(&state, Audience::SignedIn).await?;
    let disk = numbers.value.storage.clone();
    let stored = disk
        .as_ref()
        .and_then(|d| d.cameras.iter().find(|c| c.camera_id == id).cloned());
    let s = &schedule.value.schedule;
    let windows = serde_json::to_string(&s.windows).map_err(|e| Error::Internal(e.into()))?;
    let sun = serde_json::to_string(&s.sun).map_err(|e| Error::Internal(e.into()))?;
    let content = html! {
        p { a href="/console" { "← All cameras" } " · " a href={ "/cameras/" (camera.id) } { "Its page" } }
        h2 { span data-role="name" { (camera.name) } " "
            span.status.(format!("status-{}", camera.status.as_str())) #status data-role="status" { (camera.status.as_str()) } }
        p.muted { span #image-count { (camera.image_count) } " frames · " @if camera.public { "public" } @else { "private" }
            @if let Some(at) = camera.last_capture_at { " · last capture " (when(&site, at)) } }
        @if operator {
            section aria-labelledby="camera-settings" {
                h3 #camera-settings { "Camera" }
                form #rename data-api={ "PATCH /api/cameras/" (camera.id) } data-after="reload" {
                    label { "Name " input name="name" value=(camera.name) required maxlength="100"; }
                    button type="submit" { "Rename" }
                    (outcome())
                }
                form #visibility data-api={ "PATCH /api/cameras/" (camera.id) } data-after="reload" {
                    label { "Visibility "
                        select name="public" data-type="json" {
                            option value="true" selected[camera.public] { "public: in the gallery, cached by the edge" }
                            option value="false" selected[!camera.public] { "private: signed-in people only" }
                        }
                    }
                    button type="submit" { "Save visibility" }
                    (outcome())
                }
                form #delete-camera data-api={ "DELETE /api/cameras/" (camera.id) } data-after="goto:/console"
                    data-confirm={ "Delete " (camera.name) " with all its frames, timelapses and videos? This cannot be undone." } {
                    button.danger type="submit" { "Delete camera" }
                    (outcome())
                }
            }
        }
        section aria-labelledby="schedule-heading" {
            h3 #schedule-heading { "Schedule" }
            form #schedule data-api={ "PUT /api/cameras/" (camera.id) "/schedule" } data-etag=(schedule.etag.to_string())
                data-after="saved" data-conflict={ "/api/cameras/" (camera.id) "/schedule" } {
                fieldset disabled[!operator] {
                    label { "Every " input type="number" name="interval_seconds" min="1" max="86400" value=(s.interval_seconds) data-type="number"; " seconds" }
                    label { "Time zone " input name="timezone" value=(s.timezone); }
                    label { "Daily windows (JSON, e.g. [{\"start\":\"07:00\",\"end\":\"19:00\"}]) " input name="windows" value=(windows) data-type="json"; }
                    label { "Sun window (JSON or null) " input name="sun" value=(sun) data-type="json"; }
                    label { input type="checkbox" name="paused" checked[s.paused]; " Paused" }
                    @if operator { button type="submit" { "Save schedule" } }
                }
                (outcome())
                (conflict_view("The schedule was saved elsewhere after you opened this page. The current values:"))
            }
        }
        section aria-labelledby="storage-heading" {
            h3 #storage-heading { "Storage and retention" }
            @if let (Some(stored), Some(disk)) = (&stored, &disk) {
                p { (format_bytes(stored.bytes)) " in " (stored.images) " frames; "
                    (format_bytes(stored.bytes_per_day)) " in the last 24 h. The disk: "
                    (format_bytes(disk.free_bytes)) " free, " (days_left_text(disk.days_left)) "." }
            }
            @let r = &retention.value;
            @let field = |v: Option<u64>| v.map_or("null".to_owned(), |n| n.to_string());
            form #retention data-api={ "PUT /api/cameras/" (camera.id) "/retention" } data-etag=(retention.etag.to_string())
                data-after="reload" data-conflict={ "/api/cameras/" (camera.id) "/retention" } {
                p.muted { "A number, 0 for no limit, or null for the site's setting. Frames of protected
                    timelapses are never pruned; a running timelapse's only when the size cap cannot be met otherwise." }
                fieldset disabled[!operator] {
                    label { "Keep frames (days) " input name="images_days" value=(field(r.retention.images_days.map(u64::from))) data-type="json"; }
                    span.muted { " in force: " (limit_text(r.effective.images_age_limit().map(u64::from), "days")) }
                    label { "At most (bytes of frames) " input name="images_max_bytes" value=(field(r.retention.images_max_bytes)) data-type="json"; }
                    span.muted { " in force: " (r.effective.images_size_cap().map_or("no cap".to_owned(), format_bytes)) }
                    label { "Keep videos (days) " input name="videos_days" value=(field(r.retention.videos_days.map(u64::from))) data-type="json"; }
                    span.muted { " in force: " (limit_text(r.effective.videos_age_limit().map(u64::from), "days")) }
                    @if operator { button type="submit" { "Save retention" } }
                }
                (outcome())
                (conflict_view("The retention was saved elsewhere after you opened this page. The current values:"))
            }
        }
        (rules_section(&site, camera.id, &rules.value, operator))
        section aria-labelledby="timelapses-heading" {
            h3 #timelapses-heading { "Timelapses" }
            @if operator && !running {
                form #start-timelapse data-api={ "POST /api/cameras/" (camera.id) "/timelapses" } data-after="reload" {
                    label { "Name " input name="name" required maxlength="100"; }
                    button type="submit" { "Start timelapse" }
                    (outcome())
                }
            }
            @if runs.is_empty() { p.muted { "No timelapses yet." } }
            @for (timelapse, videos) in &runs {
                article.timelapse data-timelapse-id=(timelapse.id) {
                    h4 { (timelapse.name) " " span.muted { "(" (timelapse.status.as_str()) ", " span data-role="frames" { (timelapse.image_count) } " frames, started " (when(&site, timelapse.started_at)) ")" }
                        @if timelapse.protected { " " span.badge data-role="protected" { "protected" } } }
                    @if operator {
                        form.inline data-api={ "PATCH /api/timelapses/" (timelapse.id) } data-after="reload" {
                            input type="hidden" name="protected" value=(!timelapse.protected) data-type="json";
                            button type="submit" { @if timelapse.protected { "Unprotect" } @else { "Protect from pruning" } }
                            (outcome())
                        }
                        @if timelapse.status != TimelapseStatus::Running {
                            form.inline data-api={ "DELETE /api/timelapses/" (timelapse.id) "?frames=keep" } data-after="reload"
                                data-confirm={ "Delete the timelapse " (timelapse.name) " and its videos, keeping its frames?" } {
                                button type="submit" { "Delete, keep frames" } (outcome())
                            }
                            form.inline data-api={ "DELETE /api/timelapses/" (timelapse.id) "?frames=delete" } data-after="reload"
                                data-confirm={ "Delete the timelapse " (timelapse.name) " with its " (timelapse.image_count) " frames and its videos? This cannot be undone." } {
                                button.danger type="submit" { "Delete with frames" } (outcome())
                            }
                        }
                        @if timelapse.status == TimelapseStatus::Running {
                            form.inline data-api={ "POST /api/timelapses/" (timelapse.id) "/stop" } data-after="reload" {
                                button type="submit" { "Stop" } (outcome())
                            }
                        }
                        form.inline.render data-api={ "POST /api/timelapses/" (timelapse.id) "/videos" } data-after="video" {
                            (preset_select("standard"))
                            label { "Frames per second " input type="number" name="fps" min="1" max="120" placeholder="24" data-type="number" data-optional; }
                            label { "or length (s) " input type="number" name="duration_seconds" min="1" step="any" data-type="number" data-optional; }
                            label { "Every n-th frame " input type="number" name="every_nth" min="1" value="1" data-type="number"; }
                            (overlay_select(&[]))
                            label { input type="checkbox" name="deflicker"; " Deflicker" }
                            button type="submit" { "Render" }
                            (outcome())
                        }
                    }
                    ul.videos {
                        @for video in videos { (video_item(video, operator)) }
                    }
                }
            }
        }
    };
    Ok(console_page(console_layout(
        &site,
        &user,
        last_event_id,
        &camera.name,
        html! { div data-console-camera=(camera.id) { (content) } },
    )))
}

/// The quality presets, as a select.
fn preset_select(selected: &str) -> Markup {
    html! {
        label { "Quality "
            select name="preset" {
                @for (value, label) in [("draft", "draft (480p, quick)"), ("standard", "standard (720p)"), ("high", "high (1080p)")] {
                    option value=(value) selected[value == selected] { (label) }
                }
            }
        }
    }
}

/// The overlays, as a select of JSON lists (the form sends the list).
fn overlay_select(selected: &[Overlay]) -> Markup {
    let choices: [(&str, &[Overlay], &str); 4] = [
        ("[]", &[], "nothing"),
        ("[\"time\"]", &[Overlay::Time], "capture time"),
        ("[\"camera\"]", &[Overlay::Camera], "camera name"),
        (
            "[\"camera\",\"time\"]",
            &[Overlay::Time, Overlay::Camera],
            "time and camera name",
        ),
    ];
    html! {
        label { "Draw "
            select name="overlay" data-type="json" {
                @for (value, overlays, label) in choices {
                    option value=(value) selected[overlays == selected] { (label) }
                }
            }
        }
    }
}

fn rule_summary(rule: &RenderRule) -> String {
    let when = match (rule.period, rule.weekday) {
        (Period::Weekly, Some(day)) => format!("Every {day:?} at {}", rule.at),
        _ => format!("Every day at {}", rule.at),
    };
    let frames = match rule.period {
        Period::Daily => "the day before",
        Period::Weekly => "the seven days before",
    };
    let mut extras = vec![rule.preset.as_str().to_owned()];
    if let Some(fps) = rule.fps {
        extras.push(format!("{fps} fps"));
    }
    if let Some(seconds) = rule.duration_seconds {
        extras.push(format!("{seconds} s long"));
    }
    for overlay in &rule.overlay {
        extras.push(match overlay {
            Overlay::Time => "time drawn".to_owned(),
            Overlay::Camera => "name drawn".to_owned(),
        });
    }
    if rule.deflicker {
        extras.push("deflickered".to_owned());
    }
    format!("{when}: {frames} ({})", extras.join(", "))
}

/// The camera's automatic render rules, each with its next and last run, and a form to add
/// one (times in the site's time zone).
fn rules_section(
    site: &Site,
    camera_id: i64,
    rules: &[CameraRenderRule],
    operator: bool,
) -> Markup {
    html! {
        section #render-rules aria-labelledby="rules-heading" {
            h3 #rules-heading { "Automatic videos" }
            @if rules.is_empty() { p.muted { "No automatic videos: add a rule to render a video every day or every week." } }
            ul {
                @for r in rules {
                    li data-rule-id=(r.id) {
                        span data-role="summary" { (rule_summary(&r.rule)) }
                        @if !r.rule.enabled { " " span.badge { "paused" } }
                        br;
                        span.muted {
                            "Next: " (r.next_run_at.filter(|_| r.rule.enabled).map_or("—".to_owned(), |t| site.time(t)))
                            @if let Some(result) = &r.last_result { " · last run: " span data-role="last-result" { (result) } }
                        }
                        @if operator {
                            form.inline data-api={ "PUT /api/render-rules/" (r.id) } data-after="reload" {
                                @for (name, value) in rule_fields(&r.rule, !r.rule.enabled) {
                                    input type="hidden" name=(name) value=(value) data-type="json";
                                }
                                button type="submit" { @if r.rule.enabled { "Pause" } @else { "Resume" } }
                                (outcome())
                            }
                            form.inline data-api={ "DELETE /api/render-rules/" (r.id) } data-after="reload" data-confirm="Delete this rule? Its videos stay." {
                                button type="submit" { "Delete rule" } (outcome())
                            }
                        }
                    }
                }
            }
            @if operator {
                form #new-rule data-api={ "POST /api/cameras/" (camera_id) "/render-rules" } data-after="reload" {
                    label { "Every "
                        select name="period" { option value="daily" { "day" } option value="weekly" { "week" } }
                    }
                    label { " on "
                        select name="weekday" data-optional {
                            option value="" { "(weekly rules)" }
                            @for day in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] { option value=(day) { (day) } }
                        }
                    }
                    label { " at " input type="time" name="at" value="00:10" required; }
                    (preset_select("standard"))
                    label { "Length (s) " input type="number" name="duration_seconds" min="1" step="any" data-type="number" data-optional; }
                    (overlay_select(&[Overlay::Time]))
                    label { input type="checkbox" name="deflicker"; " Deflicker" }
                    button type="submit" { "Add rule" }
                    (outcome())
                }
            }
        }
    }
}

/// A rule's fields as the hidden inputs of a PUT (JSON values), paused or resumed.
fn rule_fields(rule: &RenderRule, enabled: bool) -> Vec<(String, String)> {
    let mut rule = rule.clone();
    rule.enabled = enabled;
    match serde_json::to_value(&rule) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// One video: its progress while rendering, then a player (it seeks with Range requests) and
/// a download link.
fn video_item(video: &Video, operator: bool) -> Markup {
    let percent = (video.progress * 100.0).round() as u32;
    html! {
        li.video data-video-id=(video.id) data-status=(video.status.as_str()) {
            span data-role="label" { "Video " (video.id) " (" (video_facts(video)) @if let Some(rule) = video.rule_id { ", rule " (rule) } "): " span data-role="status" { (video.status.as_str()) } }
            @match (&video.url, video.status) {
                (Some(url), VideoStatus::Ready) => {
                    video controls preload="metadata" src=(url) aria-label={ "Video " (video.id) } {}
                    " " a href=(url) download={ "timelapse-" (video.id) ".mp4" } { "Download" }
                }
                (_, VideoStatus::Queued | VideoStatus::Rendering) => {
                    " " progress max="1" value=(video.progress) aria-label={ "Render progress of video " (video.id) } { (percent) "%" }
                    " " span data-role="percent" { (percent) " %" }
                }
                _ => { @if let Some(error) = &video.error { " " span.error { (error) } } }
            }
            @if operator && video.status != VideoStatus::Rendering {
                form.inline data-api={ "DELETE /api/videos/" (video.id) } data-after="reload" data-confirm="Delete this video?" {
                    button type="submit" { "Delete" } (outcome())
                }
            }
        }
    }
}

/// Deliveries shown per webhook in the console.
const WEBHOOK_LOG_SHOWN: i64 = 5;

/// The webhooks, each with its last deliveries, and a form to add one. The new webhook's
/// secret is generated into the form (the page is this person's alone, never stored), so it
/// can be copied before it is saved; the API never shows it again.
fn webhooks_section(site: &Site, hooks: &[(Webhook, Vec<Delivery>)]) -> Markup {
    let all: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
    let all = serde_json::to_string(&all).unwrap_or_default();
    html! {
        section aria-labelledby="console-webhooks" {
            h2 #console-webhooks { "Webhooks" }
            p.muted { "Each is POSTed a JSON body signed with its secret (" code { "Timelapser-Signature" }
                ") when one of its events happens; a receiver that fails is retried with backoff." }
            @if hooks.is_empty() { p.muted { "No webhooks yet." } }
            @for (hook, log) in hooks {
                article.webhook data-webhook-id=(hook.id) {
                    h3 { code { (hook.url) } " " span.muted { "("
                        (hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "))
                        @if !hook.enabled { "; disabled" } ")" } }
                    form.inline data-api={ "PATCH /api/webhooks/" (hook.id) } data-after="reload" {
                        input type="hidden" name="enabled" value=(!hook.enabled) data-type="json";
                        button type="submit" { @if hook.enabled { "Disable" } @else { "Enable" } }
                        (outcome())
                    }
                    form.inline data-api={ "DELETE /api/webhooks/" (hook.id) } data-after="reload"
                        data-confirm={ "Delete the webhook to " (hook.url) " and its delivery log?" } {
                        button.danger type="submit" { "Delete" } (outcome())
                    }
                    @if log.is_empty() { p.muted { "Nothing sent yet." } } @else {
                        table.deliveries {
                            thead { tr { th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "When" } } }
                            tbody {
                                @for d in log {
                                    tr data-delivery-id=(d.id) {
                                        td { (d.event.as_str()) }
                                        td { (d.status.as_str()) }
                                        td { (d.attempt_count) }
                                        td { @if let Some(code) = d.last_status_code { (code) " " }
                                            @if let Some(error) = &d.last_error { span.error { (error) } } }
                                        td { @if let Some(at) = d.delivered_at { "delivered " (when(site, at)) }
                                            @else if let Some(at) = d.next_attempt_at { "next attempt " (when(site, at)) }
                                            @else { "created " (when(site, d.created_at)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "New webhook" }
            form #new-webhook data-api="POST /api/webhooks" data-after="reload" {
                label { "URL " input type="url" name="url" required maxlength="2048" placeholder="https://example.org/hooks/timelapser"; }
                label { "Secret (copy it now: it is not shown again) "
                    input name="secret" value=(webhooks::generate_secret()) required minlength="16" maxlength="256" autocomplete="off" spellcheck="false"; }
                fieldset {
                    legend { "Events" }
                    @for event in WebhookEvent::ALL {
                        label { input type="checkbox" value=(event.as_str()) data-list-of="new-webhook-events" checked; " " (event.as_str()) }
                    }
                }
                input type="hidden" #new-webhook-events name="events" value=(all) data-type="json";
                button type="submit" { "Add webhook" }
                (outcome())
            }
        }
    }
}

/// A person, as `GET /api/users` lists them (never their password hash).
#[derive(Serialize)]
struct Person {
    id: i64,
    name: String,
    role: String,
}

async fn list_users(State(state): State<AppState>, _: AdminAuth) -> Result<Response> {
    let mut conn = state.db.pool().acquire().await?;
    let people: Vec<Person> = db::users::list(&mut conn)
        .await?
        .into_iter()
        .map(|(id, name, role)| Person { id, name, role })
        .collect();
    personal_json(StatusCode::OK, &people)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    name: String,
    password: String,
    role: String,
}

/// Adds a person (operators and the admin token): 201, 409 when the name is taken, 422 for a
/// bad role, name or password.
async fn add_user(
    State(state): State<AppState>,
    _: AdminAuth,
    Json(person): Json<NewPerson>,
) -> Result<Response> {
    let role = Role::parse(&person.role)
        .ok_or_else(|| Error::Unprocessable("role must be \"viewer\" or \"operator\"".into()))?;
    let id = accounts::add_user(&state.db, &person.name, role, &person.password).await?;
    personal_json(
        StatusCode::CREATED,
        &Person {
            id,
            name: person.name.trim().to_owned(),
            role: role.as_str().to_owned(),
        },
    )
}
