"""What the platform's answers to the probe's trials mean: one pure function per open question.

The probe (``relayd probe``) tries each open question (reference section 9) against a real account and records
every answer as an :class:`Attempt`. This module turns those records into facts
(:class:`~relayd.platform.facts.PlatformFacts` fields) with the evidence an operator can check, and does no I/O:
the calls live in :mod:`relayd.probe.session` and :mod:`relayd.probe.steps`. Keeping the reading separate means
each interpretation is a unit-testable function of the answers, and a surprising answer yields "unknown" with its
evidence rather than a wrong fact.

A refusal only counts as an answer when it is a readable business refusal (a 4xx error code: the platform surely
did nothing); a timeout or a 5xx proves nothing and leaves the fact unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relayd.platform.facts import CallbackSchema, FailureShows, RelaunchFrom
from relayd.web.notices import CallbackEvent, parse_notice


@dataclass(frozen=True, slots=True)
class Attempt:
    """One probing call and the platform's answer."""

    what: str
    """What was tried, for the operator (e.g. "Create overlapping the first task on the sink")."""
    accepted: bool
    code: str = ""
    """The error code when refused ("" when accepted)."""
    message: str = ""
    request_id: str = ""
    http_status: int = 200
    conclusive: bool = True
    """False when the answer proves nothing (timeout, 5xx, unreadable): the fact stays unknown."""
    detail: str = ""
    """Extra evidence, e.g. the TaskId a Create returned."""

    @property
    def refused(self) -> bool:
        return not self.accepted and self.conclusive

    def evidence(self) -> str:
        if self.accepted:
            extra = f" ({self.detail})" if self.detail else ""
            return f"{self.what}: accepted{extra}"
        verdict = "refused" if self.conclusive else "inconclusive"
        request = f" [request_id={self.request_id}]" if self.request_id else ""
        message = f" {self.message!r}" if self.message else ""
        return f"{self.what}: {verdict} {self.code} (HTTP {self.http_status}){message}{request}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A fact's value (None = unknown) and the evidence behind it."""

    value: Any
    evidence: str


def _joined(*attempts: Attempt | None) -> str:
    return "; ".join(a.evidence() for a in attempts if a is not None)


def _yes_no(attempt: Attempt) -> bool | None:
    """Accepted → True, a readable refusal → False, anything else → unknown."""
    if attempt.accepted:
        return True
    return False if attempt.refused else None


def destination(overlap: Attempt, touching: Attempt | None) -> tuple[Answer, Answer]:
    """Q10: (destination_exclusive, destination_touching_ok).

    Why two trials: an overlapping Create tells whether one destination may be pushed by two tasks at once; only
    when it may not, a Create whose window merely touches the first one tells whether a hand-off at the exact
    boundary is possible (it is meaningless, and left unknown, when the destination is shared).
    """
    accepted = _yes_no(overlap)
    exclusive = None if accepted is None else not accepted
    touching_ok = _yes_no(touching) if exclusive and touching is not None else None
    return Answer(exclusive, _joined(overlap)), Answer(touching_ok, _joined(touching) if exclusive else "")


def update_running(attempt: Attempt) -> Answer:
    """Q5: is UpdatePullToPushTask accepted while the task is 生效中?"""
    return Answer(_yes_no(attempt), attempt.evidence())


def past_start(attempt: Attempt) -> Answer:
    """Q9: is a Create with a StartTime minutes in the past accepted?"""
    return Answer(_yes_no(attempt), attempt.evidence())


def relaunch_from(from_active: Attempt, from_disabled: Attempt | None) -> Answer:
    """Q1: the statuses Relaunch accepts, from a Relaunch on 生效中 and one on 停用 (after a Stop).

    Unknown when either answer is inconclusive, or when neither status is accepted (then Relaunch is not a way to
    restart at all, which no known platform does: report it rather than guess).
    """
    evidence = _joined(from_active, from_disabled)
    if from_disabled is None:
        return Answer(None, evidence)
    active, disabled = _yes_no(from_active), _yes_no(from_disabled)
    table = {
        (True, True): RelaunchFrom.ANY,
        (True, False): RelaunchFrom.ACTIVE,
        (False, True): RelaunchFrom.DISABLED,
    }
    return Answer(table.get((active, disabled)) if active is not None and disabled is not None else None, evidence)


