"""Bearer-token protection of the operator API (``/v1/*`` except callbacks) and the token file.

Callbacks authenticate by the mac in their URL, so ``/v1/callbacks/`` is exempt from the bearer check; every
other ``/v1/`` path needs ``Authorization: Bearer <api_token>``: 401 when the header is missing or not a bearer
header, 403 when the token is wrong (compared in constant time). With no token configured the operator API is
closed (403 ``api_disabled``) rather than open.

The console's browsers authenticate by a session cookie instead (``authorize``): a request *without* an
``Authorization`` header but with a valid console session passes too; state-changing methods then also need the
session's CSRF token and a same-origin request (``console.sessions``). A request that carries the header is judged
by the header alone, exactly as before the console existed.

The token file: when the operator sets no ``api_token``, the daemon can generate one into a file next to its state
(``ensure_token_file``), readable only by its user; ``relayd status`` reads the same file.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from relayd.web.console.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    Session,
    Sessions,
    same_origin,
)
from relayd.web.errors import Forbidden, Unauthorized

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_FILE_NAME = "api_token"  # noqa: S105 - a file name, not a secret
PROTECTED_PREFIX = "/v1/"
CALLBACK_PREFIX = "/v1/callbacks/"
SESSIONS = web.AppKey("relayd_console_sessions", Sessions)
"""Set by the console when it is installed; absent, only the bearer header authenticates."""
PRINCIPAL = web.RequestKey("relayd_principal", str)
"""Request key: who was let in — ``"token"`` or ``"session:<id prefix>"`` (for the action log, never a secret)."""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_token(expected: str | None, header: str | None) -> None:
    """Raise Unauthorized / Forbidden unless ``header`` carries ``expected``."""
    if not expected:
        raise Forbidden("the operator API is disabled: no api_token configured", code="api_disabled")
    given = bearer_token(header)
    if given is None:
        raise Unauthorized("missing bearer token")
    if not hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogateescape")):
        raise Forbidden("wrong bearer token")


def session_of(request: web.Request, now: float) -> Session | None:
    """The request's valid console session, or None (no console, no cookie, or a bad one)."""
    sessions = request.app.get(SESSIONS)
    cookie = request.cookies.get(SESSION_COOKIE)
    if sessions is None or not cookie:
        return None
    return sessions.verify(cookie, now)


def check_session_write(request: web.Request, session: Session, csrf: str | None) -> None:
    """Refuse a state-changing session request that is cross-site or lacks the session's CSRF token."""
    if not same_origin(request.headers, request.host):
        raise Forbidden("cross-site request refused", code="cross_site")
    if not Sessions.csrf_ok(session, csrf):
        raise Forbidden("missing or wrong CSRF token", code="csrf")


def authorize(request: web.Request, api_token: str | None, now: float) -> None:
    """The ``/v1`` gate: the bearer header when present (``check_token``), else a console session."""
    header = request.headers.get("Authorization")
    session = session_of(request, now) if header is None and api_token else None
    if session is None:
        check_token(api_token, header)
        request[PRINCIPAL] = "token"
        return
    if request.method not in SAFE_METHODS:
        check_session_write(request, session, request.headers.get(CSRF_HEADER))
    request[PRINCIPAL] = f"session:{session.sid[:8]}"


def needs_token(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIX) and not path.startswith(CALLBACK_PREFIX)


def token_file(state_path: Path) -> Path:
    """Where the generated token lives: ``api_token`` in the state file's directory."""
    return state_path.parent / TOKEN_FILE_NAME


def read_token_file(path: Path) -> str | None:
    """The token in ``path`` (first line, stripped), or None if the file is missing or empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    return token or None


def ensure_token_file(path: Path) -> str:
    """Read the token file, creating it (mode 0600, 256 random bits) if missing. Returns the token."""
    existing = read_token_file(path)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token
