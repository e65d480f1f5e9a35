//! The pages: `/` (the public gallery), `/cameras/{id}` and `/dashboard`, server-rendered
//! with maud. Each is validated by a hash of its HTML (304 when unchanged) and kept current
//! in the browser by one EventSource (assets/app.js), so no page ever polls.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use timelapser_core::etag::{EntityTag, HashAlgorithm};
use timelapser_core::policy::ContentKind;
use timelapser_core::resources::{
    Camera, HealthStatus, Image, StorageSummary, Timelapse, Video, VideoStatus,
};

use super::assets::{css_url, js_url};
use super::auth::Viewer;
use super::respond;
use super::{Path, Query};
use crate::auth::Audience;
use crate::cache::Represented;
use crate::error::Result;
use crate::services::{cameras, settings, stats, timelapses};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(gallery))
        .route("/cameras/{id}", get(camera))
        .route("/dashboard", get(dashboard))
}

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// A transparent pixel, where a camera has no frame yet (the first capture replaces it live).
const BLANK: &str =
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/// Thumbnails per camera page.
const PAGE_SIZE: i64 = 24;

pub(super) fn page_response(
    method: &Method,
    headers: &HeaderMap,
    audience: Audience,
    markup: Markup,
) -> Response {
    let body = markup.into_string();
    let rep = Represented {
        value: (),
        etag: EntityTag::from_content(body.as_bytes(), HashAlgorithm::Sha256),
        body: body.into(),
    };
    respond::representation(
        method,
        headers,
        audience.kind(ContentKind::Page),
        &rep,
        HTML,
    )
}

/// What every page shows of the site: its name and its time zone.
pub(super) struct Site {
    pub name: String,
    pub zone: Tz,
}

impl Site {
    /// A time as pages show it: in the site's time zone (`2026-11-26 11:02:03 CET`).
    pub(super) fn time(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

pub(super) async fn site(state: &AppState) -> Result<Site> {
    Ok(Site {
        name: settings::site_name(state).await?,
        zone: settings::time_zone(state).await?,
    })
}

pub(super) fn layout(
    site: &Site,
    title: &str,
    page: &str,
    camera_id: Option<i64>,
    audience: Audience,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site.name) }
                link rel="stylesheet" href=(css_url());
                script src=(js_url()) defer {}
            }
            body data-page=(page) data-camera-id=[camera_id] data-timezone=(site.zone.name()) {
                header.site {
                    h1 { a href="/" { (site.name) } }
                    nav aria-label="Main" {
                        a href="/" { "Gallery" }
                        a href="/dashboard" { "Dashboard" }
                        @match audience {
                            Audience::SignedIn => a href="/console" { "Console" },
                            Audience::Public => a href="/login" { "Sign in" },
                        }
                    }
                    span.live role="status" aria-live="polite" data-state="connecting" { "connecting…" }
                }
                main id="main" { (content) }
            }
        }
    }
}

fn thumb_height(image: &Image) -> u32 {
    ((u64::from(image.height) * 320) / u64::from(image.width.max(1))).max(1) as u32
}

fn status_badge(status: &str) -> Markup {
    html! { span.status.(format!("status-{status}")) data-role="status" { (status) } }
}

async fn gallery(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let site = site(&state).await?;
    let cameras = cameras::list(&state, audience).await?;
    let cameras: &[Camera] = &cameras.value;
    let content = html! {
        h2.visually-hidden { "Cameras" }
        @if cameras.is_empty() {
            p.muted { "No cameras yet. Create one with POST /api/cameras." }
        }
        ul.grid {
            @for camera in cameras {
                li.card data-camera-id=(camera.id) {
                    a href={ "/cameras/" (camera.id) } {
                        @match &camera.latest_image {
                            Some(image) => img data-role="latest" src=(image.thumbnail_url) width="320" height=(thumb_height(image))
                                loading="lazy" alt={ "Latest frame from " (camera.name) ", captured " (site.time(image.captured_at)) };,
                            None => img data-role="latest" src=(BLANK) width="320" height="180" alt={ (camera.name) " has no frames yet" };,
                        }
                    }
                    div.meta {
                        h2 { a href={ "/cameras/" (camera.id) } data-role="name" { (camera.name) } }
                        (status_badge(camera.status.as_str()))
                        @if !camera.public { " " span.private-badge { "private" } }
                        span.muted { span data-role="count" { (camera.image_count) } " frames" }
                    }
                }
            }
        }
    };
    Ok(page_response(
        &method,
        &headers,
        audience,
        layout(&site, "Gallery", "gallery", None, audience, content),
    ))
}

