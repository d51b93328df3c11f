"""The console's pages: sign in and out, the timeline, one schedule. Thin handlers over templates.

Pages carry no data of their own: each renders a shell (words in the reader's language, the session's CSRF token)
and the page's script reads ``/v1/schedules``, ``/v1/schedules/{id}`` and ``/v1/events`` — the same answers
``relayd status`` gets. A page asked for without a session (or bearer header) redirects to ``/login``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from relayd.web.auth import check_session_write, check_token, session_of
from relayd.web.console.i18n import LANG_COOKIE, MESSAGES, pick_language
from relayd.web.console.security import clear_session_cookie, harden, safe_next, set_session_cookie
from relayd.web.console.sessions import CSRF_FIELD, Session, Sessions, same_origin
from relayd.web.errors import WebError

log = structlog.get_logger("relayd.web.console")

TEMPLATES = web.AppKey("relayd_console_templates", jinja2.Environment)


def _redirect(location: str) -> web.Response:
    return harden(web.Response(status=303, headers={"Location": location}))  # type: ignore[return-value]


class Pages:
    def __init__(self, *, sessions: Sessions | None, api_token: str | None, clock: Callable[[], float]) -> None:
        self._sessions = sessions
        self._token = api_token
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/", self.timeline),
            web.get("/schedules/{id}", self.schedule),
        ]

    # --- rendering ------------------------------------------------------------------------------------------

    def _render(self, request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
        lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
        words = MESSAGES[lang]
        config = {"lang": lang.value, "messages": words, **context.pop("config", {})}
        full = {"lang": lang.value, "m": words, "config": config, **context}
        response = aiohttp_jinja2.render_template(name, request, full, app_key=TEMPLATES, status=status)
        harden(response)
        return response

    def _viewer(self, request: web.Request) -> Session | bool | None:
        """The session, True for a valid bearer header, or None (not signed in)."""
        session = session_of(request, self._clock())
        if session is not None:
            return session
        header = request.headers.get("Authorization")
        if header is None:
            return None
        try:
            check_token(self._token, header)
        except WebError:
            return None
        return True

    def _page(self, request: web.Request, name: str, **config: Any) -> web.Response:
        viewer = self._viewer(request)
        if viewer is None:
            return _redirect("/login?next=" + request.path)
        csrf = viewer.csrf if isinstance(viewer, Session) else ""
        return self._render(request, name, config={"csrf": csrf, **config}, csrf=csrf, **config)

    # --- handlers -------------------------------------------------------------------------------------------

    async def timeline(self, request: web.Request) -> web.Response:
        return self._page(request, "timeline.html")

    async def schedule(self, request: web.Request) -> web.Response:
        return self._page(request, "schedule.html", schedule=request.match_info["id"])

    async def login_form(self, request: web.Request) -> web.Response:
        if session_of(request, self._clock()) is not None:
            return _redirect(safe_next(request.query.get("next")))
        error = None if self._sessions is not None else "login.disabled"
        return self._render(request, "login.html", error=error, next=safe_next(request.query.get("next")))

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        target = safe_next(str(form.get("next", "")))
        if self._sessions is None or not self._token:
            return self._render(request, "login.html", status=403, error="login.disabled", next=target)
        if not same_origin(request.headers, request.host):
            log.warning("console_login_refused", reason="cross_site", remote=request.remote)
            return self._render(request, "login.html", status=403, error="login.cross_site", next=target)
        given = str(form.get("token", "")).strip()
        if not hmac.compare_digest(self._token.encode(), given.encode("utf-8", "replace")):
            log.warning("console_login_refused", reason="wrong_token", remote=request.remote)
            return self._render(request, "login.html", status=403, error="login.wrong", next=target)
        cookie, session = self._sessions.issue(self._clock())
        log.info("console_login", session=session.sid[:8], remote=request.remote)
        response = _redirect(target)
        set_session_cookie(response, request, cookie, self._sessions.ttl_s)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        session = session_of(request, self._clock())
        if session is not None and self._sessions is not None:
            form = await request.post()
            check_session_write(request, session, str(form.get(CSRF_FIELD, "")))
            self._sessions.revoke(session, self._clock())
            log.info("console_logout", session=session.sid[:8], remote=request.remote)
        response = _redirect("/login")
        clear_session_cookie(response)
        return response
