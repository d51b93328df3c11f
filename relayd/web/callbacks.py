"""``POST /v1/callbacks/{key}/{mac}``: verify, record durably, hint the reconciler, answer 200 — nothing more.

The platform waits about 4 s for a 200 and retries otherwise, so the handler does no platform I/O: it checks the
path mac (constant time; a forged URL gets 403 before its body is read), reads at most ``max_body`` bytes (413
beyond, whether or not a Content-Length was sent), decodes a JSON object strictly (400 otherwise), checks the
body's ``sign``/``t`` when an auth key is configured (403, also when they are missing), then writes an
``Event(kind="callback")`` with the raw body through the store's group commit and, only if the event was new,
calls the reconcile hint.

Outcomes, all counted in ``relayd_callbacks_total{result=...}``:

* ``accepted`` — recorded and hinted.
* ``duplicate`` — the same delivery again (same event id, or byte-identical body): 200, no hint.
* ``unknown_task`` — the segment is known but the body names a task relayd does not know; recorded, logged
  ``callback_unknown_task`` and hinted with ``unknown_task`` set: the reconciler lists the segment's Title afresh
  and adopts the task (or deletes it as a duplicate) by the usual rules, instead of taking its event for the
  segment's own task.
* ``unknown_segment`` — the mac is valid but the segment is gone from the store (e.g. pruned). 200, logged
  ``callback_unknown_segment`` and recorded as ``kind="callback_unknown"`` so an operator can see it; no hint.
* ``forbidden``, ``unsigned``, ``bad_sign``, ``expired``, ``bad_json``, ``too_large``, ``body_timeout`` — 4xx,
  nothing recorded.
  ``bad_json`` includes bodies ``jsonbody`` refuses as unstorable (lone surrogates, huge numbers, deep nesting).

Out-of-order deliveries are harmless by construction: a notice is only a hint, and the reconciler acts on the
platform's current task list, never on the notice's claimed status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.logs import debug_enabled
from relayd.metrics import Metrics
from relayd.store import Event, SegmentRecord
from relayd.web.errors import BadRequest, Forbidden, PayloadTooLarge, RequestTimeout, WebError
from relayd.web.jsonbody import BodyError, decode_object
from relayd.web.notices import CallbackNotice, dedupe_key, parse_notice, sign_fields
from relayd.web.signing import verify_mac, verify_sign
from relayd.web.views import ReconcileHint, StoreView

log = structlog.get_logger("relayd.web.callbacks")

MAX_BODY_BYTES = 64 * 1024
RESULTS = ("accepted", "duplicate", "unknown_task", "unknown_segment")
_ANSWERS = {result: json.dumps({"ok": True, "result": result}).encode() for result in RESULTS}


@dataclass(frozen=True)
class CallbackAuth:
    """Callback verification material. ``repr`` never shows the secrets."""

    secret: bytes
    auth_key: str | None = None
    max_age: float = 900.0

    def __repr__(self) -> str:
        return f"CallbackAuth(auth_key={'set' if self.auth_key else 'unset'}, max_age={self.max_age})"


class CallbackReceiver:
    """The callback handler and its collaborators; ``handle`` is the aiohttp handler."""

    def __init__(
        self,
        *,
        store: StoreView,
        auth: CallbackAuth,
        metrics: Metrics,
        hint: ReconcileHint,
        clock: Callable[[], float],
        max_body: int = MAX_BODY_BYTES,
        read_timeout_s: float = 10.0,
    ) -> None:
        self._store = store
        self._auth = auth
        self._metrics = metrics
        self._hint = hint
        self._clock = clock
        self._max_body = max_body
        self._read_timeout_s = read_timeout_s

    async def handle(self, request: web.Request) -> web.Response:
        try:
            result = await self._receive(request)
        except WebError as e:
            self._metrics.callback(e.code)
            raise
        self._metrics.callback(result)
        return web.Response(body=_ANSWERS[result], content_type="application/json")

    async def _receive(self, request: web.Request) -> str:
        key = SegmentKey(request.match_info["key"])
        if not verify_mac(self._auth.secret, key, request.match_info["mac"]):
            raise Forbidden("bad callback mac", code="forbidden")
        raw = await read_limited(request, self._max_body, self._read_timeout_s)
        try:
            body = decode_object(raw)
        except BodyError as e:
            raise BadRequest(str(e), code="bad_json") from e
        self._check_sign(body)
        notice = parse_notice(body)
        # Shielded: once verified and decoded, a callback is recorded and hinted even if its sender hangs up now.
        return await asyncio.shield(self._record_any(key, notice, raw))

    async def _record_any(self, key: SegmentKey, notice: CallbackNotice, raw: bytes) -> str:
        segment = self._store.segment(key)
        if segment is None:
            await self._record_unknown(key, notice, raw)
            return "unknown_segment"
        return await self._record(segment, notice, raw)

    def _check_sign(self, body: Mapping[str, Any]) -> None:
        if not self._auth.auth_key:
            return
        carried = sign_fields(body)
        if carried is None or carried[1] in (None, ""):
            # With a key configured, a body without its signature is refused: otherwise dropping ``sign`` would
            # skip the check (and its freshness window) altogether.
            log.warning("callback_sign_rejected", reason="unsigned")
            raise Forbidden("callback is not signed; callback_auth_key is set", code="unsigned")
        sign, t = carried
        check = verify_sign(self._auth.auth_key, sign, t, now=self._clock(), max_age=self._auth.max_age)
        if check.ok:
            return
        code = "expired" if check.value in ("expired", "future") else "bad_sign"
        log.warning("callback_sign_rejected", reason=check.value)
        raise Forbidden("callback signature rejected", code=code)

    async def _record(self, segment: SegmentRecord, notice: CallbackNotice, raw: bytes) -> str:
        unknown_task = self._is_unknown_task(segment, notice.task_id)
        event = self._event("callback", segment.key, notice, raw, schedule_id=segment.schedule_id)
        if not await self._store.add_event(event):
            return "duplicate"
        if unknown_task:
            log.info("callback_unknown_task", segment_key=segment.key, task_id=notice.task_id, note="title re-listed")
            notice = dataclasses.replace(notice, unknown_task=True)
        if debug_enabled():  # every accepted callback: keep the hot path free of a logger bind when it is off
            log.debug("callback_received", segment_key=segment.key, task_id=notice.task_id, callback_event=notice.event)
        self._hint(segment.schedule_id, segment.key, notice)
        return "unknown_task" if unknown_task else "accepted"

    def _is_unknown_task(self, segment: SegmentRecord, task_id: TaskId | None) -> bool:
        if task_id is None or task_id == segment.task_id:
            return False
        return self._store.by_task_id(task_id) is None

    async def _record_unknown(self, key: SegmentKey, notice: CallbackNotice, raw: bytes) -> None:
        log.info("callback_unknown_segment", segment_key=key, task_id=notice.task_id)
        await self._store.add_event(self._event("callback_unknown", key, notice, raw, schedule_id=None))

    def _event(
        self, kind: str, key: SegmentKey, notice: CallbackNotice, raw: bytes, *, schedule_id: ScheduleId | None
    ) -> Event:
        return Event(
            ts=self._clock(),
            kind=kind,
            schedule_id=schedule_id,
            segment_key=key,
            task_id=notice.task_id,
            dedupe_key=dedupe_key(key, notice, raw),
            data=notice_data(notice),
            raw=raw.decode("utf-8", "replace"),
        )


def notice_data(notice: CallbackNotice) -> dict[str, Any]:
    """The parsed fields stored next to the raw body."""
    return {"event": notice.event.value, "status": notice.status, "time": notice.time, "event_id": notice.event_id}


async def read_limited(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The request body, or PayloadTooLarge past ``limit`` bytes (by Content-Length or while streaming), or
    RequestTimeout when it does not arrive within ``timeout_s`` (a slow sender holds a handler, not just a socket)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    content = request.content
    if content.is_eof():  # the whole body came with the headers, as a callback's does: no timer, no wait
        body = content.read_nowait()
        if len(body) > limit:
            raise _too_large(limit)
        return body
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"body not received within {timeout_s:g} s", code="body_timeout") from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body exceeds {limit} bytes", code="too_large")


async def _read_body(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
