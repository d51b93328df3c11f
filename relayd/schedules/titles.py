"""Platform Title tags: how relayd recognises its own tasks.

The platform's Title allows only 1-20 letters, digits and Chinese characters, so a segment key cannot be the
title itself. The tag is ``rd`` + the first 18 characters of base32(sha256(namespace NUL key)): 90 bits of hash,
upper-case letters A-Z and digits 2-7, the same on every machine and across restarts. The namespace lets two
relayd installations share one account without adopting each other's tasks.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache

from relayd.ids import SegmentKey

TITLE_PREFIX = "rd"
_HASH_CHARS = 18
_TITLE_RE = re.compile(r"^rd[A-Z2-7]{18}$")


@lru_cache(maxsize=1 << 16)
def title_for(key: SegmentKey, namespace: str) -> str:
    """The platform Title tag of a segment: ``rd`` + 18 base32 characters of a hash of namespace and key."""
    digest = hashlib.sha256(f"{namespace}\0{key}".encode()).digest()
    # 15 bytes encode to 24 base32 characters whose first 18 equal those of the whole digest's encoding
    return TITLE_PREFIX + base64.b32encode(digest[:15]).decode("ascii")[:_HASH_CHARS]


def is_relayd_title(title: str) -> bool:
    """Whether a platform Title has the shape of a relayd tag (any namespace)."""
    return bool(_TITLE_RE.match(title))
