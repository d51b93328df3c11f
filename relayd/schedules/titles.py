"""Platform Title tags: how relayd recognises its own tasks, at either Title length a platform allows.

The platform's Title allows only letters, digits and Chinese characters: 1-20 of them on Volcengine Live, at most
10 on BytePlus MediaLive. A segment key cannot be the title itself, so the tag is ``rd`` + base32(sha256(namespace
NUL key)) cut to the tag length: 18 hash characters (90 bits) in the 20-character *full* tag, 8 (40 bits) in the
10-character *short* tag. Upper-case letters A-Z and digits 2-7, the same on every machine and across restarts.
The namespace lets two relayd installations share one account without adopting each other's tasks.

Why the short tag is a prefix of the full one: an installation that changes ``title_limit`` (or moves a store from
one platform profile to the other) still has tasks carrying the other length. Both tags of a segment are cut from
the same hash, so the short tag is the first 10 characters of the full tag, and :func:`same_segment` (the shorter
is a prefix of the longer) maps a segment's record to a task of either length: no duplicate is created, nothing
running is replaced. The platform's Title filter is a case-insensitive substring match, so listing by the short tag
finds tasks of both lengths (:func:`lookup_title`).

Collision bound: two distinct segments get the same short tag with probability 2^-40. Among ``n`` tags that exist
on the account at once (tasks are deleted after their retention), a collision somewhere has probability at most
n(n-1)/2^41: about 5e-7 for 1,000 tasks, 5e-5 for 10,000, 5e-3 for 100,000. Full tags compare in full (90 bits)
with each other; 40 bits decide only when one side is short.
"""

from __future__ import annotations

import hashlib
import re
from enum import IntEnum
from functools import lru_cache

from relayd.ids import SegmentKey

TITLE_PREFIX = "rd"
_TITLE_RE = re.compile(r"^rd[A-Z2-7]{8}(?:[A-Z2-7]{10})?$")


class TitleLength(IntEnum):
    """The two tag lengths: the platform's Title limit (Volcengine 20, BytePlus MediaLive 10)."""

    SHORT = 10
    FULL = 20


@lru_cache(maxsize=1 << 16)
def title_for(key: SegmentKey, namespace: str, length: TitleLength = TitleLength.FULL) -> str:
    """The platform Title tag of a segment: ``rd`` + the first ``length - 2`` base32 characters of its hash."""
    digest = hashlib.sha256(f"{namespace}\0{key}".encode()).digest()
    return TITLE_PREFIX + _base32_90(digest)[: length - len(TITLE_PREFIX)]


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_BASE32_PAIRS = [a + b for a in _BASE32 for b in _BASE32]  # every 10-bit value as two characters


def _base32_90(digest: bytes) -> str:
    """The first 18 characters of the RFC 4648 base32 encoding of ``digest`` (its leading 90 bits).

    ``base64.b32encode`` gives the same characters (a test checks) but is pure Python and ~2.5x slower; a first
    pass of 10,000 schedules makes ~46,000 tags."""
    v = int.from_bytes(digest[:12], "big") >> 6
    p = _BASE32_PAIRS
    return (
        p[v >> 80] + p[(v >> 70) & 1023] + p[(v >> 60) & 1023] + p[(v >> 50) & 1023] + p[(v >> 40) & 1023]
        + p[(v >> 30) & 1023] + p[(v >> 20) & 1023] + p[(v >> 10) & 1023] + p[v & 1023]
    )  # fmt: skip


def is_relayd_title(title: str) -> bool:
    """Whether a platform Title has the shape of a relayd tag (any namespace, either length)."""
    return bool(_TITLE_RE.match(title))


@lru_cache(maxsize=1 << 16)  # asked for every planned segment on every decision
def lookup_title(title: str) -> str:
    """The Title to list by to find a segment's tasks of either length: its short tag (a prefix of the full one)."""
    return title[: TitleLength.SHORT] if is_relayd_title(title) else title


def same_segment(wanted: str, seen: str) -> bool:
    """Whether a task titled ``seen`` carries the segment tagged ``wanted``: equal, or one tag shortens the other.

    Titles that are not relayd tags match only themselves.
    """
    if wanted == seen:
        return True
    if not (is_relayd_title(wanted) and is_relayd_title(seen)) or len(wanted) == len(seen):
        return False
    return wanted.startswith(seen) or seen.startswith(wanted)
