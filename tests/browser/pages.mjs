// Browser checks of the pages, in Debian's Chromium driven by playwright-core, through the
// edge. Run by tests/tests/browser.rs, which starts the stack and checks what this prints.
//
// Environment: PLAYWRIGHT (path of playwright-core), CHROMIUM, EDGE, ORIGIN, CAMERA, TOKEN,
// FRAMES (a folder of distinct JPEGs to upload), ARTIFACTS (where screenshots go),
// DASHBOARD_SECONDS (how long the dashboard is watched).
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const env = process.env;
const require = createRequire(import.meta.url);
const { chromium } = require(env.PLAYWRIGHT);
const frames = readdirSync(env.FRAMES).sort().map((f) => join(env.FRAMES, f));
let nextFrame = 0;
const results = {};
mkdirSync(env.ARTIFACTS, { recursive: true });

async function capture() {
  const body = readFileSync(frames[nextFrame++]);
  const response = await fetch(`${env.ORIGIN}/api/cameras/${env.CAMERA}/captures`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.TOKEN}`, "content-type": "image/jpeg" },
    body,
  });
  if (response.status !== 201) throw new Error(`capture answered ${response.status}`);
  return response.json();
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
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
  page.on("request", (r) => requests.push(r.url()));
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
  results.dashboard_requests_after_load = requests;
  await page.screenshot({ path: join(env.ARTIFACTS, "dashboard.png"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
