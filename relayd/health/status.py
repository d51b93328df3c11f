"""One stream's state for ``relayd status``, ``/v1/schedules`` and metrics: the verdict plus the last advance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from relayd.health.verdict import Health, Verdict


def _iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """``health`` with its ``since``/``reason``, and when the stream last advanced (unix seconds)."""

    verdict: Verdict
    last_advance: float | None

    @property
    def health(self) -> Health:
        return self.verdict.health

    def seconds_since_advance(self, now: float) -> float | None:
        return None if self.last_advance is None else max(0.0, now - self.last_advance)

    def describe(self) -> str:
        """``up``, ``stalled since <RFC 3339>``, ``unknown: <why>`` or ``paused: <why>``."""
        verdict = self.verdict
        if verdict.health is Health.STALLED and verdict.since is not None:
            return f"stalled since {_iso(verdict.since)}"
        if verdict.reason:
            return f"{verdict.health.value}: {verdict.reason}"
        return verdict.health.value

    def as_dict(self, now: float) -> dict[str, object]:
        """The JSON shape for the status API."""
        return {
            "health": self.health.value,
            "text": self.describe(),
            "since": None if self.verdict.since is None else _iso(self.verdict.since),
            "last_advance": None if self.last_advance is None else _iso(self.last_advance),
            "seconds_since_advance": self.seconds_since_advance(now),
        }
