//! Live state that is derived rather than written: `stats_updated` (coalesced to at most one
//! a second, the latest value always published), `health_changed` (only on change), and the
//! event log's retention.

use std::time::Duration;

use timelapser_core::events::Event;
use timelapser_core::resources::{DashboardStats, HealthStatus};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Audience;
use crate::bus::{LoggedEvent, Readers};
use crate::state::AppState;

/// At most one `stats_updated` per this interval.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Whether an event can change the dashboard numbers.
fn affects_stats(event: &Event) -> bool {
    matches!(
        event,
        Event::CameraCreated { .. }
            | Event::CameraUpdated { .. }
            | Event::CameraDeleted { .. }
            | Event::CameraStatusChanged { .. }
            | Event::ImageCaptured { .. }
            | Event::VideoQueued { .. }
            | Event::VideoReady { .. }
            | Event::VideoFailed { .. }
    )
}

/// Recomputes the stats after events that change them, at most once per [`STATS_INTERVAL`],
/// and logs `stats_updated` when they differ from the last published (by any replica).
/// A change during the quiet interval is never lost: it is published when the interval ends.
pub fn spawn_stats_publisher(state: AppState, shutdown: CancellationToken) {
    let mut receiver = state.bus.subscribe();
    tokio::spawn(async move {
        // What was last published to the public and to signed-in people (by any replica).
        let mut last = Published::default();
        let mut dirty = false;
        let mut next_allowed = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = receiver.recv() => match received {
                    Ok(logged) => match &logged.event {
                        Event::StatsUpdated(stats) => last.saw(stats, logged.readers),
                        event if affects_stats(event) => dirty = true,
                        _ => {}
                    },
                    Err(RecvError::Lagged(_)) => dirty = true,
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep_until(next_allowed), if dirty => {
                    dirty = false;
                    next_allowed = Instant::now() + STATS_INTERVAL;
                    if let Err(e) = publish_stats(&state, &mut last).await {
                        tracing::warn!(error = %e, "could not publish stats_updated");
                        dirty = true;
                    }
                }
            }
        }
    });
}

/// The numbers last published to each audience.
#[derive(Default)]
struct Published {
    public: Option<DashboardStats>,
    signed_in: Option<DashboardStats>,
}

impl Published {
    fn saw(&mut self, stats: &DashboardStats, readers: Readers) {
        if readers != Readers::SignedIn {
            self.public = Some(stats.clone());
        }
        if readers != Readers::Anonymous {
            self.signed_in = Some(stats.clone());
        }
    }
}

/// Publishes the numbers that changed: once for everyone while no camera is private (the two
/// views are equal), else the public's (without private cameras) and signed-in people's apart.
async fn publish_stats(state: &AppState, last: &mut Published) -> crate::error::Result<()> {
    let any_private = {
        let mut conn = state.db.pool().acquire().await?;
        crate::db::cameras::any_private(&mut conn).await?
    };
    let signed_in = super::stats::compute(state, Audience::SignedIn).await?;
    // Without private cameras the two views are one (computed once: two computations could
    // straddle a write and differ for no reason).
    let public = if any_private {
        super::stats::compute(state, Audience::Public).await?
    } else {
        signed_in.clone()
    };
    let mut publications = Vec::new();
    if public == signed_in {
        if last.public.as_ref() != Some(&public) || last.signed_in.as_ref() != Some(&public) {
            publications.push((public, Readers::Everyone));
        }
    } else {
        if last.public.as_ref() != Some(&public) {
            publications.push((public, Readers::Anonymous));
        }
        if last.signed_in.as_ref() != Some(&signed_in) {
            publications.push((signed_in, Readers::SignedIn));
        }
    }
    for (stats, readers) in publications {
        state
            .events
            .append_for(Event::StatsUpdated(stats.clone()), readers)
            .await?;
        last.saw(&stats, readers);
    }
    Ok(())
}

/// How long the event log may hold events this process has not published before
/// `event_log` is `degraded` (publication normally follows a commit within milliseconds).
pub const PUBLICATION_LAG_LIMIT: Duration = Duration::from_secs(5);

