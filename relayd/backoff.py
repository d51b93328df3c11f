"""Exponential backoff with full jitter, as pure maths.

Used by the platform client between retries of one API call and by the daemon's restart policy between attempts
to revive a failed task. Full jitter ("sleep a uniformly random time up to the exponential ceiling") spreads
retries of many callers that failed together, which is what keeps a throttled platform from being hit again in
lock-step.

Nothing here reads a clock or a random source: the caller passes ``rand`` in [0, 1), so tests are exact.
"""

from __future__ import annotations

from dataclasses import dataclass


def backoff_ceiling(attempt: int, *, base: float, factor: float, cap: float) -> float:
    """The ceiling of the delay before retry ``attempt`` (1-based): ``min(cap, base * factor**(attempt-1))``.

    Large attempt numbers never overflow: once the exponential passes ``cap`` the answer is ``cap``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (got {attempt})")
    if base < 0 or cap < 0 or factor < 1:
        raise ValueError("base and cap must be >= 0 and factor >= 1")
    if base == 0 or cap == 0:
        return 0.0
    try:
        return min(cap, base * float(factor) ** (attempt - 1))
    except OverflowError:  # the exponential passed any cap long ago
        return cap


def backoff_delay(attempt: int, *, base: float, factor: float, cap: float, rand: float) -> float:
    """Full-jitter delay before retry ``attempt`` (1-based): ``rand * ceiling``, with ``rand`` in [0, 1)."""
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1) (got {rand})")
    return rand * backoff_ceiling(attempt, base=base, factor=factor, cap=cap)


@dataclass(frozen=True, slots=True)
class Backoff:
    """A backoff shape to pass around: ``Backoff(base=0.2, factor=2, cap=5).delay(attempt, rand)``."""

    base: float = 0.2
    factor: float = 2.0
    cap: float = 5.0

    def __post_init__(self) -> None:
        backoff_ceiling(1, base=self.base, factor=self.factor, cap=self.cap)  # validates the shape

    def ceiling(self, attempt: int) -> float:
        return backoff_ceiling(attempt, base=self.base, factor=self.factor, cap=self.cap)

    def delay(self, attempt: int, rand: float) -> float:
        return backoff_delay(attempt, base=self.base, factor=self.factor, cap=self.cap, rand=rand)
