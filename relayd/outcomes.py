"""What a platform call's outcome means for a segment record: the next state, attempts, and when to try again.

Pure, like :mod:`relayd.reconcile`: every function takes the record, the outcome, ``now``, the policy and a random
draw in [0, 1), and returns the record to store. The executor performs the call, classifies its error once
(:func:`outcome_of`) and stores what these functions return; it chooses nothing itself.

The rules, in one place:

- **Unknown is not failure.** An answer that does not prove the platform did nothing (a timeout, a 5xx, a body we
  could not read) leaves a create CREATING: the next pass lists the Title before it creates again. No duplicate.
- **Retryable** refusals back off (``create_retry_base`` doubling up to ``create_retry_cap``) and count an attempt.
- **Terminal** refusals (InvalidParam, AccessDenied, a revoked key…) count attempts the same way; they are not final
  either. Once ``max_attempts`` is spent the segment is FAILED — shown in status, logs and metrics — and still
  tried every ``failed_retry_interval`` (with jitter) while its window is open: the operator may fix the cause.
- **Not found** on a delete is success; on an update it is a failure signal (the restart path re-creates). Which
  codes mean "not found" is itself an open question: a refusal of any other code is confirmed by a listing.
- **A refusal that answers an open question** (:mod:`relayd.refusals`: destination busy, StartTime in the past,
  Update while running) is not a failed attempt: relayd learns the answer and tries the way that works.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relayd.backoff import backoff_delay
from relayd.ids import TaskId
from relayd.policy import Policy
from relayd.refusals import Refusal, refusal_of
from relayd.store import SegmentRecord, SegmentState
from relayd.volc.errors import ApiError, LiveError


class OutcomeKind(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    """The platform says the task does not exist."""
    RETRYABLE = "retryable"
    """Refused for now (throttled, busy) and certainly not acted on."""
    TERMINAL = "terminal"
    """Refused for a reason retrying alone will not fix (bad parameter, credentials, permissions)."""
    UNKNOWN = "unknown"
    """The platform may have acted: look before acting again."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    code: str = "ok"
    error: str | None = None
    request_id: str | None = None
    refusal: Refusal | None = None
    """The open question a refusal answers (destination busy, Update while running, …): see :mod:`relayd.refusals`."""

    def fields(self) -> dict[str, Any]:
        """The log and event fields of a failed call (one definition for every caller)."""
        return {"code": self.code, "request_id": self.request_id, "error": self.error}


OK = Outcome(OutcomeKind.OK)


def outcome_of(error: LiveError) -> Outcome:
    """Classify a platform error once; every decision below reads only this."""
    request_id = error.request_id or None if isinstance(error, ApiError) else None
    code = error.code if isinstance(error, ApiError) else type(error).__name__
    refusal = refusal_of(code, error.message) if isinstance(error, ApiError) and error.surely_unprocessed else None
    if error.not_found or refusal == Refusal.NOT_FOUND:
        kind = OutcomeKind.NOT_FOUND
    elif not error.surely_unprocessed:
        kind = OutcomeKind.UNKNOWN
    elif error.retryable:
        kind = OutcomeKind.RETRYABLE
    else:
        kind = OutcomeKind.TERMINAL
    return Outcome(kind, code, str(error), request_id, refusal)


def retry_at(attempts: int, policy: Policy, now: float, rand: float) -> float:
    """When to try a failed create, update or delete again, after ``attempts`` failures in a row."""
    if attempts >= policy.max_attempts:
        return now + slow_retry_delay(policy, rand)
    delay = backoff_delay(
        attempts + 1, base=policy.create_retry_base, factor=2.0, cap=policy.create_retry_cap, rand=rand
    )
    return now + delay


def slow_retry_delay(policy: Policy, rand: float) -> float:
    """The cadence of a spent budget: the interval, ±20 % so many failing segments do not retry in step."""
    return policy.failed_retry_interval * (0.8 + 0.4 * rand)


def _failed(record: SegmentRecord, outcome: Outcome, **changes: Any) -> SegmentRecord:
    return dataclasses.replace(record, last_error=outcome.error, last_request_id=outcome.request_id, **changes)


def _spent(attempts: int, policy: Policy) -> bool:
    return attempts >= policy.max_attempts


def timely_state(record: SegmentRecord, now: float) -> SegmentState:
    return SegmentState.RUNNING if record.start <= now < record.end else SegmentState.SCHEDULED


# --- create -------------------------------------------------------------------------------------------------


