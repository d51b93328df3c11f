"""Per-account, per-action-class QPS limits over a sliding one-second window, plus the rate actually offered.

:class:`Window` counts the instants inside the last second. :class:`Limiter` keeps one window of *accepted*
requests per (access key, class) to decide throttling, and one window of *all* arrivals per class to report the
highest rate a caller ever offered, so tests can assert that a client paced itself.
"""

from __future__ import annotations

from collections import deque


class Window:
    """Instants within the last ``span`` seconds."""

    def __init__(self, span: float = 1.0) -> None:
        self.span = span
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        while self._times and self._times[0] <= now - self.span:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> int:
        """Record ``now`` and return how many instants the window holds with it."""
        self.count(now)
        self._times.append(now)
        return len(self._times)


class Limiter:
    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self._accepted: dict[tuple[str, str], Window] = {}
        self._offered: dict[str, Window] = {}
        self.max_offered: dict[str, int] = dict.fromkeys(limits, 0)

    def admit(self, access_key: str, kind: str, now: float) -> bool:
        """True if the request may run; False if it exceeds the class limit (0 = unlimited)."""
        offered = self._offered.setdefault(kind, Window()).add(now)
        self.max_offered[kind] = max(self.max_offered.get(kind, 0), offered)
        limit = self.limits.get(kind, 0)
        if limit <= 0:
            return True
        window = self._accepted.setdefault((access_key, kind), Window())
        if window.count(now) >= limit:
            return False
        window.add(now)
        return True
