"""The probe's calls to the platform: its own group, its own tagged tasks, paced writes, and cleanup.

Every call the probe makes goes through one :class:`ProbeSession`, which holds the rules that make probing a real
account safe:

* **Owned only.** The probe creates one throwaway group and Titles that start with ``pb`` + a run id (never a
  relayd tag, never an operator's name); it lists only that group and that Title prefix, and it stops, updates,
  relaunches or deletes only TaskIds it created (or, after a lost answer, found under its own Title in its group).
* **Paced.** The client paces every action class at the configured rates (``create_update_qps`` included, as the
  daemon's client does); Create and Update also pass a bucket of their own, at the same pace, which drops to the
  documented BytePlus pace (1/s, or the configured pace if lower) at the first throttling answer. A throttled call is
  sent again after its slot, never in a burst (retries happen here, not in the client: :meth:`ProbeSession.write`).
  Throttling answers are counted for the Create/Update QPS fact.
* **Cleaned up.** :meth:`cleanup` deletes everything the probe created and then its group; the runner calls it in
  ``finally``, shielded from cancellation, so Ctrl-C and SIGTERM still leave nothing behind.

Each trial returns an :class:`~relayd.probe.answers.Attempt`; interpreting it is :mod:`relayd.probe.answers`' job.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from relayd.backoff import Backoff
from relayd.ids import GroupName, TaskId
from relayd.probe.answers import Attempt
from relayd.volc import ApiError, CreateGroupRequest, LiveClient, LiveError, ThrottledError
from relayd.volc.client import CREATE_TASK, DELETE_TASK, LIST_TASKS_V2, UPDATE_TASK
from relayd.volc.pacing import Gate

log = structlog.get_logger("relayd.probe")

TITLE_PREFIX = "pb"
TITLE_LENGTH = 10
"""Every probe Title is 10 characters: ``pb`` + a 5-character run id + a 3-digit number (fits BytePlus' limit)."""
SLOW_QPS = 1.0
"""The Create/Update pace after a throttling answer: BytePlus MediaLive documents 1 QPS for each."""
SLOW_MARGIN_S = 0.1
"""Slack on each slow slot: requests sent 1 s apart may arrive closer than that after network jitter, and one more
throttled answer would wrongly say the limit is below 1/s."""
CREATE_UPDATE = frozenset({CREATE_TASK, UPDATE_TASK})
_RUN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ALPHABET) for _ in range(5))


def random_task_id() -> TaskId:
    """A TaskId no platform issued: 32 hex characters, like real ones."""
    return TaskId(secrets.token_hex(16))


@dataclass
class Throttling:
    """Throttling answers to the probe's paced Create/Update sends, before and after it slowed down."""

    slowed: bool = False
    fast: int = 0
    slow: int = 0
    sent_slow: int = 0
    """Create/Update sends after slowing down (each one, throttled or not)."""

    def count(self) -> None:
        if self.slowed:
            self.slow += 1
        else:
            self.fast += 1


