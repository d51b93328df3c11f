"""The probe's trials: one small coroutine per open question, each making the calls and returning its answer.

Every trial uses the sink destination the operator named (or the built-in unroutable one) and windows that do not
touch each other: the far-future trials each get their own slot weeks ahead (so nothing ever relays), and the
trials that need a running task use a window of seconds that starts now, deleted as soon as it has answered.
The calls go through :class:`~relayd.probe.session.ProbeSession` (owned tasks only, paced); the reading of the
answers is :mod:`relayd.probe.answers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from relayd.ids import TaskId
from relayd.platform.facts import FailureShows
from relayd.probe import answers
from relayd.probe.answers import Answer, Attempt
from relayd.probe.session import TITLE_LENGTH, ProbeSession
from relayd.volc.client import DELETE_TASK, RELAUNCH_TASK, STOP_TASK, UPDATE_TASK

FAR_AHEAD_S = 21 * 86400
"""The far-future trials start three weeks ahead: never running, and far from any schedule's next task."""
SLOT_S = 3600
TASK_S = 600
RUNNING_LEAD_S = 2
RUNNING_S = 40
PAST_S = 300
"""How far in the past the past-StartTime trial starts (beyond any clock-skew tolerance)."""
LONGEST_TITLE = 20
ACTIVE = "生效中"
PENDING = "未开始"
DISABLED = "停用"
FAILING_SOURCE = "rtmp://relayd-probe.invalid/live/failing"
"""The failure trial's source when the operator's ``--source`` is a live one: ``.invalid`` never resolves (RFC 6761)."""
UNROUTABLE_TLD = ".invalid"
FAILURE_TAIL_S = 10
"""The failure trial's task outlasts its watch by this much, so it cannot end (已结束) while watched."""


class ProbeError(Exception):
    """The probe cannot go on (its first task was refused): the message says why and what to check."""


