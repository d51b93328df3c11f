"""The HTTP-FLV probe: are bytes still arriving? Read a bounded amount, then close.

A live FLV response never ends, so the probe reads at most ``max_bytes`` past the 13-byte FLV header, or for at
most ``flow_window`` after the first media bytes (a low-bitrate stream), and closes the connection. The stream
has advanced when media bytes arrive and keep the response open; it is the same (stalled) when the response ends
or stays silent after the header until the probe's time runs out.
A body that does not start with the FLV signature is a parse error. The counting lives in :class:`FlvReader`,
pure, so its bounds are tested without a socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from relayd.health.http import ProbeFailed, classify, get
from relayd.health.observations import Advanced, Observation, ProbeError, ProbeErrorKind, Same

FLV_HEADER_SIZE = 13
"""The 9-byte FLV header and the first PreviousTagSize (always 0): everything before the first tag."""
FLV_SIGNATURE = b"FLV"
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_FLOW_WINDOW = 1.0
"""Seconds to keep reading once media bytes arrive, so a low-bitrate stream does not hold a probe for its whole
time limit."""


@dataclass
class FlvReader:
    """Counts an FLV body's bytes up to a bound; checks the signature once the header is complete."""

    max_bytes: int
    header: bytes = b""
    media_bytes: int = field(default=0)

    @property
    def full(self) -> bool:
        return self.media_bytes >= self.max_bytes

    def wanted(self) -> int:
        """How many more bytes to read at most."""
        return FLV_HEADER_SIZE - len(self.header) + self.max_bytes - self.media_bytes

    def feed(self, chunk: bytes) -> None:
        """Take (at most ``wanted()`` bytes of) ``chunk``; ProbeFailed(parse) if the header is not FLV's."""
        chunk = chunk[: self.wanted()]
        need = FLV_HEADER_SIZE - len(self.header)
        if need > 0:
            self.header += chunk[:need]
            chunk = chunk[need:]
            if not FLV_SIGNATURE.startswith(self.header[: len(FLV_SIGNATURE)]):
                raise ProbeFailed(ProbeError(ProbeErrorKind.PARSE, "not an FLV stream (no FLV signature)"))
        self.media_bytes += len(chunk)


@dataclass
class FlvProbe:
    """Probes one HTTP-FLV URL."""

    url: str
    timeout: float
    max_bytes: int = DEFAULT_MAX_BYTES
    flow_window: float = DEFAULT_FLOW_WINDOW

    async def look(self, session: aiohttp.ClientSession, previous: str | None) -> Observation:
        """``previous`` is unused: an FLV response is judged on its own, by whether bytes keep arriving."""
        reader = FlvReader(self.max_bytes)
        answered = ended = False
        try:
            async with asyncio.timeout(self.timeout) as limit, get(session, self.url) as response:
                answered = True
                ended = await self._read(response, reader, limit)
        except TimeoutError as error:
            if not answered:
                return classify(error, self.url)
        except (ProbeFailed, aiohttp.ClientError) as error:
            return classify(error, self.url)
        return _judge(reader, ended=ended)

    async def _read(self, response: aiohttp.ClientResponse, reader: FlvReader, limit: asyncio.Timeout) -> bool:
        """Read until ``max_bytes``, the end (True), or ``flow_window`` after the first media bytes."""
        while not reader.full:
            chunk = await response.content.read(reader.wanted())
            if not chunk:
                return True
            flowing = reader.media_bytes > 0
            reader.feed(chunk)
            if not flowing and reader.media_bytes > 0:  # a low-bitrate stream: enough to know it flows
                deadline = asyncio.get_running_loop().time() + self.flow_window
                limit.reschedule(min(limit.when() or deadline, deadline))
        return False


def _judge(reader: FlvReader, *, ended: bool) -> Observation:
    """Advanced while media bytes flow; the same when the response ended or stayed silent after the header."""
    if ended:
        return Same(f"ended after {reader.media_bytes} media bytes")
    if reader.media_bytes == 0:
        return Same("silent")
    return Advanced(f"{reader.media_bytes} media bytes")
