"""The probe's report says what the daemon does: each strategy sentence checked against the engine's own calls on the
in-memory platform playing that answer (or, for callbacks, against the parser the daemon uses)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from relayd.platform.facts import CallbackSchema, PlatformFacts, RelaunchFrom
from relayd.platform.memory import MemoryQuirks
from relayd.probe.strategies import strategies
from relayd.refusals import Refusal, refusal_of
from relayd.web.notices import CallbackEvent, parse_notice
from tests.unit.test_engine import POLICY, T0, Rig
from tests.unit.test_engine_quirks import make_rig

__all__ = ["make_rig"]  # the fixture: an engine on the in-memory platform playing given quirks

CALLS = {"Relaunch": ["relaunch"], "Stop, then Continue": ["stop", "resume"]}
"""The report's words for a restart -> the in-memory platform's call names they stand for."""


def restart_words(sentence: str) -> tuple[str, str | None]:
    """The restart the sentence names for a failing 生效中 task, and the one it says follows a refusal (if any)."""
    found = re.match(r"restart: (.+?) the failing 生效中 task(?: \((.+?) from then on)?", sentence)
    assert found, sentence
    return found.group(1), found.group(2)


async def restarted(rig: Rig) -> dict[str, int]:
    """Run a segment, report it failing, let the engine restart it; the restart calls it made."""
    await rig.at(T0 - 60)
    await rig.at(T0 + 10)
    await rig.engine.note_failure(rig.record().key, rig.clock.now)
    await rig.at(rig.clock.now + 1)
    for _ in range(POLICY.max_attempts):
        if rig.record().failure_seen_at is None:
            break
        await rig.next()
    assert rig.record().failure_seen_at is None, "the restart did not happen"
    return {name: rig.platform.calls.get(name, 0) for name in ("relaunch", "stop", "resume")}


@pytest.mark.parametrize(
    ("fact", "platform"),
    [
        (RelaunchFrom.ACTIVE, "active"),
        (RelaunchFrom.ANY, "any"),
        (RelaunchFrom.DISABLED, "disabled"),
        (None, "active"),
    ],
)
async def test_the_restart_sentence_names_the_calls_the_engine_makes(
    make_rig: Any, fact: RelaunchFrom | None, platform: str
) -> None:
    facts = PlatformFacts(relaunch_from=fact)
    words, _ = restart_words(strategies(facts)["relaunch_from"])
    calls = await restarted(await make_rig(MemoryQuirks(relaunch_from=platform), facts=facts))
    assert {name for name, count in calls.items() if count} == set(CALLS[words])


async def test_an_unknown_relaunch_rule_is_learnt_as_the_sentence_says(make_rig: Any) -> None:
    """Unknown, on a platform that relaunches only from 停用: the first try is the sentence's first restart, the
    refusal teaches the daemon, and the restart that works is the one the sentence names for that case."""
    first, then = restart_words(strategies(PlatformFacts())["relaunch_from"])
    assert then is not None
    rig = await make_rig(MemoryQuirks(relaunch_from="disabled"))
    calls = await restarted(rig)
    assert calls == {"relaunch": 1, "stop": 1, "resume": 1}
    assert CALLS[first] == ["relaunch"] and CALLS[then] == ["stop", "resume"]
    assert "re-create" not in strategies(PlatformFacts())["relaunch_from"].split(";")[0]  # no such fallback exists


def starts_said(sentence: str) -> list[int]:
    """The StartTime offsets from now a past-start sentence promises, in order ("now" is 0)."""
    return [0 if now else int(ahead) for now, ahead in re.findall(r"starts (now)|(\d+) s in the future", sentence)]


@pytest.mark.parametrize(("fact", "refused"), [(True, False), (False, True), (None, True)])
async def test_the_past_start_sentence_gives_the_starttimes_the_engine_sends(
    make_rig: Any, fact: bool | None, refused: bool
) -> None:
    sentence = strategies(PlatformFacts(past_start=fact))["past_start"]
    now = T0 + 10.5  # relayd comes up after the segment's start
    rig = await make_rig(MemoryQuirks(past_start=not refused), facts=PlatformFacts(past_start=fact), start_at=now)
    await rig.at(now)
    sent = [int(body["StartTime"]) - int(now) for body in rig.platform.bodies.values()]
    tries = rig.platform.calls["create"]
    said = starts_said(sentence)
    assert said[-1:] == sent, sentence  # the StartTime that was accepted
    assert len(said) == tries, sentence  # and one before it when a refusal taught the daemon


def test_starts_said_reads_the_sentences() -> None:
    assert starts_said("a task starts now") == [0]
    assert starts_said("a task starts 3 s in the future") == [3]
    assert starts_said("a task starts now; if refused, sends it again 3 s in the future") == [0, 3]


SCHEMA_FAILURES = {
    CallbackSchema.RELAYD: {"TaskId": "t1", "EventType": "fail", "Status": "生效中"},
    CallbackSchema.ALIBABA: {"TaskId": "t1", "TaskStatus": 2, "Reason": "PullStreamFailed"},
    CallbackSchema.TENCENT: {"event_type": 314, "task_id": "t1", "callback_event": "TaskAlarm", "alarm_type": "x"},
}


@pytest.mark.parametrize("fact", [None, CallbackSchema.RELAYD, CallbackSchema.ALIBABA, CallbackSchema.TENCENT])
def test_the_callback_sentence_matches_a_parser_that_reads_every_schema(fact: CallbackSchema | None) -> None:
    sentence = strategies(PlatformFacts(callback_schema=fact))["callback_schema"]
    assert "read in every known schema" in sentence
    # The daemon's parser takes no schema: a failure in each known schema reads as one whatever the fact says.
    assert {schema: parse_notice(body).event for schema, body in SCHEMA_FAILURES.items()} == dict.fromkeys(
        SCHEMA_FAILURES, CallbackEvent.FAIL
    )
    if fact is not None:
        assert f"sends the {fact.value} one" in sentence


@pytest.mark.parametrize(
    ("code", "message", "at_once"),
    [
        ("ResourceNotFound", "", True),
        ("InvalidParameter.TaskNotExist", "", True),
        ("InvalidParam", "TaskId: task abc does not exist", False),
    ],
)
def test_the_not_found_sentence_says_how_the_daemon_reads_the_code(code: str, message: str, at_once: bool) -> None:
    sentence = strategies(PlatformFacts(not_found_codes=(code,)))["not_found_codes"]
    assert (f"{code} counts at once" in sentence) is at_once
    assert (refusal_of(code, "") is Refusal.NOT_FOUND) is at_once  # the daemon's own reading of the bare code
    assert refusal_of(code, message) is Refusal.NOT_FOUND  # with the platform's message it is not-found either way
    assert "confirmed by listing" in sentence
