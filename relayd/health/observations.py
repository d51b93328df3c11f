"""What one probe saw: the stream advanced, stayed the same, or the probe itself failed (and why).

A probe error is never evidence about the stream: DNS, TLS, an HTTP error status on the playback URL, a body that
does not parse or a probe that ran out of time all say "we could not look", so the verdict reads them as unknown.
The kinds are a ``StrEnum`` so metrics labels and status texts are a closed set.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProbeErrorKind(StrEnum):
    """Why a probe could not look at the stream."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    PARSE = "parse"
    TIMEOUT = "timeout"
    PROGRAM = "program"


@dataclass(frozen=True, slots=True)
class Advanced:
    """The stream moved on since the previous look (``marker`` says where it is now)."""

    marker: str


@dataclass(frozen=True, slots=True)
class Same:
    """The stream was reachable and had not moved on (or had ended) since the previous look."""

    marker: str


@dataclass(frozen=True, slots=True)
class ProbeError:
    """The probe could not look; never a sign of a stall."""

    kind: ProbeErrorKind
    message: str

    def describe(self) -> str:
        return f"probe error {self.kind.value}: {self.message}"


Observation = Advanced | Same | ProbeError
