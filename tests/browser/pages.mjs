// Browser checks of the pages, in Debian's Chromium driven by playwright-core, through the
// edge. Run by tests/tests/browser.rs, which starts the stack and checks what this prints.
//
// Environment: PLAYWRIGHT (path of playwright-core), CHROMIUM, EDGE, ORIGIN, CAMERA, TOKEN,
// FRAMES (a folder of distinct JPEGs to upload), ARTIFACTS (where screenshots go),
// DASHBOARD_SECONDS (how long the dashboard is watched), PLAYER_FRAMES and VIDEO_FRAMES
// (more distinct JPEGs: a past day for the frame player, a timelapse to render), ADMIN (the
// admin token), USER and PASSWORD (an operator, for the console), AXE (axe-core's axe.min.js).
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { axeViolations, overflow } from "./a11y.mjs";

const env = process.env;
const require = createRequire(import.meta.url);
const { chromium } = require(env.PLAYWRIGHT);
const folder = (dir) => readdirSync(dir).sort().map((f) => join(dir, f));
const frames = folder(env.FRAMES);
let nextFrame = 0;
const results = {};
mkdirSync(env.ARTIFACTS, { recursive: true });
const step = (name) => { results.last_step = name; };

/// Uploads a frame as the camera does (the next of FRAMES by default), optionally dated.
async function capture(file = frames[nextFrame++], at = null) {
  const response = await fetch(`${env.ORIGIN}/api/cameras/${env.CAMERA}/captures`, {
    method: "POST",
    headers: Object.assign({ authorization: `Bearer ${env.TOKEN}`, "content-type": "image/jpeg" },
      at ? { "capture-time": at } : {}),
    body: readFileSync(file),
  });
  if (response.status !== 201) throw new Error(`capture answered ${response.status}`);
  return response.json();
}

