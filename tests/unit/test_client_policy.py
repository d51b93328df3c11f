"""The pure retry policy: which errors retry, attempt and deadline bounds, per-attempt timeouts."""

from __future__ import annotations

import pytest

from relayd.backoff import Backoff
from relayd.volc.errors import ApiError, TransportError, ValidationError, api_error
from relayd.volc.retry import GiveUp, RetryPolicy

THROTTLED = api_error("A", http_status=429, code="FlowLimitExceeded")
INTERNAL = ApiError("A", http_status=500, code="InternalError")
COMMON = ApiError("A", http_status=200, code="CommonErr")
TIMEOUT = TransportError("A", "Timeout")
INVALID = ApiError("A", http_status=400, code="InvalidParam")
SIGNATURE = ApiError("A", http_status=401, code="SignatureDoesNotMatch")
NOT_FOUND = ApiError("A", http_status=404, code="ResourceNotFound")


@pytest.mark.parametrize("error", [THROTTLED, INTERNAL, COMMON, TIMEOUT])
def test_retryable_errors_retry_with_jittered_backoff(error: ApiError | TransportError) -> None:
    policy = RetryPolicy(backoff=Backoff(base=0.2, factor=2, cap=5))
    first = policy.decide(error, attempt=1, elapsed_s=0, rand=0.5)
    third = policy.decide(error, attempt=3, elapsed_s=0, rand=0.5)
    assert first.retry and first.delay_s == pytest.approx(0.1)
    assert third.retry and third.delay_s == pytest.approx(0.4)


@pytest.mark.parametrize("error", [INVALID, SIGNATURE, NOT_FOUND, ValidationError("A", [])])
def test_terminal_errors_never_retry(error: Exception) -> None:
    decision = RetryPolicy().decide(error, attempt=1, elapsed_s=0, rand=0.0)  # type: ignore[arg-type]
    assert decision.give_up is GiveUp.TERMINAL


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.decide(INTERNAL, attempt=2, elapsed_s=0, rand=0.1).retry
    assert policy.decide(INTERNAL, attempt=3, elapsed_s=0, rand=0.1).give_up is GiveUp.ATTEMPTS


def test_a_retry_that_would_end_past_the_deadline_is_not_started() -> None:
    policy = RetryPolicy(deadline_s=10, backoff=Backoff(base=4, factor=2, cap=100))
    assert policy.decide(INTERNAL, attempt=1, elapsed_s=5, rand=0.9).retry  # 3.6 s: ends at 8.6
    assert policy.decide(INTERNAL, attempt=2, elapsed_s=5, rand=0.9).give_up is GiveUp.DEADLINE  # 7.2 s


def test_attempt_timeout_is_clipped_to_the_deadline() -> None:
    policy = RetryPolicy(timeout_s=10, deadline_s=30)
    assert policy.attempt_timeout(0) == 10
    assert policy.attempt_timeout(25) == pytest.approx(5)
    assert policy.attempt_timeout(40) > 0


def test_bad_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline_s=0)
