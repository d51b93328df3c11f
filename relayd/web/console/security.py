"""Response headers every console page and asset carries, and the one place that sets the session cookie.

Why so strict: the console can trigger actions with an operator's session, so nothing but the daemon's own files may
run in it (CSP ``default-src 'self'``, no inline script or style), it may not be framed (clickjacking), and it
leaks no URL to other sites. The cookie is HttpOnly (script cannot read it), SameSite=Strict (no cross-site
request carries it) and Secure whenever the browser reached us over https (directly or via a TLS proxy).
"""

from __future__ import annotations

from aiohttp import web

from relayd.web.console.sessions import SESSION_COOKIE

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def harden(response: web.StreamResponse, *, cache: bool = False) -> web.StreamResponse:
    response.headers.update(HEADERS)
    response.headers.setdefault("Cache-Control", "private, max-age=300" if cache else "no-store")
    return response


def is_https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a local path only (``/x``, never ``//host`` or a URL), else the timeline."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