/// A request with the admin token, as a script would make it.
async function admin(method, path, body) {
  const response = await fetch(`${env.ORIGIN}${path}`, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

// Requests of a page as Chromium's network layer reports them (CDP), each marked with where
// it was answered: the memory cache, the disk cache, or the network. A request served from a
// cache is counted as sent, and not as reaching the network.
async function networkLog(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const requests = new Map();
  cdp.on("Network.requestWillBeSent", (e) => {
    if (!requests.has(e.requestId)) requests.set(e.requestId, { url: e.request.url, seq: requests.size, from: "network" });
  });
  cdp.on("Network.requestServedFromCache", (e) => { const r = requests.get(e.requestId); if (r) r.from = "memory cache"; });
  cdp.on("Network.responseReceived", (e) => {
    const r = requests.get(e.requestId);
    if (!r) return;
    r.status = e.response.status;
    if (e.response.fromDiskCache) r.from = "disk cache";
    else if (e.response.fromPrefetchCache) r.from = "prefetch cache";
    else if (e.response.fromServiceWorker) r.from = "service worker";
  });
  // What was sent since `mark`, up to a sentinel request the page makes now: Chromium reports
  // requests in the order they start, so once the sentinel is reported every earlier one is.
  let sentinels = 0;
  const since = async (mark) => {
    const tag = `sentinel=${++sentinels}`;
    await page.evaluate((t) => fetch(`/healthz?${t}`, { cache: "no-store" }), tag);
    const deadline = Date.now() + 5000;
    while (![...requests.values()].some((r) => r.url.endsWith(tag))) {
      if (Date.now() > deadline) throw new Error("the sentinel request was never reported");
      await new Promise((ok) => setImmediate(ok));
    }
    const list = [...requests.values()].filter((r) => r.seq >= mark && !r.url.includes("sentinel="));
    const network = list.filter((r) => r.from === "network");
    return {
      total: list.length,
      network: network.length,
      memory_cache: list.filter((r) => r.from === "memory cache").length,
      disk_cache: list.filter((r) => r.from === "disk cache").length,
      network_urls: network.map((r) => new URL(r.url).pathname).slice(0, 20),
    };
  };
  return { mark: () => requests.size, since };
}

/// Plays the player from where it is to its last frame; returns the frame indices it showed.
async function playToEnd(page) {
  await page.evaluate(() => {
    const player = document.getElementById("player");
    const at = Number(player.dataset.index);
    // Play at the last frame starts again from the first; elsewhere it goes on from here.
    window.shownFrames = at === Number(document.getElementById("player-scrub").max) ? [] : [at];
    window.frameWatch = new MutationObserver(() => {
      const i = Number(player.dataset.index);
      if (window.shownFrames[window.shownFrames.length - 1] !== i) window.shownFrames.push(i);
    });
    window.frameWatch.observe(player, { attributes: true, attributeFilter: ["data-index"] });
  });
  await page.click("#player-play");
  await page.waitForFunction(() => {
    const p = document.getElementById("player");
    return p.dataset.playing === "false" && Number(p.dataset.index) === Number(document.getElementById("player-scrub").max);
  }, null, { timeout: 20000 });
  return page.evaluate(() => { window.frameWatch.disconnect(); return window.shownFrames; });
}

// 4. The frame player: a past day picked in the site's time zone, played twice (the second
//    time without a request reaching the network), scrubbed, stepped with keys.
async function player(context, page) {
  // A zone half an hour off UTC, so a day's bounds are nobody's UTC midnight.
  await admin("PUT", "/api/settings", { timezone: "Asia/Kolkata" });
  const day = new Date(Date.now() - 3 * 86400e3).toISOString().slice(0, 10);
  const start = Date.parse(`${day}T00:00:00+05:30`);
  const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
  // The day's frames: its first instant, every 10 minutes after, and its last second; one
  // before it (the day before) and one at the next day's first instant.
  const times = [start - 20 * 60e3, start, ...Array.from({ length: 9 }, (_, k) => start + (k + 1) * 600e3),
                 start + 86400e3 - 1000, start + 86400e3];
  const files = folder(env.PLAYER_FRAMES);
  for (const [n, at] of times.entries()) await capture(files[n], iso(at));
  results.player_day = day;
  results.player_day_expected_frames = times.length - 2;

  const cameraUrl = `${env.EDGE}/cameras/${env.CAMERA}`;
  await page.goto(cameraUrl, { waitUntil: "networkidle" });
  await page.waitForSelector("#player[data-loaded=true]", { timeout: 10000 });
  const state = () => page.evaluate(() => {
    const p = document.getElementById("player");
    const img = document.getElementById("player-frame");
    return { day: p.dataset.day, index: Number(p.dataset.index), frames: Number(document.getElementById("player-scrub").max) + 1,
             time: document.getElementById("player-time").textContent, alt: img.alt, src: img.getAttribute("src"),
             playing: p.dataset.playing === "true", shown: img.complete && img.naturalWidth > 0 };
  });
  results.player_initial = await state();

  // The day picker: that day's frames, by the API's pages of that day.
  const log = await networkLog(context, page);
  const beforeDay = log.mark();
  await page.fill("#player-day", day);
  await page.waitForSelector(`#player[data-day="${day}"][data-loaded=true]`, { timeout: 10000 });
  results.player_picked = await state();
  const last = await page.evaluate(() => Number(document.getElementById("player-scrub").max));

  // First play: every frame once, in order.
  await page.selectOption("#player-speed", "30");
  results.player_first_play = await playToEnd(page);
  results.player_requests_load_and_first_play = await log.since(beforeDay);
  results.player_last = await state();

  // Second play: from the start again (Play at the last frame), nothing reaches the network.
  const beforeSecond = log.mark();
  const started = Date.now();
  results.player_second_play = await playToEnd(page);
  results.player_second_play_ms = Date.now() - started;
  results.player_requests_second_play = await log.since(beforeSecond);
  results.player_second_shown = (await state()).shown;

  // The scrubber shows the frame it is set to.
  await page.evaluate(() => {
    const scrub = document.getElementById("player-scrub");
    scrub.value = "5";
    scrub.dispatchEvent(new Event("input", { bubbles: true }));
  });
  results.player_scrubbed = await state();

  // Keys on the frame: Home, →, →, ←, End, Space (plays), Space (pauses).
  const keys = {};
  await page.focus("#player .stage");
  for (const [name, key] of [["home", "Home"], ["right", "ArrowRight"], ["right2", "ArrowRight"], ["left", "ArrowLeft"], ["end", "End"]]) {
    await page.keyboard.press(key);
    keys[name] = (await state()).index;
  }
  await page.selectOption("#player-speed", "2");
  await page.focus("#player .stage");
  await page.keyboard.press("Home");
  await page.keyboard.press(" ");
  await page.waitForFunction(() => Number(document.getElementById("player").dataset.index) >= 2, null, { timeout: 5000 });
  keys.space_plays = (await state()).playing;
  await page.keyboard.press(" ");
  keys.space_pauses = !(await state()).playing;
  keys.focused_stage = await page.evaluate(() => document.activeElement.classList.contains("stage"));
  results.player_keys = keys;
  results.player_last_index = last;
  results.player_time_live = await page.getAttribute("#player-time", "aria-live");

  // Back through history: the previous day with frames (the one frame before this day).
  await page.click("#player-earlier");
  await page.waitForFunction((d) => { const p = document.getElementById("player"); return p.dataset.day !== d && p.dataset.loaded === "true"; },
    day, { timeout: 10000 });
  results.player_earlier = await state();
  await page.setViewportSize({ width: 375, height: 667 });
  await page.fill("#player-day", day);
  await page.waitForSelector(`#player[data-day="${day}"][data-loaded=true]`, { timeout: 10000 });
  await page.locator("#player").screenshot({ path: join(env.ARTIFACTS, "phone-camera-player.png") });
  await page.setViewportSize({ width: 1280, height: 900 });
}

// 5. A render while the camera page is open: listed at once with its progress, then its
//    player and download without a reload; the video plays and seeks (ranges).
async function videos(page) {
  await page.goto(`${env.EDGE}/cameras/${env.CAMERA}`, { waitUntil: "networkidle" });
  await page.waitForSelector(".live[data-state=live]", { timeout: 5000 });
  await page.evaluate(() => {
    window.samePage = true;
    window.videoStates = [];
    new MutationObserver(() => {
      for (const li of document.querySelectorAll("#timelapses li.video")) {
        const s = li.dataset.status + (li.querySelector("video") ? "+player" : "");
        if (window.videoStates[window.videoStates.length - 1] !== s) window.videoStates.push(s);
      }
    }).observe(document.getElementById("timelapses"), { subtree: true, childList: true, attributes: true });
  });
  const timelapse = await admin("POST", `/api/cameras/${env.CAMERA}/timelapses`, { name: "Sunrise" });
  await page.waitForSelector(`section.timelapse[data-timelapse-id="${timelapse.id}"]`, { timeout: 5000 });
  for (const file of folder(env.VIDEO_FRAMES)) await capture(file);
  const video = await admin("POST", `/api/timelapses/${timelapse.id}/videos`, { fps: 5 });
  const item = `section.timelapse[data-timelapse-id="${timelapse.id}"] li.video[data-video-id="${video.id}"]`;
  await page.waitForSelector(`${item} video`, { timeout: 60000 });
  results.video_states = await page.evaluate(() => window.videoStates);
  results.video_without_reload = await page.evaluate(() => window.samePage === true);
  results.video_facts_live = await page.locator(`${item} [data-role=facts]`).textContent();
  results.video_download = {
    href: await page.locator(`${item} a[download]`).getAttribute("href"),
    name: await page.locator(`${item} a[download]`).getAttribute("download"),
    text: await page.locator(`${item} a[download]`).textContent(),
  };
  results.video_preload = await page.locator(`${item} video`).getAttribute("preload");

  const statuses = [];
  page.on("response", (r) => { if (r.url().includes("/media/videos/")) statuses.push(r.status()); });
  results.video_played = await page.locator(`${item} video`).evaluate(async (v) => {
    v.muted = true;
    if (v.readyState < 1) await new Promise((ok) => v.addEventListener("loadedmetadata", ok, { once: true }));
    await v.play();
    const duration = v.duration;
    v.currentTime = duration / 2;
    await new Promise((ok) => v.addEventListener("seeked", ok, { once: true }));
    return { duration, position: v.currentTime };
  });
  results.video_responses = statuses;
  // The page as the server renders it says the same of the video.
  await page.reload({ waitUntil: "networkidle" });
  results.video_facts_rendered = await page.locator(`${item} [data-role=facts]`).textContent();
}

// 6. Every page at a desktop's and a phone's size: axe-core finds nothing serious or
//    critical, and nothing makes the page scroll sideways. Screenshots at phone size.
async function audits(browser, page) {
  const signedIn = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const consolePage = await signedIn.newPage();
  consolePage.on("pageerror", (e) => { results.page_errors = (results.page_errors || []).concat(String(e)); });
  await consolePage.goto(`${env.EDGE}/login`);
  await consolePage.fill("input[name=name]", env.USER);
  await consolePage.fill("input[name=password]", env.PASSWORD);
  await Promise.all([consolePage.waitForURL(`${env.EDGE}/console`), consolePage.click("form.sign-in button[type=submit]")]);
  const pages = [
    ["gallery", page, "/"],
    ["camera", page, `/cameras/${env.CAMERA}`],
    ["dashboard", page, "/dashboard"],
    ["login", page, "/login"],
    ["console", consolePage, "/console"],
    ["console-camera", consolePage, `/console/cameras/${env.CAMERA}`],
  ];
  results.audited = [];
  results.axe = [];
  results.axe_minor = [];
  results.overflow = [];
  for (const [size, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 375, height: 667 }]]) {
    for (const [name, tab, path] of pages) {
      await tab.setViewportSize(viewport);
      await tab.goto(`${env.EDGE}${path}`, { waitUntil: "networkidle" });
      if (name === "camera") await tab.waitForSelector("#player[data-loaded=true]", { timeout: 10000 });
      for (const v of await axeViolations(tab, env.AXE)) {
        if (v.impact === "serious" || v.impact === "critical") results.axe.push(Object.assign({ page: name, size }, v));
        else results.axe_minor.push(`${name}@${size}: ${v.id} (${v.impact})`);
      }
      const o = await overflow(tab);
      if (o.over > 0) results.overflow.push(Object.assign({ page: name, size }, o));
      if (size === "phone") await tab.screenshot({ path: join(env.ARTIFACTS, `phone-${name}.png`), fullPage: true });
      results.audited.push(`${name}@${size}`);
    }
  }
  await signedIn.close();
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => { results.page_errors = (results.page_errors || []).concat(String(e)); });

  // 1. The gallery renders, and a capture shows up in it without a reload.
  await page.goto(`${env.EDGE}/`, { waitUntil: "networkidle" });
  results.gallery_cards = await page.locator("li.card").count();
  results.gallery_title = await page.title();
  await page.waitForSelector(".live[data-state=live]", { timeout: 5000 });
  const card = page.locator(`li.card[data-camera-id="${env.CAMERA}"]`);
  const before = Number(await card.locator("[data-role=count]").textContent());
  const image = await capture();
  const uploaded = Date.now();
  await page.waitForFunction(
    ([id, src]) => document.querySelector(`li.card[data-camera-id="${id}"] img[data-role=latest]`)?.getAttribute("src") === src,
    [env.CAMERA, image.thumbnail_url], { timeout: 5000 });
  results.gallery_update_ms = Date.now() - uploaded;
  results.gallery_count_before = before;
  results.gallery_count_after = Number(await card.locator("[data-role=count]").textContent());
  await page.screenshot({ path: join(env.ARTIFACTS, "gallery.png"), fullPage: true });

  // 2. A second load of a camera page transfers no image bytes: every thumbnail comes from
  //    the browser's cache (immutable), per the browser's own resource timing.
  const cameraUrl = `${env.EDGE}/cameras/${env.CAMERA}`;
  const imageBytes = async () => page.evaluate(() => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/media/"))
    .map((e) => ({ name: e.name, transfer: e.transferSize, body: e.decodedBodySize })));
  await page.goto(cameraUrl, { waitUntil: "networkidle" });
  await page.evaluate(() => Promise.all([...document.images].map((img) => img.decode().catch(() => null))));
  const first = await imageBytes();
  await page.screenshot({ path: join(env.ARTIFACTS, "camera.png"), fullPage: true });
  await page.goto(cameraUrl, { waitUntil: "networkidle" });
  await page.evaluate(() => Promise.all([...document.images].map((img) => img.decode().catch(() => null))));
  const second = await imageBytes();
  results.camera_first_load = { images: first.length, transfer: first.reduce((a, e) => a + e.transfer, 0) };
  results.camera_second_load = { images: second.length, transfer: second.reduce((a, e) => a + e.transfer, 0),
                                 decoded: second.reduce((a, e) => a + e.body, 0) };
  results.camera_thumbnails = await page.locator("#thumbs img").count();

  // 3. The dashboard makes no API request after it loaded, while events keep it current.
  await page.goto(`${env.EDGE}/dashboard`, { waitUntil: "networkidle" });
  await page.waitForSelector(".live[data-state=live]", { timeout: 5000 });
  const requests = [];
  const record = (r) => requests.push(r.url());
  page.on("request", record);
  const imagesBefore = Number(await page.locator("#stat-images").textContent());
  const seconds = Number(env.DASHBOARD_SECONDS || 60);
  const started = Date.now();
  let captured = 0;
  while (Date.now() - started < seconds * 1000 && nextFrame < frames.length) {
    await capture();
    captured++;
    await page.waitForTimeout(Math.max(500, (seconds * 1000) / 12));
  }
  await page.waitForFunction((n) => Number(document.querySelector("#stat-images").textContent) >= n,
    imagesBefore + captured, { timeout: 5000 });
  results.dashboard_seconds = (Date.now() - started) / 1000;
  results.dashboard_captures = captured;
  results.dashboard_images_before = imagesBefore;
  results.dashboard_images_after = Number(await page.locator("#stat-images").textContent());
  results.dashboard_count_cell = Number(await page.locator(`tr[data-camera-id="${env.CAMERA}"] [data-role=count]`).textContent());
  page.off("request", record);
  results.dashboard_requests_after_load = requests;
  await page.screenshot({ path: join(env.ARTIFACTS, "dashboard.png"), fullPage: true });

  step("player");
  await player(context, page);
  step("videos");
  await videos(page);
  step("audits");
  await audits(browser, page);
  step("done");
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
