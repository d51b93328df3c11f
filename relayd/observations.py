"""What relayd has seen of the platform's tasks: the latest listing of owned tasks, by Title.

Tasks are indexed by their Title's short tag, and a Title asked for gets every task carrying the same segment at
either tag length (:func:`relayd.schedules.titles.same_segment`): a record written with a 20-character tag finds its
task after the installation switched to 10-character tags, and the other way round.

A full resync replaces it (pages of 500); a confirmation re-lists one Title; every action the executor performs
updates it at once, so a reconcile pass right after an action sees its effect without waiting for the next listing.
Foreign tasks (not carrying a relayd Title tag) are kept aside, only to report those that push to one of relayd's
destinations. The calls themselves go through the ``relayd.platform.Platform`` seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator

import structlog

from relayd.cooperative import Slicer
from relayd.ids import TaskId
from relayd.platform import ListedTask, ObservedTask, Platform, status_at
from relayd.reconcile import PlatformView
from relayd.schedules.titles import is_relayd_title, lookup_title, same_segment
from relayd.volc.models import TaskStatus

log = structlog.get_logger("relayd.observations")


def shown_status(task: ObservedTask, now: float) -> TaskStatus:
    """The status the platform shows at ``now`` for a task seen earlier: an enabled task's follows its window."""
    if task.status in (TaskStatus.PENDING, TaskStatus.ACTIVE, TaskStatus.ENDED):
        return status_at(task.start, task.end, now)
    return task.status


class Observations:
    """The latest view of owned tasks, by Title; foreign tasks kept aside for reporting."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_title: dict[str, dict[TaskId, ObservedTask]] = {}  # by lookup_title(task title)
        self.foreign: list[ListedTask] = []
        self.listed_at: float | None = None
        self.owned_count = 0

    def view(self, titles: Iterable[str], fresh: frozenset[str] = frozenset()) -> PlatformView:
        titles = tuple(titles)
        tasks = {t: seen for t in titles if (seen := self._carrying(t))}
        if fresh:
            fresh_keys = {lookup_title(t) for t in fresh}
            fresh = fresh | {t for t in titles if lookup_title(t) in fresh_keys}
        return PlatformView(tasks=tasks, fresh=frozenset(fresh), listed_at=self.listed_at)

    def _carrying(self, title: str) -> tuple[ObservedTask, ...]:
        """The tasks carrying the segment tagged ``title``, at either tag length."""
        near = self._by_title.get(lookup_title(title))
        if not near:
            return ()
        return tuple(task for task in near.values() if same_segment(title, task.title))

    def holds(self, title: str) -> bool:
        """Whether a task carrying the segment tagged ``title`` was seen."""
        return bool(self._carrying(title))

    def owned(self) -> Iterator[ObservedTask]:
        """Every owned task as last seen."""
        for tasks in self._by_title.values():
            yield from tasks.values()

    async def resync(self, platform: Platform) -> None:
        """Replace the view with a complete listing. ``listed_at`` is when the listing started.

        Yields to the loop every couple of milliseconds: 10,000 tasks take tens of milliseconds to take in, and a
        platform that answers pages quickly would otherwise hold the loop (and every callback answer) that long.
        """
        started = self._clock()
        by_title: dict[str, dict[TaskId, ObservedTask]] = {}
        foreign: list[ListedTask] = []
        slicer = Slicer()
        async for listed in platform.list_all():
            if is_relayd_title(listed.task.title):
                by_title.setdefault(lookup_title(listed.task.title), {})[listed.task.task_id] = listed.task
            else:
                foreign.append(listed)
            if slicer.due():
                await asyncio.sleep(0)
        self._by_title, self.foreign, self.listed_at = by_title, foreign, started
        self.owned_count = sum(len(v) for v in by_title.values())
        log.info("platform_listed", owned=self.owned_count, foreign=len(foreign))

    async def confirm(self, platform: Platform, titles: Iterable[str]) -> frozenset[str]:
        """Re-list each Title (by its short tag, so tasks of either length show); the result (including absence)
        is authoritative for this round."""
        done = set()
        for title in titles:
            key = lookup_title(title)
            listed = await platform.list_title(key)
            self._by_title[key] = {item.task.task_id: item.task for item in listed}
            done.add(title)
        return frozenset(done)

    def saw(self, task: ObservedTask) -> None:
        self._by_title.setdefault(lookup_title(task.title), {})[task.task_id] = task

    def gone(self, title: str, task_id: TaskId) -> None:
        self._by_title.get(lookup_title(title), {}).pop(task_id, None)

    def task(self, title: str, task_id: TaskId) -> ObservedTask | None:
        """One owned task as last seen (listed, confirmed or acted on); None when relayd has not seen it."""
        return self._by_title.get(lookup_title(title), {}).get(task_id)

    def status_counts(self) -> dict[str, int]:
        # Every status has a sample (0 when none): a dashboard or an alert rule sees the gauge from the first listing.
        counts = {status.value: 0 for status in TaskStatus if status != TaskStatus.UNKNOWN}
        now = self._clock()
        for tasks in self._by_title.values():
            for task in tasks.values():
                status = shown_status(task, now)
                counts[status.value] = counts.get(status.value, 0) + 1
        return counts

    def foreign_on(self, destinations: set[str]) -> list[ListedTask]:
        """Foreign tasks pushing to one of our destinations: reported, never touched."""
        return [t for t in self.foreign if t.dst_addr and t.dst_addr in destinations]
