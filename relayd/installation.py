"""Two installations with one namespace on one account: detected through a marker on the platform, and made safe.

A segment's Title is a hash of its key and the ``namespace``: two relayd installations on one account with the same
namespace and a schedule id in common plan the same Titles, and each adopts, updates and deletes the other's tasks
(relays up 40–60 % of the time, duplicate deletions, no warning). Separate state directories cannot see each other,
so the platform itself carries a marker: a task group named from the namespace (:func:`marker_name`) whose tags
say which installation holds the namespace and when it last said so (``installation``, ``seen``, ``every``). It
uses only group calls relayd already makes (list, create, update) and never touches another group.

Each resync (and the first pass, and every reload) :meth:`Installation.check` lists the groups and :func:`judge`
(pure) decides: no marker, or a stale one (not refreshed for three of its holder's resync intervals) → claim it;
our own → refresh it; another installation's fresh marker → **conflict**. In conflict relayd writes no task at all
(every Title it plans may be the other's), logs ``installation_conflict`` naming the fix (a distinct
``namespace``), and shows the conflict in ``relayd status``, ``/v1/schedules`` (``conflicts``) and ``/readyz``
(503). It never overwrites a fresh marker of another installation, so the two never flap: the holder keeps its
namespace, and the other waits — taking over only once the holder has been silent long enough to be gone.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog

from relayd.platform import Platform
from relayd.store import SharedStore
from relayd.volc.errors import LiveError
from relayd.volc.models import GroupItem

log = structlog.get_logger("relayd.installation")

META_KEY = "installation_id"
MARKER_PROJECT = "default"
STALE_AFTER_INTERVALS = 3
STALE_SLACK_S = 5.0


class Verdict(StrEnum):
    CLAIM = "claim"  # no marker, or a stale one: write ours
    REFRESH = "refresh"  # ours: bring ``seen`` up to date
    CONFLICT = "conflict"  # another installation holds the namespace and is alive


@dataclass(frozen=True, slots=True)
class Holder:
    """What a marker says: who holds the namespace, when it last said so, and how often it says it."""

    installation: str
    seen: float
    every: float


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    other: Holder | None = None


def marker_name(namespace: str) -> str:
    """``rdns`` + 16 base32 characters of the namespace's hash: a valid group name (letters and digits, ≤ 20)."""
    digest = hashlib.sha256(f"relayd-installation:{namespace}".encode()).digest()
    return "rdns" + base64.b32encode(digest).decode().rstrip("=").lower()[:16]


def holder_of(item: GroupItem) -> Holder | None:
    """The marker's holder, or None when its tags are not a readable marker (treated as absent)."""
    tags = {t.key: t.value for t in item.tags}
    try:
        return Holder(tags["installation"], float(tags["seen"]), float(tags.get("every", "300")))
    except (KeyError, ValueError):
        return None


def judge(marker: Holder | None, me: str, now: float) -> Judgement:
    """Claim, refresh, or conflict (pure). A marker is stale after three of its holder's resync intervals."""
    if marker is None:
        return Judgement(Verdict.CLAIM)
    if marker.installation == me:
        return Judgement(Verdict.REFRESH)
    if now - marker.seen > STALE_AFTER_INTERVALS * marker.every + STALE_SLACK_S:
        return Judgement(Verdict.CLAIM, marker)
    return Judgement(Verdict.CONFLICT, marker)


async def installation_id(store: SharedStore) -> str:
    """This installation's id, made once and kept in the store's meta table."""
    stored = store.meta(META_KEY)
    if stored is None:
        stored = secrets.token_hex(8)
        await store.set_meta(META_KEY, stored)
    return str(stored)


class Installation:
    """The marker check and the conflict it may find; ``conflicts()`` is what status and readiness show."""

    def __init__(
        self, *, platform: Platform, me: str, namespace: str, every: float, clock: Callable[[], float]
    ) -> None:
        self._platform = platform
        self.me = me
        self.namespace = namespace
        self._every = every
        self._clock = clock
        self.name = marker_name(namespace)
        self.conflict: Holder | None = None

    def writes_held(self) -> bool:
        """True while another live installation holds this namespace: relayd then writes no task."""
        return self.conflict is not None

    def conflicts(self) -> Sequence[str]:
        other = self.conflict
        if other is None:
            return []
        return [
            f"namespace {self.namespace!r} is in use by another relayd installation ({other.installation}) on this "
            f"account, seen {int(self._clock() - other.seen)} s ago; this one ({self.me}) changes no task until "
            "that one stops — give each installation a distinct `namespace`"
        ]

    async def check(self) -> bool:
        """List the groups, then claim, refresh, or record a conflict. False (logged) if the platform failed."""
        now = self._clock()
        try:
            marker = next((g for g in await self._platform.list_groups() if g.name == self.name), None)
            judgement = judge(holder_of(marker) if marker else None, self.me, now)
            if judgement.verdict != Verdict.CONFLICT:
                await self._write(marker is not None, now)
        except LiveError as error:
            log.warning("installation_check_failed", marker=self.name, error=str(error))
            return False
        self._settle(judgement)
        return True

    async def _write(self, exists: bool, now: float) -> None:
        tags = {"installation": self.me, "seen": str(int(now)), "every": str(int(self._every))}
        if exists:
            await self._platform.update_group(self.name, tags)
        else:
            await self._platform.create_group(self.name, MARKER_PROJECT, tags)

    def _settle(self, judgement: Judgement) -> None:
        other = judgement.other
        if judgement.verdict == Verdict.CONFLICT and other is not None:
            if self.conflict is None or self.conflict.installation != other.installation:
                log.error(
                    "installation_conflict",
                    namespace=self.namespace,
                    other=other.installation,
                    installation=self.me,
                    fix="give each installation a distinct `namespace`; until then this one changes no task",
                )
            self.conflict = other
            return
        if self.conflict is not None:
            log.info("installation_conflict_resolved", namespace=self.namespace, installation=self.me)
        elif other is not None:
            log.warning("installation_marker_taken_over", namespace=self.namespace, stale=other.installation)
        self.conflict = None
