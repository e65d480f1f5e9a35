// The operator console in Debian's Chromium (playwright-core), through the edge, as an
// operator uses it: sign in, create a camera and copy its token, start a timelapse, upload
// frames with that token (as its agent would), render, watch the progress bar reach 100 %,
// play and seek the video, make the camera private, sign out. Then two people edit the same
// setting; and a cross-site form post. Run by tests/tests/browser.rs, which starts the stack
// and checks what this prints (one JSON line).
//
// Environment: PLAYWRIGHT, CHROMIUM, EDGE, ORIGIN, USER, PASSWORD, FRAMES, ARTIFACTS.
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const env = process.env;
const require = createRequire(import.meta.url);
const { chromium } = require(env.PLAYWRIGHT);
const frames = readdirSync(env.FRAMES).sort().map((f) => join(env.FRAMES, f));
const results = {};
mkdirSync(env.ARTIFACTS, { recursive: true });
const step = (name) => { results.last_step = name; };

const browser = await chromium.launch({
  executablePath: env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"],
});

async function signedInPage(context) {
  const page = await context.newPage();
  page.on("pageerror", (e) => { results.page_errors = (results.page_errors || []).concat(String(e)); });
  page.on("dialog", (d) => d.accept());
  await page.goto(`${env.EDGE}/login`);
  await page.fill("input[name=name]", env.USER);
  await page.fill("input[name=password]", env.PASSWORD);
  await Promise.all([page.waitForURL(`${env.EDGE}/console`), page.click("form.sign-in button[type=submit]")]);
  return page;
}

const sessionCookie = async (context) =>
  (await context.cookies(env.EDGE)).find((c) => c.name === "tl_session");

