"""The durable alert state: every alert's life plus the notifications still owed, as one bounded JSON document.

Why durable: after a restart relayd must not open again what it already told, and must resolve what cleared while
it was down. Both follow from resuming the state machine of :mod:`relayd.alerts.decide` where it stopped. The
*outbox* — notifications decided but not yet delivered to every target that takes them — is saved too, so a stop
between deciding and sending loses nothing; an entry leaves the outbox once each of its targets has sent it or
given up.

Where: the store's ``meta`` key-value table (``meta`` / ``set_meta``), under one key, so the store's schema is
untouched. :class:`AlertStateStore` is the seam; :class:`MetaAlertStateStore` is the implementation on any object
with ``meta``/``set_meta`` (the real ``Store`` fits). Bounded: messages are cut at ``MAX_MESSAGE_CHARS`` and the
outbox keeps its newest ``max_outbox`` entries. An unreadable document is logged and replaced by an empty state
rather than stopping the daemon: the conditions are re-derived from facts at the next evaluation anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from relayd.alerts.decide import Phase, Tracked
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition

log = structlog.get_logger("relayd.alerts")

META_KEY = "alerts.state"
VERSION = 1
MAX_MESSAGE_CHARS = 2000
MAX_OUTBOX = 1000


@dataclass(frozen=True, slots=True)
class Owed:
    """A notification some targets (by :attr:`AlertTarget.ident`) still owe."""

    notification: Notification
    targets: frozenset[str]


@dataclass(frozen=True, slots=True)
class SavedState:
    alerts: dict[str, Tracked] = field(default_factory=dict)
    outbox: tuple[Owed, ...] = ()


class MetaStore(Protocol):
    def meta(self, name: str) -> str | None: ...

    async def set_meta(self, name: str, value: str) -> None: ...


class AlertStateStore(Protocol):
    def load(self) -> SavedState: ...

    async def save(self, state: SavedState) -> None: ...


class MetaAlertStateStore:
    """The alert state in the store's ``meta`` table under :data:`META_KEY`."""

    def __init__(self, store: MetaStore, *, max_outbox: int = MAX_OUTBOX) -> None:
        self._store = store
        self._max_outbox = max_outbox

    def load(self) -> SavedState:
        text = self._store.meta(META_KEY)
        if not text:
            return SavedState()
        try:
            return decode(text)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("alert_state_unreadable", error=type(e).__name__, detail=str(e)[:200])
            return SavedState()

    async def save(self, state: SavedState) -> None:
        await self._store.set_meta(META_KEY, encode(state, max_outbox=self._max_outbox))


class MemoryAlertStateStore:
    """An in-memory AlertStateStore (``relayd alerts test`` and tests)."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.saves = 0

    def load(self) -> SavedState:
        return decode(self.text) if self.text else SavedState()

    async def save(self, state: SavedState) -> None:
        self.text = encode(state)
        self.saves += 1


# -- the document -----------------------------------------------------------------------------------------------


def encode(state: SavedState, *, max_outbox: int = MAX_OUTBOX) -> str:
    outbox = state.outbox[-max_outbox:] if max_outbox > 0 else ()
    doc = {
        "version": VERSION,
        "alerts": {key: _tracked(t) for key, t in sorted(state.alerts.items())},
        "outbox": [_owed(o) for o in outbox],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> SavedState:
    doc = json.loads(text)
    if doc.get("version") != VERSION:
        raise ValueError(f"unknown alert state version {doc.get('version')!r}")
    alerts = {str(key): _read_tracked(value) for key, value in doc["alerts"].items()}
    outbox = tuple(_read_owed(item) for item in doc["outbox"])
    return SavedState(alerts, outbox)


def _condition(c: Condition) -> dict[str, Any]:
    message = c.message if len(c.message) <= MAX_MESSAGE_CHARS else c.message[: MAX_MESSAGE_CHARS - 1] + "…"
    return {"kind": c.kind.value, "subject": c.subject, "severity": c.severity.value, "message": message,
            "links": list(c.links)}  # fmt: skip


def _read_condition(d: Mapping[str, Any]) -> Condition:
    links = tuple(str(link) for link in d.get("links", ()))
    return Condition(AlertKind(d["kind"]), str(d["subject"]), Severity(d["severity"]), str(d["message"]), links)


def _tracked(t: Tracked) -> dict[str, Any]:
    return {**_condition(t.condition), "phase": t.phase.value, "since": t.since, "opened_at": t.opened_at,
            "clear_since": t.clear_since}  # fmt: skip


def _read_tracked(d: Mapping[str, Any]) -> Tracked:
    return Tracked(
        _read_condition(d),
        Phase(d["phase"]),
        float(d["since"]),
        _float(d.get("opened_at")),
        _float(d.get("clear_since")),
    )


def _owed(o: Owed) -> dict[str, Any]:
    n = o.notification
    return {"transition": n.transition.value, "condition": _condition(n.alert.condition),
            "opened_at": n.alert.opened_at, "at": n.at, "targets": sorted(o.targets)}  # fmt: skip


def _read_owed(d: Mapping[str, Any]) -> Owed:
    alert = Alert(_read_condition(d["condition"]), float(d["opened_at"]))
    notification = Notification(Transition(d["transition"]), alert, float(d["at"]))
    return Owed(notification, frozenset(str(t) for t in d["targets"]))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
