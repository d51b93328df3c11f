"""Refusals that answer an open question are recognised by code and message, in the emulator's words and in
plausible variants; any other refusal is left alone (it counts as a failed attempt, as before)."""

from __future__ import annotations

import pytest

from relayd.outcomes import OutcomeKind, outcome_of
from relayd.refusals import Refusal, refusal_of
from relayd.volc.errors import api_error


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            "InvalidParam",
            "DstAddr: the destination is already used by task abc from 1 to 2; tasks pushing one destination may "
            "not overlap",
            Refusal.DESTINATION_BUSY,
        ),
        ("InvalidParam", "TaskId: task abc is 生效中 (running) and cannot be updated", Refusal.UPDATE_RUNNING),
        ("InvalidParam", "StartTime: 17 is in the past (now 20); it must not be earlier", Refusal.PAST_START),
        ("InvalidParam", "TaskId: task abc is 生效中; only 停用 tasks can be relaunched", Refusal.WRONG_STATUS),
        ("InvalidParam", "TaskId: task abc does not exist", Refusal.NOT_FOUND),
        ("InvalidParameter.TaskNotExist", "", Refusal.NOT_FOUND),
        ("ResourceNotFound", "", Refusal.NOT_FOUND),
        ("InvalidParam", "SrcAddr: must start with rtmp://", None),
        ("AccessDenied", "DstAddr already used", None),
    ],
)
def test_a_refusal_names_the_question_it_answers(code: str, message: str, expected: Refusal | None) -> None:
    assert refusal_of(code, message) == expected


def test_not_found_in_any_code_is_not_found_and_a_busy_destination_is_terminal_with_its_refusal() -> None:
    gone = outcome_of(api_error("DeletePullToPushTask", http_status=400, code="InvalidParameter.TaskNotExist"))
    assert gone.kind == OutcomeKind.NOT_FOUND
    busy = api_error("CreatePullToPushTask", http_status=400, code="InvalidParam", message="DstAddr: already used")
    assert outcome_of(busy).kind == OutcomeKind.TERMINAL and outcome_of(busy).refusal == Refusal.DESTINATION_BUSY
    unknown = api_error("CreatePullToPushTask", http_status=500, code="InternalError", message="DstAddr already used")
    assert outcome_of(unknown).refusal is None, "an answer that may hide an action answers nothing"
