// relayd console: one schedule — configuration, segments, restarts, events, actions.
// Reads GET /v1/schedules/{id}?all=1 and GET /v1/events?schedule={id}; the live stream re-reads both.
"use strict";

(() => {
  const C = Console;
  const id = C.config.schedule;
  const DISPLAY = C.DISPLAY;
  const RETRYABLE = new Set(["retrying", "failed"]);

  function cells(row, values) {
    for (const value of values) {
      const td = C.el("td");
      if (value instanceof Node) td.appendChild(value); else td.textContent = value == null ? "" : String(value);
      row.appendChild(td);
    }
    return row;
  }

  function fact(list, key, value) {
    list.appendChild(C.el("dt", null, C.t(key)));
    list.appendChild(C.el("dd", null, value == null || value === "" ? C.t("schedule.not_available") : String(value)));
  }

  function config(s) {
    const list = document.getElementById("config");
    list.replaceChildren();
    fact(list, "field.title", s.title);
    fact(list, "field.state", s.state);
    fact(list, "field.group", s.group || C.t("none"));
    fact(list, "field.enabled", String(s.enabled));
    // The status API's "source" is the schedule file the daemon loaded it from; a line number when it has one.
    const file = s.source_file || s.source;
    const where = file ? file + (s.line ? ":" + s.line : "") : null;
    fact(list, "schedule.file", where);
    fact(list, "field.problems", (s.problems || []).join("; ") || C.t("none"));
  }

  function retryButton(seg) {
    if (!RETRYABLE.has(seg.state)) return "";
    const button = C.el("button", "retry", C.t("action.retry"));
    button.type = "button";
    button.dataset.key = seg.key;
    button.addEventListener("click", async () => {
      if (!(await C.confirmAction(C.t("action.confirm_retry", { key: seg.key })))) return;
      const result = await C.post("/v1/segments/" + encodeURIComponent(seg.key) + "/retry");
      document.getElementById("action-result").textContent = result.ok
        ? C.t("action.done")
        : C.t("action.refused", { message: result.body.message || result.status });
      load(null);
    });
    return button;
  }

  function platformStatus(seg) {
    if (!seg.platform_status) return "";
    const label = seg.platform_status_label ? " (" + seg.platform_status_label + ")" : "";
    return C.el("span", "platform", seg.platform_status + label);
  }

  function segments(list) {
    const body = document.querySelector("#segments tbody");
    body.replaceChildren(...list.map((seg) => {
      const state = DISPLAY[seg.state] || seg.state;
      const badge = C.el("span", "badge st-" + state, C.t("state." + state));
      const next = seg.next_action ? seg.next_action.action + " " + C.fmt(seg.next_action.at_unix) : "";
      const row = cells(C.el("tr"), [
        "#" + seg.index,
        C.fmt(seg.window.start_unix, null, true, true) + " – " + C.fmt(seg.window.end_unix, null, true, true),
        seg.task_id, badge, platformStatus(seg), seg.attempts, next,
        seg.last_error ? seg.last_error.message : "", seg.last_error ? seg.last_error.request_id : "",
        retryButton(seg),
      ]);
      row.dataset.key = seg.key;
      row.dataset.state = seg.state;
      row.title = C.utc(seg.window.start_unix) + " – " + C.utc(seg.window.end_unix) + " UTC";
      return row;
    }));
  }

  function detail(event) {
    const data = Object.entries(event.data || {}).filter(([, v]) => v != null && v !== "");
    return data.map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ");
  }

  function events(list) {
    const body = document.querySelector("#events tbody");
    body.replaceChildren(...list.map((e) => {
      const row = cells(C.el("tr"), [C.fmt(e.ts_unix, null, true, true), e.kind, e.segment_key, e.task_id, detail(e)]);
      row.title = C.utc(e.ts_unix) + " UTC";
      row.dataset.kind = e.kind;
      return row;
    }));
    const restarts = document.querySelector("#restarts tbody");
    restarts.replaceChildren(...list.filter((e) => e.kind === "restart").map((e) =>
      cells(C.el("tr"), [C.fmt(e.ts_unix, null, true, true), e.segment_key, e.task_id, detail(e)])));
  }

  // The daemon's own plan --live: its decision over what it last saw of the platform (no platform call).
  function plan(detailJson) {
    const live = detailJson.plan_live;
    if (!live) return;
    const box = document.getElementById("plan");
    box.className = "";
    const note = C.el("p", "muted", C.t("schedule.plan_daemon", { listed: C.fmt(live.listed_at_unix, null, true, true) }));
    if (!live.actions.length) {
      box.replaceChildren(note, C.el("p", "plan-none", C.t("schedule.plan_none")));
      return;
    }
    const table = C.el("table", "grid");
    table.id = "plan-actions";
    const head = cells(C.el("tr"), [C.t("col.action"), C.t("col.segment"), C.t("col.task"), C.t("col.reason")]);
    table.appendChild(C.el("thead")).appendChild(head);
    const body = table.appendChild(C.el("tbody"));
    for (const a of live.actions) body.appendChild(cells(C.el("tr"), [a.action, a.segment, a.task_id, a.reason]));
    box.replaceChildren(note, table);
  }

  // asked: the schedules the stream says changed (null: everything). The history is re-read on every signal,
  // since events arrive without a segment changing; the schedule itself only when it is named.
  let shown = false;
  async function load(asked) {
    try {
      const whole = !shown || asked == null || asked.has(id);
      const [detailJson, history] = await Promise.all([
        whole ? C.getJSON("/v1/schedules/" + encodeURIComponent(id) + "?all=1") : null,
        C.getJSON("/v1/events?limit=200&schedule=" + encodeURIComponent(id)),
      ]);
      if (detailJson) {
        config(detailJson.schedule);
        segments(detailJson.segments);
        plan(detailJson);
        shown = true;
      }
      events(history.events);
      document.body.dataset.loaded = String(Date.now());
    } catch (error) {
      document.getElementById("config").replaceChildren(C.el("p", "error", C.t("error.load", { message: error.message })));
    }
  }

  load(null);
  C.live(load);
})();
