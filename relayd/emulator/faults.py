"""Injected faults: per-action errors, latency and hanging requests; dropped, duplicated and reordered callbacks.

A fault names an action (or ``*``), and optionally how many matching requests it applies to (``count``; None is
"until cleared"). An action-specific fault wins over ``*``. Draws come from the emulator's seeded
``random.Random`` so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from relayd.emulator.errors import AdminError
from relayd.volc import codes


@dataclass
class Fault:
    action: str = "*"
    error_rate: float | None = None
    error_code: str | None = None
    latency_ms: float = 0.0
    hang: bool = False
    count: int | None = None

    def __post_init__(self) -> None:
        if self.error_code is not None and codes.lookup(self.error_code) is None:
            raise AdminError(400, f"error_code {self.error_code!r} is not a platform error code")
        if self.error_rate is not None and not 0 <= self.error_rate <= 1:
            raise AdminError(400, "error_rate must be in [0, 1]")
        if self.count is not None and self.count < 0:
            raise AdminError(400, "count must be >= 0")
        if self.latency_ms < 0:
            raise AdminError(400, "latency_ms must be >= 0")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {"action", "error_rate", "error_code", "latency_ms", "hang", "count"}
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
        rate = fault.error_rate if fault.error_rate is not None else (1.0 if fault.error_code else 0.0)
        error = (fault.error_code or "InternalError") if rate > 0 and self._rng.random() < rate else None
        return Effect(latency_s=fault.latency_ms / 1000, hang=fault.hang, error_code=error)


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
