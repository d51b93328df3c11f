"""The HTTP side shared by the HLS and HTTP-FLV probes: one GET with a status check, and errors mapped to kinds.

aiohttp's exceptions never leave this package: each becomes a :class:`ProbeError` whose message names the host,
never the full URL (playback URLs often carry auth tokens in their query).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from relayd.health.observations import ProbeError, ProbeErrorKind
from relayd.schedules.model import shown_url


class ProbeFailed(Exception):
    """Raised inside a probe to end it with a :class:`ProbeError`."""

    def __init__(self, error: ProbeError) -> None:
        super().__init__(error.message)
        self.error = error


def classify(error: BaseException, url: str) -> ProbeError:
    """The probe error for an exception raised while fetching ``url``."""
    where = shown_url(url)
    if isinstance(error, ProbeFailed):
        return error.error
    if isinstance(error, TimeoutError):
        return ProbeError(ProbeErrorKind.TIMEOUT, f"no answer in time from {where}")
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ProbeError(ProbeErrorKind.DNS, f"cannot resolve the host of {where}")
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return ProbeError(ProbeErrorKind.TLS, f"TLS handshake with {where} failed: {type(error).__name__}")
    if isinstance(error, aiohttp.ClientConnectorError):
        return ProbeError(ProbeErrorKind.CONNECT, f"cannot connect to {where}: {error.os_error.strerror or 'refused'}")
    return ProbeError(ProbeErrorKind.CONNECT, f"{type(error).__name__} while reading {where}")


@asynccontextmanager
async def get(session: aiohttp.ClientSession, url: str | URL) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``url``; any status but 200 ends the probe as an ``http_status`` error (403/404 included)."""
    async with session.get(url, allow_redirects=True) as response:
        if response.status != 200:
            shown = shown_url(str(url))
            raise ProbeFailed(ProbeError(ProbeErrorKind.HTTP_STATUS, f"HTTP {response.status} from {shown}"))
        yield response


async def read_bounded(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The whole body, or a ``parse`` error as soon as it grows past ``limit`` bytes (or says it will)."""
    too_large = ProbeFailed(ProbeError(ProbeErrorKind.PARSE, f"{what} is larger than {limit} bytes"))
    if response.content_length is not None:
        if response.content_length > limit:
            raise too_large
        return await response.read()  # one read: the length is known and bounded
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large
    return b"".join(chunks)
