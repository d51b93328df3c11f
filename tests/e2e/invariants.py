"""relayd's five promises as checks over plain data, shared by the reliability suite and ``bench/soak.py``.

Every checker takes what an observer outside the daemon can see — the emulator's task list, history and stats,
the store's segment records and event history, captured log lines — plus ``now``, and returns a list of
:class:`Violation` (empty = the invariant holds). Nothing here performs I/O or reads the clock, so a check can be
re-run on a snapshot and a failure message says exactly what broke.

1. **Exact plan** (:func:`check_exact_plan`): the owned tasks on the platform are the plan for ``now`` — none
   missing, none duplicated (two live tasks with one Title), none orphaned (an owned Title no schedule plans).
   Boundaries are fuzzy by design: a task is *required* from ``start - prepare_ahead + slack`` to
   ``end - slack`` and *allowed* from ``start - prepare_ahead - slack`` to ``end + retention + slack``, because
   creation happens at ``start - prepare_ahead`` and deletion after ``end + retention``, each a pass later.
   A required segment may be missing when its record says ``failed`` or waits for a create retry (invariant 3
   bounds both).
2. **Hand-offs** (:func:`check_handoffs`): on one destination relayd's tasks never relay at the same instant, and
   consecutive segments that were both created ahead of their start touch exactly (``EndTime == StartTime``
   and, when both relayed without interruption, a measured gap of 0 s).
3. **Failures are handled** (:class:`FailureWatch`): a task seen broken (disabled, failing, or missing while its
   segment should run) is repaired within ``budget_s`` or its segment is ``failed``. Stateful across checks.
4. **Rates and secrets** (:func:`check_rates`, :func:`check_no_secrets`): no one-second window holds more
   requests of a class than the limit and nothing was throttled; no secret string occurs in any log line.
5. **Callbacks once** (:func:`check_callbacks_once`): every callback the daemon accepted (answered 200) is in the
   event history exactly once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relayd.schedules.model import Schedule, Segment
from relayd.schedules.planner import plan
from relayd.schedules.titles import is_relayd_title
from relayd.store import Event, SegmentRecord, SegmentState

DISABLED = 0  # the platform's TaskStatus for 停用


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: int
    what: str

    def __str__(self) -> str:
        return f"invariant {self.invariant}: {self.what}"


@dataclass(frozen=True, slots=True)
class Timing:
    """The daemon's timing settings the plan depends on; ``slack`` covers one reconcile pass of latency."""

    cap: int
    prepare_ahead: float
    retention: float
    horizon: int = 300
    namespace: str = "relayd"
    slack: float = 5.0


@dataclass(frozen=True, slots=True)
class Expected:
    required: dict[str, Segment]
    allowed: dict[str, Segment]


# --- 1. exact plan ---------------------------------------------------------------------------------------------


def expected(schedules: Iterable[Schedule], now: float, timing: Timing) -> Expected:
    """The Titles that must exist at ``now`` and those that may."""
    required: dict[str, Segment] = {}
    allowed: dict[str, Segment] = {}
    back = timing.retention + timing.slack
    for schedule in schedules:
        if not schedule.enabled:
            continue
        segments = plan(
            schedule,
            now=int(now - back),
            max_task_seconds=timing.cap,
            horizon_s=int(timing.horizon + back),
            namespace=timing.namespace,
        )
        for segment in segments:
            opens = segment.start - timing.prepare_ahead
            if opens - timing.slack <= now < segment.end + back:
                allowed[segment.title] = segment
            if opens + timing.slack <= now < segment.end - timing.slack:
                required[segment.title] = segment
    return Expected(required, allowed)


def segments_between(schedules: Iterable[Schedule], t0: float, t1: float, timing: Timing) -> dict[str, Segment]:
    """Every planned segment (by Title) that is live at some instant of [t0, t1)."""
    return {
        segment.title: segment
        for schedule in schedules
        if schedule.enabled
        for segment in plan(
            schedule,
            now=int(t0),
            max_task_seconds=timing.cap,
            horizon_s=int(t1 - int(t0)),
            namespace=timing.namespace,
        )
    }