@dataclass
class ProbeSession:
    """One probe run's view of the platform."""

    client: LiveClient
    pace_qps: float
    """The Create/Update pace the probe starts at (the daemon's: the lower of write_qps and create_update_qps)."""
    run_id: str = field(default_factory=new_run_id)
    throttling: Throttling = field(default_factory=Throttling)
    created: dict[TaskId, str] = field(default_factory=dict)
    """TaskId -> Title of every task this run created and has not deleted yet."""
    group_created: bool = False
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    _sequence: int = 0
    _bucket: Gate = field(init=False)

    def __post_init__(self) -> None:
        self._bucket = Gate(self.pace_qps, name="probe")

    @property
    def group(self) -> GroupName:
        return GroupName(f"relaydprobe{self.run_id}")

    @property
    def title_prefix(self) -> str:
        return f"{TITLE_PREFIX}{self.run_id}"

    def next_title(self) -> str:
        self._sequence += 1
        return f"{self.title_prefix}{self._sequence % 1000:03d}"

    def long_title(self, length: int) -> str:
        """A probe Title of ``length`` characters (the prefix, then digits)."""
        self._sequence += 1
        digits = str(self._sequence).rjust(length - len(self.title_prefix), "0")
        return f"{self.title_prefix}{digits}"[:length]

    def owns(self, title: str) -> bool:
        return title.startswith(self.title_prefix)

    # --- calls --------------------------------------------------------------------------------------------

    async def write(self, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One write, retried here rather than in the client (whose client is built with ``max_attempts=1``).

        Why here: a throttled Create/Update is counted (the QPS fact), slows the probe's own bucket down and is
        sent again only at its next slot — the client's quick retries would hit the limit again and again. Other
        retryable errors back off as the client would; a Create that may have reached the platform is not resent.
        """
        for attempt in range(1, self.max_attempts + 1):
            if action in CREATE_UPDATE:
                await self._bucket.acquire()
                if self.throttling.slowed:
                    self.throttling.sent_slow += 1
            try:
                return await self.client.call(action, body=body)
            except ThrottledError:
                if attempt == self.max_attempts:
                    raise
                self._throttled(action)
            except LiveError as error:
                if attempt == self.max_attempts or not _resendable(action, error):
                    raise
                await asyncio.sleep(self.backoff.delay(attempt, random.random()))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _throttled(self, action: str) -> None:
        if action in CREATE_UPDATE:
            self.throttling.count()
        if not self.throttling.slowed:
            slow = min(SLOW_QPS, self.pace_qps)  # never faster than the pace that was throttled
            log.warning("probe_throttled", note="Create/Update slowed down", qps=slow)
            self.throttling.slowed = True
            self._bucket = Gate(slow, name="probe-slow", margin_s=SLOW_MARGIN_S)
            self._bucket.release(time.monotonic())  # the throttled request just used this second's slot

    async def attempt(self, what: str, action: str, body: Mapping[str, Any]) -> tuple[Attempt, dict[str, Any]]:
        """Send one write and record the answer; a platform error is an answer, not an exception."""
        try:
            result = await self.write(action, body)
        except ApiError as error:
            return _refusal(what, error), {}
        except LiveError as error:
            return Attempt(what, accepted=False, code=error.outcome, message=str(error), conclusive=False), {}
        return Attempt(what, accepted=True, detail=_detail(result)), result

    async def create(self, what: str, body: Mapping[str, Any]) -> tuple[Attempt, TaskId | None]:
        """Create one probe task (its Title must be a probe Title) and remember it for cleanup."""
        title = str(body.get("Title") or "")
        if not self.owns(title):
            raise ValueError(f"probe task Title {title!r} lacks the run prefix {self.title_prefix}")
        attempt, result = await self.attempt(what, CREATE_TASK, {**body, "GroupName": self.group})
        task_id = result.get("TaskId")
        if attempt.accepted and isinstance(task_id, str):
            self.created[TaskId(task_id)] = title
            return attempt, TaskId(task_id)
        return attempt, None

    async def on_owned(self, what: str, action: str, task_id: TaskId, **extra: Any) -> Attempt:
        """An action on a task this run created (never any other)."""
        if task_id not in self.created:
            raise ValueError(f"task {task_id} was not created by this probe run")
        attempt, _ = await self.attempt(what, action, {"TaskId": task_id, "GroupName": self.group, **extra})
        return attempt

    async def on_unknown(self, what: str, action: str, body: Mapping[str, Any]) -> Attempt:
        """An action on a random TaskId that no platform issued (the not-found trial)."""
        attempt, _ = await self.attempt(what, action, {**body, "TaskId": random_task_id()})
        return attempt

    async def listed(self) -> list[dict[str, Any]]:
        """The raw list items of this run's own tasks (its group, its Title prefix), every page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = {"GroupNames": [self.group], "Title": self.title_prefix, "Page": page, "Size": 100}
            result = await self.client.call(LIST_TASKS_V2, body=body)
            batch = [i for i in result.get("List") or [] if isinstance(i, dict) and self.owns(str(i.get("Title")))]
            items += batch
            if len(result.get("List") or []) < 100:
                return items
            page += 1

    async def create_group(self) -> None:
        await self.client.create_group(CreateGroupRequest(name=self.group, project_name="default"))
        self.group_created = True

    # --- cleanup ------------------------------------------------------------------------------------------

    async def cleanup(self) -> list[str]:
        """Delete every task this run created (also ones whose Create answer was lost), then its group.

        Returns what could not be removed (empty when everything is gone), for the report.
        """
        leftovers = [await self.delete(task_id) for task_id in list(self.created)]
        if self.group_created:
            leftovers += await self._sweep_group()
        return [item for item in leftovers if item]

    async def delete(self, task_id: TaskId) -> str:
        """Delete one of this run's tasks; "" when it is gone, else what went wrong."""
        try:
            await self.client.call(DELETE_TASK, body={"TaskId": task_id, "GroupName": self.group})
        except ApiError as error:
            if not error.surely_unprocessed:
                return f"task {task_id}: {error}"
            # A readable refusal on a task we created: it is already gone (ended and removed) or never existed.
        except LiveError as error:
            return f"task {task_id}: {error}"
        self.created.pop(task_id, None)
        return ""

    async def _sweep_group(self) -> list[str]:
        try:
            stray = [TaskId(str(i["TaskId"])) for i in await self.listed() if i.get("TaskId")]
            for task_id in stray:
                self.created.setdefault(task_id, "")
            leftovers = [await self.delete(task_id) for task_id in stray]
            await self.client.delete_group(self.group)
        except LiveError as error:
            return [f"group {self.group}: {error}"]
        self.group_created = False
        return [item for item in leftovers if item]


def _resendable(action: str, error: LiveError) -> bool:
    return error.retryable and (action != CREATE_TASK or error.surely_unprocessed)


def _refusal(what: str, error: ApiError) -> Attempt:
    conclusive = error.surely_unprocessed and not isinstance(error, ThrottledError)
    return Attempt(
        what,
        accepted=False,
        code=error.code,
        message=error.message,
        request_id=error.request_id,
        http_status=error.http_status,
        conclusive=conclusive,
    )


def _detail(result: Mapping[str, Any]) -> str:
    task_id = result.get("TaskId")
    return f"TaskId {task_id}" if task_id else ""


async def shielded(cleanup: Callable[[], Awaitable[list[str]]], timeout_s: float) -> list[str]:
    """Run ``cleanup()`` to the end even if the caller is cancelled again (a second Ctrl-C), within a timeout.

    Returns what was left behind; a cleanup that ran out of time says so instead of raising over the report.
    """
    task = asyncio.ensure_future(asyncio.wait_for(cleanup(), timeout_s))
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            log.warning("probe_cleanup_continues", note="interrupted again; still removing the probe's tasks")
    try:
        return task.result()
    except TimeoutError:
        return [f"cleanup did not finish within {timeout_s:g} s: list group relaydprobe<run> and delete its tasks"]
