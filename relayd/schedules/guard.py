"""The removal guard: may a reload remove the schedules it no longer finds? Domain layer: pure, no I/O.

Why it exists: an empty or half-copied schedules directory looks exactly like an operator deleting schedules
on purpose, and acting on it deletes running relays. A forgotten volume mount, an ``mv`` of the directory or a
deploy that copies files one by one must cost nothing that runs. So a reload that would remove more schedules
than a small limit is *held*: nothing is removed until the operator confirms it (or raises the limit).

The limit is the larger of ``max_removals`` (a count) and ``max_removal_fraction`` of the schedules applied
now (rounded down), so removing one schedule on purpose stays a one-step edit and a large installation may
retire a proportionate batch. Every schedule of several vanishing at once is held whatever the limit: that
is the signature of a lost directory, not of an edit. Removals the operator approved do not count, and with
nothing applied there is nothing to remove (an empty directory on first start is fine).

The caller decides what "applied" and "kept" are: a file with problems keeps its previous good version, so
its schedules count as kept; only ids that would really disappear are weighed here.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum


class HoldReason(StrEnum):
    """Why removals were held."""

    TOO_MANY = "too_many"  # more than the limit
    EVERYTHING = "everything"  # every schedule of several


@dataclass(frozen=True, slots=True)
class RemovalVerdict:
    """The guard's answer: whether to remove, what would be removed (sorted), the limit that applied, why held."""

    allowed: bool
    removed: tuple[str, ...]
    limit: int
    reason: HoldReason | None = None


def removal_limit(applied: int, *, max_removals: int, max_removal_fraction: float) -> int:
    """How many schedules one reload may remove: the larger of the count and the fraction of ``applied``."""
    return max(max_removals, math.floor(max_removal_fraction * applied))


def check_removals(
    applied: Collection[str],
    kept: Collection[str],
    *,
    max_removals: int,
    max_removal_fraction: float,
    approved: Collection[str] = (),
) -> RemovalVerdict:
    """Weigh the removals of a reload: ``applied`` ids now, ``kept`` ids the new load keeps, ``approved`` ids the
    operator confirmed removing (``relayd apply --allow-removals``)."""
    removed = tuple(sorted(set(applied).difference(kept)))
    limit = removal_limit(len(applied), max_removals=max_removals, max_removal_fraction=max_removal_fraction)
    unapproved = set(removed).difference(approved)
    if len(unapproved) > limit:
        return RemovalVerdict(False, removed, limit, HoldReason.TOO_MANY)
    if len(unapproved) == len(applied) > 1:
        return RemovalVerdict(False, removed, limit, HoldReason.EVERYTHING)
    return RemovalVerdict(True, removed, limit)