try {
  // 1. Sign in: a session cookie, HttpOnly and SameSite.
  step("sign in");
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env.EDGE });
  const page = await signedInPage(context);
  const cookie = await sessionCookie(context);
  results.session_cookie = { http_only: cookie.httpOnly, same_site: cookie.sameSite };
  results.whoami = await page.locator("#whoami").textContent();
  await page.waitForSelector(".live[data-state=live]", { timeout: 5000 });

  // 2. Create a camera: its token shown once, with an agent configuration; copy the token.
  step("create camera");
  await page.fill("#new-camera input[name=name]", "Balcony");
  await page.click("#new-camera button[type=submit]");
  await page.waitForSelector("#new-token:not([hidden])", { timeout: 5000 });
  const token = (await page.locator("#token-value").textContent()).trim();
  results.token_prefix = token.slice(0, 7);
  results.agent_config = await page.locator("#agent-config").textContent();
  await page.click("button[data-copy='#token-value']");
  results.copied_token_matches = (await page.evaluate(() => navigator.clipboard.readText())) === token;
  const cameraLink = await page.locator("#new-camera-link").getAttribute("href");
  const cameraId = Number(cameraLink.split("/").pop());
  results.camera_id = cameraId;
  await page.screenshot({ path: join(env.ARTIFACTS, "console.png"), fullPage: true });

  // 3. Start a timelapse on its console page.
  step("start timelapse");
  await page.goto(`${env.EDGE}${cameraLink}`);
  await page.fill("#start-timelapse input[name=name]", "First light");
  await Promise.all([page.waitForEvent("load"), page.click("#start-timelapse button[type=submit]")]);
  results.timelapses = await page.locator("article.timelapse").count();

  // 4. Upload frames with the token, as the camera's agent would.
  step("upload");
  for (const [n, file] of frames.entries()) {
    const r = await fetch(`${env.EDGE}/api/cameras/${cameraId}/captures`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "image/jpeg" },
      body: readFileSync(file),
    });
    if (r.status !== 201) throw new Error(`capture ${n} answered ${r.status}`);
  }
  await page.reload();
  await page.waitForSelector(".live[data-state=live]", { timeout: 5000 });
  results.frames_shown = Number(await page.locator("article.timelapse [data-role=frames]").first().textContent());

  // 5. Render; the progress bar follows video_progress to 100 %, then the player appears.
  step("render");
  // Watch the bar (test instrumentation: every value it shows, until the page reloads with
  // the player).
  await page.evaluate(() => {
    const seen = [];
    const record = () => {
      const bar = document.querySelector("li.video progress");
      if (bar && seen[seen.length - 1] !== Number(bar.value)) {
        seen.push(Number(bar.value));
        sessionStorage.setItem("progress", JSON.stringify(seen));
      }
    };
    new MutationObserver(record).observe(document.body, { subtree: true, attributes: true, childList: true, characterData: true });
    setInterval(record, 10);
  });
  await page.fill("form.render input[name=fps]", "10");
  await page.click("form.render button[type=submit]");
  await page.waitForSelector("li.video progress", { timeout: 5000 });
  await page.waitForSelector("li.video video", { timeout: 60000 });
  results.progress_seen = JSON.parse(await page.evaluate(() => sessionStorage.getItem("progress")));

  // 6. Play and seek: the browser asks for ranges.
  step("play");
  const ranges = [];
  page.on("response", (r) => { if (r.url().includes("/media/videos/")) ranges.push(r.status()); });
  const video = page.locator("li.video video").first();
  results.video = await video.evaluate(async (v) => {
    v.muted = true;
    if (v.readyState < 1) await new Promise((ok) => v.addEventListener("loadedmetadata", ok, { once: true }));
    await v.play();
    const duration = v.duration;
    v.currentTime = duration / 2;
    await new Promise((ok) => v.addEventListener("seeked", ok, { once: true }));
    return { duration, position: v.currentTime, paused: v.paused };
  });
  results.video_responses = ranges;
  results.download = await page.locator("li.video a[download]").getAttribute("href");
  await page.screenshot({ path: join(env.ARTIFACTS, "console-camera.png"), fullPage: true });

  // 6b. Storage: protect the timelapse from pruning, and keep the camera's frames 30 days.
  step("storage");
  await Promise.all([page.waitForEvent("load"), page.click("article.timelapse form[data-api^='PATCH'] button[type=submit]")]);
  results.protected_badge = await page.locator("article.timelapse [data-role=protected]").count();
  await page.fill("#retention input[name=images_days]", "30");
  await Promise.all([page.waitForEvent("load"), page.click("#retention button[type=submit]")]);
  results.retention_days = await page.locator("#retention input[name=images_days]").inputValue();
  results.retention_text = await page.locator("#retention").innerText();

  // 6c. Automatic videos: a weekly rule added with the form, then paused.
  step("render rules");
  await page.selectOption("#new-rule select[name=period]", "weekly");
  await page.selectOption("#new-rule select[name=weekday]", "monday");
  await page.fill("#new-rule input[name=at]", "06:00");
  await page.selectOption("#new-rule select[name=preset]", "draft");
  await Promise.all([page.waitForEvent("load"), page.click("#new-rule button[type=submit]")]);
  results.rule_summary = await page.locator("#render-rules li [data-role=summary]").first().textContent();
  await Promise.all([page.waitForEvent("load"), page.click("#render-rules li form[data-api^='PUT'] button[type=submit]")]);
  results.rule_after_pause = await page.locator("#render-rules li").first().innerText();

  // 7. Make it private: gone from the public gallery, still in the signed-in one.
  step("private");
  await page.selectOption("#visibility select[name=public]", "false");
  await Promise.all([page.waitForEvent("load"), page.click("#visibility button[type=submit]")]);
  const anonymous = await browser.newContext();
  const publicPage = await anonymous.newPage();
  await publicPage.goto(`${env.EDGE}/`);
  results.public_gallery_has_camera = await publicPage.locator(`li.card[data-camera-id="${cameraId}"]`).count();
  const publicCamera = await publicPage.goto(`${env.EDGE}/cameras/${cameraId}`);
  results.public_camera_page_status = publicCamera.status();
  await page.goto(`${env.EDGE}/`);
  results.signed_in_gallery_has_camera = await page.locator(`li.card[data-camera-id="${cameraId}"]`).count();

  // 8. A cross-site form post (another site's page posting to this one) is refused.
  step("cross-site");
  // Each forgery from its own page of another site, in the signed-in person's browser.
  const forge = async (form, target) => {
    const attacker = await context.newPage();
    await attacker.route("http://attacker.test/**", (route) => route.fulfill({
      contentType: "text/html",
      body: `<form id=f method=post action="${env.EDGE}/api/cameras" enctype="text/plain">
               <input name='{"name":"pwned","x":"' value='"}'></form>
             <form id=g method=post action="${env.EDGE}/logout"><input name=csrf value=guess></form>`,
    }));
    await attacker.goto("http://attacker.test/");
    const [answer] = await Promise.all([
      attacker.waitForResponse((r) => r.url() === `${env.EDGE}${target}`),
      attacker.evaluate((id) => document.getElementById(id).submit(), form),
    ]);
    const status = answer.status();
    await attacker.close();
    return status;
  };
  results.cross_site_create_status = await forge("f", "/api/cameras");
  results.cross_site_logout_status = await forge("g", "/logout");

  // 9. Two people edit the same setting: the second sees "changed elsewhere", no lost update.
  step("conflict");
  const other = await browser.newContext();
  const second = await signedInPage(other);
  results.two_sessions_differ = (await sessionCookie(other)).value !== (await sessionCookie(context)).value;
  await page.goto(`${env.EDGE}/console`);
  await page.fill("#settings input[name=site_name]", "Alpha site");
  await page.click("#settings button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#settings .outcome").textContent === "Saved.", null, { timeout: 5000 });
  await second.fill("#settings input[name=site_name]", "Beta site");
  await second.click("#settings button[type=submit]");
  await second.waitForSelector("#settings .conflict:not([hidden])", { timeout: 5000 });
  results.conflict_text = await second.locator("#settings .conflict").textContent();
  await second.screenshot({ path: join(env.ARTIFACTS, "console-conflict.png"), fullPage: true });
  const afterConflict = await (await fetch(`${env.ORIGIN}/api/settings`)).json();
  results.site_name_after_conflict = afterConflict.site_name;
  await second.click("#settings [data-reapply]");
  await second.waitForFunction(() => document.querySelector("#settings .outcome").textContent === "Saved.", null, { timeout: 5000 });
  results.site_name_after_reapply = (await (await fetch(`${env.ORIGIN}/api/settings`)).json()).site_name;

  // 9b. Preferences: saved with If-Match too.
  step("preferences");
  await page.goto(`${env.EDGE}/console`);
  await page.fill("#preferences input[name=timezone]", "Europe/Paris");
  await page.click("#preferences button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#preferences .outcome").textContent === "Saved.", null, { timeout: 5000 });
  results.preferences_after = await page.evaluate(async () =>
    (await fetch("/api/preferences", { cache: "no-store" })).json());
  // Relative times, kept current in the page.
  results.relative_time = await page.locator("#camera-table time[data-relative]").first().textContent();

  // 10. Sign out: back to the sign-in page; the console asks again.
  step("sign out");
  await page.goto(`${env.EDGE}/console`);
  const [signOut] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${env.EDGE}/logout`),
    page.click(".whoami button[type=submit]"),
  ]);
  results.sign_out_status = signOut.status();
  results.sign_out_location = signOut.headers()["location"] || null;
  await page.waitForURL(`${env.EDGE}/login`, { timeout: 5000 }).catch(async () => {
    results.sign_out_page = { url: page.url(), text: (await page.textContent("body")).slice(0, 300) };
  });
  const again = await page.goto(`${env.EDGE}/console`);
  results.console_after_sign_out = new URL(again.url()).pathname;
  results.session_cookie_after_sign_out = (await sessionCookie(context)) ? "present" : "gone";
  step("done");
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
