//! Purging the edge when a camera turns private (`timelapser_core::purge`): the edge keeps
//! media for a year without asking again, so what it stored while the camera was public would
//! otherwise still be served to anyone holding a URL.
//!
//! The paths are queued in the database in the same transaction as the change (a crash or an
//! unreachable edge loses none), then sent in batches by a background task, woken by the
//! change and every [`RETRY_EVERY`] while anything is queued; a batch leaves the queue only
//! once the edge has answered 2xx. Several replicas may send the same batch: purging twice is
//! harmless. Without a configured edge (`--edge-url`, `--edge-purge-token`) nothing is queued.
//!
//! What cannot be recalled: copies already in browsers (media is `immutable` there too), and
//! on a multi-location CDN the locations the purge does not reach (the Worker's Cache API is
//! per location; see the README).

use std::time::Duration;

use sqlx::AnyConnection;
use timelapser_core::purge::{PurgeReport, PurgeRequest, MAX_PATHS, PATH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db;
use crate::error::{Error, Result};
use crate::state::{AppState, EdgePurgeTarget};

/// How often a queue that could not be sent is tried again, at most.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);

/// The longest one purge request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wakes the purger after a commit that queued paths.
static WAKE: Notify = Notify::const_new();

/// The JSON and pages a public camera had at the edge (their query variants are revalidated
/// on every use and so replaced by the origin's 404; the pages that listed it are purged so
/// that no stale copy is served while the origin is down).
fn camera_paths(camera_id: i64, timelapses: &[i64], videos: &[i64]) -> Vec<String> {
    let mut paths = vec![
        "/".to_owned(),
        "/dashboard".to_owned(),
        "/api/cameras".to_owned(),
        "/api/dashboard/stats".to_owned(),
        format!("/cameras/{camera_id}"),
        format!("/api/cameras/{camera_id}"),
        format!("/api/cameras/{camera_id}/images"),
        format!("/api/cameras/{camera_id}/latest-image"),
        format!("/api/cameras/{camera_id}/timelapses"),
    ];
    for t in timelapses {
        paths.push(format!("/api/timelapses/{t}"));
        paths.push(format!("/api/timelapses/{t}/videos"));
    }
    paths.extend(videos.iter().map(|v| format!("/api/videos/{v}")));
    paths
}

/// Queues, in the caller's transaction, everything the edge may hold of a camera that has
/// just turned private; call [`wake`] after the commit.
pub async fn enqueue_camera(
    state: &AppState,
    conn: &mut AnyConnection,
    camera_id: i64,
    now: i64,
) -> Result<()> {
    if state.config.edge_purge.is_none() {
        return Ok(());
    }
    let timelapses: Vec<i64> = db::timelapses::for_camera(&mut *conn, camera_id)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    let mut videos = Vec::new();
    for t in &timelapses {
        videos.extend(
            db::videos::for_timelapse(&mut *conn, *t)
                .await?
                .iter()
                .map(|v| v.id),
        );
    }
    db::edge_purges::insert(
        &mut *conn,
        &camera_paths(camera_id, &timelapses, &videos),
        now,
    )
    .await?;
    db::edge_purges::insert_private_media_of_camera(&mut *conn, camera_id, now).await?;
    Ok(())
}

/// Wakes the purger (after the commit of [`enqueue_camera`]).
pub fn wake() {
    WAKE.notify_one();
}

/// Sends the queue to the edge until it is empty, whenever woken and every [`RETRY_EVERY`].
pub fn spawn(state: AppState, shutdown: CancellationToken) {
    let Some(target) = state.config.edge_purge.clone() else {
        return;
    };
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the edge purge client; purges stay queued");
                return;
            }
        };
        loop {
            if let Err(e) = drain(&state, &client, &target).await {
                tracing::warn!(error = %e, edge = %target.url, "purging the edge failed; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = WAKE.notified() => {}
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    });
}

/// Sends queued paths in batches until none is left (or a batch fails).
async fn drain(state: &AppState, client: &reqwest::Client, target: &EdgePurgeTarget) -> Result<()> {
    loop {
        let batch = {
            let mut conn = state.db.pool().acquire().await?;
            db::edge_purges::oldest(&mut conn, MAX_PATHS as i64).await?
        };
        if batch.is_empty() {
            return Ok(());
        }
        let request = PurgeRequest {
            paths: batch.iter().map(|(_, path)| path.clone()).collect(),
        };
        let response = client
            .post(format!("{}{PATH}", target.url))
            .bearer_auth(&target.token)
            .json(&request)
            .send()
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("the edge did not answer: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(Error::Internal(anyhow::anyhow!(
                "the edge answered {status}: {detail}"
            )));
        }
        let report: PurgeReport = response.json().await.unwrap_or_default();
        tracing::info!(
            paths = request.paths.len(),
            stored = report.purged,
            "purged the edge"
        );
        state.metrics.record(|| {
            metrics::counter!("edge_purged_paths_total").increment(request.paths.len() as u64)
        });
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let mut tx = state.db.begin_write().await?;
        db::edge_purges::delete(&mut tx, &ids).await?;
        tx.commit().await?;
    }
}
