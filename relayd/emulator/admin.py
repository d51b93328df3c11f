"""The admin API under ``/__emulator/`` (only when the emulator runs with ``admin=True``; otherwise 404).

History, stats, live tasks; request and callback faults; task failures (including silent ones), random silent
failures and playback jitter; the quirks in force (switchable at run time); the write journal per caller instance.

Thin handlers over the emulator's in-process methods; plain JSON in and out, no platform envelope, no signature
and no QPS accounting. Refusals are ``{"error": message}`` with 400 (bad input), 404 (unknown task) or 409 (the
task's status does not allow it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relayd.emulator.errors import AdminError
from relayd.emulator.faults import CallbackFaults, Fault
from relayd.emulator.quirks import QuirkError, describe

if TYPE_CHECKING:
    from relayd.emulator.server import Emulator

PREFIX = "/__emulator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, emulator: Emulator) -> None:
    admin = _Admin(emulator)
    app.router.add_get(f"{PREFIX}/history", admin.history)
    app.router.add_get(f"{PREFIX}/stats", admin.stats)
    app.router.add_get(f"{PREFIX}/tasks", admin.tasks)
    app.router.add_get(f"{PREFIX}/faults", admin.list_faults)
    app.router.add_post(f"{PREFIX}/faults", admin.set_fault)
    app.router.add_delete(f"{PREFIX}/faults", admin.clear_faults)
    app.router.add_post(f"{PREFIX}/callbacks", admin.set_callback_faults)
    app.router.add_post(f"{PREFIX}/tasks/{{task_id}}/fail", admin.fail_task)
    app.router.add_post(f"{PREFIX}/tasks/{{task_id}}/delete", admin.delete_task)
    app.router.add_post(f"{PREFIX}/tasks/{{task_id}}/disable", admin.disable_task)
    app.router.add_get(f"{PREFIX}/quirks", admin.get_quirks)
    app.router.add_post(f"{PREFIX}/quirks", admin.set_quirks)
    app.router.add_get(f"{PREFIX}/requests", admin.requests)
    app.router.add_post(f"{PREFIX}/playback", admin.set_jitter)
    app.router.add_post(f"{PREFIX}/silent-failures", admin.set_silent_failures)


def _reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode(), status=status, content_type="application/json"
    )


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise AdminError(400, "the body is not JSON") from e
    if not isinstance(data, dict):
        raise AdminError(400, "the body must be a JSON object")
    return data


def _guarded(handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AdminError as e:
            return _reply({"error": e.message}, e.status)

    return wrapper


class _Admin:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        guarded = ("set_fault", "set_callback_faults", "fail_task", "delete_task", "disable_task", "set_quirks")
        for name in (*guarded, "set_jitter", "set_silent_failures"):
            setattr(self, name, _guarded(getattr(self, name)))

    async def history(self, request: web.Request) -> web.Response:
        return _reply(self._emulator.history())

    async def stats(self, request: web.Request) -> web.Response:
        return _reply(self._emulator.stats())

    async def tasks(self, request: web.Request) -> web.Response:
        return _reply(self._emulator.tasks())

    async def list_faults(self, request: web.Request) -> web.Response:
        return _reply(self._emulator.fault_listing())

    async def set_fault(self, request: web.Request) -> web.Response:
        fault = Fault.from_json(await _json(request))
        self._emulator._faults.set(fault)
        return _reply(self._emulator.fault_listing())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._emulator.clear_faults()
        return _reply(self._emulator.fault_listing())

    async def set_callback_faults(self, request: web.Request) -> web.Response:
        data = await _json(request)
        if "delay_ms" not in data and isinstance(data.get("reorder"), int | float) and data["reorder"] is not True:
            data["delay_ms"], data["reorder"] = data["reorder"], bool(data["reorder"])
        self._emulator._callback_faults = CallbackFaults.from_json(data)
        return _reply(self._emulator.fault_listing())

    async def fail_task(self, request: web.Request) -> web.Response:
        data = await _json(request)
        self._emulator.fail_task(
            request.match_info["task_id"],
            mode=data.get("mode"),
            repeat=data.get("repeat"),
            recover_after_s=data.get("recover_after_s"),
        )
        return _reply({"ok": True})

    async def delete_task(self, request: web.Request) -> web.Response:
        self._emulator.delete_task_behind_back(request.match_info["task_id"])
        return _reply({"ok": True})

    async def disable_task(self, request: web.Request) -> web.Response:
        self._emulator.disable_task_behind_back(request.match_info["task_id"])
        return _reply({"ok": True})

    async def get_quirks(self, request: web.Request) -> web.Response:
        return _reply({"quirks": self._emulator.state.quirks.as_json(), "valid": describe()})

    async def set_quirks(self, request: web.Request) -> web.Response:
        data = await _json(request)
        unknown = set(data) - {"profile", "quirks"}
        if unknown or not isinstance(data.get("quirks", {}), dict):
            raise AdminError(400, 'expected {"profile": NAME, "quirks": {NAME: VALUE}}, both optional')
        try:
            self._emulator.set_quirks(data.get("profile"), **data.get("quirks", {}))
        except QuirkError as e:
            raise AdminError(400, str(e)) from e
        return await self.get_quirks(request)

    async def requests(self, request: web.Request) -> web.Response:
        instance = request.query.get("instance")
        entries = self._emulator.requests(instance)
        return _reply({"requests": entries, "counts": self._emulator.write_counts()})

    async def set_jitter(self, request: web.Request) -> web.Response:
        data = await _json(request)
        try:
            self._emulator.set_jitter(**data)
        except TypeError as e:
            raise AdminError(400, f"playback fields are rate, period_s, lag_min_s, lag_max_s ({e})") from e
        return _reply(self._emulator.fault_listing())

    async def set_silent_failures(self, request: web.Request) -> web.Response:
        data = await _json(request)
        try:
            await self._emulator.set_silent_failures(**data)
        except TypeError as e:
            raise AdminError(400, f"silent-failure fields are fraction, interval_s ({e})") from e
        return _reply(self._emulator.fault_listing())
