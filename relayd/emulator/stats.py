"""Counters the tests read: requests by action, responses by code, throttling and callback delivery."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.callbacks: Counter[str] = Counter()

    def snapshot(self, max_window: dict[str, int]) -> dict[str, Any]:
        """A JSON-ready copy. ``max_requests_per_1s`` is the highest count offered in any sliding 1 s window."""
        return {
            "requests": dict(self.requests),
            "responses": dict(self.responses),
            "throttled": dict(self.throttled),
            "max_requests_per_1s": dict(max_window),
            "callbacks": {
                key: self.callbacks[key]
                for key in ("events", "attempts", "delivered", "failed", "dropped", "duplicated", "held")
            },
        }
