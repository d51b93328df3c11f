"""Console login sessions: signed opaque cookies, CSRF tokens bound to them, and the same-origin rule.

Why stateless signed cookies: a session survives a daemon restart (an operator watching a hand-off does not get
logged out by ``systemctl restart``), and nothing grows per login. The cookie is ``sid.expires.mac`` where the mac
is HMAC-SHA256 under a key derived from the API token, so the cookie is not the token, cannot be forged without it,
and every session ends when the token changes. Logging out revokes the session id in memory until it expires.

The CSRF token is HMAC(key, "csrf." + sid): bound to the session, never stored. A state-changing request with a
session must carry it (header ``X-CSRF-Token`` or form field ``csrf``) *and* come from the same origin
(``Sec-Fetch-Site`` when the browser sends it, ``Origin`` always for POST). Everything here is pure: times are
passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SESSION_COOKIE = "relayd_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY_LABEL = b"relayd console session key v1"


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: its id (for logs and revocation), expiry and CSRF token."""

    sid: str
    expires: int
    csrf: str


@dataclass(slots=True)
class Sessions:
    """Issues and verifies session cookies under a key derived from the API token."""

    api_token: str
    ttl_s: int = SESSION_TTL_S
    _revoked: dict[str, int] = field(default_factory=dict)

    @property
    def _key(self) -> bytes:
        return hmac.new(self.api_token.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()

    def issue(self, now: float) -> tuple[str, Session]:
        """A new session: the cookie value and the session it stands for."""
        sid = secrets.token_urlsafe(16)
        expires = int(now) + self.ttl_s
        cookie = f"{sid}.{expires}.{_mac(self._key, f'{sid}.{expires}')}"
        return cookie, Session(sid, expires, self.csrf_for(sid))

    def csrf_for(self, sid: str) -> str:
        return _mac(self._key, f"csrf.{sid}")

    def verify(self, cookie: str | None, now: float) -> Session | None:
        """The session of a cookie value, or None if it is malformed, forged, expired or revoked."""
        parts = (cookie or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        sid, expires_text, mac = parts
        if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(self._key, f"{sid}.{expires_text}").encode()):
            return None
        expires = int(expires_text)
        if expires <= now or sid in self._revoked:
            return None
        return Session(sid, expires, self.csrf_for(sid))

    def revoke(self, session: Session, now: float) -> None:
        """Log out: the session id is refused until it would have expired anyway."""
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.sid] = session.expires

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode("utf-8", "replace"))


def same_origin(headers: Mapping[str, str], host: str) -> bool:
    """True when a state-changing request comes from this origin.

    ``Sec-Fetch-Site`` (set by every current browser, never by page script) must be ``same-origin`` when present.
    ``Origin`` must name this host (scheme aside: behind a TLS proxy the daemon sees http while the browser says
    https) — except that with ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` on form posts, which
    ``Sec-Fetch-Site: same-origin`` then vouches for. A request with neither header is refused.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return False
    origin = headers.get("Origin")
    if not origin or origin == "null":
        return site == "same-origin"
    return urlsplit(origin).netloc.lower() == host.lower()
