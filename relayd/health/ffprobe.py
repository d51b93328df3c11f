"""The RTMP/RTMPS/SRT probe: ``ffprobe`` as a child process reads a few packets, with a time limit.

``ffprobe -show_entries packet=pts_time -read_intervals %+#N`` prints one timestamp per packet it reads from the
start of the stream and exits. Packets read and a clean exit mean the stream flows (advanced; the marker is the
last timestamp). A clean exit with no packet, or packets that stop before ffprobe finishes, mean it does not
(the same). A child that overruns the probe's time limit is killed (SIGKILL, then reaped) and, if it read
nothing, reported as a timeout: a hung connect and a silent stream look alike from outside, and a probe error is
never taken for a stall. ffprobe's error text quotes the URL, so messages are shown with the URL shortened.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from relayd.health.observations import Advanced, Observation, ProbeError, ProbeErrorKind, Same
from relayd.schedules.model import FFPROBE, shown_url

DEFAULT_PACKETS = 8
MAX_OUTPUT_BYTES = 64 * 1024
MAX_PACKET_LINES = 1000
_STDERR_KINDS = (
    (("resolv", "name or service not known", "nodename nor servname"), ProbeErrorKind.DNS),
    (("tls", "ssl", "certificate", "handshake"), ProbeErrorKind.TLS),
    (("403", "404", "forbidden", "not found", "unauthorized"), ProbeErrorKind.HTTP_STATUS),
    (("connection refused", "network is unreachable", "no route to host"), ProbeErrorKind.CONNECT),
    (("timed out", "timeout"), ProbeErrorKind.TIMEOUT),
    (("invalid data", "could not find codec"), ProbeErrorKind.PARSE),
)


@dataclass(frozen=True, slots=True)
class Run:
    """What the child printed, and how it ended (``returncode`` None: it overran and was killed)."""

    returncode: int | None
    packets: list[str]
    stderr: str


def command(program: str, url: str, packets: int) -> list[str]:
    return [
        program,
        "-v", "error",
        "-show_entries", "packet=pts_time",
        "-read_intervals", f"%+#{packets}",
        "-of", "csv=p=0",
        url,
    ]  # fmt: skip


def error_kind(stderr: str) -> ProbeErrorKind:
    """The probe error kind that ffprobe's error text points to; ``program`` when nothing matches."""
    lowered = stderr.lower()
    for needles, kind in _STDERR_KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return ProbeErrorKind.PROGRAM


def judge(run: Run, url: str, timeout: float) -> Observation:
    """The observation from one finished (or killed) ffprobe run."""
    if run.returncode is None:
        if run.packets:
            return Same(f"stopped after {len(run.packets)} packets")
        return ProbeError(ProbeErrorKind.TIMEOUT, f"{FFPROBE} read nothing in {timeout:g} s and was killed")
    if run.returncode != 0:
        text = run.stderr.replace(url, shown_url(url)).strip().splitlines()
        last = text[-1] if text else f"exit status {run.returncode}"
        return ProbeError(error_kind(last), f"{FFPROBE}: {last[:200]}")
    if not run.packets:
        return Same("no packets")
    return Advanced(run.packets[-1])


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Everything up to EOF (so the child never blocks on a full pipe), keeping the last ``cap`` bytes."""
    kept = b""
    while chunk := await stream.read(cap):
        kept = (kept + chunk)[-cap:]
    return kept


async def run_child(argv: list[str], limit: float) -> Run:
    """Run ``argv``; kill and reap it if it has not finished within ``limit`` s. FileNotFoundError if missing."""
    child = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    packets: list[str] = []

    async def read_packets() -> None:
        assert child.stdout is not None
        while line := await child.stdout.readline():
            if (text := line.decode(errors="replace").strip().rstrip(",")) and len(packets) < MAX_PACKET_LINES:
                packets.append(text)

    try:
        async with asyncio.timeout(limit):
            _, stderr = await asyncio.gather(read_packets(), _read_capped(child.stderr, MAX_OUTPUT_BYTES))
            returncode = await child.wait()
    except TimeoutError:
        child.kill()
        await child.wait()
        return Run(None, packets, "")
    except BaseException:
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    return Run(returncode, packets, stderr.decode(errors="replace"))


@dataclass
class FfprobeProbe:
    """Probes one RTMP/RTMPS/SRT URL with ffprobe."""

    url: str
    timeout: float
    program: str = FFPROBE
    packets: int = DEFAULT_PACKETS

    async def look(self, session: aiohttp.ClientSession, previous: str | None) -> Observation:
        """``session`` and ``previous`` are unused: ffprobe makes its own connection and judges packets read."""
        try:
            run = await run_child(command(self.program, self.url, self.packets), self.timeout)
        except FileNotFoundError:
            return ProbeError(ProbeErrorKind.PROGRAM, f"{self.program} is not installed (not on PATH)")
        except OSError as error:
            return ProbeError(ProbeErrorKind.PROGRAM, f"cannot start {self.program}: {error.strerror or error}")
        return judge(run, self.url, self.timeout)