def after_create(
    intent: SegmentRecord,
    outcome: Outcome,
    task_id: TaskId | None,
    *,
    restart: bool,
    now: float,
    policy: Policy,
    rand: float,
    learnt: bool = False,
) -> SegmentRecord:
    """The record after CreatePullToPushTask answered (``intent`` is the CREATING record written before it).

    ``learnt``: the refusal answered an open question relayd did not know the answer to (the next try differs)."""
    if outcome.kind == OutcomeKind.OK:
        assert task_id is not None
        return _created(intent, task_id, restart=restart, now=now)
    if outcome.refusal == Refusal.DESTINATION_BUSY:
        # Another task holds the destination (Q10): not a failed attempt. Retried at once when the refusal taught
        # relayd something (the next body differs), else after a backoff: the holder may end or go.
        later = now if learnt else retry_at(2, policy, now, rand)
        return _failed(intent, outcome, state=SegmentState.PENDING, next_attempt_at=later)
    if outcome.refusal == Refusal.PAST_START and learnt:
        return _failed(intent, outcome, state=SegmentState.PENDING, next_attempt_at=now)  # Q9: ahead of now next
    attempts = intent.attempts + 1
    if outcome.kind == OutcomeKind.UNKNOWN:
        state = SegmentState.CREATING  # the next pass lists the Title before it creates again
    elif _spent(attempts, policy):
        state = SegmentState.FAILED
    else:
        state = SegmentState.PENDING
    later = retry_at(attempts, policy, now, rand)
    return _failed(intent, outcome, state=state, attempts=attempts, next_attempt_at=later)


def _created(intent: SegmentRecord, task_id: TaskId, *, restart: bool, now: float) -> SegmentRecord:
    changes: dict[str, Any] = {"task_id": task_id, "state": timely_state(intent, now)}
    changes |= {"last_error": None, "last_request_id": None, "next_attempt_at": None}
    if restart:
        changes |= {"attempts": intent.attempts + 1, "failure_seen_at": None, "healthy_since": now}
    else:
        changes["attempts"] = 0
    return dataclasses.replace(intent, **changes)


def create_is_urgent(record: SegmentRecord, outcome: Outcome, *, now: float, policy: Policy) -> bool:
    """Log a failed create as an error (not a warning) when it needs a human: a plain refusal, a spent budget, or a
    hand-off less than half of ``prepare_ahead`` away. A refusal that answers an open question (relayd learns
    and tries the way that works) is not by itself a reason to call someone."""
    refused = (outcome.kind == OutcomeKind.TERMINAL and outcome.refusal is None) or record.state == SegmentState.FAILED
    return refused or record.start - now < policy.prepare_ahead / 2


# --- update, restart, delete ----------------------------------------------------------------------------------


def after_update(
    record: SegmentRecord, outcome: Outcome, *, now: float, policy: Policy, rand: float, learnt: bool = False
) -> SegmentRecord:
    """The record after a failed UpdatePullToPushTask (a successful one stores the new spec: see the executor).

    ``learnt``: the refusal answered an open question (destination, past start): the next try differs, at once."""
    if outcome.kind == OutcomeKind.NOT_FOUND:
        return _failed(record, outcome, failure_seen_at=now)  # gone: the restart path confirms and re-creates
    if outcome.refusal == Refusal.UPDATE_RUNNING:
        # Not a failure: the platform answered Q5. The decision (next segment, or replace) is the reconciler's.
        return dataclasses.replace(record, next_attempt_at=None)
    if learnt:
        return _failed(record, outcome, next_attempt_at=now)
    # Each failed update in a row counts, so the next waits twice as long (and, once the budget is spent, the slow
    # cadence): a refusal that lasts must not be retried at the base delay for ever.
    later = retry_at(record.attempts, policy, now, rand)
    return _failed(record, outcome, attempts=record.attempts + 1, next_attempt_at=later)


def attempts_after_update(record: SegmentRecord) -> int:
    """A successful update ends its own streak of failed updates; a restart streak under way keeps its count."""
    return record.attempts if record.failure_seen_at is not None else 0


def after_restart(record: SegmentRecord, outcome: Outcome, *, now: float) -> SegmentRecord:
    """The record after Continue or Relaunch. Either way it counts as an attempt, so a task that keeps refusing
    cannot loop forever; a refusal leaves the failure signal set and the next pass confirms and backs off."""
    attempts = record.attempts + 1
    if outcome.kind != OutcomeKind.OK:
        return _failed(record, outcome, attempts=attempts, next_attempt_at=None)
    return dataclasses.replace(
        record,
        state=timely_state(record, now),
        attempts=attempts,
        failure_seen_at=None,
        next_attempt_at=None,
        healthy_since=now,
        last_error=None,
        last_request_id=None,
    )


def after_delete(record: SegmentRecord, outcome: Outcome, *, now: float, policy: Policy, rand: float) -> SegmentRecord:
    """The record after DeletePullToPushTask. Gone is as good as deleted; any other failure backs off, longer each
    time up to ``create_retry_cap`` — never a hot loop, and never the slow cadence of a failed segment either: an
    ended task left on the platform keeps relaying (or holds its destination) until it is gone."""
    if outcome.kind in (OutcomeKind.OK, OutcomeKind.NOT_FOUND):
        return dataclasses.replace(record, state=SegmentState.DELETED, deleted_at=now, next_attempt_at=None)
    attempts = record.attempts + 1
    delay = backoff_delay(attempts, base=policy.create_retry_base, factor=2.0, cap=policy.create_retry_cap, rand=rand)
    return _failed(record, outcome, attempts=attempts, next_attempt_at=now + delay)