def check_exact_plan(
    tasks: Sequence[Mapping[str, Any]],
    schedules: Iterable[Schedule],
    now: float,
    timing: Timing,
    *,
    excused: Iterable[str] = (),
) -> list[Violation]:
    """``tasks``: the platform's live tasks (``Title``, ``TaskId``) as listed at ``now``; ``excused``: Titles whose
    absence is explained by the store (see :func:`excused_titles`)."""
    want = expected(schedules, now, timing)
    owned = Counter(str(t.get("Title", "")) for t in tasks if is_relayd_title(str(t.get("Title", ""))))
    failed = set(excused)
    problems = [Violation(1, f"duplicate: {n} live tasks titled {title}") for title, n in owned.items() if n > 1]
    problems += [
        Violation(1, f"orphan: task {title} ({_window_text(tasks, title)}) is owned but not planned")
        for title in owned
        if title not in want.allowed
    ]
    problems += [
        Violation(1, f"missing: {segment.key} ({title}) should be on the platform")
        for title, segment in want.required.items()
        if title not in owned and title not in failed
    ]
    return problems


def _window_text(tasks: Sequence[Mapping[str, Any]], title: str) -> str:
    for task in tasks:
        if task.get("Title") == title:
            return f"{task.get('StartTime')}..{task.get('EndTime')} status {task.get('TaskStatus')}"
    return "?"


def excused_titles(records: Iterable[SegmentRecord]) -> set[str]:
    """Segments whose task may be absent: ``failed``, or a create that failed and waits for its backoff retry
    (invariant 3's :class:`FailureWatch` bounds how long that may last)."""
    return {
        r.title
        for r in records
        if r.state == SegmentState.FAILED or (r.task_id is None and r.next_attempt_at is not None)
    }


@dataclass
class Persistent:
    """Passes on only violations seen in every check for at least ``grace_s`` (0: all of them at once).

    A scenario that breaks the platform on purpose (a task deleted by hand) makes invariant 1 false until relayd
    notices, which takes up to one resync; the grace is that detection time, and invariant 3 bounds the repair.
    """

    grace_s: float
    first_seen: dict[str, float] = field(default_factory=dict)

    def filter(self, violations: Iterable[Violation], now: float) -> list[Violation]:
        current = {str(v): v for v in violations}
        self.first_seen = {key: self.first_seen.get(key, now) for key in current}
        return [v for key, v in current.items() if now - self.first_seen[key] >= self.grace_s]


# --- 2. hand-offs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handoffs:
    seamless: int  # consecutive pairs that touch exactly and relayed with a measured 0 s gap
    violations: list[Violation]


def check_handoffs(history: Sequence[Mapping[str, Any]], planned: Mapping[str, Segment] | None = None) -> Handoffs:
    """Overlaps and hand-offs of relayd's tasks, per destination, from the emulator's history.

    ``planned`` (Title -> Segment, e.g. :attr:`Expected.allowed`) adds the window check: a task carries its
    segment's exact EndTime, and its exact StartTime unless it was created after that instant (a late create
    starts "now"), so consecutive segments touch with a 0 s gap.
    """
    by_dst: dict[str, list[Mapping[str, Any]]] = {}
    for task in history:
        if is_relayd_title(str(task.get("Title", ""))) and task.get("DstAddr"):
            by_dst.setdefault(str(task["DstAddr"]), []).append(task)
    seamless = 0
    problems: list[Violation] = []
    for dst, tasks in by_dst.items():
        problems += _overlaps(dst, tasks)
        ordered = sorted(tasks, key=lambda t: (t["StartTime"], t["CreatedAt"]))
        seamless += sum(_seamless(prev, nxt) for prev, nxt in itertools.pairwise(ordered))
    for task in history:
        segment = (planned or {}).get(str(task.get("Title")))
        if segment is not None:
            problems += _window(task, segment)
    return Handoffs(seamless, problems)


def _intervals(task: Mapping[str, Any]) -> list[tuple[float, float]]:
    return [(float(a), float("inf") if b is None else float(b)) for a, b in task.get("Active", [])]


def _overlaps(dst: str, tasks: Sequence[Mapping[str, Any]]) -> list[Violation]:
    spans = sorted((a, b, str(t["TaskId"])) for t in tasks for a, b in _intervals(t))
    problems = []
    reach, holder = float("-inf"), ""
    for start, end, task_id in spans:
        if start < reach and task_id != holder:
            problems.append(Violation(2, f"overlap on {dst}: {holder} and {task_id} both relayed at {start:.3f}"))
        if end > reach:
            reach, holder = end, task_id
    return problems


def _seamless(prev: Mapping[str, Any], nxt: Mapping[str, Any]) -> bool:
    """One relay handed the destination to the next at the same instant (measured from Active)."""
    if prev["Title"] == nxt["Title"] or nxt["StartTime"] != prev["EndTime"]:
        return False
    before, after = _intervals(prev), _intervals(nxt)
    return bool(before and after) and before[-1][1] == float(prev["EndTime"]) == after[0][0]


