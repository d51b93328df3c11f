"""Injected faults: per-action errors, latency and hanging requests; dropped, duplicated and reordered callbacks.

A fault names an action (or ``*``), and optionally how many matching requests it applies to (``count``; None is
"until cleared"). An action-specific fault wins over ``*``. Draws come from the emulator's seeded
``random.Random`` so a run is reproducible.

A fault with ``acted`` set lets the request through — the platform carries the action out — and then answers
badly, as a gateway or a timed-out backend does: ``answer`` says how (:class:`Answer`). These are the answers a
client cannot tell from "nothing happened", so they are what tests of duplicate-free creation need.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relayd.emulator.errors import AdminError
from relayd.volc import codes


class Answer(StrEnum):
    """How a request that was carried out (``acted``) is answered."""

    ERROR = "error"  # the platform error envelope with the fault's error_code (default InternalError, HTTP 500)
    HTML = "html"  # HTTP 502 with an HTML body, as a load balancer answers when its backend drops the connection
    MALFORMED = "malformed"  # HTTP 200 whose body is {"ResponseMetadata": null}


@dataclass
class Fault:
    action: str = "*"
    error_rate: float | None = None
    error_code: str | None = None
    latency_ms: float = 0.0
    hang: bool = False
    count: int | None = None
    acted: bool = False
    answer: str = Answer.ERROR.value

    def __post_init__(self) -> None:
        if self.error_code is not None and codes.lookup(self.error_code) is None:
            raise AdminError(400, f"error_code {self.error_code!r} is not a platform error code")
        if self.error_rate is not None and not 0 <= self.error_rate <= 1:
            raise AdminError(400, "error_rate must be in [0, 1]")
        if self.count is not None and self.count < 0:
            raise AdminError(400, "count must be >= 0")
        if self.latency_ms < 0:
            raise AdminError(400, "latency_ms must be >= 0")
        if self.answer not in set(Answer):
            raise AdminError(400, f"answer {self.answer!r} is not one of {[a.value for a in Answer]}")
        if self.acted and self.hang:
            raise AdminError(400, "acted and hang exclude each other: a hung request is never carried out")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {"action", "error_rate", "error_code", "latency_ms", "hang", "count", "acted", "answer"}
        unknown = set(data) - known
        if unknown:
            raise AdminError(400, f"unknown fault fields: {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise AdminError(400, str(e)) from e


@dataclass(frozen=True, slots=True)
class Effect:
    """What a fault does to one request."""

    latency_s: float = 0.0
    hang: bool = False
    error_code: str | None = None
    acted: Answer | None = None
    """Carry the request out, then answer this way (``error_code`` names the error of :attr:`Answer.ERROR`)."""


class ActedAnswer(Exception):
    """Raised after an ``acted`` fault's action was carried out: answer the caller with ``answer``."""

    def __init__(self, answer: Answer, error_code: str) -> None:
        self.answer = answer
        self.error_code = error_code
        super().__init__(f"{answer.value}: {error_code}")


class FaultBook:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: dict[str, Fault] = {}

    def set(self, fault: Fault) -> None:
        self._faults[fault.action] = fault

    def clear(self) -> None:
        self._faults.clear()

    def listing(self) -> list[dict[str, Any]]:
        return [vars(f).copy() for f in self._faults.values()]

    def effect(self, action: str) -> Effect | None:
        """The effect on one request of ``action``, consuming one use of the fault's count."""
        fault = self._faults.get(action) or self._faults.get("*")
        if fault is None or fault.count == 0:
            return None
        if fault.count is not None:
            fault.count -= 1
        rate = fault.error_rate if fault.error_rate is not None else (1.0 if fault.error_code or fault.acted else 0.0)
        hit = rate > 0 and self._rng.random() < rate
        error = (fault.error_code or "InternalError") if hit else None
        acted = Answer(fault.answer) if hit and fault.acted else None
        return Effect(latency_s=fault.latency_ms / 1000, hang=fault.hang, error_code=error, acted=acted)


@dataclass
class CallbackFaults:
    """``drop_rate`` / ``duplicate_rate`` per event; with ``reorder`` every other event is held ``delay_ms``."""

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder: bool = False
    delay_ms: float = 500.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallbackFaults:
        unknown = set(data) - {"drop_rate", "duplicate_rate", "reorder", "delay_ms"}
        if unknown:
            raise AdminError(400, f"unknown callback fault fields: {sorted(unknown)}")
        try:
            faults = cls(**data)
        except TypeError as e:
            raise AdminError(400, str(e)) from e
        if not (0 <= faults.drop_rate <= 1 and 0 <= faults.duplicate_rate <= 1 and faults.delay_ms >= 0):
            raise AdminError(400, "drop_rate and duplicate_rate must be in [0, 1], delay_ms >= 0")
        return faults
