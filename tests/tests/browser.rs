//! The pages in a real browser (Debian's Chromium, driven by playwright-core from npm), through
//! the edge: the gallery renders and follows a capture within a second; a camera page loads
//! its thumbnails from the browser's cache the second time (0 image bytes transferred); the
//! dashboard stays current for a minute of captures with 0 API requests after its load; the
//! camera page's frame player plays a day picked in the site's time zone, and plays it again
//! without a request reaching the network; a render shows up live with its player; axe-core
//! finds nothing serious in any page at desktop and phone sizes, and no page scrolls sideways
//! on a phone. Screenshots of each page are written to target/test-artifacts/.

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

/// axe-core's script, pinned by xtask (`AXE_CORE_VERSION`).
fn axe() -> String {
    let path = root().join("target/tools/axe-core-4.14.1/node_modules/axe-core/axe.min.js");
    assert!(
        path.is_file(),
        "axe-core is missing ({}); `cargo xtask test` installs it",
        path.display()
    );
    path.display().to_string()
}

/// A folder of `count` distinct frames.
fn frames(count: u32, first_seed: u32) -> tempfile::TempDir {
    let frames = tempfile::tempdir().unwrap();
    for n in 0..count {
        std::fs::write(
            frames.path().join(format!("{n:03}.jpg")),
            timelapser_tests::frame(first_seed + n),
        )
        .unwrap();
    }
    frames
}

/// Runs a browser script of tests/browser/ in Chromium with the stack's addresses and `vars`;
/// returns the JSON it printed last, after checking it ran and no page threw.
async fn run_script(
    script: &str,
    edge: &Edge,
    origin: &Origin,
    vars: Vec<(&str, String)>,
) -> Value {
    let mut command = Command::new("node");
    command
        .arg(root().join("tests/browser").join(script))
        .env("PLAYWRIGHT", playwright())
        .env("CHROMIUM", chromium())
        .env("EDGE", &edge.base)
        .env("ORIGIN", &origin.base)
        .env("ARTIFACTS", root().join("target/test-artifacts"))
        .envs(vars);
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    eprintln!("{script} results: {r:#}");
    assert!(
        r.get("page_errors").is_none(),
        "script errors in the pages: {}",
        r["page_errors"]
    );
    r
}

