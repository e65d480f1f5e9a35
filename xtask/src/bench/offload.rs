//! Origin offload through the edge: viewers load the gallery and a camera page with their
//! thumbnails, then come back with their browser caches; the origin's own counters say what
//! reached it. Viewers behave as a browser does with these headers: a page (`max-age=0`) is
//! revalidated with its ETag on every visit, an immutable thumbnail is never asked again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use timelapser_support::{free_port, wrangler, OriginProcess, ProcessGroup};

use super::report::{verdict, Run};
use super::{create_camera, frames, origin};
use crate::step;

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Origin offload through the edge";

/// Viewers, each with its own browser cache.
const VIEWERS: usize = 50;

/// What reached the origin.
#[derive(Debug, Default, Clone)]
pub struct OriginCounters {
    /// Requests by route.
    pub requests: HashMap<String, u64>,
    /// Media bytes sent.
    pub media_bytes: u64,
    /// Media 200s.
    pub media_fetches: u64,
}

impl OriginCounters {
    fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    fn minus(&self, before: &OriginCounters) -> OriginCounters {
        let mut requests = HashMap::new();
        for (route, n) in &self.requests {
            let d = n - before.requests.get(route).copied().unwrap_or(0);
            if d > 0 {
                requests.insert(route.clone(), d);
            }
        }
        OriginCounters {
            requests,
            media_bytes: self.media_bytes - before.media_bytes,
            media_fetches: self.media_fetches - before.media_fetches,
        }
    }
}

/// Reads the origin's counters from its `/metrics` at `url` (requests to /metrics and
/// /healthz excluded).
async fn counters(url: &str) -> Result<OriginCounters> {
    let text = reqwest::get(url)
        .await?
        .error_for_status()
        .with_context(|| format!("reading {url}"))?
        .text()
        .await?;
    if !text.contains("http_requests_total{") {
        bail!("{url} has no http_requests_total:\n{text}");
    }
    let mut c = OriginCounters::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("http_requests_total{") {
            let route = rest
                .split("route=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?");
            let value: u64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if route != "/metrics" && route != "/healthz" {
                *c.requests.entry(route.to_owned()).or_default() += value;
            }
            if route == "/media/{folder}/{file}" && line.contains("status=\"200\"") {
                c.media_fetches += value;
            }
        } else if line.starts_with("media_bytes_sent_total{") {
            c.media_bytes += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(c)
}

/// One viewer's browser cache: pages with their ETags, and the immutable objects it holds.
#[derive(Default)]
struct Browser {
    pages: HashMap<String, (String, String)>,
    immutable: HashSet<String>,
}

fn thumbnails(html: &str) -> Vec<String> {
    html.split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|s| s.starts_with("/media/thumbnails/"))
        .map(str::to_owned)
        .collect()
}

impl Browser {
    /// Loads a page and its thumbnails as a browser would; returns (page views, bytes received).
    async fn visit(&mut self, client: &reqwest::Client, edge: &str, path: &str) -> Result<u64> {
        let mut request = client.get(format!("{edge}{path}"));
        if let Some((etag, _)) = self.pages.get(path) {
            request = request.header("if-none-match", etag);
        }
        let response = request.send().await?;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        let html = if status == reqwest::StatusCode::NOT_MODIFIED {
            // The browser renders the copy it holds.
            self.pages
                .get(path)
                .map(|(_, html)| html.clone())
                .context("304 for a page never seen")?
        } else if status.is_success() {
            if let Some(etag) = etag {
                self.pages.insert(path.to_owned(), (etag, body.clone()));
            }
            body
        } else {
            bail!("{path} answered {status}");
        };
        let mut bytes = 0;
        for thumb in thumbnails(&html) {
            if self.immutable.contains(&thumb) {
                continue; // immutable and fresh: not even revalidated
            }
            let response = client.get(format!("{edge}{thumb}")).send().await?;
            if !response.status().is_success() {
                bail!("{thumb} answered {}", response.status());
            }
            bytes += response.bytes().await?.len() as u64;
            self.immutable.insert(thumb);
        }
        Ok(bytes)
    }
}

/// Results of the workload.
pub struct Offload {
    /// Viewers, and page views per viewer per round.
    pub viewers: usize,
    /// Page views in all.
    pub page_views: u64,
    /// Distinct media objects the pages show.
    pub media_objects: usize,
    /// What reached the origin in the first round (cold browsers).
    pub first: OriginCounters,
    /// What reached the origin in the revisits.
    pub revisits: OriginCounters,
}

