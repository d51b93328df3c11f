"""Condition extraction: the facts the daemon already has → the conditions that are true now.

Pure: :func:`conditions` takes an :class:`AlertFacts` snapshot, ``now`` and a :class:`ConditionPolicy` and returns
a list of :class:`~relayd.alerts.model.Condition`. The daemon fills the snapshot from its store, its API observer,
its config loader and its stream checker; nothing here reaches for them itself, so every rule is tested with plain
values.

Each rule names its reason in the message and the fix, because the message is what wakes someone at 03:00:

* ``segment_failing`` — inside its window, a segment is ``failed``, is ``retrying`` with its budget spent, or has no
  task yet and its last create failed;
* ``handoff_at_risk`` — a segment starts within ``prepare_ahead / 2`` and its task is not confirmed (no task id,
  or still pending/creating): half the safety margin is gone;
* ``stream_down`` — the stream check sees a stall that ``stream_restarts`` restarts have not cured;
* ``credentials_rejected`` — the latest platform call failed with a signature, access-key or permission code;
* ``platform_unreachable`` — no successful platform call for ``platform_unreachable_after`` (counted from start-up
  when there was none yet);
* ``config_problem`` — one per schedule file with problems (the last good version is kept), plus one while the
  removal guard holds removals back;
* ``installation_conflict`` — another installation uses this namespace on the account.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from relayd.alerts.model import AlertKind, Condition, Severity
from relayd.ids import ScheduleId
from relayd.store.records import SegmentRecord, SegmentState

INSTALLATION = "installation"
"""The subject of alerts about relayd as a whole rather than one schedule."""
REMOVAL_GUARD = "removal-guard"
MAX_LISTED = 5
"""Items named in one message before it says "and N more"."""

CREDENTIAL_CODES = frozenset(
    {
        "MissingAuthenticationToken",
        "MissingSignature",
        "InvalidAccessKey",
        "SignatureDoesNotMatch",
        "LackPolicy",
        "AccessDenied",
        "InvalidCredential",
        "InvalidSecretToken",
        "RequestForbidden.AccountIDNotAllow",
    }
)
"""Platform error codes that mean "your keys or their permissions are wrong" (relayd/volc/codes.py)."""

_UNCONFIRMED = frozenset({SegmentState.PENDING, SegmentState.CREATING})


@dataclass(frozen=True, slots=True)
class StreamStall:
    """A stall the stream check sees on one schedule's playback URL."""

    stalled_since: float
    restarts_tried: int


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """Everything the alert rules look at, as the daemon knows it at one instant."""

    segments: Sequence[SegmentRecord] = ()
    """The store's segments (deleted ones may be included; they are ignored)."""
    started_at: float = 0.0
    """When the daemon started (unix seconds)."""
    last_platform_success: float | None = None
    """``ApiObserver.last_ok``."""
    platform_error: str | None = None
    """``ApiObserver.last_error``: the code of the latest call if it failed, else None."""
    config_problems: Sequence[str] = ()
    """Problems of the last config load, each ``file:line: field: reason``."""
    held_removals: Sequence[ScheduleId] = ()
    """Schedules whose removal the removal guard holds back."""
    installation_conflict: str | None = None
    """What shows that another installation uses this namespace, or None."""
    streams: Mapping[ScheduleId, StreamStall] = field(default_factory=dict)
    """Schedules whose stream is stalled now."""


@dataclass(frozen=True, slots=True)
class ConditionPolicy:
    prepare_ahead: float = 3600.0
    restart_max_attempts: int = 8
    platform_unreachable_after: float = 600.0
    stream_restarts: int = 1
    """Restarts that must have been tried on a stalled stream before it is alerted."""
    console_url: str | None = None
    """Base URL of the console, for links; None = link to ``relayd status`` only."""


def conditions(facts: AlertFacts, now: float, policy: ConditionPolicy) -> list[Condition]:
    """Every condition true at ``now``; see the module docstring for the rules."""
    found: list[Condition] = []
    for segment in facts.segments:
        found.extend(_segment_conditions(segment, now, policy))
    found.extend(_platform_conditions(facts, now, policy))
    found.extend(_config_conditions(facts, policy))
    found.extend(_stream_conditions(facts, now, policy))
    if facts.installation_conflict:
        found.append(_installation_conflict(facts.installation_conflict))
    return found


# -- segments ---------------------------------------------------------------------------------------------------


def _segment_conditions(seg: SegmentRecord, now: float, policy: ConditionPolicy) -> list[Condition]:
    if seg.deleted_at is not None or seg.state in (SegmentState.DELETED, SegmentState.REMOVING):
        return []
    reason = _failing_reason(seg, now, policy)
    if reason is not None:
        return [_segment_failing(seg, reason, policy)]
    if _handoff_at_risk(seg, now, policy):
        return [_handoff_condition(seg, now, policy)]
    return []


def _failing_reason(seg: SegmentRecord, now: float, policy: ConditionPolicy) -> str | None:
    if not seg.start <= now < seg.end:
        return None
    if seg.state is SegmentState.FAILED:
        return f"its restart budget is spent ({seg.attempts} attempts)"
    if seg.state is SegmentState.RETRYING and seg.attempts >= policy.restart_max_attempts:
        return f"it is still failing after {seg.attempts} restart attempts"
    if seg.state in _UNCONFIRMED and seg.last_error:
        return "its window is open and its task cannot be created"
    return None