#[derive(Deserialize)]
struct CameraPageQuery {
    before: Option<i64>,
}

async fn camera(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    Path(id): Path<i64>,
    Query(query): Query<CameraPageQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let site = site(&state).await?;
    let camera = cameras::get(&state, id, audience).await?;
    let camera: &Camera = &camera.value;
    let page = cameras::images(
        &state,
        id,
        audience,
        cameras::ImagesQuery {
            before: query.before,
            ..cameras::ImagesQuery::newest(PAGE_SIZE)
        },
    )
    .await?
    .value;
    let mut videos: Vec<(Timelapse, Vec<Video>)> = Vec::new();
    for timelapse in timelapses::for_camera(&state, id, audience).await?.value {
        let list = timelapses::videos(&state, timelapse.id, audience)
            .await?
            .value;
        videos.push((timelapse, list));
    }
    let first_page = query.before.is_none();
    let content = html! {
        article {
            h2 { (camera.name) " " span #status.status.(format!("status-{}", camera.status.as_str())) { (camera.status.as_str()) } }
            p.muted { span #image-count { (camera.image_count) } " frames" }
            (player(&site, camera))
            section.latest aria-labelledby="latest-heading" {
                h3 #latest-heading { "Latest frame" }
                @match &camera.latest_image {
                    Some(image) => img #latest-image src=(image.url) width=(image.width) height=(image.height)
                        alt={ "Latest frame from " (camera.name) ", captured " (site.time(image.captured_at)) };,
                    None => p.muted { "No frames yet." },
                }
            }
            section aria-labelledby="frames-heading" {
                h3 #frames-heading { "Frames, newest first" }
                ul.thumbs #thumbs data-first-page[first_page] {
                    @for image in &page.items {
                        li data-image-id=(image.id) { a href=(image.url) {
                            img src=(image.thumbnail_url) width="320" height=(thumb_height(image)) loading="lazy"
                                alt={ "Frame captured " (site.time(image.captured_at)) };
                        } }
                    }
                }
                nav aria-label="Pages of frames" {
                    @if !first_page { a href={ "/cameras/" (camera.id) } { "Newest" } " " }
                    @if let Some(before) = page.next_before { a href={ "/cameras/" (camera.id) "?before=" (before) } rel="next" { "Older frames" } }
                }
            }
            section #timelapses aria-labelledby="timelapses-heading" {
                h3 #timelapses-heading { "Timelapses" }
                @if videos.is_empty() { p.muted data-role="no-timelapses" { "No timelapses yet." } }
                @for (timelapse, list) in &videos {
                    section.timelapse data-timelapse-id=(timelapse.id) data-timelapse-name=(timelapse.name)
                        aria-labelledby={ "timelapse-" (timelapse.id) } {
                        h4 id={ "timelapse-" (timelapse.id) } { (timelapse.name) " " span.muted { "(" (timelapse.status.as_str()) ", " (timelapse.image_count) " frames)" } }
                        ul.videos {
                            @for video in list { (video_entry(&site, timelapse, video)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page_response(
        &method,
        &headers,
        audience,
        layout(
            &site,
            &camera.name,
            "camera",
            Some(camera.id),
            audience,
            content,
        ),
    ))
}

/// The frame player: a day of thumbnails played in one image (assets/app.js loads the day
/// through `GET /api/cameras/{id}/images?from=&to=` and preloads it, so a replay fetches
/// nothing). Rendered on the latest frame and its day, in the site's time zone.
fn player(site: &Site, camera: &Camera) -> Markup {
    let today = Utc::now().with_timezone(&site.zone).date_naive();
    let day = camera.latest_image.as_ref().map_or(today, |i| {
        i.captured_at.with_timezone(&site.zone).date_naive()
    });
    html! {
        section.player #player aria-labelledby="player-heading" data-day=(day) {
            h3 #player-heading { "Play the frames" }
            div.stage tabindex="0" role="group" aria-label="Frame"
                aria-keyshortcuts="Space ArrowLeft ArrowRight Home End" aria-describedby="player-keys" {
                @match &camera.latest_image {
                    Some(image) => img #player-frame src=(image.thumbnail_url) width="320" height=(thumb_height(image))
                        alt={ "Frame captured " (site.time(image.captured_at)) };,
                    None => img #player-frame src=(BLANK) width="320" height="180" alt="No frame on this day";,
                }
            }
            p #player-time aria-live="polite" aria-atomic="true" {
                @if let Some(image) = &camera.latest_image { (site.time(image.captured_at)) }
            }
            div.controls {
                button #player-play type="button" disabled { "Play" }
                button #player-previous type="button" disabled { "Previous frame" }
                button #player-next type="button" disabled { "Next frame" }
                label { "Speed "
                    select #player-speed {
                        @for fps in [1, 2, 5, 10, 30] {
                            option value=(fps) selected[fps == 10] { (fps) " frames/s" }
                        }
                    }
                }
                label.scrub { "Frame "
                    input #player-scrub type="range" min="0" max="0" value="0" step="1" disabled;
                }
                label { "Day "
                    input #player-day type="date" value=(day) max=(today.max(day));
                }
                button #player-earlier type="button" { "Previous day with frames" }
            }
            p #player-note.muted role="status" {}
            p #player-keys.muted { "Keys on the frame: Space plays or pauses, ← and → step one frame, Home and End go to the first and last." }
        }
    }
}

/// What a video says of itself: "preset standard · 24 fps · 40 frames · 1.7 s · 1.2 MB" (the
/// console's list too); assets/app.js writes the same line for a video that becomes ready
/// while the page is open.
pub(super) fn video_facts(video: &Video) -> String {
    let mut facts = vec![
        format!("preset {}", video.options.preset.as_str()),
        format!("{} fps", video.fps),
        format!("{} frames", video.frame_count),
        format!("{:.1} s", video.duration_seconds),
    ];
    if let Some(bytes) = video.bytes {
        facts.push(format_bytes(bytes));
    }
    facts.join(" · ")
}

/// One video of a camera page: a player (it seeks with Range requests) and a download link
/// once ready, its progress while queued or rendering (`video_progress` moves it), why it
/// failed otherwise. assets/app.js builds the same item from the video events.
fn video_entry(site: &Site, timelapse: &Timelapse, video: &Video) -> Markup {
    let percent = (video.progress * 100.0).round() as u32;
    html! {
        li.video data-video-id=(video.id) data-status=(video.status.as_str()) {
            @match (&video.url, video.status) {
                (Some(url), VideoStatus::Ready) => {
                    video controls preload="metadata" src=(url)
                        aria-label={ (timelapse.name) ", video " (video.id) } {}
                    p.facts {
                        span data-role="facts" { (video_facts(video)) } " · created "
                        time datetime=(video.created_at.to_rfc3339()) { (site.time(video.created_at)) }
                    }
                    a.download href=(url) download={ "timelapse-" (video.id) ".mp4" } {
                        "Download video " (video.id) @if let Some(bytes) = video.bytes { " (" (format_bytes(bytes)) ")" }
                    }
                }
                (_, VideoStatus::Queued | VideoStatus::Rendering) => {
                    span data-role="label" { "Video " (video.id) " (" (video.fps) " fps): " span data-role="status" { (video.status.as_str()) } }
                    " " progress max="1" value=(video.progress) aria-label={ "Render progress of video " (video.id) } { (percent) "%" }
                    " " span data-role="percent" { (percent) " %" }
                }
                _ => {
                    span data-role="label" { "Video " (video.id) ": " span data-role="status" { (video.status.as_str()) } }
                    @if let Some(error) = &video.error { " " span.error { (error) } }
                }
            }
        }
    }
}

async fn dashboard(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let site = site(&state).await?;
    let cameras = cameras::list(&state, audience).await?;
    let cameras: &[Camera] = &cameras.value;
    let numbers = stats::get(&state, audience).await?;
    let numbers = &numbers.value;
    let renders = timelapses::renders_in_flight(&state, audience).await?;
    let database = if state.db.ping().await {
        HealthStatus::Ok
    } else {
        HealthStatus::Down
    };
    let content = html! {
        section aria-labelledby="numbers-heading" {
            h2 #numbers-heading { "Now" }
            div.numbers {
                div { strong #stat-cameras { (numbers.cameras.total) } "cameras" }
                div { strong #stat-online { (numbers.cameras.online) } "online" }
                div { strong #stat-images { (numbers.images_total) } "frames stored" }
                div { strong #stat-today { (numbers.images_today) } "frames today" }
                div { strong #stat-storage { (format_bytes(numbers.storage_bytes)) } "storage used" }
                div { strong #stat-renders { (numbers.renders_in_flight) } "renders in flight" }
            }
        }
        section aria-labelledby="cameras-heading" {
            h2 #cameras-heading { "Cameras" }
            table {
                thead { tr { th scope="col" { "Camera" } th scope="col" { "Status" } th scope="col" { "Frames" } th scope="col" { "Last capture" } } }
                tbody {
                    @for camera in cameras {
                        tr data-camera-id=(camera.id) {
                            td { a href={ "/cameras/" (camera.id) } data-role="name" { (camera.name) } }
                            td { (status_badge(camera.status.as_str())) }
                            td data-role="count" { (camera.image_count) }
                            td { @if let Some(at) = camera.last_capture_at {
                                time data-role="last" data-relative datetime=(at.to_rfc3339()) title=(site.time(at)) { (site.time(at)) }
                            } @else { time data-role="last" data-relative { "never" } } }
                        }
                    }
                }
            }
        }
        @if let Some(storage) = &numbers.storage {
            (storage_section(storage))
        }
        section aria-labelledby="renders-heading" {
            h2 #renders-heading { "Rendering" }
            ul #renders {
                @for video in &renders {
                    li data-video-id=(video.id) {
                        span data-role="label" { "Video " (video.id) " (timelapse " (video.timelapse_id) "): " (video.status.as_str()) }
                        " " progress max="1" value=(video.progress) {}
                    }
                }
            }
        }
        section aria-labelledby="health-heading" {
            h2 #health-heading { "Health" }
            dl {
                dt { "Database" } dd data-component="database" { (format!("{database:?}").to_lowercase()) }
                dt { "Media disk" } dd data-component="media_disk" { "ok" }
                @if numbers.storage.is_some() {
                    dt { "Storage" } dd data-component="storage" { "no pressure since this page was loaded" }
                }
            }
        }
    };
    Ok(page_response(
        &method,
        &headers,
        audience,
        layout(&site, "Dashboard", "dashboard", None, audience, content),
    ))
}

/// The media disk and each camera's share of it (signed-in people only); `stats_updated`
/// keeps it current.
fn storage_section(storage: &StorageSummary) -> Markup {
    html! {
        section #storage aria-labelledby="storage-heading" {
            h2 #storage-heading { "Storage" }
            p {
                strong #stat-free { (format_bytes(storage.free_bytes)) } " free of "
                span #stat-disk { (format_bytes(storage.total_bytes)) } " · kept free: "
                span #stat-threshold { (format_bytes(storage.threshold_bytes)) } " · "
                span #stat-per-day { (format_bytes(storage.bytes_per_day)) } " a day · "
                strong #stat-days-left { (days_left_text(storage.days_left)) }
            }
            table {
                thead { tr { th scope="col" { "Camera" } th scope="col" { "Frames" } th scope="col" { "Stored" } th scope="col" { "Last 24 h" } } }
                tbody #storage-cameras {
                    @for c in &storage.cameras {
                        tr data-storage-camera=(c.camera_id) {
                            td { a href={ "/console/cameras/" (c.camera_id) } { (c.name) } }
                            td data-role="images" { (c.images) }
                            td data-role="bytes" { (format_bytes(c.bytes)) }
                            td data-role="per-day" { (format_bytes(c.bytes_per_day)) }
                        }
                    }
                }
            }
        }
    }
}

/// "12 days left at this rate", or that nothing is filling the disk.
pub fn days_left_text(days: Option<u64>) -> String {
    match days {
        None => "nothing captured in the last 24 h".to_owned(),
        Some(1) => "1 day left at this rate".to_owned(),
        Some(n) => format!("{n} days left at this rate"),
    }
}

/// Bytes for people: "1.5 MB".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
