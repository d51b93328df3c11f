"""The removal guard as the daemon applies it: which schedules a load may drop, and which it holds back.

The decision is :func:`relayd.schedules.guard.check_removals` (pure). This module keeps the little state around it
that lives as long as the process: the ids held by the last load, and the ids the operator approved removing
(``relayd apply --allow-removals``, ``POST /v1/removals/release``). An approval covers exactly the ids held when
it was given and is used up by the next load that lets them go, so a later mass removal is weighed afresh.

Held schedules keep running in their last good version: the caller adds them back to what it runs. The hold is
reported on every load that holds (``removals_held`` log line with the ids, the limit and the fix, the gauge
``relayd_config_removals_held``), and shown in ``relayd status`` and ``/v1/schedules``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.schedules.guard import RemovalVerdict, check_removals
from relayd.schedules.model import Schedule

log = structlog.get_logger("relayd.removals")

FIX = "confirm with relayd apply --allow-removals, restore the files, or raise max_removals / max_removal_fraction"
MAX_LOGGED_IDS = 50


@dataclass(frozen=True, slots=True)
class RemovalLimits:
    """The settings ``max_removals`` and ``max_removal_fraction``."""

    max_removals: int = 3
    max_removal_fraction: float = 0.10


class RemovalHold:
    """What the last load held back, and what the operator approved removing."""

    def __init__(self, limits: RemovalLimits, metrics: Metrics) -> None:
        self._limits = limits
        self._metrics = metrics
        self._approved: frozenset[str] = frozenset()
        self.held: tuple[ScheduleId, ...] = ()

    def release(self) -> tuple[ScheduleId, ...]:
        """Approve removing exactly the schedules held now; the next load removes them. Returns those ids."""
        self._approved = frozenset(self.held)
        if self.held:
            log.warning("removals_released", schedule_ids=list(self.held[:MAX_LOGGED_IDS]), count=len(self.held))
        return self.held

    def weigh(self, applied: Mapping[ScheduleId, Schedule], loaded: Sequence[Schedule]) -> list[Schedule]:
        """The schedules to run: ``loaded``, plus the last good version of each one the guard holds back."""
        kept = {s.id for s in loaded}
        verdict = check_removals(
            applied.keys(),
            kept,
            max_removals=self._limits.max_removals,
            max_removal_fraction=self._limits.max_removal_fraction,
            approved=self._approved,
        )
        self.held = () if verdict.allowed else tuple(ScheduleId(sid) for sid in verdict.removed)
        self._metrics.config_removals_held(len(self.held))
        if verdict.allowed:
            self._approved = frozenset()
            return list(loaded)
        _report(verdict, len(applied))
        return [*loaded, *(applied[sid] for sid in self.held)]


def _report(verdict: RemovalVerdict, applied: int) -> None:
    log.error(
        "removals_held",
        schedule_ids=list(verdict.removed[:MAX_LOGGED_IDS]),
        count=len(verdict.removed),
        applied=applied,
        limit=verdict.limit,
        reason=str(verdict.reason),
        fix=FIX,
    )
