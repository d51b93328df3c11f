"""Destinations: a task's DstAddr, and the one key that says whether two tasks push the same stream.

Two DstAddrs name the same stream when host (case-insensitive, with its port) and path agree: the scheme
(rtmp/rtmps/srt...) and the query (auth tokens, which differ per task) do not make a different stream. The key is
used both by the destination-uniqueness quirk and by playback, so "the same destination" has one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


def dst_addr(fields: Mapping[str, Any]) -> str:
    """DstAddr, or ``rtmp://Domain/App/Stream`` synthesised when only those are given."""
    if fields.get("DstAddr"):
        return str(fields["DstAddr"])
    return f"rtmp://{fields.get('Domain')}/{fields.get('App')}/{fields.get('Stream')}"


def destination_key(addr: str) -> str:
    """``host[:port]/path`` of a destination URL, e.g. ``dst.example.com/live/b``."""
    parts = urlsplit(addr)
    host = parts.netloc.rpartition("@")[2].lower()  # never the credentials of an rtmp://user:pass@host URL
    return f"{host}/{parts.path.strip('/')}"
