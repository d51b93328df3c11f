"""The emulator process: an aiohttp app serving the platform API at ``/``, a status ticker and a callback sender.

One request goes through, in order: routing (Action/Version/method), signature verification, the QPS limit,
injected faults, parameter parsing, then the action handler on the shared :class:`~relayd.emulator.actions.State`
after the clock transitions due by now have been applied. Errors anywhere become the platform's error envelope
in :meth:`Emulator._handle`, the one place that maps errors to HTTP.

One ticker task sleeps until the next status transition instant (or until woken by an action through an
``asyncio.Event``), applies it and hands the events to the callback sender. Nothing polls.

Also served: ``/play/...`` (each destination's playback, :mod:`relayd.emulator.player`) and, with ``admin``,
``/__emulator/...``. Platform answers that the reference leaves open follow ``state.quirks``
(:mod:`relayd.emulator.quirks`), switchable at run time with :meth:`Emulator.set_quirks`. Every write request is
journalled with the caller's instance id (:mod:`relayd.emulator.journal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from relayd.emulator import actions, envelope, quirks
from relayd.emulator.auth import Gate, SignedRequest, verify
from relayd.emulator.callbacks import Sender
from relayd.emulator.config import EmulatorConfig
from relayd.emulator.destinations import dst_addr
from relayd.emulator.errors import AdminError, ApiError
from relayd.emulator.faults import ActedAnswer, Answer, CallbackFaults, Effect, Fault, FaultBook
from relayd.emulator.journal import Entry, Journal, identify
from relayd.emulator.playback import Jitter, Kind, playback_url
from relayd.emulator.player import Player
from relayd.emulator.quirks import CreateUpdateQps, Failure, Quirks
from relayd.emulator.stats import Stats
from relayd.emulator.tasks import Event, FailMode, FailPlan, Task, WrongState
from relayd.emulator.throttling import Limiter

log = structlog.get_logger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024  # a 2 MB watermark is ~2.7 MB of base64
MAX_HANG_S = 3600.0
_PER_ACTION_LIMITED = ("CreatePullToPushTask", "UpdatePullToPushTask")
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    "\r\n</body>\r\n</html>\r\n"
)
_FAIL_MODES = {
    Failure.DISABLE: FailMode.DISABLE,
    Failure.STAY_CALLBACK: FailMode.STAY,
    Failure.STAY_SILENT: FailMode.SILENT,
}


class Emulator:
    """A Volcengine Live pull-to-push API emulator. ``await start()`` then use ``.url``; ``await stop()``."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        seed = self.config.seed
        # Seeded for reproducible ids and fault draws; nothing here is a secret.
        self._ids_rng = random.Random(seed)  # noqa: S311
        self._fault_rng = random.Random(None if seed is None else seed + 1)  # noqa: S311
        self.state = actions.State(
            max_task_seconds=self.config.max_task_seconds, rng=self._ids_rng, quirks=self.config.resolved_quirks()
        )
        self.state.tasks.set_event_prefix(f"{self._ids_rng.getrandbits(32):08x}")
        self._limiter = Limiter({})
        self._keys = {self.config.access_key: self.config.secret_key}
        self._gate = self._apply_quirks()
        self._stats = Stats()
        self._journal = Journal()
        self._faults = FaultBook(self._fault_rng)
        self._callback_faults = CallbackFaults()
        self._silent_fraction = 0.0
        self._silent_task: asyncio.Task[None] | None = None
        self._sender = Sender(
            stats=self._stats,
            faults=lambda: self._callback_faults,
            schema=lambda: self.state.quirks.callback_schema,
            rng=self._fault_rng,
            auth_key=self.config.callback_auth_key,
            retries=self.config.callback_retries,
            retry_delay_s=self.config.callback_retry_delay_s,
            timeout_s=self.config.callback_timeout_s,
            clock=self.config.clock,
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._player = Player(
            tasks=self.state.tasks,
            tick=self.tick,
            clock=self.config.clock,
            stopping=self._stopping,
            segment_s=self.config.playback_segment_s,
            window=self.config.playback_window,
            seed=self._fault_rng.getrandbits(32),
        )
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.url = ""
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/", self._handle)
        app.router.add_get("/play/{tail:.+}", self._player.handle)
        if self.config.admin:
            from relayd.emulator.admin import add_routes  # noqa: PLC0415 - admin routes only when enabled

            add_routes(app, self)
        return app

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        await self._sender.open()
        self._ticker = asyncio.create_task(self._tick_loop(), name="emulator-ticker")
        log.info("emulator_started", url=self.url, admin=self.config.admin)

    async def stop(self) -> None:
        self._stopping.set()
        await self._stop_silent_failures()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._sender.close()
        log.info("emulator_stopped", url=self.url)

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- the clock -----------------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            self.tick()
            upcoming = self.state.tasks.next_instant()
            self._wake.clear()
            delay = None if upcoming is None else max(0.0, upcoming - self.config.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def tick(self) -> None:
        """Apply the status transitions due by now and send their callbacks (the ticker does this on time)."""
        self._emit(self.state.tasks.advance(self.config.clock()))

    def _emit(self, events: list[Event]) -> None:
        if events:
            self._sender.dispatch(events)
            self._wake.set()

    # --- the API -------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.query.get("Action", "")
        version = request.query.get("Version", "")
        rid = envelope.request_id(self.config.wall_clock(), self._fault_rng)
        meta = envelope.metadata(rid, name, version or envelope.VERSION, self.state.quirks.region.value)
        self._stats.requests[name] += 1
        try:
            result = await self._serve(request, name, version)
            status, body, code = 200, envelope.success(meta, result), "OK"
        except ApiError as e:
            status, body, code = e.http_status, envelope.failure(meta, e), e.code
        except ActedAnswer as e:
            return self._acted_answer(request, name, meta, e)
        self._stats.responses[code] += 1
        self._journal_write(request, name, code, status)
        return web.Response(
            body=json.dumps(body, ensure_ascii=False).encode(), status=status, content_type="application/json"
        )

    def _acted_answer(self, request: web.Request, name: str, meta: dict[str, Any], acted: ActedAnswer) -> web.Response:
        """The bad answer to a request that was carried out (an ``acted`` fault); journalled as ``acted:<answer>``."""
        if acted.answer is Answer.HTML:
            status, text, kind = 502, _BAD_GATEWAY_HTML, "text/html"
        elif acted.answer is Answer.MALFORMED:
            status, text, kind = 200, json.dumps({"ResponseMetadata": None}), "application/json"
        else:
            error = ApiError(acted.error_code, f"injected fault on {name} (the action was carried out)")
            status, text, kind = error.http_status, json.dumps(envelope.failure(meta, error)), "application/json"
        code = f"acted:{acted.answer.value}"
        self._stats.responses[code] += 1
        self._journal_write(request, name, code, status)
        return web.Response(text=text, status=status, content_type=kind)

    async def _serve(self, request: web.Request, name: str, version: str) -> dict[str, Any] | None:
        action = self._route(request.method, name, version)
        raw = await request.read()
        access_key = self._authenticate(request, raw)
        rate_class = self._rate_class(action)
        if not self._limiter.admit(access_key, rate_class, self.config.monotonic()):
            self._stats.throttled[rate_class] += 1
            raise ApiError("FlowLimitExceeded", f"the {rate_class} QPS limit of this account is exceeded")
        effect = await self._apply_fault(name)
        params = self._params(request, raw)
        now = self.config.clock()
        self._emit(self.state.tasks.advance(now))
        outcome = action.handler(self.state, params, now)
        self._emit(outcome.events)
        self._wake.set()
        if effect is not None and effect.acted is not None:
            raise ActedAnswer(effect.acted, effect.error_code or "InternalError")
        return outcome.result

    def _rate_class(self, action: actions.Action) -> str:
        """create_update_qps: BytePlus limits Create and Update to 1 QPS each, apart from the write class."""
        if self.state.quirks.create_update_qps is CreateUpdateQps.ONE and action.name in _PER_ACTION_LIMITED:
            return action.name
        return action.kind

    def _journal_write(self, request: web.Request, name: str, code: str, status: int) -> None:
        action = actions.ACTIONS.get(name)
        if action is None or not action.mutates:
            return
        ua = request.headers.get("User-Agent", "")
        self._journal.record(Entry(self.config.wall_clock(), name, identify(request.headers), ua, code, status))

    @staticmethod
    def _route(method: str, name: str, version: str) -> actions.Action:
        if not name or not version:
            raise ApiError("MissingParameter", "Action and Version are required query parameters")
        action = actions.ACTIONS.get(name)
        if action is None or version != envelope.VERSION:
            raise ApiError("InvalidActionOrVersion", f"unknown action {name!r} for version {version!r}")
        if method not in action.methods:
            raise ApiError("MethodNotAllowed", f"{name} accepts {'/'.join(sorted(action.methods))}, not {method}")
        return action

    def _authenticate(self, request: web.Request, raw: bytes) -> str:
        if not self.config.verify_signatures:
            return self.config.access_key
        signed = SignedRequest(
            method=request.method,
            path=request.path,
            query=tuple(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)),
            headers=request.headers,
            body=raw,
        )
        return verify(signed, self._gate, now=self.config.wall_clock())

    async def _apply_fault(self, name: str) -> Effect | None:
        """Latency, hang or error before the action; an ``acted`` effect is returned to answer after it."""
        effect = self._faults.effect(name)
        if effect is None:
            return None
        log.debug("emulator_fault", action=name, error_code=effect.error_code, hang=effect.hang, acted=effect.acted)
        if effect.latency_s:
            await asyncio.sleep(effect.latency_s)
        if effect.hang:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAX_HANG_S):
                    await self._stopping.wait()
            raise ApiError("InternalServiceTimeout", "the request hung (injected fault)")
        if effect.error_code and effect.acted is None:
            raise ApiError(effect.error_code, f"injected fault on {name}")
        return effect

    @staticmethod
    def _params(request: web.Request, raw: bytes) -> dict[str, Any]:
        if request.method == "GET":
            return actions.query_params(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        try:
            params = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError.bind("the body is not JSON") from e
        if not isinstance(params, dict):
            raise ApiError.bind("the body must be a JSON object")
        return params

    # --- in-process accessors (mirrored by the admin API) --------------------------------------------------

    def _apply_quirks(self) -> Gate:
        """Make the gateway, the QPS limits and unroutable relays follow ``state.quirks`` (region,
        create_update_qps, failure)."""
        self.state.tasks.unroutable_mode = _FAIL_MODES[self.state.quirks.failure]
        limits = {actions.WRITE: self.config.write_qps, actions.LIST: self.config.list_qps}
        if self.state.quirks.create_update_qps is CreateUpdateQps.ONE:
            limits |= dict.fromkeys(_PER_ACTION_LIMITED, 1)
        self._limiter.limits = limits
        return Gate(self._keys, self.state.quirks.region.value, self.config.x_date_tolerance_s)

    def set_keys(self, keys: dict[str, str]) -> None:
        """The key pairs the platform accepts from now on (access key -> secret key): a key revoked or rotated."""
        self._keys = dict(keys)
        self._gate = self._apply_quirks()

    def set_quirks(self, profile: str | None = None, **overrides: Any) -> Quirks:
        """Switch quirks at run time: ``profile`` (else the current quirks) with ``overrides``; see docs/emulator.md.

        Raises :class:`~relayd.emulator.quirks.QuirkError` naming the valid profiles, quirks or values.
        """
        base = quirks.resolve(profile) if profile is not None else self.state.quirks
        self.state.quirks = quirks.replace(base, overrides)
        self._gate = self._apply_quirks()
        log.info("emulator_quirks", **self.state.quirks.as_json())
        return self.state.quirks

    def requests(self, instance: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """The journalled write requests (time, action, instance, user_agent, code, http_status), oldest first."""
        return self._journal.listing(instance, since)

    def write_counts(self, *, ok_only: bool = False) -> dict[str, int]:
        """Write requests per caller instance id ("" = callers that named none)."""
        return self._journal.counts(ok_only=ok_only)

    def playback_url(self, dst: str, kind: Kind | str = Kind.MEDIA) -> str:
        """Where this emulator plays destination ``dst`` (``media``, ``master`` or ``flv``)."""
        return playback_url(self.url, dst, kind)

    def set_jitter(
        self, rate: float = 0.0, *, period_s: float = 10.0, lag_min_s: float = 2.0, lag_max_s: float = 3.0
    ) -> None:
        """Playback jitter: a ``rate`` of the ``period_s`` buckets lag ``lag_min_s``..``lag_max_s`` s."""
        try:
            self._player.jitter = Jitter(rate, period_s, lag_min_s, lag_max_s)
        except ValueError as e:
            raise AdminError(400, str(e)) from e

    async def set_silent_failures(self, fraction: float, interval_s: float = 10.0) -> None:
        """Every ``interval_s``, each relaying task fails silently with probability ``fraction`` (0 = off)."""
        if not 0 <= fraction <= 1 or interval_s <= 0:
            raise AdminError(400, "fraction must be in [0, 1] and interval_s > 0")
        await self._stop_silent_failures()
        self._silent_fraction = fraction
        if fraction > 0:
            self._silent_task = asyncio.create_task(self._silent_loop(interval_s), name="emulator-silent-failures")

    async def _stop_silent_failures(self) -> None:
        task, self._silent_task, self._silent_fraction = self._silent_task, None, 0.0
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _silent_loop(self, interval_s: float) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._stopping.wait()
            self.tick()
            for task in [t for t in self.state.tasks.live.values() if t.relaying]:
                if self._fault_rng.random() < self._silent_fraction:
                    self._fail(task, FailPlan(FailMode.SILENT, repeat=0))

    def history(self) -> list[dict[str, Any]]:
        """Every task ever created, with the ``[from, to]`` intervals during which it was relaying."""
        self.tick()
        return [_history_item(task) for task in self.state.tasks.all]

    def stats(self) -> dict[str, Any]:
        snapshot = self._stats.snapshot(self._limiter.max_offered)
        snapshot["callbacks"]["pending"] = self._sender.pending
        return snapshot

    def tasks(self) -> list[dict[str, Any]]:
        """The live tasks as the list API shows them, plus the emulator-only ``Failed`` flag."""
        self.tick()
        list_time = self.state.quirks.list_time
        return [{**actions.task_item(t, list_time), "Failed": t.failed} for t in self.state.tasks.live.values()]

    def set_fault(
        self,
        action: str = "*",
        *,
        error_rate: float | None = None,
        error_code: str | None = None,
        latency_ms: float = 0.0,
        hang: bool = False,
        count: int | None = None,
        acted: bool = False,
        answer: str = "error",
    ) -> None:
        """Inject a fault on ``action`` (or ``*``); see docs/emulator.md."""
        self._faults.set(Fault(action, error_rate, error_code, latency_ms, hang, count, acted, answer))

    def set_callback_faults(
        self, *, drop_rate: float = 0.0, duplicate_rate: float = 0.0, reorder: bool = False, delay_ms: float = 500.0
    ) -> None:
        self._callback_faults = CallbackFaults.from_json(
            {"drop_rate": drop_rate, "duplicate_rate": duplicate_rate, "reorder": reorder, "delay_ms": delay_ms}
        )

    def clear_faults(self) -> None:
        self._faults.clear()
        self._callback_faults = CallbackFaults()

    def fault_listing(self) -> dict[str, Any]:
        return {
            "faults": self._faults.listing(),
            "callbacks": vars(self._callback_faults).copy(),
            "jitter": dataclasses.asdict(self._player.jitter),
            "silent_failures": {"fraction": self._silent_fraction},
        }

    def fail_task(
        self,
        task_id: str,
        mode: str | None = None,
        repeat: int | None = None,
        recover_after_s: float | None = None,
    ) -> None:
        """A stream failure of a 生效中 task: ``disable`` (停用 + callback), ``stay`` (生效中, not relaying, callback)
        or ``silent`` (the same, no callback); None = as the ``failure`` quirk says.

        ``repeat``: how many more times it fails again right after each Relaunch/Continue (None = every time).
        ``recover_after_s`` (not ``disable``): the platform heals it on its own after that long (a ``recover`` event).
        """
        try:
            chosen = _FAIL_MODES[self.state.quirks.failure] if mode is None else FailMode(mode)
        except ValueError:
            raise AdminError(400, f"mode must be one of {', '.join(FailMode)} (or absent)") from None
        self._fail(self._task(task_id), FailPlan(chosen, repeat, recover_after_s))

    def _fail(self, task: Task, plan: FailPlan) -> None:
        self.tick()
        self._change(lambda: self.state.tasks.fail(task, plan, self.config.clock()))

    def delete_task_behind_back(self, task_id: str) -> None:
        """Delete a task as if someone else did it: no rate counting and no callback."""
        task = self._task(task_id)
        self.tick()
        self.state.tasks.delete(task, self.config.clock(), notify=False)
        self._wake.set()

    def disable_task_behind_back(self, task_id: str) -> None:
        """Disable (停用) a task as if someone else stopped it: no rate counting; the stop callback is sent."""
        task = self._task(task_id)
        self.tick()
        self._change(lambda: self.state.tasks.stop(task, self.config.clock()))

    def _task(self, task_id: str) -> Task:
        task = self.state.tasks.get(task_id)
        if task is None:
            raise AdminError(404, f"task {task_id} does not exist")
        return task

    def _change(self, change: Any) -> None:
        try:
            events: list[Event] = change()
        except WrongState as e:
            raise AdminError(409, str(e)) from e
        self._emit(events)
        self._wake.set()


def _history_item(task: Task) -> dict[str, Any]:
    return {
        "TaskId": task.task_id,
        "Title": task.title,
        "DstAddr": dst_addr(task.fields),
        "GroupName": task.group,
        "CreatedAt": task.created_at,
        "DeletedAt": task.deleted_at,
        "StartTime": task.start,
        "EndTime": task.end,
        "Active": [list(interval) for interval in task.intervals],
    }