def _window(task: Mapping[str, Any], segment: Segment) -> list[Violation]:
    problems = []
    if task["EndTime"] != segment.end:
        problems.append(Violation(2, f"{segment.key}: task ends {task['EndTime']}, segment ends {segment.end}"))
    late = float(task["CreatedAt"]) > segment.start
    if task["StartTime"] != segment.start and not late:
        problems.append(Violation(2, f"{segment.key}: task starts {task['StartTime']}, segment starts {segment.start}"))
    return problems


# --- 3. failures -----------------------------------------------------------------------------------------------


@dataclass
class FailureWatch:
    """Remembers since when each segment's task looked broken; flags those broken past ``budget_s`` unless failed.

    ``budget_s`` should cover the whole restart budget: every backoff delay at its cap, a confirmation per
    attempt, and the resync interval for a task that vanished without a callback.
    """

    budget_s: float
    include_silent: bool = False
    """Also count tasks the platform lists as relaying but which do not (the emulator's ``Failed`` flag). Only a
    ``fail`` callback reveals those, so leave this off when callbacks may be dropped."""
    since: dict[str, float] = field(default_factory=dict)
    repaired: int = 0

    def check(
        self, tasks: Sequence[Mapping[str, Any]], records: Iterable[SegmentRecord], now: float
    ) -> list[Violation]:
        by_title = {str(t.get("Title")): t for t in tasks}
        problems = []
        broken_now: set[str] = set()
        for record in records:
            if not _should_relay(record, now):
                continue
            task = by_title.get(record.title)
            if not _broken(task, self.include_silent):
                continue
            broken_now.add(record.key)
            first = self.since.setdefault(record.key, now)
            if now - first > self.budget_s and record.state != SegmentState.FAILED:
                problems.append(
                    Violation(
                        3,
                        f"{record.key}: task {'missing' if task is None else 'broken'} for {now - first:.0f} s "
                        f"(budget {self.budget_s:.0f} s) and state {record.state.value}, not failed",
                    )
                )
        self.repaired += sum(1 for key in self.since if key not in broken_now)
        self.since = {k: v for k, v in self.since.items() if k in broken_now}
        return problems


def _should_relay(record: SegmentRecord, now: float) -> bool:
    live = record.state not in (SegmentState.DELETED, SegmentState.ENDED, SegmentState.REMOVING)
    return live and record.start + 1 < now < record.end - 1


def _broken(task: Mapping[str, Any] | None, include_silent: bool) -> bool:
    if task is None or task.get("TaskStatus") == DISABLED:
        return True
    return include_silent and bool(task.get("Failed"))


# --- 4. rates and secrets --------------------------------------------------------------------------------------


def check_rates(stats: Mapping[str, Any], *, write_qps: int, list_qps: int) -> list[Violation]:
    """From the emulator's stats: the busiest one-second window per class, and throttled requests."""
    limits = {"write": write_qps, "list": list_qps}
    peaks: Mapping[str, int] = stats.get("max_requests_per_1s", {})
    problems = [
        Violation(4, f"{cls}: {peaks[cls]} requests in one second (limit {limit})")
        for cls, limit in limits.items()
        if limit and peaks.get(cls, 0) > limit
    ]
    throttled = {k: v for k, v in stats.get("throttled", {}).items() if v}
    if throttled:
        problems.append(Violation(4, f"throttled by the platform: {throttled}"))
    return problems


def check_no_secrets(lines: Iterable[str], secrets: Iterable[str]) -> list[Violation]:
    wanted = [s for s in secrets if s]
    return [
        Violation(4, f"log line {n} contains a secret ({len(secret)} chars): {line[:80]!r}...")
        for n, line in enumerate(lines, 1)
        for secret in wanted
        if secret in line
    ]


# --- 5. callbacks ----------------------------------------------------------------------------------------------


def check_callbacks_once(events: Iterable[Event], accepted_ids: Iterable[str]) -> list[Violation]:
    """``events``: the store's ``callback`` events; ``accepted_ids``: EventIds of deliveries answered 200."""
    recorded = Counter(str(e.data.get("event_id")) for e in events if e.kind == "callback")
    problems = [Violation(5, f"callback {eid} recorded {n} times") for eid, n in recorded.items() if n > 1]
    problems += [
        Violation(5, f"callback {eid} was accepted but is not in the event history")
        for eid in set(accepted_ids)
        if eid not in recorded
    ]
    return problems
