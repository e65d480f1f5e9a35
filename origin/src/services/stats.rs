//! Dashboard statistics: an aggregation over every table, cached in memory and invalidated
//! by the events that change it.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use timelapser_core::resources::{CameraCounts, CameraStorage, DashboardStats, StorageSummary};

use timelapser_core::keys;

use super::{settings, CACHE_TTL};
use crate::auth::Audience;
use crate::cache::Represented;
use crate::db::{self, to_micros};
use crate::error::Result;
use crate::state::AppState;

/// Computes the numbers `audience` may see from the database (the public's count only
/// public cameras and what they captured).
pub async fn compute(state: &AppState, audience: Audience) -> Result<DashboardStats> {
    let public_only = audience == Audience::Public;
    let mut conn = state.db.pool().acquire().await?;
    let mut cameras = CameraCounts::default();
    for (status, n) in db::cameras::count_by_status(&mut conn, public_only).await? {
        let n = n as u64;
        cameras.total += n;
        match status.as_str() {
            "online" => cameras.online += n,
            "offline" => cameras.offline += n,
            "error" => cameras.error += n,
            _ => cameras.unknown += n,
        }
    }
    let midnight = start_of_day(Utc::now(), settings::time_zone(state).await?);
    let (images_total, images_today) =
        db::images::counts(&mut conn, to_micros(midnight), public_only).await?;
    let storage = db::images::storage_bytes(&mut conn, public_only).await?
        + db::videos::storage_bytes(&mut conn, public_only).await?;
    let renders = db::videos::count_in_flight(&mut conn, public_only).await?;
    let storage_summary = match audience {
        Audience::Public => None,
        Audience::SignedIn => Some(storage_summary(state, &mut conn).await?),
    };
    Ok(DashboardStats {
        cameras,
        images_total: images_total as u64,
        images_today: images_today as u64,
        storage_bytes: storage as u64,
        renders_in_flight: renders as u64,
        storage: storage_summary,
    })
}

/// The media disk, each camera's share, and the days left at the last 24 hours' rate.
async fn storage_summary(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
) -> Result<StorageSummary> {
    let (free_bytes, total_bytes) = state.media.disk_space().unwrap_or((0, 0));
    let threshold_bytes = state.config.min_free.threshold(total_bytes);
    let day_ago = to_micros(Utc::now() - chrono::Duration::days(1));
    let per_day = db::images::bytes_since_by_camera(conn, day_ago).await?;
    let cameras: Vec<CameraStorage> = db::cameras::storage(conn)
        .await?
        .into_iter()
        .map(|(camera_id, name, images, bytes)| CameraStorage {
            camera_id,
            name,
            images: images.max(0) as u64,
            bytes: bytes.max(0) as u64,
            bytes_per_day: per_day.get(&camera_id).copied().unwrap_or(0).max(0) as u64,
        })
        .collect();
    let bytes_per_day: u64 = cameras.iter().map(|c| c.bytes_per_day).sum();
    Ok(StorageSummary {
        free_bytes,
        total_bytes,
        threshold_bytes,
        bytes_per_day,
        days_left: days_left(free_bytes, threshold_bytes, bytes_per_day),
        cameras,
    })
}

/// Whole days until `free` falls to `threshold` at `per_day`; `None` without growth.
pub fn days_left(free: u64, threshold: u64, per_day: u64) -> Option<u64> {
    (per_day > 0).then(|| free.saturating_sub(threshold) / per_day)
}

/// When the day that holds `now` began in `zone`: its local midnight, or, where a DST change
/// skips midnight (Santiago, Havana), the first instant of the day that exists.
pub fn start_of_day(now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let day = now.with_timezone(&zone).date_naive();
    (0..=24 * 60)
        .map(|minute| day.and_time(NaiveTime::MIN) + chrono::Duration::minutes(minute))
        .find_map(|local| zone.from_local_datetime(&local).earliest())
        .map_or(now, |start| start.with_timezone(&Utc))
}

/// The stats, from the cache; the tag is a hash of the body, so equal numbers revalidate.
pub async fn get(state: &AppState, audience: Audience) -> Result<Arc<Represented<DashboardStats>>> {
    let key = match audience {
        Audience::Public => keys::public_dashboard_stats(),
        Audience::SignedIn => keys::dashboard_stats(),
    };
    state
        .cache
        .get_or_load(&key, CACHE_TTL, || async move {
            Represented::json_tagged_by_content(compute(state, audience).await?)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn days_left_at_the_current_rate() {
        assert_eq!(days_left(10_000, 1_000, 3_000), Some(3));
        assert_eq!(days_left(500, 1_000, 3_000), Some(0), "already below");
        assert_eq!(days_left(10_000, 1_000, 0), None, "nothing captured");
    }

    #[test]
    fn the_day_starts_at_local_midnight() {
        let cases = [
            (
                "2026-11-26T10:00:00Z",
                chrono_tz::UTC,
                "2026-11-26T00:00:00Z",
            ),
            (
                "2026-11-26T10:00:00Z",
                chrono_tz::Europe::Paris,
                "2026-11-25T23:00:00Z",
            ),
            // UTC+14: already the 27th there.
            (
                "2026-11-26T10:00:00Z",
                chrono_tz::Pacific::Kiritimati,
                "2026-11-26T10:00:00Z",
            ),
            (
                "2026-11-26T09:59:59Z",
                chrono_tz::Pacific::Kiritimati,
                "2026-11-25T10:00:00Z",
            ),
            // UTC-11: still the 25th there.
            (
                "2026-11-26T10:00:00Z",
                chrono_tz::Pacific::Pago_Pago,
                "2026-11-25T11:00:00Z",
            ),
            // Summer time: midnight is 22:00 UTC in Paris.
            (
                "2026-07-01T12:00:00Z",
                chrono_tz::Europe::Paris,
                "2026-06-30T22:00:00Z",
            ),
            // Santiago springs forward at midnight (2026-09-06): the day starts at 01:00 local.
            (
                "2026-09-06T12:00:00Z",
                chrono_tz::America::Santiago,
                "2026-09-06T04:00:00Z",
            ),
        ];
        for (now, zone, expected) in cases {
            assert_eq!(start_of_day(at(now), zone), at(expected), "{now} in {zone}");
        }
    }
}