/// Checks every `interval` the components API.md names — the database, the media disk,
/// ffmpeg and the event log's publication — and publishes `health_changed` for a component
/// only when its status changes (logged when the database can take it, ephemeral
/// otherwise).
pub fn spawn_health_monitor(state: AppState, interval: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut known: Vec<(&'static str, HealthStatus)> = vec![
            ("database", HealthStatus::Ok),
            ("media_disk", HealthStatus::Ok),
            ("ffmpeg", HealthStatus::Ok),
            ("event_log", HealthStatus::Ok),
        ];
        let mut lag_since: Option<Instant> = None;
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let ffmpeg = match state.renderer.ffmpeg().map(std::path::Path::to_path_buf) {
                None => (
                    HealthStatus::Down,
                    Some("ffmpeg is not installed; videos cannot be rendered".to_owned()),
                ),
                Some(path) => {
                    let works =
                        tokio::task::spawn_blocking(move || crate::render::ffmpeg_works(&path))
                            .await
                            .unwrap_or(false);
                    if works {
                        (HealthStatus::Ok, None)
                    } else {
                        (HealthStatus::Down, Some("ffmpeg -version fails".to_owned()))
                    }
                }
            };
            let event_log = match publication_lag(&state).await {
                Some(behind) if behind > 0 => {
                    let since = *lag_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= PUBLICATION_LAG_LIMIT {
                        (
                            HealthStatus::Degraded,
                            Some(format!(
                                "{behind} logged events not yet published for {} s",
                                since.elapsed().as_secs()
                            )),
                        )
                    } else {
                        (HealthStatus::Ok, None)
                    }
                }
                Some(_) => {
                    lag_since = None;
                    (HealthStatus::Ok, None)
                }
                None => (
                    HealthStatus::Down,
                    Some("the event log cannot be read".to_owned()),
                ),
            };
            let database = if state.db.ping().await {
                (HealthStatus::Ok, None)
            } else {
                (
                    HealthStatus::Down,
                    Some("the database does not answer".to_owned()),
                )
            };
            let disk = match state.media.disk_space() {
                // An object store's room is the provider's business.
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => (HealthStatus::Ok, None),
                Ok((free, total)) => {
                    if free < state.config.min_free.threshold(total) {
                        (
                            HealthStatus::Degraded,
                            Some(format!(
                                "{} MiB free on the media disk",
                                free / (1024 * 1024)
                            )),
                        )
                    } else {
                        (HealthStatus::Ok, None)
                    }
                }
                Err(e) => (
                    HealthStatus::Down,
                    Some(format!("cannot stat the media disk: {e}")),
                ),
            };
            for (component, (status, message)) in [
                ("database", database),
                ("media_disk", disk),
                ("ffmpeg", ffmpeg),
                ("event_log", event_log),
            ] {
                let entry = known
                    .iter_mut()
                    .find(|(c, _)| *c == component)
                    .expect("known component");
                if entry.1 == status {
                    continue;
                }
                entry.1 = status;
                tracing::warn!(component, ?status, ?message, "health changed");
                let event = Event::HealthChanged {
                    component: component.to_owned(),
                    status,
                    message,
                };
                if let Err(e) = state.events.append(event.clone()).await {
                    tracing::debug!(error = %e, "health event not logged; sending it unlogged");
                    state.bus.publish([LoggedEvent::ephemeral(event)]);
                }
            }
        }
    });
}

/// How many logged events this process has not published yet (`None` when the log cannot
/// be read).
async fn publication_lag(state: &AppState) -> Option<i64> {
    let mut conn = state.db.pool().acquire().await.ok()?;
    let (_, newest) = crate::db::events::bounds(&mut conn).await.ok()?;
    Some(newest.unwrap_or(0) - state.events.last_published().await)
}

/// Prunes the event log every `interval` to the retention settings.
pub fn spawn_pruner(state: AppState, interval: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            // Once across replicas sharing the log.
            let result = state
                .db
                .run_once(crate::db::JobKey::EventPruning, async {
                    let keep = super::settings::integer(&state, "event_retention_count").await?;
                    let hours = super::settings::integer(&state, "event_retention_hours").await?;
                    state
                        .events
                        .prune(keep, Duration::from_secs(hours.max(1) as u64 * 3600))
                        .await
                })
                .await;
            match result {
                Ok(None | Some(0)) => {}
                Ok(Some(deleted)) => tracing::info!(deleted, "pruned the event log"),
                Err(e) => tracing::warn!(error = %e, "pruning the event log failed"),
            }
        }
    });
}
