"""What relayd knows about the platform's answers to the open questions (reference §9), and where it learnt them.

Each fact is ``None`` while unknown: relayd then uses a strategy that is correct in every plausible answer, or learns
the answer from the platform's own refusal. ``relayd probe`` determines the facts against a real account and writes
them to a JSON file; the daemon reads it (setting ``platform_facts``) and stops guessing. A fact learnt at run time
from a refusal is recorded the same way, with ``source = "learnt"``.

The file format is one JSON object: ``{"version": 1, "facts": {name: value, ...}, "evidence": {name: text}}``;
unknown names are ignored with a warning (a newer probe), a value of the wrong type is an error naming the fact.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class RelaunchFrom(StrEnum):
    """Q1: the statuses RelaunchPullToPushTask accepts."""

    ACTIVE = "active"  # 生效中 only
    DISABLED = "disabled"  # 停用 only (the only text we have says so)
    ANY = "any"


class FailureShows(StrEnum):
    """§4 / Q1: how a failing relay shows in the task list and callbacks."""

    DISABLE = "disable"  # turns 停用, with a failure callback
    STAY_CALLBACK = "stay-callback"  # stays 生效中, with a failure callback
    STAY_SILENT = "stay-silent"  # stays 生效中, no callback: only the receiving side can tell


class CallbackSchema(StrEnum):
    """Q11: the relay callback's payload."""

    RELAYD = "relayd"  # the first guess: TaskId + Status/Event words
    ALIBABA = "alibaba"  # TaskStatus 0/1/2/3/-1 (+ Reason): 2 is "abnormal, recovering"
    TENCENT = "tencent"  # event_type 314, callback_event TaskStart/TaskExit/TaskAlarm
    NONE = "none"  # no relay callbacks at all


@dataclass(frozen=True, slots=True)
class PlatformFacts:
    destination_exclusive: bool | None = None
    """Q10: a Create/Update whose window overlaps another live task on the same DstAddr is refused."""
    destination_touching_ok: bool | None = None
    """Q10: when exclusive, windows that only touch (end == start) are still accepted."""
    update_running: bool | None = None
    """Q5: UpdatePullToPushTask is accepted while the task is 生效中."""
    past_start: bool | None = None
    """Q9: a StartTime in the past is accepted."""
    relaunch_from: RelaunchFrom | None = None
    not_found_codes: tuple[str, ...] = ()
    """Q1: error codes the platform answers for an unknown or expired TaskId."""
    failure_shows: FailureShows | None = None
    callback_schema: CallbackSchema | None = None
    title_limit: int | None = None
    """Title length limit (Volcengine 20, BytePlus 10)."""
    create_update_qps: float | None = None
    """Create/Update requests per second the account may make (BytePlus documents 1)."""
    list_time_utc: bool | None = None
    """Q6: list results give times with ``Z`` (else ``+08:00``)."""
    evidence: dict[str, str] = field(default_factory=dict, compare=False)
    """Per fact: how it was learnt (request ids, error codes, captured bodies), for the operator."""
    source: str = field(default="assumed", compare=False)
    """"assumed" (nothing known), "probe" (read from a probe file), or "learnt" (a refusal taught it)."""

    def known(self) -> dict[str, Any]:
        """The facts that are known, as JSON values."""
        return {k: _plain(v) for k, v in _fact_items(self) if v is not None and v != ()}

    def with_fact(self, name: str, value: Any, evidence: str) -> PlatformFacts:
        """This set with one fact learnt at run time."""
        return dataclasses.replace(self, **{name: value}, evidence={**self.evidence, name: evidence}, source="learnt")


class FactsError(ValueError):
    """A facts file that cannot be used; the message names the file, the fact and the fix."""


def _fact_items(facts: PlatformFacts) -> list[tuple[str, Any]]:
    return [(f.name, getattr(facts, f.name)) for f in dataclasses.fields(facts) if f.name not in ("evidence", "source")]


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


_TYPES: dict[str, Any] = {
    "destination_exclusive": bool,
    "destination_touching_ok": bool,
    "update_running": bool,
    "past_start": bool,
    "relaunch_from": RelaunchFrom,
    "not_found_codes": tuple,
    "failure_shows": FailureShows,
    "callback_schema": CallbackSchema,
    "title_limit": int,
    "create_update_qps": float,
    "list_time_utc": bool,
}


def _convert(path: Path, name: str, value: Any) -> Any:
    kind = _TYPES[name]
    try:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if isinstance(kind, type) and issubclass(kind, StrEnum) and isinstance(value, str):
            return kind(value)
    except ValueError:
        pass
    raise FactsError(f"{path}: facts.{name}: {value!r} is not a valid value — run `relayd probe --write {path}` again")


def facts_from_json(doc: Any, path: Path) -> tuple[PlatformFacts, list[str]]:
    """The facts in a parsed file, and the names it had that this version does not know (to warn about)."""
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION or not isinstance(doc.get("facts"), dict):
        raise FactsError(
            f"{path}: not a relayd platform facts file (version {FORMAT_VERSION}) — write it with relayd probe"
        )
    values = {k: _convert(path, k, v) for k, v in doc["facts"].items() if k in _TYPES and v is not None}
    unknown = sorted(k for k in doc["facts"] if k not in _TYPES)
    evidence = {str(k): str(v) for k, v in (doc.get("evidence") or {}).items()}
    return PlatformFacts(**values, evidence=evidence, source="probe"), unknown


def load_facts(path: Path) -> tuple[PlatformFacts, list[str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FactsError(f"{path}: cannot read ({error.strerror or error}) — check platform_facts") from None
    except ValueError as error:
        raise FactsError(f"{path}: not JSON ({error}) — write it with relayd probe") from None
    return facts_from_json(doc, path)


def facts_to_json(facts: PlatformFacts) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "facts": facts.known(), "evidence": dict(facts.evidence)}