/// Runs `viewers` viewers, each loading the gallery and every camera page, twice.
async fn run(
    origin: &OriginProcess,
    edge: &str,
    camera_ids: &[i64],
    viewers: usize,
) -> Result<Offload> {
    let client = reqwest::Client::new();
    let mut pages = vec!["/".to_owned()];
    pages.extend(camera_ids.iter().map(|id| format!("/cameras/{id}")));
    let mut objects = HashSet::new();
    for page in &pages {
        let html = client.get(origin.url(page)).send().await?.text().await?;
        objects.extend(thumbnails(&html));
    }
    let mut browsers: Vec<Browser> = (0..viewers).map(|_| Browser::default()).collect();
    let metrics = origin.ops_url("/metrics")?;
    let before = counters(&metrics).await?;
    for browser in &mut browsers {
        for page in &pages {
            browser.visit(&client, edge, page).await?;
        }
    }
    let middle = counters(&metrics).await?;
    for browser in &mut browsers {
        for page in &pages {
            let bytes = browser.visit(&client, edge, page).await?;
            if bytes != 0 {
                bail!("a revisit downloaded {bytes} image bytes");
            }
        }
    }
    let after = counters(&metrics).await?;
    Ok(Offload {
        viewers,
        page_views: (viewers * pages.len() * 2) as u64,
        media_objects: objects.len(),
        first: middle.minus(&before),
        revisits: after.minus(&middle),
    })
}

/// Starts a release origin with three cameras of 20 captures and the edge in front of it, then
/// runs the viewers.
pub async fn measure(root: &Path, origin_bin: &Path, work: &Path) -> Result<Offload> {
    // Counted on the operations listener: on the main one /metrics needs the admin token.
    let origin = origin(origin_bin, &work.join("offload-data"))?
        .ops_listen_on_free_port()?
        .start()
        .await?;
    let base = origin.base();
    let mut cameras = Vec::new();
    for n in 0..3u32 {
        let (camera, token) = create_camera(&base).await?;
        for seed in 0..20u32 {
            let jpeg = frames::jpeg(320, 240, n * 100 + seed, 20, 85)?;
            reqwest::Client::new()
                .post(format!("{base}/api/cameras/{camera}/captures"))
                .bearer_auth(&token)
                .header("content-type", "image/jpeg")
                .body(jpeg)
                .send()
                .await?
                .error_for_status()?;
        }
        cameras.push(camera);
    }
    let state = work.join("offload-edge");
    let _ = std::fs::remove_dir_all(&state);
    crate::edge::ensure_wrangler(root)?;
    let port = free_port()?;
    let mut edge = ProcessGroup::spawn(
        "wrangler dev",
        &mut wrangler::dev_prebuilt(root, &state, port, free_port()?, &[("ORIGIN", &base)])?,
    )?;
    let edge_base = format!("http://127.0.0.1:{port}");
    edge.wait_until_ok(&format!("{edge_base}/healthz"), Duration::from_secs(60))
        .await?;
    step(&format!(
        "offload: {VIEWERS} viewers, gallery and {} camera pages, twice",
        cameras.len()
    ));
    let result = run(&origin, &edge_base, &cameras, VIEWERS).await;
    drop(edge);
    drop(origin);
    result
}

/// The section's body.
pub fn report(o: &Offload, run: &Run) -> String {
    let (today, host) = (&run.date, &run.host);
    let per_1000 = |n: u64, views: u64| n as f64 * 1000.0 / views as f64;
    let round_views = o.page_views / 2;
    let mut routes: Vec<String> = o
        .first
        .requests
        .iter()
        .map(|(r, n)| format!("`{r}` {n}"))
        .collect();
    routes.sort();
    let fetches_per_object = o.first.media_fetches as f64 / o.media_objects.max(1) as f64;
    format!(
        "{today}, {host}.\n\n\
         {viewers} viewers, each with its own browser cache, load the gallery and every camera page with \
         their thumbnails through the edge (`wrangler dev`), then come back. Pages (`max-age=0`) are \
         revalidated with their ETag on every visit; immutable thumbnails are not asked again. \
         Counted at the origin (`/metrics`, on its operations listener). {objects} distinct thumbnails.\n\n\
         | | first visits | revisits | target |\n|---|---:|---:|---|\n\
         | page views | {rv} | {rv} | |\n\
         | origin requests | {fr} ({fr1000:.0} per 1,000 views) | {rr} ({rr1000:.0} per 1,000 views) | |\n\
         | origin media fetches | {mf} ({fpo:.2} per object) | {rmf} | <= 1 per object: {vf} |\n\
         | origin media bytes | {mb} | {rmb} | 0 on revisits: {vb} |\n\n\
         First-visit origin requests by route: {routes}. Every page view still reaches the origin once \
         (the edge revalidates `max-age=0` pages; a 304 carries no body).\n",
        viewers = o.viewers,
        objects = o.media_objects,
        rv = round_views,
        fr = o.first.total(),
        fr1000 = per_1000(o.first.total(), round_views),
        rr = o.revisits.total(),
        rr1000 = per_1000(o.revisits.total(), round_views),
        mf = o.first.media_fetches,
        fpo = fetches_per_object,
        rmf = o.revisits.media_fetches,
        vf = verdict(fetches_per_object <= 1.0),
        mb = o.first.media_bytes,
        rmb = o.revisits.media_bytes,
        vb = verdict(o.revisits.media_bytes == 0),
        routes = routes.join(", "),
    )
}
