"""The write journal: every write request with the calling instance's identity, for tests that count per caller.

A caller names itself with an ``X-Relayd-Instance`` header, or with a ``relayd-instance/<id>`` product token in its
User-Agent. Neither has to be signed: the gateway verifies exactly the headers a request lists in SignedHeaders,
so an extra unsigned header (User-Agent is never signed) leaves the signature valid, and a signed one (any
``X-`` header the signer saw) is verified like the others. The journal keeps the newest ``limit`` entries.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

INSTANCE_HEADER = "X-Relayd-Instance"
UA_TOKEN = "relayd-instance/"  # noqa: S105 - a User-Agent product token, not a password


@dataclass(frozen=True, slots=True)
class Entry:
    time: float
    action: str
    instance: str
    user_agent: str
    code: str
    http_status: int


def identify(headers: Mapping[str, str]) -> str:
    """The caller's instance id, or "" when it names none."""
    named = headers.get(INSTANCE_HEADER, "").strip()
    if named:
        return named
    for token in headers.get("User-Agent", "").split():
        if token.startswith(UA_TOKEN):
            return token.removeprefix(UA_TOKEN)
    return ""


class Journal:
    def __init__(self, limit: int = 100_000) -> None:
        self._entries: deque[Entry] = deque(maxlen=limit)

    def record(self, entry: Entry) -> None:
        self._entries.append(entry)

    def listing(self, instance: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        return [
            asdict(e)
            for e in self._entries
            if (instance is None or e.instance == instance) and (since is None or e.time >= since)
        ]

    def counts(self, *, ok_only: bool = False) -> dict[str, int]:
        """Write requests per instance ("" = unnamed callers); ``ok_only`` counts only the accepted ones."""
        return dict(Counter(e.instance for e in self._entries if not ok_only or e.code == "OK"))
