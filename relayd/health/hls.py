"""The HLS probe: fetch the live playlist and read where it is (media sequence and last segment).

A master playlist is followed to its first variant once; the variant's URL is kept, and dropped again when
fetching it fails, so a CDN that rotates variant URLs is followed. Parsing is the ``m3u8`` library's parser
(``m3u8.parse``: the plain dict, without building the object model, which costs a fifth more per probe and tells
nothing more), in its lenient mode: strict mode also rejects a playlist whose tags do not match its declared
version, which real CDNs serve and players play. What makes a body garbage is checked here instead: no
``#EXTM3U`` header, a malformed tag value, or neither segments nor a target duration. A live playlist that lists
no segment yet is valid: it has not advanced (a relay that never starts pushing stalls; it is not "unknown").
The position marker is ``<media sequence>/<last segment URI without its query>``: a live playlist advances when
either changes (a query may carry a rotating token, which is neither an advance nor fit for a log line). A
playlist with ``#EXT-X-ENDLIST`` has ended and never advances again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
import m3u8
from yarl import URL

from relayd.health.http import ProbeFailed, classify, get, read_bounded
from relayd.health.observations import Advanced, Observation, ProbeError, ProbeErrorKind, Same

MAX_PLAYLIST_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Variant:
    """A master playlist: probe this media playlist instead."""

    url: str


@dataclass(frozen=True, slots=True)
class Position:
    """Where a media playlist is: its marker, and whether it has ended."""

    marker: str
    ended: bool


def _parse_error(message: str) -> ProbeFailed:
    return ProbeFailed(ProbeError(ProbeErrorKind.PARSE, message))


def read_playlist(text: str, url: str) -> Variant | Position:
    """A master playlist's first variant (absolute URL), or a media playlist's position; ProbeFailed(parse)."""
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise _parse_error("not an HLS playlist (no #EXTM3U header)")
    try:
        playlist = m3u8.parse(text)
    except (m3u8.ParseError, ValueError) as error:
        raise _parse_error(f"bad HLS playlist: {error}") from None
    if playlist.get("is_variant"):
        variants = playlist.get("playlists") or []
        if not variants:
            raise _parse_error("master playlist lists no variant")
        return Variant(urljoin(url, variants[0]["uri"]))
    segments = playlist.get("segments") or []
    if not segments and playlist.get("targetduration") is None:
        raise _parse_error("neither a segment nor #EXT-X-TARGETDURATION: not a media playlist")
    # a live playlist with no segment yet has not advanced; a rotating token in a segment's query is no advance
    last = segments[-1]["uri"].split("?", 1)[0] if segments else ""
    return Position(f"{playlist.get('media_sequence') or 0}/{last}", bool(playlist.get("is_endlist")))


def compare(position: Position, previous: str | None) -> Observation:
    """Advanced when the marker moved since the previous look; the first look is only a baseline."""
    if position.ended or previous is None or position.marker == previous:
        return Same(position.marker)
    return Advanced(position.marker)


@dataclass
class HlsProbe:
    """Probes one HLS URL; remembers the variant a master playlist led to."""

    url: str
    timeout: float
    variant: str | None = None
    _parsed: dict[str, URL] = field(default_factory=dict, repr=False)  # yarl parses once per URL, not per probe

    async def look(self, session: aiohttp.ClientSession, previous: str | None) -> Observation:
        try:
            async with asyncio.timeout(self.timeout):
                position = await self._position(session)
        except (ProbeFailed, TimeoutError, aiohttp.ClientError) as error:
            self.variant = None
            return classify(error, self.url)
        return compare(position, previous)

    async def _position(self, session: aiohttp.ClientSession) -> Position:
        found = await self._read(session, self.variant or self.url)
        if isinstance(found, Variant) and self.variant is None:
            self.variant = found.url
            found = await self._read(session, found.url)
        if isinstance(found, Variant):
            raise _parse_error("a variant playlist is itself a master playlist")
        return found

    async def _read(self, session: aiohttp.ClientSession, url: str) -> Variant | Position:
        if url not in self._parsed:
            self._parsed = {self.url: URL(self.url), url: URL(url)}
        async with get(session, self._parsed[url]) as response:
            body = await read_bounded(response, MAX_PLAYLIST_BYTES, "the playlist")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _parse_error("the playlist is not UTF-8 text") from None
        return read_playlist(text, url)