/// One browser test at a time: each starts its own origin, `wrangler dev` and Chromium, and two
/// at once on two cores left a first page load waiting past its 30 s (seen once in three).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    TURN.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_live_and_cache_what_never_changes() {
    let _turn = one_at_a_time().await;
    let origin = Origin::start().await.unwrap();
    let edge = Edge::start(&origin.base, 10_000).await.unwrap();
    let (camera, token) = origin.create_camera("Rooftop").await.unwrap();
    origin.create_camera("Garden").await.unwrap();
    for seed in 0..30 {
        origin.capture(camera, &token, 1000 + seed).await.unwrap();
    }
    // The console is audited too, signed in.
    timelapser_origin::accounts::add_user(
        &origin.server.as_ref().unwrap().state.db,
        OPERATOR.0,
        timelapser_origin::accounts::Role::Operator,
        OPERATOR.1,
    )
    .await
    .unwrap();
    let frames = frames(20, 5000);
    let player_frames = self::frames(13, 6000);
    let video_frames = self::frames(10, 8000);
    let seconds = std::env::var("DASHBOARD_SECONDS").unwrap_or_else(|_| "60".into());
    let r = run_script(
        "pages.mjs",
        &edge,
        &origin,
        vec![
            ("CAMERA", camera.to_string()),
            ("TOKEN", token),
            ("FRAMES", frames.path().display().to_string()),
            ("DASHBOARD_SECONDS", seconds),
            ("PLAYER_FRAMES", player_frames.path().display().to_string()),
            ("VIDEO_FRAMES", video_frames.path().display().to_string()),
            ("ADMIN", timelapser_tests::ADMIN.to_owned()),
            ("USER", OPERATOR.0.to_owned()),
            ("PASSWORD", OPERATOR.1.to_owned()),
            ("AXE", axe()),
        ],
    )
    .await;
    assert_eq!(r["last_step"], "done");

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

    // The frame player: the latest day at first, on the latest frame.
    let initial = &r["player_initial"];
    assert!(initial["frames"].as_u64().unwrap() >= 1, "{initial}");
    assert_eq!(initial["index"], initial["frames"].as_u64().unwrap() - 1);
    assert_eq!(initial["shown"], true);
    // A day picked in the site's time zone (UTC+05:30): exactly its frames, from its first
    // instant to its last second, each with its capture time.
    let day = r["player_day"].as_str().unwrap();
    let picked = &r["player_picked"];
    assert_eq!(picked["day"], day);
    assert_eq!(
        picked["frames"], r["player_day_expected_frames"],
        "{picked}"
    );
    assert!(
        picked["time"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{day} 00:00:00")),
        "{picked}"
    );
    assert!(picked["alt"]
        .as_str()
        .unwrap()
        .starts_with("Frame captured "));
    let last = &r["player_last"];
    assert!(
        last["time"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{day} 23:59:59")),
        "{last}"
    );
    // Played: every frame once, in order, twice.
    let count = picked["frames"].as_u64().unwrap();
    let every: Vec<Value> = (0..count).map(Value::from).collect();
    assert_eq!(r["player_first_play"].as_array().unwrap(), &every);
    assert_eq!(r["player_second_play"].as_array().unwrap(), &every);
    assert_eq!(r["player_second_shown"], true);
    // The first load fetched the day's thumbnails; the second play reached the network for
    // nothing, as Chromium counts it (requests served by its memory or disk cache apart).
    let first = &r["player_requests_load_and_first_play"];
    assert!(
        first["network"].as_u64().unwrap() >= count,
        "the day's thumbnails were fetched once: {first}"
    );
    let second = &r["player_requests_second_play"];
    assert_eq!(
        second["network"], 0,
        "nothing reaches the network on the second play: {second}"
    );
    eprintln!(
        "player: load + first play {first}; second play {second} in {} ms",
        r["player_second_play_ms"]
    );
    // The scrubber and the keys.
    let scrubbed = &r["player_scrubbed"];
    assert_eq!(scrubbed["index"], 5);
    assert!(scrubbed["time"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{day} 00:50:00")));
    let keys = &r["player_keys"];
    let stepped: Vec<u64> = ["home", "right", "right2", "left", "end"]
        .iter()
        .map(|k| keys[k].as_u64().unwrap())
        .collect();
    assert_eq!(stepped, [0, 1, 2, 1, count - 1], "{keys}");
    assert_eq!(keys["space_plays"], true);
    assert_eq!(keys["space_pauses"], true);
    assert_eq!(keys["focused_stage"], true);
    assert_eq!(r["player_time_live"], "polite");
    // Back through history: the day before, with its one frame.
    let earlier = &r["player_earlier"];
    assert_ne!(earlier["day"], day);
    assert_eq!(earlier["frames"], 1, "{earlier}");

    // A render while the page is open: listed at once, then its player, without a reload.
    let states: Vec<&str> = r["video_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        states
            .first()
            .is_some_and(|s| *s == "queued" || *s == "rendering"),
        "the render was listed before it was ready: {states:?}"
    );
    assert_eq!(states.last(), Some(&"ready+player"), "{states:?}");
    assert_eq!(r["video_without_reload"], true);
    let facts = r["video_facts_live"].as_str().unwrap();
    assert!(
        facts.contains("5 fps") && facts.contains("10 frames") && facts.contains("2.0 s"),
        "{facts}"
    );
    assert_eq!(
        r["video_facts_rendered"], r["video_facts_live"],
        "the page says the same as the live update"
    );
    assert_eq!(r["video_preload"], "metadata");
    let download = &r["video_download"];
    assert!(download["href"]
        .as_str()
        .unwrap()
        .starts_with("/media/videos/"));
    assert!(download["name"].as_str().unwrap().ends_with(".mp4"));
    let video = &r["video_played"];
    let duration = video["duration"].as_f64().unwrap();
    assert!(
        (1.9..=2.1).contains(&duration),
        "10 frames at 5 fps: {video}"
    );
    assert!((video["position"].as_f64().unwrap() - duration / 2.0).abs() < 0.5);
    assert!(
        r["video_responses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == 206),
        "a range answered: {}",
        r["video_responses"]
    );

    // Accessible and fitting a phone: every page at both sizes.
    assert_eq!(
        r["audited"].as_array().unwrap().len(),
        12,
        "{}",
        r["audited"]
    );
    assert_eq!(
        r["axe"].as_array().unwrap().len(),
        0,
        "serious or critical accessibility violations: {:#}",
        r["axe"]
    );
    assert_eq!(
        r["overflow"].as_array().unwrap().len(),
        0,
        "pages wider than the screen: {:#}",
        r["overflow"]
    );
    for page in [
        "gallery",
        "camera",
        "camera-player",
        "dashboard",
        "login",
        "console",
        "console-camera",
    ] {
        assert!(root()
            .join(format!("target/test-artifacts/phone-{page}.png"))
            .is_file());
    }
}

/// The sign-in of the console test's operator.
const OPERATOR: (&str, &str) = ("ops", "correct horse battery");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_camera_from_the_console() {
    let _turn = one_at_a_time().await;
    let origin = Origin::start().await.unwrap();
    let edge = Edge::start(&origin.base, 10_000).await.unwrap();
    let db = &origin.server.as_ref().unwrap().state.db;
    timelapser_origin::accounts::add_user(
        db,
        OPERATOR.0,
        timelapser_origin::accounts::Role::Operator,
        OPERATOR.1,
    )
    .await
    .unwrap();
    let frames = frames(40, 7000);
    let r = run_script(
        "console.mjs",
        &edge,
        &origin,
        vec![
            ("USER", OPERATOR.0.to_owned()),
            ("PASSWORD", OPERATOR.1.to_owned()),
            ("FRAMES", frames.path().display().to_string()),
        ],
    )
    .await;
    assert_eq!(r["last_step"], "done");

    // Signed in with an HttpOnly, SameSite session.
    assert_eq!(r["whoami"], OPERATOR.0);
    assert_eq!(r["session_cookie"]["http_only"], true);
    assert_eq!(r["session_cookie"]["same_site"], "Lax");

    // The camera, its token shown once and copied, and a configuration for its agent.
    let camera = r["camera_id"].as_i64().unwrap();
    assert_eq!(r["token_prefix"], "tl_cam_");
    assert_eq!(r["copied_token_matches"], true);
    let config = r["agent_config"].as_str().unwrap();
    assert!(
        config.contains(&format!("camera_id = {camera}")) && config.contains("[[camera]]"),
        "{config}"
    );
    assert!(
        config.contains(&format!("origin = \"{}\"", edge.base)),
        "{config}"
    );

    // A timelapse of the uploaded frames, rendered with a bar that reached 100 %.
    assert_eq!(r["timelapses"], 1);
    assert_eq!(r["frames_shown"], 40);
    let progress: Vec<f64> = r["progress_seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        progress.last(),
        Some(&1.0),
        "the bar ends full: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "the bar only moves forward: {progress:?}"
    );

    // The video plays and seeks; the browser got ranges.
    let video = &r["video"];
    let duration = video["duration"].as_f64().unwrap();
    assert!(
        (3.9..=4.1).contains(&duration),
        "40 frames at 10 fps: {video}"
    );
    assert!((video["position"].as_f64().unwrap() - duration / 2.0).abs() < 0.5);
    assert!(
        r["video_responses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == 206),
        "a range answered: {}",
        r["video_responses"]
    );
    assert!(r["download"]
        .as_str()
        .unwrap()
        .starts_with("/media/videos/"));

    // Storage: the timelapse is protected, the retention saved (and shown in force).
    assert_eq!(r["protected_badge"], 1);
    assert_eq!(r["retention_days"], "30");
    assert!(
        r["retention_text"]
            .as_str()
            .unwrap()
            .contains("in force: 30 days"),
        "{}",
        r["retention_text"]
    );

    // Automatic videos: the rule added with the form is listed as asked, then paused.
    assert_eq!(
        r["rule_summary"],
        "Every Monday at 06:00: the seven days before (draft, time drawn)"
    );
    assert!(
        r["rule_after_pause"].as_str().unwrap().contains("paused"),
        "{}",
        r["rule_after_pause"]
    );

    // Private: not in the public gallery nor at its page; in the signed-in gallery.
    assert_eq!(r["public_gallery_has_camera"], 0);
    assert_eq!(r["public_camera_page_status"], 404);
    assert_eq!(r["signed_in_gallery_has_camera"], 1);

    // Cross-site posts refused (the Lax cookie is not sent; and there is no CSRF token).
    for key in ["cross_site_create_status", "cross_site_logout_status"] {
        let status = r[key].as_u64().unwrap();
        assert!(status == 401 || status == 403, "{key}: {status}");
    }
    let cameras: Value = reqwest::Client::new()
        .get(origin.url("/api/cameras"))
        .bearer_auth(timelapser_tests::ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cameras.as_array().unwrap().len(), 1, "{cameras}");

    // Two people, one setting: the second saw it changed elsewhere, then applied theirs.
    assert_eq!(r["two_sessions_differ"], true);
    let conflict = r["conflict_text"].as_str().unwrap();
    assert!(
        conflict.contains("Changed elsewhere") && conflict.contains("Alpha site"),
        "{conflict}"
    );
    assert_eq!(r["site_name_after_conflict"], "Alpha site");
    assert_eq!(r["site_name_after_reapply"], "Beta site");

    // The operator's preferences, saved; times shown relative ("5 seconds ago").
    assert_eq!(r["preferences_after"]["timezone"], "Europe/Paris");
    let relative = r["relative_time"].as_str().unwrap();
    assert!(relative.ends_with("ago") || relative == "now", "{relative}");

    // Signed out: the console asks to sign in again.
    assert_eq!(r["console_after_sign_out"], "/login");
    assert_eq!(r["session_cookie_after_sign_out"], "gone");
    for page in ["console", "console-camera", "console-conflict"] {
        assert!(root()
            .join(format!("target/test-artifacts/{page}.png"))
            .is_file());
    }
}
