"""What a platform refusal says about the platform: the open questions (reference §9) a refusal answers.

The platform's answers to several open questions arrive as a plain ``InvalidParam`` with a message: two tasks on one
destination (Q10), an Update while 生效中 (Q5), a StartTime in the past (Q9), a Relaunch in the wrong status (Q1),
an unknown TaskId (Q1). relayd must not count such a refusal as a failed attempt: it learns the answer
(:mod:`relayd.knowledge`) and chooses the strategy that works in it. Pure: text in, a :class:`Refusal` out.

The messages of the real platform are unknown, so the match is loose (field name plus a few words, any case, Chinese
or English) and every strategy it triggers is also safe when the guess is wrong: the segment is retried, never failed.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Which open question a refusal answers."""

    DESTINATION_BUSY = "destination_busy"  # Q10: another live task pushes the same DstAddr
    UPDATE_RUNNING = "update_running"  # Q5: Update refused while the task is 生效中
    PAST_START = "past_start"  # Q9: StartTime in the past refused
    WRONG_STATUS = "wrong_status"  # Q1: the action is not allowed in the task's status (e.g. Relaunch on 生效中)
    NOT_FOUND = "not_found"  # Q1: no such task, whatever the code


NOT_FOUND_CODES = frozenset({"ResourceNotFound", "InvalidParameter.TaskNotExist", "InvalidParam.TaskNotExist"})
"""Codes that mean "no such task" on Volcengine, Tencent-like gateways and plausible variants."""

_WORDS: tuple[tuple[Refusal, tuple[str, ...], tuple[str, ...]], ...] = (
    # (refusal, a field or subject that must appear, one of these words)
    (Refusal.NOT_FOUND, ("taskid", "task"), ("does not exist", "not exist", "not found", "不存在")),
    (
        Refusal.DESTINATION_BUSY,
        ("dstaddr", "destination", "推流地址"),
        ("already", "in use", "used", "conflict", "占用"),
    ),
    (Refusal.PAST_START, ("starttime",), ("past", "earlier", "before now", "过去", "早于")),
    (Refusal.UPDATE_RUNNING, ("update", "updated"), ("生效中", "running", "active")),
    (
        Refusal.WRONG_STATUS,
        ("status", "only", "停用", "生效中"),
        ("only", "cannot", "not allowed", "invalid", "not support", "不允许", "不支持"),
    ),
)


def refusal_of(code: str, message: str) -> Refusal | None:
    """The open question a refused call answers, from its error code and message; None for any other refusal."""
    if code in NOT_FOUND_CODES or code.endswith("NotExist") or code.endswith("NotFound"):
        return Refusal.NOT_FOUND
    if not code.startswith("InvalidParam"):
        return None
    text = message.lower()
    for refusal, subjects, words in _WORDS:
        if any(s in text for s in subjects) and any(w in text for w in words):
            return refusal
    return None
