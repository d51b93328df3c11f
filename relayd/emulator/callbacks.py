"""Status callbacks: the payload (pure) and a sender that delivers each event as its own tracked task.

The platform's relay-callback payload is undocumented (reference Q11), so its schema is a quirk
(``callback_schema``), built in one place (:func:`payload`); docs/emulator.md shows each:

* ``relayd`` (the emulator's guess): {"TaskId", "Title", "GroupName", "Status" (Chinese), "TaskStatus" (0-3),
  "EventType", "Time" (unix s), "EventId"};
* ``alibaba``: {"TaskId", "TaskName", "TaskStatus" (0 not started / 1 normal / 2 abnormal, recovering /
  3 stopped / -1 exited), "Reason" (PullStreamFailed on a failure), "Time", "EventId"};
* ``tencent``: {"event_type": 314, "task_id", "callback_event" (TaskStart / TaskExit / TaskAlarm),
  "alarm_type" (TaskAlarm only), "event_time", "event_id"};
* ``none``: no callback is sent.

With an auth key every schema also carries "t" (unix expiry, now + 600) and "sign" = md5(key + str(t)).

Delivery follows the generic Live callback rule: POST ``application/json``, success is HTTP 200 within the
timeout, otherwise up to ``retries`` further attempts ``retry_delay_s`` apart, then give up. Deliveries never
block an API handler; :meth:`Sender.close` cancels whatever is still pending and closes the client session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import structlog

from relayd.emulator.faults import CallbackFaults
from relayd.emulator.quirks import CallbackSchema
from relayd.emulator.stats import Stats
from relayd.emulator.tasks import Event, Status

SIGN_TTL_S = 600
log = structlog.get_logger(__name__)


def payload(
    event: Event, *, auth_key: str | None, now: float, schema: CallbackSchema = CallbackSchema.RELAYD
) -> dict[str, Any] | None:
    """The body for ``event`` in ``schema``, or None when that schema sends nothing for it."""
    body = _BUILDERS[schema](event)
    if body is not None and auth_key:
        expiry = int(now) + SIGN_TTL_S
        body["t"] = expiry
        body["sign"] = hashlib.md5((auth_key + str(expiry)).encode(), usedforsecurity=False).hexdigest()
    return body


def _relayd(event: Event) -> dict[str, Any] | None:
    return {
        "TaskId": event.task_id,
        "Title": event.title,
        "GroupName": event.group,
        "Status": event.status.label,
        "TaskStatus": int(event.status),
        "EventType": event.event_type,
        "Time": int(event.time),
        "EventId": event.event_id,
    }


ALIBABA_PENDING, ALIBABA_NORMAL, ALIBABA_RECOVERING, ALIBABA_STOPPED, ALIBABA_EXITED = 0, 1, 2, 3, -1
_ALIBABA_BY_EVENT = {"stop": ALIBABA_STOPPED, "end": ALIBABA_STOPPED, "delete": ALIBABA_EXITED}


def _alibaba(event: Event) -> dict[str, Any] | None:
    """A failure that leaves the task 生效中 is 2 (abnormal, recovering); one that disables it is -1 (exited)."""
    reason = ""
    if event.event_type == "fail":
        reason = "PullStreamFailed"
        status = ALIBABA_EXITED if event.status is Status.DISABLED else ALIBABA_RECOVERING
    elif event.event_type in _ALIBABA_BY_EVENT:
        status = _ALIBABA_BY_EVENT[event.event_type]
    else:
        status = ALIBABA_NORMAL if event.status is Status.ACTIVE else ALIBABA_PENDING
    body: dict[str, Any] = {"TaskId": event.task_id, "TaskName": event.title, "TaskStatus": status}
    if reason:
        body["Reason"] = reason
    return body | {"Time": int(event.time), "EventId": event.event_id}


TENCENT_EVENT_TYPE = 314
_TENCENT_BY_EVENT = {
    "start": "TaskStart",
    "continue": "TaskStart",
    "relaunch": "TaskStart",
    "recover": "TaskStart",
    "stop": "TaskExit",
    "end": "TaskExit",
    "delete": "TaskExit",
}


def _tencent(event: Event) -> dict[str, Any] | None:
    """A failure that leaves the task 生效中 is a TaskAlarm (PushStreamFailed); one that disables it a TaskExit."""
    name = _TENCENT_BY_EVENT.get(event.event_type)
    if event.event_type == "fail":
        name = "TaskExit" if event.status is Status.DISABLED else "TaskAlarm"
    if name is None:
        return None
    body: dict[str, Any] = {"event_type": TENCENT_EVENT_TYPE, "task_id": event.task_id, "callback_event": name}
    if name == "TaskAlarm":
        body["alarm_type"] = "PushStreamFailed"
    return body | {"event_time": int(event.time), "event_id": event.event_id}


def _none(event: Event) -> dict[str, Any] | None:
    return None


_BUILDERS: dict[CallbackSchema, Callable[[Event], dict[str, Any] | None]] = {
    CallbackSchema.RELAYD: _relayd,
    CallbackSchema.ALIBABA: _alibaba,
    CallbackSchema.TENCENT: _tencent,
    CallbackSchema.NONE: _none,
}


class Sender:
    def __init__(
        self,
        *,
        stats: Stats,
        faults: Callable[[], CallbackFaults],
        schema: Callable[[], CallbackSchema],
        rng: random.Random,
        auth_key: str | None,
        retries: int,
        retry_delay_s: float,
        timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._stats = stats
        self._faults = faults
        self._schema = schema
        self._rng = rng
        self._auth_key = auth_key
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = 0

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def dispatch(self, events: Iterable[Event]) -> None:
        """Schedule the deliveries of ``events`` (those with a CallbackURL), applying callback faults."""
        for event in events:
            if event.callback_url and self._session is not None:
                self._dispatch_one(event)

    def _dispatch_one(self, event: Event) -> None:
        body = payload(event, auth_key=self._auth_key, now=self._clock(), schema=self._schema())
        if body is None:
            return
        self._stats.callbacks["events"] += 1
        faults = self._faults()
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            self._stats.callbacks["dropped"] += 1
            return
        self._sequence += 1
        delay = 0.0
        if faults.reorder and self._sequence % 2 == 1:
            delay = faults.delay_ms / 1000
            self._stats.callbacks["held"] += 1
        data = json.dumps(body, ensure_ascii=False).encode()
        copies = 1
        if faults.duplicate_rate and self._rng.random() < faults.duplicate_rate:
            copies = 2
            self._stats.callbacks["duplicated"] += 1
        for _ in range(copies):
            self._spawn(event, data, delay)

    def _spawn(self, event: Event, body: bytes, delay: float) -> None:
        task = asyncio.create_task(self._deliver(event, body, delay), name=f"emulator-callback-{event.event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: Event, body: bytes, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._retry_delay_s)
            self._stats.callbacks["attempts"] += 1
            if await self._post(event.callback_url, body):
                self._stats.callbacks["delivered"] += 1
                return
        self._stats.callbacks["failed"] += 1
        log.info("emulator_callback_gave_up", task_id=event.task_id, event_id=event.event_id, attempts=attempt + 1)

    async def _post(self, url: str, body: bytes) -> bool:
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
