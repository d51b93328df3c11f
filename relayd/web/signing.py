"""Callback URL capabilities and the platform's optional callback signature — pure functions, no I/O, no clock.

Two independent checks guard ``POST /v1/callbacks/{segment key}/{mac}``:

1. **The path mac** (always). relayd mints each task's CallbackURL itself, so the URL is a capability: the mac is
   HMAC-SHA256 of the segment key under relayd's ``callback_secret``, truncated to 160 bits and written in
   lower-case base32 without padding (32 characters, URL-safe, no ``%``-escaping needed). Only a holder of the
   secret can produce a valid URL for a key, and verification is a constant-time compare.

2. **The platform's ``sign``/``t``** (whenever ``callback_auth_key`` is set; a body without them is refused, so
   dropping them cannot skip the check). Volcengine
   documents ``sign = md5(AuthKey + t)`` for its domain callbacks, where ``t`` is a unix *expiry* time (default
   send time + 10 min); BytePlus describes ``t`` as the *send* time. Whether relay callbacks carry it at all is
   unknown (reference Q11). One rule fits both readings: accept ``t`` within ``max_age`` seconds either side of
   ``now``. Under the expiry reading that means "not expired by more than max_age (clock skew) and not issued
   absurdly far ahead"; under the send-time reading it means "sent at most max_age ago". ``max_age`` must
   therefore be at least the platform's expiry offset (600 s) plus clock skew, e.g. 900 s. Exact replays within
   the window are harmless anyway: the receiver de-duplicates identical bodies.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac

from relayd.ids import SegmentKey

MAX_CALLBACK_URL_LEN = 512
"""The platform's CallbackURL limit (current docs; the legacy SDK said 2000 — reference Q7)."""

MAC_BYTES = 20
"""160 bits of HMAC-SHA256 — comfortably above the 128-bit floor, 32 base32 characters."""


class SignCheck(enum.StrEnum):
    """Outcome of checking a body's ``sign``/``t`` pair."""

    OK = "ok"
    BAD_SIGN = "bad_sign"
    EXPIRED = "expired"
    FUTURE = "future"
    MALFORMED = "malformed"

    @property
    def ok(self) -> bool:
        return self is SignCheck.OK


@functools.lru_cache(maxsize=4096)  # hot segments are verified on every callback; bounded, keyed by the secret too
def callback_mac(secret: bytes, key: SegmentKey) -> str:
    """The URL-safe mac of a segment key: base32 (lower case, unpadded) of 160 bits of HMAC-SHA256."""
    digest = hmac.new(secret, key.encode("utf-8"), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def verify_mac(secret: bytes, key: SegmentKey, mac: str) -> bool:
    """True when ``mac`` is the mac of ``key``; constant time in the compared bytes."""
    expected = callback_mac(secret, key).encode("ascii")
    return hmac.compare_digest(expected, mac.encode("utf-8", "surrogateescape"))


def callback_url(public_url: str, secret: bytes, key: SegmentKey) -> str:
    """``{public_url}/v1/callbacks/{key}/{mac}``; ValueError if it would exceed the platform's 512 characters."""
    url = f"{public_url.rstrip('/')}/v1/callbacks/{key}/{callback_mac(secret, key)}"
    if len(url) > MAX_CALLBACK_URL_LEN:
        raise ValueError(f"callback URL is {len(url)} characters, the platform allows {MAX_CALLBACK_URL_LEN}")
    return url


def sign_for(auth_key: str, t: int | str) -> str:
    """The platform's callback signature: lower-case hex ``md5(auth_key + t)`` (used by tests and the emulator)."""
    return hashlib.md5((auth_key + str(t)).encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_t(t: object) -> int | None:
    """``t`` as integer unix seconds: an int, an integral float or a decimal string; None otherwise."""
    if isinstance(t, bool):
        return None
    if isinstance(t, int):
        return t
    if isinstance(t, float) and t.is_integer():
        return int(t)
    if isinstance(t, str) and t.isascii() and t.isdigit():
        return int(t)
    return None


def verify_sign(auth_key: str, sign: str, t: int | str, *, now: float, max_age: float) -> SignCheck:
    """Check ``sign == md5(auth_key + t)`` (constant time, hex case-insensitive) and ``|t - now| <= max_age``.

    The signature is checked over ``t`` exactly as the sender wrote it (``str(t)``), before its freshness, so a
    caller without the key learns nothing about the time window.
    """
    t_value = parse_t(t)
    if t_value is None:
        return SignCheck.MALFORMED
    expected = sign_for(auth_key, t).encode("ascii")
    if not hmac.compare_digest(expected, sign.lower().encode("utf-8", "surrogateescape")):
        return SignCheck.BAD_SIGN
    if t_value < now - max_age:
        return SignCheck.EXPIRED
    if t_value > now + max_age:
        return SignCheck.FUTURE
    return SignCheck.OK