@dataclass
class Trials:
    """What every trial shares: the session, the destination, the source, the clock and the slot counter."""

    session: ProbeSession
    sink: str
    source: str
    now: Callable[[], float]
    callback_url: str | None = None
    callbacks: Sequence[Mapping[str, Any]] = ()
    """The bodies the probe's receiver has captured so far (filled as they arrive); empty without a receiver."""
    poll_s: float = 0.5
    _base: int = 0
    _slots: int = 0
    running_id: TaskId | None = field(default=None)

    def __post_init__(self) -> None:
        self._base = (int(self.now()) // SLOT_S + 1) * SLOT_S + FAR_AHEAD_S

    def slot(self) -> tuple[int, int]:
        """A fresh far-future window of its own."""
        start = self._base + self._slots * SLOT_S
        self._slots += 1
        return start, start + TASK_S

    def body(self, start: int, end: int, title: str | None = None, source: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Title": title or self.session.next_title(),
            "Type": 0,
            "SrcAddr": source or self.source,
            "DstAddr": self.sink,
            "StartTime": start,
            "EndTime": end,
        }
        if self.callback_url:
            body["CallbackURL"] = self.callback_url
        return body


async def first_task(trials: Trials) -> tuple[int, int]:
    """A plain far-future task: it must be accepted, else nothing else the probe tries would mean anything."""
    start, end = trials.slot()
    attempt, task_id = await trials.session.create("Create a plain task", trials.body(start, end))
    if task_id is None:
        raise ProbeError(
            f"{attempt.evidence()} — check the credentials, the region and the sink URL (--sink) and run again"
        )
    return start, end


async def destination(trials: Trials, first: tuple[int, int]) -> tuple[Answer, Answer]:
    """Q10: a second task overlapping the first on the sink; if refused, one whose window only touches it."""
    start, end = first
    overlap, _ = await trials.session.create(
        "Create a task overlapping another on the same DstAddr", trials.body(start + TASK_S // 2, end + TASK_S // 2)
    )
    touching: Attempt | None = None
    if overlap.refused:
        touching, _ = await trials.session.create(
            "Create a task starting exactly when another on the same DstAddr ends", trials.body(end, end + TASK_S)
        )
    return answers.destination(overlap, touching)


async def title_limit(trials: Trials) -> Answer:
    """The Title length limit: a 20-character Title first, then a binary search down to the 10 known to work."""
    results: dict[int, Attempt] = {}
    while (length := answers.next_title_trial(TITLE_LENGTH, LONGEST_TITLE, results)) is not None:
        start, end = trials.slot()
        title = trials.session.long_title(length)
        results[length], _ = await trials.session.create(
            f"Create with a {length}-character Title", trials.body(start, end, title)
        )
    return answers.title_limit(TITLE_LENGTH, results)


async def not_found(trials: Trials) -> Answer:
    """Q1: Delete and Update of a random TaskId that no platform issued."""
    start, end = trials.slot()
    update_body = trials.body(start, end)
    attempts = [
        await trials.session.on_unknown("Delete an unknown TaskId", DELETE_TASK, {}),
        await trials.session.on_unknown("Update an unknown TaskId", UPDATE_TASK, update_body),
    ]
    return answers.not_found_codes(attempts)


async def list_time(trials: Trials) -> Answer:
    """Q6: the StartTime/EndTime strings of the probe's own listed tasks."""
    items = await trials.session.listed()
    raw = [str(item[key]) for item in items for key in ("StartTime", "EndTime") if isinstance(item.get(key), str)]
    return answers.list_time_utc(raw)


async def past_start(trials: Trials) -> Answer:
    """Q9: a Create whose StartTime is minutes ago (ending seconds from now); deleted at once if accepted."""
    now = int(trials.now())
    attempt, task_id = await trials.session.create(
        f"Create with StartTime {PAST_S} s in the past", trials.body(now - PAST_S, now + RUNNING_S)
    )
    if task_id is not None:
        await trials.session.delete(task_id)
    return answers.past_start(attempt)


@dataclass
class Running:
    """The answers of the trials on a running task."""

    update: Answer
    relaunch: Answer


async def running(trials: Trials) -> Running:
    """Q5 and Q1: a task seconds long that starts now — Update it while 生效中, Relaunch it, Stop, Relaunch again."""
    start = int(trials.now()) + RUNNING_LEAD_S
    body = trials.body(start, start + RUNNING_S)
    created, task_id = await trials.session.create("Create a task starting now", body)
    if task_id is None:
        missing = Answer(None, created.evidence())
        return Running(missing, missing)
    trials.running_id = task_id
    became = await _wait_active(trials, task_id, timeout_s=RUNNING_LEAD_S + 15)
    if became != ACTIVE:
        stuck = Answer(None, f"{created.evidence()}; it was listed {became or 'nowhere'}, not {ACTIVE} (use --source?)")
        return Running(stuck, stuck)
    shorter = {**body, "EndTime": body["EndTime"] - 5}
    update = await _while_active(
        trials,
        task_id,
        lambda: trials.session.on_owned(
            f"Update a {ACTIVE} task (EndTime 5 s earlier)", UPDATE_TASK, task_id, **shorter
        ),
    )
    return Running(answers.update_running(update), await _relaunch(trials, task_id))


async def _while_active(trials: Trials, task_id: TaskId, trial: Callable[[], Awaitable[Attempt]]) -> Attempt:
    """Run a trial meant for a 生效中 task only if the task still is 生效中 (else its answer would mislead).

    Why: a relay whose source cannot be reached may turn 停用 on its own within seconds on some platforms (the
    built-in source is unroutable); an Update or Relaunch of that task answers another question.
    """
    status = await _status(trials, task_id)
    if status != ACTIVE:
        note = f"the task was {status or 'not listed'} by itself before the trial (its relay failed?); use --source"
        return Attempt(f"trial on a {ACTIVE} task", accepted=False, code="NotRunning", message=note, conclusive=False)
    return await trial()


async def _relaunch(trials: Trials, task_id: TaskId) -> Answer:
    from_active = await _while_active(
        trials, task_id, lambda: trials.session.on_owned(f"Relaunch a {ACTIVE} task", RELAUNCH_TASK, task_id)
    )
    stop = await trials.session.on_owned(f"Stop a {ACTIVE} task", STOP_TASK, task_id)
    from_disabled = None
    if stop.accepted:
        from_disabled = await trials.session.on_owned("Relaunch a 停用 task (after Stop)", RELAUNCH_TASK, task_id)
    return answers.relaunch_from(from_active, from_disabled)


async def _status(trials: Trials, task_id: TaskId) -> str | None:
    """The task's listed Status (Chinese label), or None when it is not listed."""
    for item in await trials.session.listed():
        if item.get("TaskId") == task_id:
            return str(item.get("Status") or "")
    return None


async def _wait_active(trials: Trials, task_id: TaskId, *, timeout_s: float) -> str | None:
    """Poll the probe's own list while the task is 未开始 (its status moves with the platform's clock); the status
    it ended in: 生效中, or whatever else it showed (停用 by itself, not listed), or 未开始 after the timeout."""
    deadline = trials.now() + timeout_s
    while True:
        status = await _status(trials, task_id)
        if status != PENDING or trials.now() >= deadline:
            return status
        await asyncio.sleep(trials.poll_s)  # the platform's clock moves the status: there is nothing to await


async def end_running(trials: Trials) -> None:
    """Delete the running task now that it has answered (it would otherwise relay until its EndTime)."""
    if trials.running_id is not None and trials.running_id in trials.session.created:
        await trials.session.delete(trials.running_id)


def failing_source(source: str) -> str:
    """The operator's source when it is meant to fail (an ``.invalid`` host, like the default), else one that is."""
    host = urlsplit(source).hostname or ""
    return source if host.endswith(UNROUTABLE_TLD) else FAILING_SOURCE


async def failure(trials: Trials, watch_s: float) -> Answer:
    """§4 / Q1: a task seconds long from a source that cannot be pulled, starting now; watch its listed status and
    the callbacks about it for ``watch_s`` after it starts (less once it shows a failure), then delete it.

    Runs after the running task is deleted, so that it overlaps no live task on the sink.
    """
    start = int(trials.now()) + RUNNING_LEAD_S
    body = trials.body(start, start + int(watch_s) + FAILURE_TAIL_S, source=failing_source(trials.source))
    created, task_id = await trials.session.create("Create a task from an unroutable source starting now", body)
    if task_id is None:
        return Answer(None, created.evidence())
    statuses, about = await _watch_failure(trials, task_id, body["Title"], start + watch_s)
    await trials.session.delete(task_id)
    watched = f"{created.evidence()}, source {body['SrcAddr']}, watched {watch_s:g} s from its start"
    return answers.failure_shows(statuses, about, trials.callback_url is not None, watched)


async def _watch_failure(
    trials: Trials, task_id: TaskId, title: str, until: float
) -> tuple[list[str], list[Mapping[str, Any]]]:
    """The statuses the task was listed in (each change once) and the callbacks about it, polled until ``until`` or
    until it shows a failure (停用, or a failure callback while 生效中)."""
    statuses: list[str] = []
    while True:
        status = await _status(trials, task_id) or ""
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        about = [b for b in trials.callbacks if answers.about_task(b, task_id, title)]
        shown = answers.failure_shows(statuses, about, trials.callback_url is not None, "")
        if (shown.value is not None and shown.value is not FailureShows.STAY_SILENT) or trials.now() >= until:
            return [s for s in statuses if s], about
        await asyncio.sleep(trials.poll_s)  # the platform's clock and its relay move the status: nothing to await
