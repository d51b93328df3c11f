"""``setup_console``: everything the console adds to the daemon's application, in one call.

Pages and assets under ``/``, the live stream and the two actions under ``/v1`` (so the one ``/v1`` gate guards
them), the session key for that gate, and the shutdown hook that ends open streams so a stop is not held up by
browsers that never hang up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from relayd.web.auth import SESSIONS
from relayd.web.console.actions import ActionApi
from relayd.web.console.assets import STATIC_PREFIX, Assets, load_assets
from relayd.web.console.live import ChangeFeed, EventStream
from relayd.web.console.pages import TEMPLATES, Pages
from relayd.web.console.sessions import Sessions
from relayd.web.views import ConsoleActions, StoreView

FEED = web.AppKey("relayd_console_feed", ChangeFeed)


def setup_console(
    app: web.Application,
    *,
    store: StoreView,
    api_token: str | None,
    actions: ConsoleActions | None = None,
    overview: Callable[[], object] = lambda: None,
    clock: Callable[[], float] = time.time,
    feed_interval_s: float = 0.5,
) -> None:
    sessions = Sessions(api_token) if api_token else None
    if sessions is not None:
        app[SESSIONS] = sessions
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("relayd.web.console", "templates"),
        app_key=TEMPLATES,
        autoescape=True,
        default_helpers=False,
    )
    feed = app[FEED] = ChangeFeed(lambda: store.commits, store.journal, overview, interval_s=feed_interval_s)
    app.router.add_routes(Pages(sessions=sessions, api_token=api_token, clock=clock).routes())
    app.router.add_get(STATIC_PREFIX + "/{name}", Assets(load_assets()).handle)
    app.router.add_get("/v1/stream", EventStream(feed).handle)
    app.router.add_routes(ActionApi(actions).routes())
    app.on_shutdown.append(_close_feed)


async def _close_feed(app: web.Application) -> None:
    await app[FEED].close()
