// relayd console: shared helpers (words, time zones, fetching, the live stream, confirmations).
// Plain JavaScript, no build step. Everything the page shows comes from the /v1 status API.
"use strict";

const Console = (() => {
  const config = JSON.parse(document.getElementById("console-config").textContent);
  const TZ_KEY = "relayd_tz";
  // Store states as the console names and colours them (one definition for every page).
  const DISPLAY = {
    pending: "planned", creating: "created", scheduled: "created", running: "relaying",
    retrying: "failing", failed: "failed", ended: "ended", removing: "deleted", deleted: "deleted",
  };

  function t(key, vars) {
    let text = config.messages[key] || key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace("{" + name + "}", value);
    return text;
  }

  function zone() {
    return localStorage.getItem(TZ_KEY) || Intl.DateTimeFormat().resolvedOptions().timeZone;
  }

  function setZone(name) {
    if (name) localStorage.setItem(TZ_KEY, name);
    else localStorage.removeItem(TZ_KEY);
  }

  const formats = new Map();
  function formatter(tz, withDate, withSeconds) {
    const key = tz + "|" + withDate + "|" + withSeconds;
    if (!formats.has(key)) {
      const opts = { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
      if (withDate) Object.assign(opts, { month: "2-digit", day: "2-digit" });
      if (withSeconds) opts.second = "2-digit";
      formats.set(key, new Intl.DateTimeFormat(config.lang === "zh" ? "zh-CN" : "en-GB", opts));
    }
    return formats.get(key);
  }

  function fmt(unix, tz, withDate = true, withSeconds = false) {
    return unix == null ? "—" : formatter(tz || zone(), withDate, withSeconds).format(new Date(unix * 1000));
  }

  function utc(unix) {
    return unix == null ? "—" : new Date(unix * 1000).toISOString().replace(".000Z", "Z");
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(response.status + " " + (await response.text()));
    return response.json();
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": config.csrf, Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, body };
  }

  // A confirmation step in a <dialog> (window.confirm is blocked by nothing, but a dialog can be tested and
  // styled, and keeps the words translated). Resolves true only on "confirm".
  function confirmAction(text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  // Server-sent events: "changed" names the schedules whose segments moved (or says "overview": read everything).
  // The page re-reads what changed, coalesced: onChange(ids) with a Set of schedule ids, or null for everything.
  function live(onChange) {
    const badge = document.getElementById("live");
    const banner = document.getElementById("banner");
    // Coalesce: one re-read at most every second, however often the store moves (2 s is the promise).
    let pending = null;
    let last = 0;
    let ids = new Set();
    let all = false;
    const refresh = (names, everything) => {
      if (everything) all = true;
      for (const name of names || []) ids.add(name);
      if (pending) return;
      const wait = Math.max(200 + Math.random() * 300, last + 1000 - Date.now()); // jitter spreads consoles
      pending = setTimeout(() => {
        const asked = all ? null : ids;
        pending = null; last = Date.now(); ids = new Set(); all = false;
        onChange(asked);
      }, wait);
    };
    const source = new EventSource("/v1/stream");
    source.addEventListener("hello", () => {
      banner.hidden = true;
      badge.hidden = false;
      badge.textContent = t("live.on");
      badge.className = "live on";
      document.body.dataset.live = "on";
      refresh([], true); // (re)connected: something may have been missed
    });
    source.addEventListener("changed", (event) => {
      let signal = { overview: true, schedules: [] };
      try { signal = JSON.parse(event.data); } catch (error) { /* an older daemon: read everything */ }
      refresh(signal.schedules, signal.overview || !Array.isArray(signal.schedules));
    });
    source.onerror = () => {
      banner.hidden = false;
      badge.className = "live off";
      document.body.dataset.live = "off";
    };
    return source;
  }

  document.getElementById("lang-switch").addEventListener("click", (event) => {
    const lang = event.currentTarget.dataset.lang;
    document.cookie = "relayd_lang=" + lang + "; path=/; max-age=31536000; samesite=strict";
    localStorage.setItem("relayd_lang", lang);
    window.location.reload();
  });

  return { DISPLAY, config, t, zone, setZone, fmt, utc, getJSON, post, confirmAction, el, live };
})();
