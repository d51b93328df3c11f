"""The strategy relayd uses for each platform fact, in words for the probe's report (pure).

The daemon chooses its strategies from :class:`~relayd.platform.facts.PlatformFacts`; this module says, per fact,
what that choice is, so an operator reading ``relayd probe`` sees not only the platform's answer but what relayd
will do about it. An unknown fact gets the strategy that is correct in every plausible answer.
"""

from __future__ import annotations

from relayd.platform.facts import CallbackSchema, FailureShows, PlatformFacts, RelaunchFrom


def strategies(facts: PlatformFacts) -> dict[str, str]:
    """Fact name -> the strategy relayd uses given that fact (or given that it is unknown)."""
    return {
        "destination": _destination(facts),
        "update_running": _update_running(facts.update_running),
        "past_start": _past_start(facts.past_start),
        "relaunch_from": _relaunch(facts.relaunch_from),
        "not_found_codes": "absence is confirmed by listing; "
        + (f"{', '.join(facts.not_found_codes)} marks a likely absence" if facts.not_found_codes else "no code known"),
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
    if value is False:
        return "hot reload applies from the next segment (or replaces the task at the boundary when asked to)"
    return "hot reload tries an in-place Update and falls back to the next segment when refused"


def _past_start(value: bool | None) -> str:
    if value:
        return "a re-created task starts now"
    return "a re-created task starts a few seconds in the future"


def _relaunch(value: RelaunchFrom | None) -> str:
    if value is RelaunchFrom.DISABLED:
        return "restart: Stop, then Relaunch from 停用"
    if value in (RelaunchFrom.ACTIVE, RelaunchFrom.ANY):
        return "restart: Relaunch the 生效中 task (Continue a 停用 one)"
    return "restart: Relaunch, else Stop then Continue, else re-create"


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
    if value is None:
        return "callbacks are read in every known schema; listing and the health check back them up"
    return f"callbacks are read as the {value.value} schema; listing and the health check back them up"


def _titles(value: int | None) -> str:
    if value is not None and value < 20:
        return f"Title tags of at most {value} characters (10-character tags)"
    return "20-character Title tags" if value else "Title tags sized by the platform setting"


def _qps(value: float | None) -> str:
    if value is None:
        return "Create/Update paced at the configured rate, adapting down on throttling answers"
    return f"Create/Update paced at no more than {value:g}/s, adapting down on throttling answers"
