"""The durable alert state: every alert's life plus the notifications still owed, as two bounded JSON documents.

Why durable: after a restart relayd must not open again what it already told, and must resolve what cleared while
it was down. Both follow from resuming the state machine of :mod:`relayd.alerts.decide` where it stopped. The
*outbox* — notifications decided but not yet delivered to every target that takes them — is saved too, so a stop
between deciding and sending loses nothing; an entry leaves the outbox once each of its targets has sent it or
given up.

Where: the store's ``meta`` key-value table (``meta`` / ``set_meta``), so the store's schema is untouched: the
alerts under :data:`META_KEY`, the outbox under :data:`OUTBOX_KEY`. Two documents, each written only when its text
changed: a delivery settling changes the outbox alone, and must not rewrite every open alert's message (with 200
alerts open and a target that keeps failing, that rewrite was ~170 KB per settled delivery, and the callbacks'
commits waited behind it). An outbox entry names its alert by key and carries the condition itself only when it
differs from the alert's (a resolution, or wording that changed since). Older installations kept both in
:data:`META_KEY`; they are read as before.

:class:`AlertStateStore` is the seam; :class:`MetaAlertStateStore` is the implementation on any object with
``meta``/``set_meta`` (the real ``Store`` fits). Bounded: messages are cut at ``MAX_MESSAGE_CHARS`` and the outbox
keeps its newest ``max_outbox`` entries. An unreadable document is logged and replaced by an empty state rather
than stopping the daemon: the conditions are re-derived from facts at the next evaluation anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import structlog

from relayd.alerts.decide import Phase, Tracked
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition

log = structlog.get_logger("relayd.alerts")

META_KEY = "alerts.state"
OUTBOX_KEY = "alerts.outbox"
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
    """The alert state in the store's ``meta`` table under :data:`META_KEY` and :data:`OUTBOX_KEY`."""

    def __init__(self, store: MetaStore, *, max_outbox: int = MAX_OUTBOX) -> None:
        self._store = store
        self._max_outbox = max_outbox
        self._written: dict[str, str] = {}
        """The text each key holds (as read or last written): a save writes only the documents that changed."""

    def load(self) -> SavedState:
        docs = {key: self._store.meta(key) for key in (META_KEY, OUTBOX_KEY)}
        self._written = {key: text for key, text in docs.items() if text}
        try:
            return decode(docs)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("alert_state_unreadable", error=type(e).__name__, detail=str(e)[:200])
            return SavedState()

    async def save(self, state: SavedState) -> None:
        for key, text in encode(state, max_outbox=self._max_outbox).items():
            if self._written.get(key) == text:
                continue
            self._written.pop(key, None)  # unknown until this write commits
            await self._store.set_meta(key, text)
            self._written[key] = text


class MemoryAlertStateStore:
    """An in-memory AlertStateStore (``relayd alerts test`` and tests)."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}
        self.saves = 0

    def load(self) -> SavedState:
        return decode(self.docs)

    async def save(self, state: SavedState) -> None:
        self.docs = encode(state)
        self.saves += 1


# -- the document -----------------------------------------------------------------------------------------------


def encode(state: SavedState, *, max_outbox: int = MAX_OUTBOX) -> dict[str, str]:
    """The documents to store, by meta key."""
    outbox = state.outbox[-max_outbox:] if max_outbox > 0 else ()
    alerts = {"version": VERSION, "alerts": {key: _tracked(t) for key, t in sorted(state.alerts.items())}}
    owed = {"version": VERSION, "outbox": [_owed(o, state.alerts) for o in outbox]}
    return {META_KEY: _dumps(alerts), OUTBOX_KEY: _dumps(owed)}


def decode(docs: Mapping[str, str | None]) -> SavedState:
    """The state from the documents by meta key (absent or empty: nothing saved yet)."""
    text = docs.get(META_KEY)
    if not text:
        return SavedState()
    doc = _load(text)
    alerts = {str(key): _read_tracked(value) for key, value in doc["alerts"].items()}
    outbox_text = docs.get(OUTBOX_KEY)
    items = _load(outbox_text)["outbox"] if outbox_text else doc.get("outbox", [])  # older: both in one document
    outbox = tuple(o for o in (_read_owed(item, alerts) for item in items) if o is not None)
    return SavedState(alerts, outbox)


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _load(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    if doc.get("version") != VERSION:
        raise ValueError(f"unknown alert state version {doc.get('version')!r}")
    return cast(dict[str, Any], doc)


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


def _owed(o: Owed, alerts: Mapping[str, Tracked]) -> dict[str, Any]:
    n = o.notification
    entry: dict[str, Any] = {"transition": n.transition.value, "key": n.alert.key, "opened_at": n.alert.opened_at,
                             "at": n.at, "targets": sorted(o.targets)}  # fmt: skip
    tracked = alerts.get(n.alert.key)
    if tracked is None or tracked.condition != n.alert.condition:
        entry["condition"] = _condition(n.alert.condition)
    return entry


def _read_owed(d: Mapping[str, Any], alerts: Mapping[str, Tracked]) -> Owed | None:
    if "condition" in d:
        condition = _read_condition(d["condition"])
    else:
        tracked = alerts.get(str(d["key"]))
        if tracked is None:  # the outbox was written, its alerts' document not: that notification cannot be rebuilt
            log.warning("alert_outbox_entry_dropped", alert=str(d["key"]), transition=str(d["transition"]))
            return None
        condition = tracked.condition
    alert = Alert(condition, float(d["opened_at"]))
    notification = Notification(Transition(d["transition"]), alert, float(d["at"]))
    return Owed(notification, frozenset(str(t) for t in d["targets"]))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
