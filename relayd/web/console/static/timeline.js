// relayd console: the timeline. One row per schedule, time across, drawn from GET /v1/schedules?segments=brief.
"use strict";

(() => {
  const C = Console;
  const LABEL = 180; // px, the sticky name column
  const MIN_TRACK = 720; // px: below this the timeline scrolls sideways (phones)
  const STATES = ["planned", "created", "relaying", "failing", "failed", "ended", "deleted"];
  const DISPLAY = C.DISPLAY;
  const HEALTH = ["up", "stalled", "unknown", "paused"];
  const ZOOM_KEY = "relayd_zoom";
  const view = { span: Number(localStorage.getItem(ZOOM_KEY)) || 86400, start: null, all: false };
  let data = null;
  const root = document.getElementById("timeline");

  const display = (seg) => DISPLAY[seg.state] || "planned";

  function horizon() {
    let lo = Infinity, hi = -Infinity;
    for (const s of data.schedules) for (const seg of s.segments || []) {
      lo = Math.min(lo, seg.window.start_unix); hi = Math.max(hi, seg.window.end_unix);
    }
    return lo === Infinity ? [data.now_unix - 3600, data.now_unix + 86400] : [lo, hi];
  }

  function range() {
    if (view.all) {
      const [lo, hi] = horizon();
      const pad = (hi - lo) * 0.02 || 60;
      return [lo - pad, hi + pad];
    }
    if (view.start == null) view.start = data.now_unix - view.span * 0.25;
    return [view.start, view.start + view.span];
  }

  function matches(s, text, group, state) {
    if (text && !(s.id.toLowerCase().includes(text) || (s.title || "").toLowerCase().includes(text))) return false;
    if (group && s.group !== group) return false;
    if (state && !(s.segments || []).some((seg) => display(seg) === state)) return false;
    return true;
  }

  // Offset of the zone from UTC at an instant, in seconds (so ticks fall on the zone's round hours and days).
  function offset(unix, tz) {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    }).formatToParts(new Date(unix * 1000));
    const get = (type) => Number(parts.find((p) => p.type === type).value);
    const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
    return Math.round(local / 1000 - Math.floor(unix));
  }

  function tickStep(span) {
    const steps = [10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400];
    return steps.find((step) => span / step <= 12) || steps[steps.length - 1];
  }

  function axis(t0, t1, x, width) {
    const tz = C.zone();
    const step = tickStep(t1 - t0);
    const off = offset(t0, tz);
    const row = C.el("div", "axis");
    row.style.width = LABEL + width + "px";
    for (let tick = Math.ceil((t0 + off) / step) * step - off; tick < t1; tick += step) {
      const mark = C.el("span", "tick", C.fmt(tick, tz, step >= 3 * 3600 || t1 - t0 > 86400, step < 60));
      mark.style.left = LABEL + x(tick) + "px";
      mark.title = C.utc(tick) + " UTC";
      row.appendChild(mark);
    }
    return row;
  }

  function bar(s, seg, x, width, t0, t1) {
    const a = Math.max(seg.window.start_unix, t0), b = Math.min(seg.window.end_unix, t1);
    const state = display(seg);
    const node = C.el("a", "seg st-" + state + (seg.warnings && seg.warnings.length ? " warn" : ""));
    node.href = "/schedules/" + encodeURIComponent(s.id);
    node.style.left = x(a) + "px";
    node.style.width = Math.max(2, x(b) - x(a)) + "px";
    node.dataset.key = seg.key;
    node.dataset.state = state;
    const warn = (seg.warnings || []).map((w) => "\n⚠ " + C.t("warn." + w)).join("");
    node.title = `${s.id} #${seg.index} · ${C.t("state." + state)}\n` +
      `${C.utc(seg.window.start_unix)} – ${C.utc(seg.window.end_unix)} UTC` +
      (seg.task_id ? `\n${seg.task_id}` : "") + warn;
    return node;
  }

  function track(s, x, width, t0, t1) {
    const lane = C.el("div", "track");
    lane.style.width = width + "px";
    let previous = null;
    for (const seg of s.segments || []) {
      if (previous && previous.window.end_unix === seg.window.start_unix && seg.window.start_unix > t0 &&
          seg.window.start_unix < t1) {
        const mark = C.el("span", "handoff");
        mark.style.left = x(seg.window.start_unix) + "px";
        mark.title = C.t("handoff") + " " + C.utc(seg.window.start_unix) + " UTC";
        lane.appendChild(mark);
      }
      previous = seg;
      if (seg.window.end_unix > t0 && seg.window.start_unix < t1) lane.appendChild(bar(s, seg, x, width, t0, t1));
      for (const mark of warnings(s, seg)) {
        const [a, b] = [Math.max(mark.from, t0), Math.min(mark.to, t1)];
        if (b > a) lane.appendChild(interval(mark, x(a), x(b)));
      }
    }
    return lane;
  }

  // The gap before a segment (from the end of the previous one of its chain) and the stretches it shares with
  // another segment on its destination: drawn as intervals in the warning colour, not just an outline.
  function warnings(s, seg) {
    const marks = (seg.overlaps || []).map((o) => ({ kind: "overlap", key: seg.key, from: o.start_unix, to: o.end_unix }));
    if ((seg.warnings || []).includes("gap_before")) {
      const before = (s.segments || []).find((p) => p.index === seg.index - 1 && p.occurrence === seg.occurrence);
      if (before) marks.push({ kind: "gap", key: seg.key, from: before.window.end_unix, to: seg.window.start_unix });
    }
    return marks;
  }

  function interval(mark, left, right) {
    const node = C.el("span", "interval " + mark.kind);
    node.style.left = left + "px";
    node.style.width = Math.max(2, right - left) + "px";
    node.dataset.key = mark.key;
    node.dataset.kind = mark.kind;
    node.dataset.from = String(mark.from);
    node.dataset.to = String(mark.to);
    const what = mark.kind === "gap" ? C.t("warn.gap_before") : C.t("warn.overlap");
    node.title = `⚠ ${what}\n${C.utc(mark.from)} – ${C.utc(mark.to)} UTC`;
    return node;
  }

  // The status API's stream health: {"health": "up" | "stalled" | "unknown" | "paused", "text": "…"}.
  function health(s, width) {
    const h = s.health;
    const state = HEALTH.includes(h.health) ? h.health : "unknown";
    const band = C.el("div", "health h-" + state);
    band.style.width = width + "px";
    band.dataset.health = state;
    band.title = C.t("health") + ": " + (h.text || state);
    return band;
  }

  function row(s, x, width, t0, t1) {
    const line = C.el("div", "row");
    line.dataset.schedule = s.id;
    const label = C.el("div", "label");
    const link = C.el("a", null, s.id);
    link.href = "/schedules/" + encodeURIComponent(s.id);
    label.appendChild(link);
    if (s.title) label.appendChild(C.el("small", null, s.title));
    line.appendChild(label);
    const lanes = C.el("div", "lanes");
    lanes.appendChild(track(s, x, width, t0, t1));
    if (s.health && typeof s.health === "object") lanes.appendChild(health(s, width));
    line.appendChild(lanes);
    return line;
  }

  function render() {
    if (!data) return;
    const [t0, t1] = range();
    const width = Math.max(MIN_TRACK, root.clientWidth - LABEL - 2);
    const x = (unix) => ((unix - t0) / (t1 - t0)) * width;
    const text = document.getElementById("filter-text").value.trim().toLowerCase();
    const group = document.getElementById("filter-group").value;
    const state = document.getElementById("filter-state").value;
    const canvas = C.el("div", "canvas");
    canvas.style.width = LABEL + width + "px";
    canvas.appendChild(axis(t0, t1, x, width));
    const shown = data.schedules.filter((s) => matches(s, text, group, state));
    for (const s of shown) canvas.appendChild(row(s, x, width, t0, t1));
    if (!shown.length) canvas.appendChild(C.el("p", "muted", C.t("schedules.none")));
    if (data.now_unix > t0 && data.now_unix < t1) {
      const now = C.el("div", "nowline");
      now.style.left = LABEL + x(data.now_unix) + "px";
      now.title = C.t("now") + " " + C.utc(data.now_unix) + " UTC";
      canvas.appendChild(now);
    }
    const scroll = root.scrollLeft;
    root.replaceChildren(canvas);
    root.scrollLeft = scroll;
    document.body.dataset.rows = String(shown.length);
    markButtons();
  }

  function markButtons() {
    for (const b of document.querySelectorAll("#zoom button")) {
      b.classList.toggle("on", view.all ? b.dataset.zoom === "all" : Number(b.dataset.zoom) === view.span);
    }
    const chosen = localStorage.getItem("relayd_tz") || "";
    for (const b of document.querySelectorAll("#tz button")) b.classList.toggle("on", b.dataset.tz === chosen);
  }

  function list(title, items, cls) {
    const box = C.el("div", "problem " + cls);
    box.appendChild(C.el("h3", null, title));
    const ul = C.el("ul");
    for (const item of items) ul.appendChild(C.el("li", null, typeof item === "string" ? item : JSON.stringify(item)));
    box.appendChild(ul);
    return box;
  }

  function problems() {
    const body = document.getElementById("problems-body");
    const parts = [];
    const failed = data.schedules.filter((s) => s.failed_segments > 0).map((s) => s.id +
      (s.last_error ? ": " + s.last_error.message + (s.last_error.request_id ? " (" + s.last_error.request_id + ")" : "") : ""));
    const stalled = data.schedules.filter((s) => s.health && s.health.health === "stalled")
      .map((s) => s.id + ": " + (s.health.text || C.t("health.stalled")));
    const held = data.held_removals || [];
    const sections = [
      ["problems.config", data.config_problems || [], "config"],
      ["problems.alerts", (data.alerts || []).map(alertText), "alerts"],
      ["problems.held", held, "held"],
      ["problems.conflicts", data.conflicts || [], "conflicts"],
      ["problems.failed", failed, "failed"],
      ["problems.stalled", stalled, "stalled"],
      ["problems.warnings", data.config_warnings || [], "warnings"],
    ];
    for (const [key, items, cls] of sections) if (items.length) parts.push(list(C.t(key), items, cls));
    body.replaceChildren(...(parts.length ? parts : [C.el("p", "muted", C.t("problems.none"))]));
    document.getElementById("release").hidden = !held.length;  // nothing held: nothing to release
  }

  // An open alert as a line: severity, what and where, what to do, and since when (in the chosen zone).
  function alertText(a) {
    const since = a.opened_at_unix != null ? " (" + C.t("problems.since", { at: C.fmt(a.opened_at_unix, C.zone()) }) + ")" : "";
    return "[" + C.t("severity." + a.severity) + "] " + a.subject + ": " + a.message + since;
  }

  function options() {
    const groups = [...new Set(data.schedules.map((s) => s.group).filter(Boolean))].sort();
    const select = document.getElementById("filter-group");
    const chosen = select.value;
    select.replaceChildren(new Option(C.t("filter.group"), ""), ...groups.map((g) => new Option(g, g)));
    select.value = groups.includes(chosen) ? chosen : "";
  }

  // Fold a partial answer (only the schedules that changed) into the data: replace, add, or drop each asked row.
  function merge(part, asked) {
    const fresh = new Map(part.schedules.map((s) => [s.id, s]));
    const kept = data.schedules.filter((s) => !asked.has(s.id)).concat([...fresh.values()]);
    kept.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    Object.assign(data, part, { schedules: kept });
  }

  async function read(asked) {
    if (!data || asked == null) {
      data = await C.getJSON("/v1/schedules?segments=brief");
      return;
    }
    if (!asked.size) return;
    const query = [...asked].map((id) => "id=" + encodeURIComponent(id)).join("&");
    merge(await C.getJSON("/v1/schedules?segments=brief&" + query), asked);
  }

  let loading = null;
  async function load(asked) {
    if (loading) await loading.catch(() => {}); // one read at a time, in order
    loading = (async () => {
      try {
        await read(asked);
        options();
        problems();
        render();
        document.body.dataset.loaded = String(Date.now());
        if (!document.body.dataset.painted) {
          requestAnimationFrame(() => { document.body.dataset.painted = String(performance.now()); });
        }
      } catch (error) {
        root.replaceChildren(C.el("p", "error", C.t("error.load", { message: error.message })));
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  function legend() {
    const box = document.getElementById("legend");
    for (const state of STATES) {
      const item = C.el("span", "key");
      item.appendChild(C.el("i", "swatch st-" + state));
      item.appendChild(document.createTextNode(C.t("state." + state)));
      box.appendChild(item);
    }
    const warn = C.el("span", "key");
    warn.appendChild(C.el("i", "swatch warn"));
    warn.appendChild(document.createTextNode(C.t("warn.overlap") + " / " + C.t("warn.gap_before")));
    box.appendChild(warn);
    const select = document.getElementById("filter-state");
    for (const state of STATES) select.appendChild(new Option(C.t("state." + state), state));
  }

  document.getElementById("zoom").addEventListener("click", (event) => {
    const zoom = event.target.dataset && event.target.dataset.zoom;
    if (!zoom || !data) return;
    view.all = zoom === "all";
    if (!view.all) {
      const [t0, t1] = range();
      view.span = Number(zoom);
      localStorage.setItem(ZOOM_KEY, zoom);
      // Zoom about "now" when it is in view (it stays where it was on screen), else about the middle.
      const anchor = data.now_unix > t0 && data.now_unix < t1 ? data.now_unix : (t0 + t1) / 2;
      view.start = anchor - ((anchor - t0) / (t1 - t0)) * view.span;
    }
    render();
  });
  document.getElementById("pan").addEventListener("click", (event) => {
    const pan = event.target.dataset && event.target.dataset.pan;
    if (pan == null || !data) return;
    if (view.all) { view.all = false; view.start = null; }
    view.start = Number(pan) === 0 ? data.now_unix - view.span * 0.25 : range()[0] + (Number(pan) * view.span) / 2;
    render();
  });
  document.getElementById("tz").addEventListener("click", (event) => {
    if (!event.target.dataset || event.target.dataset.tz == null) return;
    C.setZone(event.target.dataset.tz);
    render();
  });
  document.getElementById("filter-text").addEventListener("input", render);
  for (const id of ["filter-group", "filter-state"]) document.getElementById(id).addEventListener("change", render);
  document.getElementById("release").addEventListener("click", async () => {
    if (!(await C.confirmAction(C.t("action.confirm_release")))) return;
    const result = await C.post("/v1/removals/release");
    document.getElementById("release-result").textContent = result.ok
      ? C.t("action.done") + " " + (result.body.released || []).join(", ")
      : C.t("action.refused", { message: result.body.message || result.status });
    load(null);
  });
  window.addEventListener("resize", render);
  setInterval(() => { if (data) { data.now_unix = Date.now() / 1000; render(); } }, 30000);

  legend();
  load(null);
  C.live(load);
})();
