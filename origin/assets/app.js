// Timelapser pages: one EventSource per page keeps it current; no polling, no framework.
// The server renders everything; events carry what each page needs to update itself.
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const live = document.querySelector(".live");
  const $ = (sel, root) => (root || document).querySelector(sel);
  const fmtBytes = (n) => {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  };
  // Times in the site's time zone (the `timezone` setting), as the server renders them.
  const zone = document.body.dataset.timezone || "UTC";
  const localTime = (iso) => {
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
    }).formatToParts(new Date(iso))) parts[p.type] = p.value;
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" +
      parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  };
  const setStatus = (el, status) => {
    if (!el) return;
    el.textContent = status;
    el.className = "status status-" + status;
  };
  const thumbItem = (image) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = image.url;
    const img = document.createElement("img");
    img.src = image.thumbnail_url;
    img.width = 320;
    img.height = Math.max(1, Math.round(image.height * 320 / image.width));
    img.loading = "lazy";
    img.alt = "Frame captured " + localTime(image.captured_at);
    a.appendChild(img);
    li.appendChild(a);
    li.dataset.imageId = image.id;
    return li;
  };


  // The console: forms carried out against the JSON API with the session's CSRF token, and
  // If-Match where the form was rendered from a tagged representation (412: changed elsewhere).
  const consoleRoot = $("#console");
  const csrf = consoleRoot ? consoleRoot.dataset.csrf : null;
  const api = (method, url, body, headers) => fetch(url, {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: Object.assign({ "X-CSRF-Token": csrf, "Accept": "application/json" },
      body === undefined ? {} : { "Content-Type": "application/json" }, headers || {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const formBody = (form) => {
    const body = {};
    let any = false;
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if ("optional" in el.dataset && el.value === "") continue;
      any = true;
      if (el.type === "checkbox") body[el.name] = el.checked;
      else if (el.dataset.type === "number") { if (el.value !== "") body[el.name] = Number(el.value); }
      else if (el.dataset.type === "json") body[el.name] = JSON.parse(el.value);
      else body[el.name] = el.value;
    }
    return any ? body : undefined;
  };
  const tell = (form, text, isError) => {
    const out = form.querySelector(".outcome");
    if (out) { out.textContent = text; out.classList.toggle("error", !!isError); }
  };
  const problem = async (response) => {
    try { const p = await response.json(); return p.detail || p.title || response.statusText; }
    catch (e) { return response.status + " " + response.statusText; }
  };
  const showConflict = async (form) => {
    const box = form.querySelector(".conflict");
    const r = await api("GET", form.dataset.conflict);
    if (!r.ok) { tell(form, "Changed elsewhere, and the current values could not be read: " + await problem(r), true); return; }
    const current = await r.json();
    form.dataset.currentEtag = r.headers.get("ETag");
    form.currentValues = current;
    const dl = box.querySelector("[data-role=current]");
    dl.textContent = "";
    for (const el of form.elements) {
      if (!el.name || !(el.name in current)) continue;
      const dt = document.createElement("dt"); dt.textContent = el.name;
      const dd = document.createElement("dd");
      const v = current[el.name];
      dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
      dl.append(dt, dd);
    }
    box.hidden = false;
    tell(form, "Not saved: changed elsewhere.", true);
  };
  const submit = async (form) => {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const [method, url] = form.dataset.api.split(" ");
    let body;
    try { body = formBody(form); } catch (e) { tell(form, "Not valid JSON: " + e.message, true); return; }
    const headers = form.dataset.etag ? { "If-Match": form.dataset.etag } : {};
    tell(form, "Saving…");
    let r;
    try { r = await api(method, url, body, headers); }
    catch (e) { tell(form, "The server could not be reached: " + e.message, true); return; }
    if (r.status === 412 && form.dataset.conflict) { await showConflict(form); return; }
    if (!r.ok) { tell(form, await problem(r), true); return; }
    const after = form.dataset.after || "reload";
    if (after === "saved") {
      const etag = r.headers.get("ETag");
      if (etag) form.dataset.etag = etag;
      const box = form.querySelector(".conflict");
      if (box) box.hidden = true;
      tell(form, "Saved.");
    } else if (after === "token") {
      const created = await r.json();
      $("#token-value").textContent = created.token;
      $("#agent-config").textContent = [
        "[[camera]]",
        "name = " + JSON.stringify(created.camera.name),
        "origin = " + JSON.stringify(location.origin),
        "camera_id = " + created.camera.id,
        "token_file = \"/etc/timelapser-agent/camera-" + created.camera.id + ".token\"",
        "source = \"rtsp://camera.local:554/stream1\"   # your camera's stream or snapshot URL",
        "spool_dir = \"/var/spool/timelapser-agent/camera-" + created.camera.id + "\"",
      ].join("\n");
      $("#new-camera-link").href = "/console/cameras/" + created.camera.id;
      $("#new-token").hidden = false;
      form.reset();
      tell(form, "Created camera " + created.camera.id + ".");
    } else if (after === "video") {
      // A render: its row at once, with a bar that video_progress moves (no reload, so the
      // stream stays connected and no event is missed).
      const v = await r.json();
      const li = document.createElement("li");
      li.className = "video";
      li.dataset.videoId = v.id;
      li.dataset.status = v.status;
      li.innerHTML = '<span data-role="label"></span> <progress max="1"></progress> <span data-role="percent"></span>';
      $("[data-role=label]", li).textContent = "Video " + v.id + " (" + v.fps + " fps): ";
      const status = document.createElement("span");
      status.dataset.role = "status";
      status.textContent = v.status;
      $("[data-role=label]", li).appendChild(status);
      $("progress", li).value = v.progress;
      $("progress", li).setAttribute("aria-label", "Render progress of video " + v.id);
      $("[data-role=percent]", li).textContent = Math.round(v.progress * 100) + " %";
      const list = form.closest("article").querySelector("ul.videos");
      list.appendChild(li);
      tell(form, "Rendering video " + v.id + "…");
    } else if (after.startsWith("goto:")) {
      location.assign(after.slice(5));
    } else {
      location.reload();
    }
  };
  if (consoleRoot) {
    document.addEventListener("submit", (e) => {
      const form = e.target.closest("form[data-api]");
      if (!form) return;
      e.preventDefault();
      submit(form);
    });
    document.addEventListener("click", (e) => {
      const copy = e.target.closest("[data-copy]");
      if (copy) {
        const text = $(copy.dataset.copy).textContent;
        (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject(new Error("no clipboard")))
          .then(() => { copy.textContent = "Copied"; }, () => {
            const range = document.createRange(); range.selectNodeContents($(copy.dataset.copy));
            const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
            copy.textContent = "Selected: press Ctrl+C";
          });
      }
      const form = e.target.closest("form[data-conflict]");
      if (!form) return;
      if (e.target.matches("[data-reapply]")) {
        form.dataset.etag = form.dataset.currentEtag;
        submit(form);
      } else if (e.target.matches("[data-take-current]")) {
        for (const el of form.elements) {
          if (!el.name || !form.currentValues || !(el.name in form.currentValues)) continue;
          const v = form.currentValues[el.name];
          if (el.type === "checkbox") el.checked = !!v;
          else el.value = typeof v === "string" ? v : JSON.stringify(v);
        }
        form.dataset.etag = form.dataset.currentEtag;
        form.querySelector(".conflict").hidden = true;
        tell(form, "Showing the current values.");
      }
    });
  }

  // Relative times ("3 min ago"), kept current by a local timer (nothing is fetched).
  const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  const relativeTimes = () => {
    const now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach((el) => {
      if (!el.dateTime) return;
      const seconds = Math.round((new Date(el.dateTime).getTime() - now) / 1000);
      const abs = Math.abs(seconds);
      const [value, unit] = abs < 60 ? [seconds, "second"] : abs < 3600 ? [Math.round(seconds / 60), "minute"]
        : abs < 86400 ? [Math.round(seconds / 3600), "hour"] : [Math.round(seconds / 86400), "day"];
      el.textContent = relative.format(value, unit);
      el.title = localTime(el.dateTime);
    });
  };
  relativeTimes();
  setInterval(relativeTimes, 15000);

  const handlers = {
    image_captured(d) {
      const card = document.querySelector('[data-camera-id="' + d.camera_id + '"]');
      if (card) {
        const img = $("img[data-role=latest]", card);
        if (img) { img.src = d.image.thumbnail_url; img.alt = "Latest frame, captured " + localTime(d.image.captured_at); }
        const count = $("[data-role=count]", card);
        if (count) count.textContent = d.image_count;
        const last = $("[data-role=last]", card);
        if (last) { last.textContent = localTime(d.image.captured_at); last.dateTime = d.image.captured_at; relativeTimes(); }
      }
      if (page === "camera" && String(d.camera_id) === document.body.dataset.cameraId) {
        const latest = $("#latest-image");
        if (latest) { latest.src = d.image.url; latest.width = d.image.width; latest.height = d.image.height; }
        const count = $("#image-count");
        if (count) count.textContent = d.image_count;
        const grid = $("#thumbs[data-first-page]");
        if (grid) grid.insertBefore(thumbItem(d.image), grid.firstChild);
      }
    },
    camera_status_changed(d) {
      document.querySelectorAll('[data-camera-id="' + d.camera_id + '"] [data-role=status]').forEach((el) => setStatus(el, d.status));
      if (page === "camera" && String(d.camera_id) === document.body.dataset.cameraId) setStatus($("#status"), d.status);
    },
    camera_created() { if (page !== "camera" && page !== "console") location.reload(); },
    camera_deleted(d) {
      document.querySelectorAll('[data-camera-id="' + d.camera_id + '"]').forEach((el) => el.remove());
    },
    camera_updated(d) {
      document.querySelectorAll('[data-camera-id="' + d.camera.id + '"] [data-role=name]').forEach((el) => { el.textContent = d.camera.name; });
    },
    stats_updated(s) {
      const set = (id, v) => { const el = document.getElementById(id); if (el) el.textContent = v; };
      set("stat-cameras", s.cameras.total);
      set("stat-online", s.cameras.online);
      set("stat-images", s.images_total);
      set("stat-today", s.images_today);
      set("stat-storage", fmtBytes(s.storage_bytes));
      set("stat-renders", s.renders_in_flight);
      const disk = s.storage;
      if (!disk) return;
      set("stat-free", fmtBytes(disk.free_bytes));
      set("stat-disk", fmtBytes(disk.total_bytes));
      set("stat-threshold", fmtBytes(disk.threshold_bytes));
      set("stat-per-day", fmtBytes(disk.bytes_per_day));
      set("stat-days-left", disk.days_left === null ? "nothing captured in the last 24 h"
        : disk.days_left + (disk.days_left === 1 ? " day" : " days") + " left at this rate");
      disk.cameras.forEach((c) => {
        const row = document.querySelector('[data-storage-camera="' + c.camera_id + '"]');
        if (!row) return;
        $("[data-role=images]", row).textContent = c.images;
        $("[data-role=bytes]", row).textContent = fmtBytes(c.bytes);
        $("[data-role=per-day]", row).textContent = fmtBytes(c.bytes_per_day);
      });
    },
    images_deleted(d) {
      // Counts and latest frames follow; deleted thumbnails leave the camera page.
      document.querySelectorAll('[data-camera-id="' + d.camera_id + '"] [data-role=count]').forEach((el) => { el.textContent = d.image_count; });
      if (String(d.camera_id) !== document.body.dataset.cameraId && !document.querySelector('[data-console-camera="' + d.camera_id + '"]')) return;
      const count = $("#image-count");
      if (count) count.textContent = d.image_count;
      d.image_ids.forEach((id) => {
        const item = document.querySelector('#thumbs [data-image-id="' + id + '"]');
        if (item) item.remove();
      });
      const latest = $("#latest-image");
      if (latest && d.latest_image) { latest.src = d.latest_image.url; latest.width = d.latest_image.width; latest.height = d.latest_image.height; }
      else if (latest) latest.remove();
    },
    timelapse_updated(d) { if (page === "console" && document.querySelector('[data-timelapse-id="' + d.timelapse.id + '"]')) location.reload(); },
    timelapse_deleted(d) {
      document.querySelectorAll('[data-timelapse-id="' + d.timelapse_id + '"]').forEach((el) => el.remove());
    },
    video_deleted(d) {
      document.querySelectorAll('li.video[data-video-id="' + d.video_id + '"], #renders [data-video-id="' + d.video_id + '"]').forEach((el) => el.remove());
    },
    storage_pressure(d) {
      const el = document.querySelector('[data-component="storage"]');
      if (el) el.textContent = (d.exhausted ? "full — " : "pruning — ") + d.message;
    },
    video_queued(d) { this.video_progress(d); },
    video_progress(d) {
      // The console's video list: the bar and the percentage of this render.
      document.querySelectorAll('li.video[data-video-id="' + d.video.id + '"]').forEach((item) => {
        const bar = $("progress", item);
        if (bar) bar.value = d.video.progress;
        const pct = $("[data-role=percent]", item);
        if (pct) pct.textContent = Math.round(d.video.progress * 100) + " %";
        const status = $("[data-role=status]", item);
        if (status) status.textContent = d.video.status;
        item.dataset.status = d.video.status;
      });
      const list = $("#renders");
      if (!list) return;
      let row = list.querySelector('[data-video-id="' + d.video.id + '"]');
      if (!row) {
        row = document.createElement("li");
        row.dataset.videoId = d.video.id;
        row.innerHTML = '<span data-role="label"></span> <progress max="1"></progress>';
        list.appendChild(row);
      }
      $("[data-role=label]", row).textContent = "Video " + d.video.id + " (timelapse " + d.video.timelapse_id + "): " + d.video.status;
      $("progress", row).value = d.video.progress;
    },
    video_ready(d) {
      const row = document.querySelector('#renders [data-video-id="' + d.video.id + '"]');
      if (row) row.remove();
      if (page === "camera") location.reload();
      const item = document.querySelector('li.video[data-video-id="' + d.video.id + '"]');
      if (page === "console" && item) {
        // Show it complete, then the page with its player.
        if (d.video.status === "ready") {
          const bar = $("progress", item);
          if (bar) bar.value = 1;
          const pct = $("[data-role=percent]", item);
          if (pct) pct.textContent = "100 %";
        }
        const status = $("[data-role=status]", item);
        if (status) status.textContent = d.video.status;
        setTimeout(() => location.reload(), 400);
      }
    },
    video_failed(d) { this.video_ready(d); },
    health_changed(d) {
      const el = document.querySelector('[data-component="' + d.component + '"]');
      if (el) el.textContent = d.status + (d.message ? " — " + d.message : "");
    },
    resync() { location.reload(); },
  };

  let source;
  const connect = () => {
    // The console is rendered for one person (never stored), from the log up to its
    // data-last-event-id: resuming there, nothing that happened since is missed.
    const after = consoleRoot && consoleRoot.dataset.lastEventId;
    source = new EventSource("/api/events" + (after ? "?last_event_id=" + encodeURIComponent(after) : ""));
    source.onopen = () => { if (live) { live.dataset.state = "live"; live.textContent = "live"; } };
    source.onerror = () => { if (live) { live.dataset.state = "reconnecting"; live.textContent = "reconnecting…"; } };
    Object.keys(handlers).forEach((name) => {
      source.addEventListener(name, (e) => {
        try { handlers[name](JSON.parse(e.data)); } catch (err) { console.error(name, err); }
      });
    });
  };
  connect();
  window.addEventListener("pagehide", () => source && source.close());
})();

// Lists from checkboxes (the console's webhook events): checkboxes marked
// data-list-of="<id>" keep the hidden JSON input of that id, an array of their checked values,
// in step, so the generic form handling above sends a list.
document.addEventListener("change", (e) => {
  const box = e.target.closest("input[type=checkbox][data-list-of]");
  if (!box) return;
  const of = box.dataset.listOf;
  const checked = Array.from(document.querySelectorAll("input[data-list-of]"))
    .filter((b) => b.dataset.listOf === of && b.checked)
    .map((b) => b.value);
  document.getElementById(of).value = JSON.stringify(checked);
});