def _segment_failing(seg: SegmentRecord, reason: str, policy: ConditionPolicy) -> Condition:
    message = (
        f"Schedule {seg.schedule_id}, segment {seg.index}, is not relaying: {reason}{_last_error(seg)}. "
        f"Check the source and destination and the error above; editing the schedule gives it a fresh budget."
    )
    return Condition(AlertKind.SEGMENT_FAILING, seg.key, Severity.CRITICAL, message, _links(seg.schedule_id, policy))


def _handoff_at_risk(seg: SegmentRecord, now: float, policy: ConditionPolicy) -> bool:
    if policy.prepare_ahead <= 0 or not now < seg.start <= now + policy.prepare_ahead / 2:
        return False
    return seg.task_id is None or seg.state in _UNCONFIRMED


def _handoff_condition(seg: SegmentRecord, now: float, policy: ConditionPolicy) -> Condition:
    minutes = max(1, round((seg.start - now) / 60))
    message = (
        f"Schedule {seg.schedule_id}, segment {seg.index}, starts in about {minutes} min and its task is not "
        f"confirmed on the platform{_last_error(seg)}. Act before the hand-off: check the error, the credentials "
        f"and the platform quota."
    )
    return Condition(AlertKind.HANDOFF_AT_RISK, seg.key, Severity.WARNING, message, _links(seg.schedule_id, policy))


def _last_error(seg: SegmentRecord) -> str:
    if not seg.last_error:
        return ""
    request = f" [request_id={seg.last_request_id}]" if seg.last_request_id else ""
    return f"; last error: {seg.last_error}{request}"


def _links(schedule_id: ScheduleId, policy: ConditionPolicy) -> tuple[str, ...]:
    status = f"relayd status {schedule_id}"
    if policy.console_url is None:
        return (status,)
    return (status, policy.console_url)


# -- platform ---------------------------------------------------------------------------------------------------


def _platform_conditions(facts: AlertFacts, now: float, policy: ConditionPolicy) -> list[Condition]:
    found: list[Condition] = []
    if facts.platform_error in CREDENTIAL_CODES:
        message = (
            f"The platform rejects relayd's credentials ({facts.platform_error}). Check access_key/secret_key "
            f"(`relayd config show` says where each came from) and the account's Live policies."
        )
        found.append(Condition(AlertKind.CREDENTIALS_REJECTED, INSTALLATION, Severity.CRITICAL, message))
    since = facts.last_platform_success if facts.last_platform_success is not None else facts.started_at
    if now - since >= policy.platform_unreachable_after:
        found.append(_unreachable(facts, now - since))
    return found


def _unreachable(facts: AlertFacts, silent_s: float) -> Condition:
    never = " since start-up" if facts.last_platform_success is None else ""
    error = f" (last error: {facts.platform_error})" if facts.platform_error else ""
    message = (
        f"No successful platform API call for {int(silent_s // 60)} min{never}{error}. Relays keep running on "
        f"the platform, but nothing is created or restarted: check the network, the endpoint setting and the "
        f"platform's status."
    )
    return Condition(AlertKind.PLATFORM_UNREACHABLE, INSTALLATION, Severity.CRITICAL, message)


# -- config -----------------------------------------------------------------------------------------------------


def _config_conditions(facts: AlertFacts, policy: ConditionPolicy) -> list[Condition]:
    found = [_config_file(subject, problems) for subject, problems in _problems_by_file(facts.config_problems)]
    if facts.held_removals:
        found.append(_held_removals(facts.held_removals))
    return found


def _problems_by_file(problems: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Group problems by the file they name (the text before the first ``:``), so one file is one alert."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        head, sep, _ = problem.partition(":")
        by_file[head.strip() if sep and head.strip() else "config"].append(problem)
    return sorted(by_file.items())


def _config_file(subject: str, problems: list[str]) -> Condition:
    listed = "; ".join(problems[:MAX_LISTED]) + (
        f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    )
    message = (
        f"Schedule file {subject} has problems, so its last good version is kept: {listed}. "
        f"Fix the file (`relayd validate` shows every problem)."
    )
    return Condition(AlertKind.CONFIG_PROBLEM, subject, Severity.WARNING, message)


def _held_removals(held: Sequence[ScheduleId]) -> Condition:
    names = ", ".join(sorted(held)[:MAX_LISTED]) + (
        f" and {len(held) - MAX_LISTED} more" if len(held) > MAX_LISTED else ""
    )
    message = (
        f"The removal guard holds back the removal of {len(held)} schedule(s) ({names}): their tasks keep running. "
        f"Restore the files if the removal was a mistake, or confirm it."
    )
    return Condition(AlertKind.CONFIG_PROBLEM, REMOVAL_GUARD, Severity.WARNING, message)


# -- streams and installation -----------------------------------------------------------------------------------


def _stream_conditions(facts: AlertFacts, now: float, policy: ConditionPolicy) -> list[Condition]:
    found: list[Condition] = []
    for schedule_id, stall in sorted(facts.streams.items()):
        if stall.restarts_tried < policy.stream_restarts:
            continue
        minutes = int(max(0.0, now - stall.stalled_since) // 60)
        message = (
            f"The stream of schedule {schedule_id} has been stalled for {minutes} min and "
            f"{stall.restarts_tried} restart(s) did not cure it. Check the source and the destination's ingest."
        )
        found.append(
            Condition(AlertKind.STREAM_DOWN, schedule_id, Severity.CRITICAL, message, _links(schedule_id, policy))
        )
    return found


def _installation_conflict(evidence: str) -> Condition:
    message = (
        f"Another installation uses this namespace on the account ({evidence}). Two relayd installations "
        f"sharing a namespace claim each other's tasks: give each its own namespace setting."
    )
    return Condition(AlertKind.INSTALLATION_CONFLICT, INSTALLATION, Severity.CRITICAL, message)
