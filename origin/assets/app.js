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
    return li;
  };

  const handlers = {
    image_captured(d) {
      const card = document.querySelector('[data-camera-id="' + d.camera_id + '"]');
      if (card) {
        const img = $("img[data-role=latest]", card);
        if (img) { img.src = d.image.thumbnail_url; img.alt = "Latest frame, captured " + localTime(d.image.captured_at); }
        const count = $("[data-role=count]", card);
        if (count) count.textContent = d.image_count;
        const last = $("[data-role=last]", card);
        if (last) { last.textContent = localTime(d.image.captured_at); last.dateTime = d.image.captured_at; }
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
    camera_created() { if (page !== "camera") location.reload(); },
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
    },
    video_queued(d) { this.video_progress(d); },
    video_progress(d) {
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
    video_ready(d) { const row = document.querySelector('[data-video-id="' + d.video.id + '"]'); if (row) row.remove(); if (page === "camera") location.reload(); },
    video_failed(d) { this.video_ready(d); },
    health_changed(d) {
      const el = document.querySelector('[data-component="' + d.component + '"]');
      if (el) el.textContent = d.status + (d.message ? " — " + d.message : "");
    },
    resync() { location.reload(); },
  };

  let source;
  const connect = () => {
    source = new EventSource("/api/events");
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