def not_found_codes(attempts: Sequence[Attempt]) -> Answer:
    """Q1: the codes the platform answers for an unknown TaskId (each distinct code once, in the order seen).

    An accepted action on a random TaskId is evidence of something odd, not of a code: it contributes nothing.
    """
    codes: list[str] = []
    for attempt in attempts:
        if attempt.refused and attempt.code not in codes:
            codes.append(attempt.code)
    return Answer(tuple(codes), _joined(*attempts))


def list_time_utc(raw_times: Sequence[str]) -> Answer:
    """Q6: list times end in ``Z`` (True) or in ``+08:00`` (False); anything else or nothing: unknown."""
    shown = ", ".join(repr(t) for t in raw_times[:4])
    evidence = f"list StartTime/EndTime values: {shown}" if raw_times else "no listed time to read"
    kinds = {_time_kind(t) for t in raw_times}
    return Answer(kinds.pop() if len(kinds) == 1 else None, evidence)


def _time_kind(text: str) -> bool | None:
    value = text.strip()
    if value.endswith(("Z", "z", "+00:00")):
        return True
    if value.endswith("+08:00"):
        return False
    return None


def title_limit(shortest_ok: int, trials: Mapping[int, Attempt]) -> Answer:
    """The Title length limit: the longest accepted length among the trials, if the next longer one was refused.

    ``shortest_ok`` is the length every probe Title has (known to be accepted). The trials are Creates with longer
    Titles (up to 20, the documented Volcengine limit): the limit is the longest accepted length when every longer
    trial was refused; an inconclusive trial or a gap (an accepted length above a refused one) leaves it unknown.
    """
    ordered = sorted(trials.items())
    evidence = _joined(*(a for _, a in ordered))
    longest = max([shortest_ok] + [n for n, a in ordered if a.accepted])
    longer = [a for n, a in ordered if n > longest]
    if any(not a.conclusive for _, a in ordered) or any(a.accepted for a in longer):
        return Answer(None, evidence)
    return Answer(longest, evidence)


def next_title_trial(shortest_ok: int, longest: int, trials: Mapping[int, Attempt]) -> int | None:
    """The next Title length to try (a binary search between the known-good and the known-bad), or None when done.

    Why a search: the platform documents 20 (Volcengine) and 10 (BytePlus) but another limit is possible; trying
    the longest first answers the common case in one Create, and a refusal costs at most four more.
    """
    good = max([shortest_ok] + [n for n, a in trials.items() if a.accepted])
    bad = min([n for n, a in trials.items() if a.refused] or [longest + 1])
    if any(not a.conclusive for a in trials.values()):
        return None
    if longest not in trials:
        return longest
    return None if bad - good <= 1 else (good + bad) // 2


JITTER_EVIDENCE = 3
"""Sends at the throttled pace (with slack) that must pass before one throttle there is read as arrival jitter."""


def create_update_qps(
    pace_qps: float, throttled_fast: int, throttled_slow: int, slow_qps: float, sent_slow: int = 0
) -> Answer:
    """The Create/Update rate the account may use, read from throttling answers only (the probe never bursts).

    The probe sends Create/Update at ``pace_qps``, the daemon's own pace (the lower of ``write_qps`` and
    ``create_update_qps``). No throttling answer: the account allows at least that. Throttled at that pace but not
    once slowed to ``slow_qps`` (BytePlus documents 1/s): the limit is ``slow_qps``. Throttled already at a pace of
    ``slow_qps`` or below: the probe goes on at that pace with slack on every slot; if ``sent_slow`` (at least
    :data:`JITTER_EVIDENCE`) more sends pass, the throttle was arrival jitter (two sends a slot apart arriving closer,
    as on a loaded network) and the limit is the pace; else it is unknown, lower than that (relayd then adapts down).
    """
    sent = f"Create/Update at {pace_qps:g}/s"
    if throttled_fast == 0:
        return Answer(pace_qps, f"no throttling answer to {sent}")
    if pace_qps <= slow_qps:
        if throttled_slow == 0 and sent_slow >= JITTER_EVIDENCE:
            return Answer(
                pace_qps,
                f"{throttled_fast} throttling answer(s) to {sent}, then none in {sent_slow} sends at that pace with "
                "slack on each slot: arrival jitter, not a lower limit",
            )
        return Answer(None, f"{throttled_fast} throttling answer(s) to {sent}: the limit is lower")
    if throttled_slow == 0:
        return Answer(slow_qps, f"{throttled_fast} throttling answer(s) to {sent}; none at {slow_qps:g}/s")
    return Answer(None, f"throttled at {pace_qps:g}/s and still {throttled_slow} time(s) at {slow_qps:g}/s")


