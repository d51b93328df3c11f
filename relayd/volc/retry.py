"""The client's retry policy, as pure decisions.

Given the error of attempt ``n``, the time spent so far and a random draw, :meth:`RetryPolicy.decide` answers
"retry after this delay" or "give up, and why". The client's loop performs it (sleeps, re-takes a pacing token,
re-signs with a fresh X-Date). Rules:

* only retryable errors are retried (:attr:`relayd.volc.errors.LiveError.retryable`): throttling, 5xx,
  InternalError, ServiceUnavailableTemp, InternalServiceTimeout, CommonErr, timeouts, connection errors;
* at most ``max_attempts`` attempts in all;
* never start a retry whose backoff delay would end past the overall deadline;
* delays are exponential with full jitter (:mod:`relayd.backoff`);
* each attempt's timeout is the per-call timeout, clipped to what is left of the deadline.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from relayd.backoff import Backoff
from relayd.volc.errors import LiveError

MIN_ATTEMPT_TIMEOUT_S = 0.05


class GiveUp(enum.Enum):
    TERMINAL = "terminal"
    ATTEMPTS = "attempts"
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Decision:
    """``give_up`` is None to retry after ``delay_s``; otherwise the reason to stop."""

    delay_s: float = 0.0
    give_up: GiveUp | None = None

    @property
    def retry(self) -> bool:
        return self.give_up is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    deadline_s: float = 60.0
    timeout_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)  # base 0.2 s, factor 2, cap 5 s

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.deadline_s <= 0 or self.timeout_s <= 0:
            raise ValueError("deadline_s and timeout_s must be > 0")

    def decide(self, error: LiveError, *, attempt: int, elapsed_s: float, rand: float) -> Decision:
        """What to do after attempt number ``attempt`` (1-based) failed with ``error``."""
        if not error.retryable:
            return Decision(give_up=GiveUp.TERMINAL)
        if attempt >= self.max_attempts:
            return Decision(give_up=GiveUp.ATTEMPTS)
        delay = self.backoff.delay(attempt, rand)
        if elapsed_s + delay + MIN_ATTEMPT_TIMEOUT_S > self.deadline_s:
            return Decision(delay_s=delay, give_up=GiveUp.DEADLINE)
        return Decision(delay_s=delay)

    def attempt_timeout(self, elapsed_s: float) -> float:
        """The timeout for an attempt starting ``elapsed_s`` into the call."""
        return max(MIN_ATTEMPT_TIMEOUT_S, min(self.timeout_s, self.deadline_s - elapsed_s))
