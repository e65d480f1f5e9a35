//! Dashboard statistics: an aggregation over every table, cached in memory and invalidated
//! by the events that change it.

use std::sync::Arc;

use chrono::{Timelike, Utc};
use timelapser_core::resources::{CameraCounts, DashboardStats};

use timelapser_core::keys;

use super::CACHE_TTL;
use crate::cache::Represented;
use crate::db::{self, to_micros};
use crate::error::Result;
use crate::state::AppState;

/// Computes the numbers from the database.
pub async fn compute(state: &AppState) -> Result<DashboardStats> {
    let mut conn = state.db.pool().acquire().await?;
    let mut cameras = CameraCounts::default();
    for (status, n) in db::cameras::count_by_status(&mut conn).await? {
        let n = n as u64;
        cameras.total += n;
        match status.as_str() {
            "online" => cameras.online += n,
            "offline" => cameras.offline += n,
            "error" => cameras.error += n,
            _ => cameras.unknown += n,
        }
    }
    let now = Utc::now();
    let midnight = now
        .with_hour(0)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let (images_total, images_today) = db::images::counts(&mut conn, to_micros(midnight)).await?;
    let storage =
        db::images::storage_bytes(&mut conn).await? + db::videos::storage_bytes(&mut conn).await?;
    let renders = db::videos::count_in_flight(&mut conn).await?;
    Ok(DashboardStats {
        cameras,
        images_total: images_total as u64,
        images_today: images_today as u64,
        storage_bytes: storage as u64,
        renders_in_flight: renders as u64,
    })
}

/// The stats, from the cache; the tag is a hash of the body, so equal numbers revalidate.
pub async fn get(state: &AppState) -> Result<Arc<Represented<DashboardStats>>> {
    state
        .cache
        .get_or_load(&keys::dashboard_stats(), CACHE_TTL, || async move {
            Represented::json_tagged_by_content(compute(state).await?)
        })
        .await
}