ACTIVE = "生效中"
DISABLED = "停用"


def failure_shows(
    statuses: Sequence[str], bodies: Sequence[Mapping[str, Any]], receiving: bool, watched: str
) -> Answer:
    """§4 / Q1: how a relay whose source cannot be pulled shows, from the statuses its task was listed in (in order)
    and the callback bodies about it that arrived while it was watched.

    停用 at any point: ``disable``. Stayed 生效中 with a failure-looking callback (in any schema): ``stay-callback``.
    Stayed 生效中 with none: ``stay-silent`` — but only when the receiver was reachable (``receiving``); otherwise
    silence proves nothing and the fact stays unknown. Never listed 生效中 (or gone): unknown, with what was seen.
    """
    seen = " -> ".join(statuses) or "never listed"
    failing = [body for body in bodies if parse_notice(body).event is CallbackEvent.FAIL]
    shown = "; ".join(_compact(body) for body in failing[:2])
    evidence = f"{watched}: listed {seen}; {len(failing)} failure callback(s){': ' + shown if shown else ''}"
    if DISABLED in statuses:
        return Answer(FailureShows.DISABLE, evidence)
    if not statuses or statuses[-1] != ACTIVE:
        return Answer(None, evidence)
    if failing:
        return Answer(FailureShows.STAY_CALLBACK, evidence)
    if not receiving:
        return Answer(None, f"{evidence}; no CallbackURL the platform can reach, so silence proves nothing")
    return Answer(FailureShows.STAY_SILENT, evidence)


def about_task(body: Mapping[str, Any], task_id: str, title: str) -> bool:
    """Whether a callback body is about the task ``task_id`` (by its TaskId in any schema, else by its Title)."""
    found = parse_notice(body).task_id
    if found is not None:
        return found == task_id
    return title in (str(value) for value in body.values())


def callback_schema(bodies: Sequence[Mapping[str, Any]], receiving: bool, waited_s: float) -> Answer:
    """Q11: the callback payload schema, from the bodies the platform POSTed during the probe.

    ``receiving`` is False when the probe could not offer a reachable CallbackURL: then nothing can be said.
    Reachable and nothing arrived while a task started, relaunched, stopped and was deleted: the platform sends
    no relay callbacks (``none``). Bodies of an unknown shape leave the schema unknown, with the bodies as evidence.
    """
    if not receiving:
        return Answer(None, "no CallbackURL the platform can reach: set public_url (and listen) to capture callbacks")
    if not bodies:
        return Answer(CallbackSchema.NONE, f"no callback arrived within {waited_s:g} s of start/relaunch/stop/delete")
    kinds = {schema_of(body) for body in bodies}
    shown = "; ".join(_compact(body) for body in bodies[:4])
    value = kinds.pop() if len(kinds) == 1 else None
    return Answer(value, f"{len(bodies)} callback(s): {shown}")


def schema_of(body: Mapping[str, Any]) -> CallbackSchema | None:
    """The schema one callback body is in, by the keys only that schema has; None if none matches."""
    if "callback_event" in body or "event_type" in body:
        return CallbackSchema.TENCENT
    if "EventType" in body or isinstance(body.get("Status"), str):
        return CallbackSchema.RELAYD
    if "TaskName" in body or ("TaskStatus" in body and "TaskId" in body):
        return CallbackSchema.ALIBABA
    return None


_SECRET_KEYS = frozenset({"sign", "t"})


def unsigned(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body without its sign/t pair (a signature made with the operator's callback auth key), for showing."""
    return {k: v for k, v in body.items() if k not in _SECRET_KEYS}


def _compact(body: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in unsigned(body).items())
