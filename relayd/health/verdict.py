"""The health verdict, pure: from a stream's last observations and ``now``, is it up, stalled, or unknown?

Like ``relayd/reconcile.py``: one entry point (:func:`judge`), a helper per state, every input passed in.

* **Paused** — the segment is not meant to be relaying (before it starts, after it ends: ``relaying_since`` is
  None), or it (re)started less than ``grace`` ago: a fresh push takes a few seconds to reach the playback URL,
  and judging it then would restart healthy hand-offs.
* **Unknown** — the last probe failed (DNS, TLS, HTTP status, parse, timeout): we could not look, which says
  nothing about the stream, so it is never a stall. Also before the first look.
* **Stalled since T** — a successful look at least ``stall_after`` after T found the stream where it was, and T
  is the latest of the end of the grace period, the last advance, or (never advanced) the first successful look:
  "no advance since T" needs a position seen at T, so a monitor started long after a segment began (a daemon
  restart) takes its first look as a baseline, not as proof of a stall. Requiring the deciding look itself to be
  that late (not just ``now``) means a late or failed probe can never turn into a stall by the clock alone.
* **Up** — otherwise. A stream that advances again is up at once; nothing else is reset here.

:func:`record` folds one observation into a :class:`Track`; errors leave the last marker alone, so the next
successful look is compared with the last successful one and an advance during a run of timeouts still counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from relayd.health.observations import Advanced, Observation, ProbeError, Same


class Health(StrEnum):
    UP = "up"
    STALLED = "stalled"
    UNKNOWN = "unknown"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Timing:
    """A check's patience: ``stall_after`` without an advance is a stall; nothing is judged for ``grace``.

    ``slack``: a stream's looks start on a fixed grid of slots (``interval`` apart) but each is timed when it
    finishes, a few milliseconds earlier or later than the one it is compared with. A look within ``slack`` of
    ``stall_after`` counts as that late; otherwise "stall_after = 3 intervals" is a coin toss between 3 and 4,
    and the stall is found a whole interval later about half the time."""

    stall_after: float
    grace: float
    slack: float = 0.0


@dataclass(frozen=True, slots=True)
class Track:
    """What is remembered of one stream between looks."""

    marker: str | None = None
    last_advance: float | None = None
    last: Observation | None = None
    last_at: float | None = None
    last_ok_at: float | None = None
    first_ok_at: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state of one stream at one instant; ``since`` is the start of a stall, ``reason`` why unknown/paused."""

    health: Health
    since: float | None = None
    reason: str | None = None


def record(track: Track, observation: Observation, at: float) -> Track:
    """``track`` after one look at instant ``at``."""
    if isinstance(observation, ProbeError):
        return replace(track, last=observation, last_at=at)
    advance = at if isinstance(observation, Advanced) else track.last_advance
    first = at if track.first_ok_at is None else track.first_ok_at
    return Track(observation.marker, advance, observation, at, at, first)


def judge(track: Track, *, relaying_since: float | None, now: float, timing: Timing) -> Verdict:
    """The verdict for one stream (see the module docstring for each state)."""
    if relaying_since is None:
        return Verdict(Health.PAUSED, reason="not relaying")
    watch_from = relaying_since + timing.grace
    if now < watch_from:
        return Verdict(Health.PAUSED, reason="grace after start")
    if track.last is None:
        return Verdict(Health.UNKNOWN, reason="not probed yet")
    if isinstance(track.last, ProbeError):
        return Verdict(Health.UNKNOWN, reason=track.last.describe())
    return _judge_look(track, watch_from, timing)


def _judge_look(track: Track, watch_from: float, timing: Timing) -> Verdict:
    """The last look succeeded: stalled if it came ``stall_after`` past the last advance (or grace) unmoved."""
    assert track.last_ok_at is not None and track.first_ok_at is not None
    seen_since = track.last_advance if track.last_advance is not None else track.first_ok_at
    baseline = max(watch_from, seen_since)
    if isinstance(track.last, Same) and track.last_ok_at - baseline >= timing.stall_after - timing.slack:
        return Verdict(Health.STALLED, since=baseline)
    if track.last_advance is None or track.last_advance < watch_from - timing.stall_after:
        return Verdict(Health.UNKNOWN, reason="waiting for the stream to advance")
    return Verdict(Health.UP)
