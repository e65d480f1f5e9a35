//! The pages in a real browser (Debian's Chromium, driven by playwright-core from npm), through
//! the edge: the gallery renders and follows a capture within a second; a camera page loads
//! its thumbnails from the browser's cache the second time (0 image bytes transferred); the
//! dashboard stays current for a minute of captures with 0 API requests after its load.
//! Screenshots of each page are written to target/test-artifacts/.

use std::process::Command;

use serde_json::Value;
use timelapser_tests::{root, Edge, Origin};

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).is_file(),
        "Chromium is needed for the browser tests ({path}); `cargo xtask test` installs Debian's chromium package"
    );
    path
}

fn playwright() -> String {
    let path = root().join("target/tools/playwright-core-1.65.1/node_modules/playwright-core");
    assert!(
        path.is_dir(),
        "playwright-core is missing ({}); `cargo xtask test` installs it",
        path.display()
    );
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_live_and_cache_what_never_changes() {
    let chromium = chromium();
    let playwright = playwright();
    let origin = Origin::start().await.unwrap();
    let edge = Edge::start(&origin.base, 10_000).await.unwrap();
    let (camera, token) = origin.create_camera("Rooftop").await.unwrap();
    origin.create_camera("Garden").await.unwrap();
    for seed in 0..30 {
        origin.capture(camera, &token, 1000 + seed).await.unwrap();
    }
    let frames = tempfile::tempdir().unwrap();
    for n in 0..20u32 {
        std::fs::write(
            frames.path().join(format!("{n:03}.jpg")),
            timelapser_tests::frame(5000 + n),
        )
        .unwrap();
    }
    let artifacts = root().join("target/test-artifacts");
    let seconds = std::env::var("DASHBOARD_SECONDS").unwrap_or_else(|_| "60".into());
    let output = tokio::task::spawn_blocking({
        let (edge_base, origin_base) = (edge.base.clone(), origin.base.clone());
        let frames = frames.path().to_path_buf();
        move || {
            Command::new("node")
                .arg(root().join("tests/browser/pages.mjs"))
                .env("PLAYWRIGHT", playwright)
                .env("CHROMIUM", chromium)
                .env("EDGE", edge_base)
                .env("ORIGIN", origin_base)
                .env("CAMERA", camera.to_string())
                .env("TOKEN", token)
                .env("FRAMES", frames)
                .env("ARTIFACTS", &artifacts)
                .env("DASHBOARD_SECONDS", seconds)
                .output()
                .expect("node runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    eprintln!("browser results: {r:#}");
    assert!(
        r.get("page_errors").is_none(),
        "script errors in the pages: {}",
        r["page_errors"]
    );

    // The gallery.
    assert_eq!(r["gallery_cards"], 2);
    assert!(r["gallery_title"].as_str().unwrap().contains("Gallery"));
    assert!(
        r["gallery_update_ms"].as_u64().unwrap() <= 1000,
        "capture visible within a second: {}",
        r["gallery_update_ms"]
    );
    assert_eq!(
        r["gallery_count_after"].as_u64().unwrap(),
        r["gallery_count_before"].as_u64().unwrap() + 1
    );

    // The camera page: thumbnails the first time, none transferred the second time.
    assert_eq!(r["camera_thumbnails"], 24);
    assert!(r["camera_first_load"]["images"].as_u64().unwrap() >= 24);
    assert!(r["camera_first_load"]["transfer"].as_u64().unwrap() > 0);
    assert!(r["camera_second_load"]["images"].as_u64().unwrap() >= 24);
    assert_eq!(
        r["camera_second_load"]["transfer"], 0,
        "every image from the browser cache"
    );
    assert!(
        r["camera_second_load"]["decoded"].as_u64().unwrap() > 0,
        "and the images were really there"
    );

    // The dashboard: current through events alone.
    let captures = r["dashboard_captures"].as_u64().unwrap();
    assert!(captures >= 10, "{captures} captures while watching");
    assert_eq!(
        r["dashboard_images_after"].as_u64().unwrap(),
        r["dashboard_images_before"].as_u64().unwrap() + captures
    );
    let requests: Vec<&str> = r["dashboard_requests_after_load"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        requests.iter().all(|u| !u.contains("/api/")),
        "API requests after load: {requests:?}"
    );
    for page in ["gallery", "camera", "dashboard"] {
        assert!(root()
            .join(format!("target/test-artifacts/{page}.png"))
            .is_file());
    }
}
