"""The strategy relayd uses for each platform fact, in words for the probe's report (pure).

The daemon chooses its strategies from :class:`~relayd.platform.facts.PlatformFacts`; this module says, per fact,
what that choice is, so an operator reading ``relayd probe`` sees not only the platform's answer but what relayd
will do about it. An unknown fact gets the strategy that is correct in every plausible answer.
"""

from __future__ import annotations

from dataclasses import replace

from relayd.platform.facts import CallbackSchema, FailureShows, PlatformFacts, RelaunchFrom
from relayd.reconcile import PAST_START_LEAD_S, ActionKind, relaunch_kind
from relayd.refusals import Refusal, refusal_of
from relayd.schedules.titles import TitleLength
from relayd.tightening import tag_length


def strategies(facts: PlatformFacts) -> dict[str, str]:
    """Fact name -> the strategy relayd uses given that fact (or given that it is unknown)."""
    return {
        "destination": _destination(facts),
        "update_running": _update_running(facts.update_running),
        "past_start": _past_start(facts.past_start),
        "relaunch_from": _relaunch(facts),
        "not_found_codes": _not_found(facts.not_found_codes),
        "failure_shows": _failure(facts.failure_shows),
        "callback_schema": _callbacks(facts.callback_schema),
        "list_time_utc": "list times are read with the offset they carry (Z or +08:00), whichever is sent",
        "title_limit": _titles(facts.title_limit),
        "create_update_qps": _qps(facts.create_update_qps),
    }


def _destination(facts: PlatformFacts) -> str:
    if facts.destination_exclusive is False:
        return "hand-off: the next task is created ahead and overlaps nothing it must not (gap 0 s)"
    if facts.destination_exclusive and facts.destination_touching_ok:
        return "hand-off: the next task's window starts exactly when the running one ends (gap 0 s)"
    if facts.destination_exclusive:
        return "hand-off: windows may not even touch; the next task starts just after the running one ends"
    return "hand-off: learnt from the first refusal of an overlapping Create (never by failing the segment)"


def _update_running(value: bool | None) -> str:
    if value:
        return "hot reload updates the running task in place"
    at_once = "or, with running_change = replace, replaces the task at once (a short gap)"
    if value is False:
        return f"hot reload applies a change to a running task from the next segment, {at_once}"
    refused = "when it is refused, the change applies from the next segment"
    return f"hot reload tries an in-place Update; {refused}, {at_once}"


def _past_start(value: bool | None) -> str:
    """What :func:`relayd.reconcile.create_body` does with the fact (``past_start_refused``)."""
    late = "a task created after its start (relayd was down, or a re-create)"
    ahead = f"{PAST_START_LEAD_S} s in the future"
    if value:
        return f"{late} starts now"
    if value is False:
        return f"{late} starts {ahead}"
    return f"{late} starts now; if that StartTime is refused as past, relayd learns it and sends it again {ahead}"


RESTART_CALLS = {ActionKind.RELAUNCH: "Relaunch", ActionKind.STOP_CONTINUE: "Stop, then Continue"}
"""The platform call(s) of each restart action the daemon's decision (:func:`relayd.reconcile.relaunch_kind`) picks
for a failing 生效中 task (what ``Executor._restart_call`` sends)."""


def _relaunch(facts: PlatformFacts) -> str:
    calls = RESTART_CALLS[relaunch_kind(facts)]
    rest = "a 停用 task is Continued and a vanished one re-created; a refused restart counts against the restart budget"
    if facts.relaunch_from is None:
        learn = RESTART_CALLS[relaunch_kind(replace(facts, relaunch_from=RelaunchFrom.DISABLED))]
        learnt = f"{learn} from then on if it is refused for the task's status"
        return f"restart: {calls} the failing 生效中 task ({learnt}); {rest}"
    return f"restart: {calls} the failing 生效中 task; {rest}"


def _not_found(codes: tuple[str, ...]) -> str:
    """How :func:`relayd.refusals.refusal_of` reads each code the platform answered for an unknown TaskId."""
    listing = "any other answer is confirmed by listing the Title, so no Delete is retried forever"
    if not codes:
        return f"not found: ResourceNotFound, …NotExist or …NotFound codes count at once; {listing}"
    at_once = [code for code in codes if refusal_of(code, "") is Refusal.NOT_FOUND]
    by_message = [code for code in codes if code not in at_once]
    said = [f"{', '.join(at_once)} counts at once"] if at_once else []
    said += [f"{', '.join(by_message)} counts when its message says the task does not exist"] if by_message else []
    return f"not found: {'; '.join(said)}; {listing}"


def _failure(value: FailureShows | None) -> str:
    if value is FailureShows.DISABLE:
        return "restart: a failing relay turns 停用, seen by its callback and by listing, and is restarted"
    if value is FailureShows.STAY_CALLBACK:
        return (
            "restart: a failing relay stays 生效中, so listing cannot see it; its failure callback triggers the "
            "restart, and the stream health check backs it up"
        )
    if value is FailureShows.STAY_SILENT:
        return (
            "restart: a failing relay stays 生效中 and sends nothing — only the stream health check can see it, so "
            "it is needed on every schedule"
        )
    return "restart: on a failure callback in any schema, on 停用 in the listing, or on the stream health check"


def _callbacks(value: CallbackSchema | None) -> str:
    if value is CallbackSchema.NONE:
        return "no relay callbacks: failures are found by listing and by the stream health check"
    sends = "" if value is None else f" (this platform sends the {value.value} one)"
    return f"callbacks are read in every known schema{sends}; listing and the health check back them up"


def _titles(value: int | None) -> str:
    """The tag length :func:`relayd.tightening.tag_length` gives (the daemon tightens ``title_limit`` to it)."""
    if value is None:
        return "Title tags sized by the title_limit setting"
    length = tag_length(value)
    tightened = ", tightening title_limit when the daemon reads this file" if length < TitleLength.FULL else ""
    return f"Title tags of {int(length)} characters (the platform allows {value}){tightened}"


def _qps(value: float | None) -> str:
    if value is None:
        return "Create/Update paced at the configured create_update_qps, adapting down on throttling answers"
    return (
        f"Create/Update paced at no more than {value:g}/s (a faster create_update_qps is lowered to it when the "
        "daemon reads this file), adapting down on throttling answers"
    )
