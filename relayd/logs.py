"""structlog configuration: JSON lines for journald and containers, a readable console on a TTY, secrets masked.

One processor chain serves both structlog loggers and stdlib loggers (aiohttp, apscheduler), so every line has
the same shape: ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` and the event's key/value fields.

* ``fmt="json"`` (or ``"auto"`` on a non-TTY stream): one JSON object per line; exceptions become structured
  tracebacks (``exception``: a list of {exc_type, exc_value, frames}); frame locals are never included, since
  they may hold credentials.
* ``fmt="console"`` (or ``"auto"`` on a TTY): structlog's console renderer, coloured on a TTY, with plain
  tracebacks (rendered to text before redaction, so they are masked too).

Redaction (:class:`Redactor`) runs last before rendering, on every event, nested dicts/lists included:

a. values of keys that name a secret (``secret``, ``token``, ``password``, ``authorization``, ``access_key``,
   ``sign``, ``signature``, ... — see :data:`SECRET_KEY_PARTS` and :data:`SECRET_KEYS`) become ``***``;
b. any occurrence of a configured secret string inside any string field (an error message that quotes a URL
   carrying a key, a traceback) becomes ``***``. Secrets shorter than :data:`MIN_SECRET_LENGTH` characters are
   not scanned for: they would mask ordinary words, and real keys are far longer.

Cost: one compiled regex for (b), built once at configuration; a key check per field. Loggers are not cached on
first use so that reconfiguring (tests, ``relayd demo``) always takes effect; binding is cheap.

APScheduler logs every job run at INFO, Apprise every send: their loggers are held at WARNING unless the level is
``debug``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "***"
MIN_SECRET_LENGTH = 4
SECRET_KEYS = frozenset({"access_key", "accesskey", "ak", "sk", "sign", "authorization", "auth_key"})
SECRET_KEY_PARTS = ("secret", "token", "password", "passwd", "credential", "signature")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_QUIET_LOGGERS = ("apscheduler", "apprise")

_handler: logging.Handler | None = None
_debug = False


def debug_enabled() -> bool:
    """Whether debug lines are written. Hot paths check this first: with ``cache_logger_on_first_use`` off (so a
    reconfiguration reaches every module's logger), each ``log.debug`` binds a fresh logger just to drop the line."""
    return _debug


@functools.lru_cache(maxsize=4096)  # field names are few; every log line checks each of its keys
def is_secret_key(key: str) -> bool:
    """True when a field named ``key`` holds a secret (case-insensitive)."""
    lowered = key.lower().replace("-", "_")
    return lowered in SECRET_KEYS or any(part in lowered for part in SECRET_KEY_PARTS)


class Redactor:
    """A structlog processor masking secret-named keys and known secret strings anywhere in an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        usable = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, usable))) if usable else None

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            event_dict[key] = self._value(key, value)
        return event_dict

    def _value(self, key: str, value: Any) -> Any:
        if key != "event" and is_secret_key(key) and value is not None:
            return MASK
        return self.scrub(value)

    def scrub(self, value: Any) -> Any:
        """``value`` with secret strings masked, recursing into dicts, lists and tuples."""
        if isinstance(value, str):
            return self._pattern.sub(MASK, value) if self._pattern is not None else value
        if isinstance(value, dict):
            return {k: self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        if self._pattern is not None and isinstance(value, BaseException | bytes):
            return self.scrub(repr(value))
        return value


def configure_logging(level: str, fmt: str, stream: TextIO = sys.stderr, secrets: Iterable[str] = ()) -> None:
    """Set up structlog and stdlib logging to write ``fmt`` ("auto" | "json" | "console") lines to ``stream``."""
    global _debug  # noqa: PLW0603 - the configured level, read on hot paths (see debug_enabled)
    numeric = LEVELS[level.lower()]
    _debug = numeric <= logging.DEBUG
    as_json = fmt == "json" or (fmt == "auto" and not _isatty(stream))
    shared = _shared_processors()
    final = _final_processors(as_json, Redactor(secrets), colors=_isatty(stream))
    structlog.configure(
        processors=[*shared, *final],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(numeric, stream, shared, final)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _final_processors(as_json: bool, redactor: Redactor, *, colors: bool) -> list[Processor]:
    if as_json:
        tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        renderer: Processor = structlog.processors.JSONRenderer(serializer=_json_line)
        return [structlog.processors.StackInfoRenderer(), tracebacks, redactor, _leading_fields, renderer]
    console = structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
    return [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info, redactor, console]


_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _json_line(event_dict: EventDict, **_: Any) -> str:
    """``json.dumps(event_dict, ensure_ascii=False, default=str)`` with one shared encoder (``json.dumps`` with
    options builds a new encoder per line: ~30 % of a line's rendering)."""
    return _LINE_ENCODER.encode(event_dict)


def _leading_fields(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # timestamp, level and event first: the order a person scanning journal output reads them in.
    head = {key: event_dict.pop(key) for key in ("timestamp", "level", "event") if key in event_dict}
    return {**head, **event_dict}


def _route_stdlib(numeric: int, stream: TextIO, shared: list[Processor], final: list[Processor]) -> None:
    global _handler  # noqa: PLW0603 - the one handler this module installs, replaced on reconfiguration
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric)
    _handler = handler
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):
        return False
