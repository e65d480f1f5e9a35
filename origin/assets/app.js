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

  // A day in the site's time zone: its date ("2026-11-26") of an instant, and the instant
  // it starts (local midnight, or the first instant of a day whose midnight a DST change
  // skips), as the server counts "images today".
  const zoneParts = (ms) => {
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).formatToParts(new Date(ms))) parts[p.type] = p.value;
    return parts;
  };
  const dayOf = (at) => { const p = zoneParts(new Date(at).getTime()); return p.year + "-" + p.month + "-" + p.day; };
  const zoneOffset = (ms) => {
    const p = zoneParts(ms);
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
  };
  const dayStart = (day) => {
    const [y, m, d] = day.split("-").map(Number);
    const wall = Date.UTC(y, m - 1, d);
    // Midnight is `wall` less the offset in force then, one of the offsets of the days on
    // either side. Where a DST change skips midnight, the day starts at the change, which is
    // where the offset before it puts midnight; where midnight comes twice, at the first.
    const starts = [wall - zoneOffset(wall - 864e5), wall - zoneOffset(wall + 864e5)]
      .filter((t) => dayOf(t) === day);
    return starts.length ? Math.min(...starts) : wall - zoneOffset(wall);
  };
  const nextDay = (day) => {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  };

  // The frame player (camera page): a day's thumbnails, each preloaded once into an Image
  // kept here, then shown one after another in one <img>. The URLs are the immutable ones the
  // page uses everywhere (never cache-busted), so a replay, a scrub or a step is answered by
  // the browser's memory cache: no request reaches the network.
  const player = $("#player");
  if (player) {
    const MAX_FRAMES = 2000;
    const shown = $("#player-frame");
    const timeText = $("#player-time");
    const note = $("#player-note");
    const playButton = $("#player-play");
    const stepButtons = [$("#player-previous"), $("#player-next")];
    const speed = $("#player-speed");
    const scrub = $("#player-scrub");
    const dayInput = $("#player-day");
    const cameraId = document.body.dataset.cameraId;
    let frames = [];
    let index = 0;
    let timer = null;
    let generation = 0;

    // Frames of the shown set still loading; `set` tells a late load of an earlier set apart.
    let pending = 0;
    let set = 0;
    const preload = (image) => {
      const frame = { image, img: new Image(), loaded: false, failed: false };
      const mine = set;
      const settle = (ok) => {
        frame.loaded = ok;
        frame.failed = !ok;
        if (mine === set && --pending === 0) progressNote();
      };
      pending++;
      frame.img.onload = () => settle(true);
      frame.img.onerror = () => settle(false);
      frame.img.src = image.thumbnail_url;
      return frame;
    };
    // Said once when loading starts and once when it ends (the note is a live region).
    const progressNote = () => {
      const n = frames.length;
      const day = player.dataset.day;
      player.dataset.loaded = pending === 0 ? "true" : "false";
      note.textContent = n === 0 ? "No frames on " + day + "."
        : pending > 0 ? "Loading " + n + (n === 1 ? " frame" : " frames") + " of " + day + "…"
        : n + (n === 1 ? " frame" : " frames") + " on " + day +
          (n >= MAX_FRAMES ? " (the day's last " + MAX_FRAMES + ")" : "") + ".";
    };
    const show = (i) => {
      if (!frames.length) return;
      index = Math.max(0, Math.min(frames.length - 1, i));
      const image = frames[index].image;
      const when = localTime(image.captured_at);
      shown.src = image.thumbnail_url;
      shown.width = 320;
      shown.height = Math.max(1, Math.round(image.height * 320 / image.width));
      shown.alt = "Frame captured " + when;
      scrub.value = index;
      scrub.setAttribute("aria-valuetext", when + ", frame " + (index + 1) + " of " + frames.length);
      timeText.textContent = when + " · frame " + (index + 1) + " of " + frames.length;
      player.dataset.index = index;
    };
    const pause = () => {
      clearTimeout(timer);
      timer = null;
      playButton.textContent = "Play";
      player.dataset.playing = "false";
      // The live region speaks once playback stops, not thirty times a second.
      timeText.removeAttribute("aria-busy");
    };
    const tick = () => {
      if (index >= frames.length - 1) { pause(); return; }
      const next = frames[index + 1];
      // A frame still on its way is waited for; one that failed is skipped.
      if (!next.loaded && !next.failed) { timer = setTimeout(tick, 20); return; }
      show(index + 1);
      timer = setTimeout(tick, 1000 / Number(speed.value));
    };
    const play = () => {
      if (!frames.length) return;
      if (index >= frames.length - 1) show(0);
      playButton.textContent = "Pause";
      player.dataset.playing = "true";
      timeText.setAttribute("aria-busy", "true");
      clearTimeout(timer);
      timer = setTimeout(tick, 1000 / Number(speed.value));
    };
    const toggle = () => (timer ? pause() : play());
    const step = (by) => { pause(); show(index + by); };
    const setFrames = (images, at) => {
      set++;
      pending = 0;
      frames = images.map(preload);
      scrub.max = Math.max(0, frames.length - 1);
      for (const el of [playButton, scrub, ...stepButtons]) el.disabled = frames.length === 0;
      if (frames.length) show(at === "last" ? frames.length - 1 : 0);
      else {
        shown.alt = "No frame on " + player.dataset.day;
        timeText.textContent = "";
      }
      progressNote();
    };
    const imagesUrl = (params) => "/api/cameras/" + cameraId + "/images?" + new URLSearchParams(params);
    const getPage = async (params) => {
      const r = await fetch(imagesUrl(params), { headers: { Accept: "application/json" } });
      if (!r.ok) throw new Error(await problem(r));
      return r.json();
    };
    // A day's frames, oldest first, through the images API's pages (newest first).
    const loadDay = async (day, at) => {
      const mine = ++generation;
      pause();
      player.dataset.loaded = "false";
      note.textContent = "Loading " + day + "…";
      const range = { limit: 200, from: new Date(dayStart(day)).toISOString(), to: new Date(dayStart(nextDay(day))).toISOString() };
      const images = [];
      try {
        let page = await getPage(range);
        images.push(...page.items);
        while (page.next_before && images.length < MAX_FRAMES) {
          page = await getPage(Object.assign({ before: page.next_before }, range));
          images.push(...page.items);
        }
      } catch (e) {
        if (mine === generation) note.textContent = "The frames of " + day + " could not be loaded: " + e.message;
        return;
      }
      if (mine !== generation) return; // another day was picked meanwhile
      player.dataset.day = day;
      dayInput.value = day;
      setFrames(images.slice(0, MAX_FRAMES).reverse(), at);
    };
    const earlierDay = async () => {
      const day = player.dataset.day;
      try {
        const page = await getPage({ limit: 1, to: new Date(dayStart(day)).toISOString() });
        if (page.items.length) loadDay(dayOf(page.items[0].captured_at), "first");
        else note.textContent = "No frames before " + day + ".";
      } catch (e) { note.textContent = "Earlier frames could not be looked up: " + e.message; }
    };

    playButton.addEventListener("click", toggle);
    stepButtons[0].addEventListener("click", () => step(-1));
    stepButtons[1].addEventListener("click", () => step(1));
    scrub.addEventListener("input", () => { pause(); show(Number(scrub.value)); });
    dayInput.addEventListener("change", () => { if (dayInput.value) loadDay(dayInput.value, "first"); });
    $("#player-earlier").addEventListener("click", earlierDay);
    player.addEventListener("keydown", (e) => {
      const t = e.target;
      if (e.altKey || e.ctrlKey || e.metaKey || t.matches("select, input[type=date]")) return;
      // The scrubber's own arrows, Home and End move it a frame (its input event shows it).
      if (t.matches("input[type=range]") && e.key !== " ") return;
      if (t.matches("button") && (e.key === " " || e.key === "Enter")) return;
      if (e.key === " ") toggle();
      else if (e.key === "ArrowLeft") step(-1);
      else if (e.key === "ArrowRight") step(1);
      else if (e.key === "Home") { pause(); show(0); }
      else if (e.key === "End") { pause(); show(frames.length - 1); }
      else return;
      e.preventDefault();
    });

    // Frames captured or deleted while the page is open join or leave the day they belong to.
    player.captured = (image) => {
      if (dayOf(image.captured_at) !== player.dataset.day || frames.some((f) => f.image.id === image.id)) return;
      const at = frames.findIndex((f) => f.image.captured_at > image.captured_at);
      const frame = preload(image);
      if (at === -1) frames.push(frame); else frames.splice(at, 0, frame);
      if (at !== -1 && at <= index) index++;
      scrub.max = frames.length - 1;
      for (const el of [playButton, scrub, ...stepButtons]) el.disabled = false;
      show(frames.length === 1 ? 0 : index);
      if (pending === 1) progressNote();
    };
    player.deleted = (ids) => {
      const gone = new Set(ids);
      const current = frames[index];
      const kept = frames.filter((f) => !gone.has(f.image.id));
      if (kept.length === frames.length) return;
      frames = kept;
      scrub.max = Math.max(0, frames.length - 1);
      const still = frames.indexOf(current);
      if (frames.length) show(still === -1 ? Math.min(index, frames.length - 1) : still);
      else setFrames([], "first");
    };

    loadDay(player.dataset.day, "last");
  }

  // A camera page's video (built as pages.rs renders it): the player and its download once
  // ready, the progress of a render, or why it failed.
  const videoFacts = (v) => {
    const facts = [];
    if (v.options && v.options.preset) facts.push("preset " + v.options.preset);
    facts.push(v.fps + " fps", v.frame_count + " frames");
    const seconds = typeof v.duration_seconds === "number" ? v.duration_seconds : v.fps > 0 ? v.frame_count / v.fps : null;
    if (seconds !== null) facts.push(seconds.toFixed(1) + " s");
    if (v.bytes !== null && v.bytes !== undefined) facts.push(fmtBytes(v.bytes));
    return facts.join(" · ");
  };
  const cameraVideo = (v, timelapseName) => {
    const li = document.createElement("li");
    li.className = "video";
    li.dataset.videoId = v.id;
    li.dataset.status = v.status;
    const percent = Math.round(v.progress * 100);
    const label = (text) => {
      const span = document.createElement("span");
      span.dataset.role = "label";
      span.textContent = text;
      const status = document.createElement("span");
      status.dataset.role = "status";
      status.textContent = v.status;
      span.appendChild(status);
      return span;
    };
    if (v.status === "ready" && v.url) {
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.src = v.url;
      video.setAttribute("aria-label", timelapseName + ", video " + v.id);
      const facts = document.createElement("p");
      facts.className = "facts";
      facts.innerHTML = '<span data-role="facts"></span> · created <time></time>';
      $("[data-role=facts]", facts).textContent = videoFacts(v);
      $("time", facts).dateTime = v.created_at;
      $("time", facts).textContent = localTime(v.created_at);
      const a = document.createElement("a");
      a.className = "download";
      a.href = v.url;
      a.download = "timelapse-" + v.id + ".mp4";
      a.textContent = "Download video " + v.id + (v.bytes != null ? " (" + fmtBytes(v.bytes) + ")" : "");
      li.append(video, facts, a);
    } else if (v.status === "queued" || v.status === "rendering") {
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = v.progress;
      bar.setAttribute("aria-label", "Render progress of video " + v.id);
      bar.textContent = percent + "%";
      const pct = document.createElement("span");
      pct.dataset.role = "percent";
      pct.textContent = percent + " %";
      li.append(label("Video " + v.id + " (" + v.fps + " fps): "), " ", bar, " ", pct);
    } else {
      li.append(label("Video " + v.id + ": "));
      if (v.error) {
        const error = document.createElement("span");
        error.className = "error";
        error.textContent = v.error;
        li.append(" ", error);
      }
    }
    return li;
  };
  // Puts a video event's state on a camera page: a new item, or the item replaced when its
  // status changed (a ready video gets its player without a reload); progress moves the bar.
  const showCameraVideo = (v) => {
    if (page !== "camera" || String(v.camera_id) !== document.body.dataset.cameraId) return false;
    const section = document.querySelector('section.timelapse[data-timelapse-id="' + v.timelapse_id + '"]');
    if (!section) return true;
    const item = $('li.video[data-video-id="' + v.id + '"]', section);
    if (item && item.dataset.status === v.status) return false;
    const fresh = cameraVideo(v, section.dataset.timelapseName);
    if (item) item.replaceWith(fresh); else $("ul.videos", section).appendChild(fresh);
    return true;
  };

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
        if (player) player.captured(d.image);
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
      if (player) player.deleted(d.image_ids);
      d.image_ids.forEach((id) => {
        const item = document.querySelector('#thumbs [data-image-id="' + id + '"]');
        if (item) item.remove();
      });
      const latest = $("#latest-image");
      if (latest && d.latest_image) { latest.src = d.latest_image.url; latest.width = d.latest_image.width; latest.height = d.latest_image.height; }
      else if (latest) latest.remove();
    },
    timelapse_started(d) {
      // A camera page gets the new timelapse's (empty) list of videos, newest first.
      const list = $("#timelapses");
      const t = d.timelapse;
      if (!list || String(t.camera_id) !== document.body.dataset.cameraId ||
          $('section.timelapse[data-timelapse-id="' + t.id + '"]', list)) return;
      const section = document.createElement("section");
      section.className = "timelapse";
      section.dataset.timelapseId = t.id;
      section.dataset.timelapseName = t.name;
      section.setAttribute("aria-labelledby", "timelapse-" + t.id);
      section.innerHTML = '<h4><span data-role="name"></span> <span class="muted"></span></h4><ul class="videos"></ul>';
      $("h4", section).id = "timelapse-" + t.id;
      $("[data-role=name]", section).textContent = t.name;
      $(".muted", section).textContent = "(" + t.status + ", " + t.image_count + " frames)";
      const none = $("[data-role=no-timelapses]", list);
      if (none) none.remove();
      $("h3", list).after(section);
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
      showCameraVideo(d.video);
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
      if (showCameraVideo(d.video)) return;
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
