"""One probe per kind of playback URL, behind one small protocol; :func:`make_probe` picks it from the URL.

Every probe bounds itself in time (the check's ``probe_timeout``) and in bytes, and returns an
:class:`~relayd.health.observations.Observation` rather than raising: the monitor never has to guess what an
exception meant.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from relayd.health.ffprobe import FfprobeProbe
from relayd.health.flv import FlvProbe
from relayd.health.hls import HlsProbe
from relayd.health.observations import Observation
from relayd.schedules.model import FFPROBE, HealthCheck, StreamKind


class Probe(Protocol):
    """Looks at a stream once. ``previous`` is the marker of the last successful look (None at first)."""

    async def look(self, session: aiohttp.ClientSession, previous: str | None) -> Observation: ...


def make_probe(check: HealthCheck, *, ffprobe: str = FFPROBE) -> Probe:
    """The probe for ``check.url``'s kind (HLS, HTTP-FLV, or ffprobe for RTMP/RTMPS/SRT)."""
    timeout = check.probe_timeout
    match check.kind:
        case StreamKind.HLS:
            return HlsProbe(check.url, timeout)
        case StreamKind.FLV:
            return FlvProbe(check.url, timeout)
        case StreamKind.FFPROBE:
            return FfprobeProbe(check.url, timeout, program=ffprobe)
