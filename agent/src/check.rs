//! `timelapser-agent check`: validates each camera's config and probes its source, its spool
//! and the origin once, printing a verdict per camera. Nothing is recorded or uploaded.

use std::fmt::Write as _;

use crate::config::CameraConfig;
use crate::origin::{OriginClient, ScheduleFetch};
use crate::schedule::describe;
use crate::source;
use crate::spool::Spool;

/// One camera's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// `camera 3 "garden" (rtsp://***@192.0.2.10/live)`.
    pub camera: String,
    /// Each part's finding: (part, ok, text).
    pub findings: Vec<(&'static str, bool, String)>,
}

impl Verdict {
    /// Whether every part is usable.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|(_, ok, _)| *ok)
    }

    /// The verdict as printed.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{}: {}\n",
            self.camera,
            if self.ok() { "OK" } else { "FAIL" }
        );
        for (part, ok, text) in &self.findings {
            let _ = writeln!(
                out,
                "  {} {part}: {text}",
                if *ok { "ok  " } else { "FAIL" }
            );
        }
        out
    }
}

/// Checks one camera.
pub async fn check_camera(config: &CameraConfig) -> Verdict {
    let camera = match config.resolve() {
        Ok(camera) => camera,
        Err(e) => {
            return Verdict {
                camera: config.label(),
                findings: vec![("config", false, format!("{}: {}", e.field, e.message))],
            }
        }
    };
    let mut findings = vec![("config", true, "valid".to_owned())];

    let dir = camera.spool_dir.clone();
    let limit = camera.spool_limit_bytes;
    findings.push(
        match tokio::task::spawn_blocking(move || Spool::open(&dir, limit)).await {
            Ok(Ok(spool)) => (
                "spool",
                true,
                format!(
                    "{} is writable; {} frames waiting",
                    camera.spool_dir.display(),
                    spool.len()
                ),
            ),
            Ok(Err(e)) => ("spool", false, e.to_string()),
            Err(e) => ("spool", false, e.to_string()),
        },
    );

    let client = OriginClient::new(&camera);
    findings.push(match client.schedule(None).await {
        Ok(ScheduleFetch::Fetched { schedule, .. }) => (
            "origin",
            true,
            format!(
                "{} accepts the token; schedule: {}",
                camera.origin,
                describe(&schedule.schedule)
            ),
        ),
        Ok(ScheduleFetch::NotModified) => ("origin", true, "accepts the token".into()),
        Err(e) => ("origin", false, e),
    });

    findings.push(match source::probe(&camera).await {
        Ok(found) => ("source", true, found),
        Err(e) => ("source", false, e.0),
    });
    Verdict {
        camera: format!("{} ({})", camera.label, camera.source.shown()),
        findings,
    }
}

/// Checks every camera, printing each verdict as it comes; true when all are OK.
pub async fn check_all(cameras: &[CameraConfig]) -> bool {
    let mut all_ok = true;
    for config in cameras {
        let verdict = check_camera(config).await;
        print!("{}", verdict.render());
        all_ok &= verdict.ok();
    }
    all_ok
}
