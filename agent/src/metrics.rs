//! The agent's metrics, in its own Prometheus registry (as each origin has its own), so that
//! agents run side by side in a test count apart; served as Prometheus text on
//! `--metrics-listen`.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// One agent's registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Self(Arc::new(Inner { recorder, handle }))
    }

    /// The counters of one camera, labelled with its id.
    pub fn camera(&self, camera_id: i64) -> CameraMetrics {
        metrics::with_local_recorder(&self.0.recorder, || {
            let id = camera_id.to_string();
            let counter = |name: &'static str| metrics::counter!(name, "camera_id" => id.clone());
            let skipped = |reason: &'static str| metrics::counter!("agent_frames_skipped_total", "camera_id" => id.clone(), "reason" => reason);
            metrics::describe_counter!(
                "agent_frames_captured_total",
                "Frames the source gave at scheduled instants"
            );
            metrics::describe_counter!(
                "agent_frames_spooled_total",
                "Frames written durably to the spool"
            );
            metrics::describe_counter!(
                "agent_frames_uploaded_total",
                "Frames the origin accepted (201 new, or 200 already stored)"
            );
            metrics::describe_counter!(
                "agent_frames_dropped_total",
                "Oldest frames dropped because the spool was full"
            );
            metrics::describe_counter!(
                "agent_frames_rejected_total",
                "Frames the origin refused for good (kept in the spool's rejected/)"
            );
            metrics::describe_counter!(
                "agent_frames_skipped_total",
                "Blank or frozen frames not uploaded, by reason"
            );
            metrics::describe_counter!(
                "agent_capture_failures_total",
                "Scheduled instants without a frame (source or spool failure)"
            );
            metrics::describe_counter!(
                "agent_source_reconnects_total",
                "Stream sessions restarted"
            );
            metrics::describe_counter!(
                "agent_upload_failures_total",
                "Upload attempts that will be retried"
            );
            metrics::describe_gauge!("agent_spool_frames", "Frames waiting in the spool");
            metrics::describe_gauge!("agent_spool_bytes", "Bytes waiting in the spool");
            CameraMetrics {
                captured: counter("agent_frames_captured_total"),
                spooled: counter("agent_frames_spooled_total"),
                uploaded: counter("agent_frames_uploaded_total"),
                dropped: counter("agent_frames_dropped_total"),
                rejected: counter("agent_frames_rejected_total"),
                skipped_blank: skipped("blank"),
                skipped_frozen: skipped("frozen"),
                capture_failures: counter("agent_capture_failures_total"),
                reconnects: counter("agent_source_reconnects_total"),
                upload_failures: counter("agent_upload_failures_total"),
                spool_frames: metrics::gauge!("agent_spool_frames", "camera_id" => id.clone()),
                spool_bytes: metrics::gauge!("agent_spool_bytes", "camera_id" => id.clone()),
            }
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.0.handle.render()
    }

    /// Serves `GET /metrics` on `addr` until the process ends.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let metrics = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the metrics listener stopped: {e}");
            }
        });
        Ok(local)
    }
}

/// One camera's counters.
#[derive(Clone)]
pub struct CameraMetrics {
    /// Frames the source gave.
    pub captured: Counter,
    /// Frames spooled.
    pub spooled: Counter,
    /// Frames the origin accepted.
    pub uploaded: Counter,
    /// Frames dropped from a full spool.
    pub dropped: Counter,
    /// Frames the origin refused for good.
    pub rejected: Counter,
    /// Blank frames skipped.
    pub skipped_blank: Counter,
    /// Frozen frames skipped.
    pub skipped_frozen: Counter,
    /// Instants without a frame.
    pub capture_failures: Counter,
    /// Stream sessions restarted.
    pub reconnects: Counter,
    /// Upload attempts to retry.
    pub upload_failures: Counter,
    /// Frames in the spool.
    pub spool_frames: Gauge,
    /// Bytes in the spool.
    pub spool_bytes: Gauge,
}

impl CameraMetrics {
    /// Counters that count nowhere (tests of a single part).
    pub fn detached() -> Self {
        Metrics::new().camera(0)
    }
}

/// A counter's value in a Prometheus text exposition (`name{labels} value`), 0 when absent.
pub fn read_counter(text: &str, name: &str, labels: &str) -> f64 {
    let needle = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
