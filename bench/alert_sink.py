"""The alert targets of ``bench/alert_targets.py``, served from a process of their own (as a real target is remote).

``POST /ok/hook`` answers 200 and counts the message, ``POST /fail/hook`` answers 500, ``POST /hang/hook`` never
answers; ``GET /count`` returns how many messages the good target received. The port is printed on the first line
of stdout. Run by the benchmark: ``python -m bench.alert_sink``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

RECEIVED = web.AppKey("received", list[int])


async def _hook(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind == "hang":
        await asyncio.Event().wait()
    await request.read()
    if kind == "ok":
        request.app[RECEIVED].append(1)
    return web.Response(status=500 if kind == "fail" else 200)


async def _count(request: web.Request) -> web.Response:
    return web.Response(text=str(len(request.app[RECEIVED])))


async def main() -> None:
    app = web.Application()
    app[RECEIVED] = []
    app.router.add_post("/{kind}/hook", _hook)
    app.router.add_get("/count", _count)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
