"""The configuration the daemon runs on: the config directory, with every bad part replaced by its last good one.

The directory is the desired state, but a bad edit must never cost what runs (DESIGN "bad input never costs good
state"). So each load is resolved file by file:

- a file that loads cleanly is taken as it is, and remembered as that file's last good version;
- a file with problems keeps its last good version — from this process, or at start-up from the applied
  schedules the store kept (``AppliedSchedule``) — and its problems are reported;
- a file that is gone is gone (deleting a file removes its schedules);
- a directory that is missing or unreadable changes nothing: every file keeps its last good version. A forgotten
  volume mount or a renamed directory must not delete every relay;
- schedules that would disappear go through the removal guard (:mod:`relayd.removals`): a load that would remove
  many at once removes none of them until the operator confirms, and they keep running meanwhile.

The directory is read in a worker thread within the size and time limits (``max_schedule_file_bytes``,
``schedule_load_budget``), so a hostile or huge file never stalls the event loop or the systemd watchdog.
Warnings (two schedules on one destination at once) are logged and shown, never counted as problems.

The resolved files then go through the loader's one cross-file rule (:func:`relayd.schedules.loader.resolve`:
the first definition of an id wins). The result also feeds the status API (``ScheduleInfo``, problems) and the
store's applied snapshot, which is what a later start-up falls back on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.removals import FIX, RemovalHold, RemovalLimits
from relayd.schedules.loader import ConfigProblem, DirResult, FileResult, Limits, load_dir, resolve
from relayd.schedules.model import GroupSpec, Schedule
from relayd.store import AppliedSchedule, StateStore, StoreError
from relayd.web.views import ScheduleInfo

log = structlog.get_logger("relayd.configuration")


@dataclass
class Loaded:
    """One resolved load: what to run and what to report."""

    schedules: list[Schedule]
    groups: list[GroupSpec]
    problems: list[str]
    infos: list[ScheduleInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Configuration:
    """The last good configuration, per file; :meth:`load` folds a fresh read of the directory into it."""

    def __init__(
        self,
        directory: Path,
        store: StateStore,
        metrics: Metrics,
        *,
        limits: Limits,
        removal_limits: RemovalLimits,
    ) -> None:
        self._directory = directory
        self._store = store
        self._metrics = metrics
        self._limits = limits
        self._good: dict[str, FileResult] = {}
        self.removals = RemovalHold(removal_limits, metrics)
        self._loading = asyncio.Lock()  # one load at a time: a slower, older read must not land last
        self.current = Loaded([], [], [])
        self.loaded = False

    @property
    def problems(self) -> list[str]:
        return self.current.problems

    @property
    def held(self) -> tuple[ScheduleId, ...]:
        """Schedules the removal guard keeps running although the directory no longer declares them."""
        return self.removals.held

    async def load(self) -> Loaded:
        """Read the directory (in a worker thread, within the size and time limits: the event loop and the
        watchdog keep going) and resolve it against the last good version of each file and the removal guard."""
        async with self._loading:
            raw = await asyncio.to_thread(load_dir, self._directory, limits=self._limits)
            return self._fold(raw)

    def _fold(self, raw: DirResult) -> Loaded:
        applied = self._applied()
        resolved, problems = self._resolve(raw)
        schedules = self.removals.weigh(applied, resolved.schedules())
        infos = _infos(raw, resolved) + self._held_infos(applied)
        warnings = [str(w) for w in raw.warnings]
        _report(problems, warnings)
        self._metrics.config_load_errors(sum(1 for f in raw.files if f.problems), current_problems=len(problems))
        self.current = Loaded(schedules, resolved.groups(), problems, infos, warnings)
        self.loaded = True
        return self.current

    def _resolve(self, raw: DirResult) -> tuple[DirResult, list[str]]:
        """An unreadable directory keeps every file's last good version; otherwise each bad file keeps its own."""
        if raw.unreadable is not None:
            resolved = resolve(list(self._good.values()) or self._from_store())
            return resolved, [str(raw.unreadable), "the last good configuration is kept"]
        resolved = resolve([self._good_version(f) for f in raw.files])
        found = _file_problems(raw) + resolved.problems
        # Problems of the directory itself (a file name that is not UTF-8) come only from the fresh read; its
        # cross-file ones (always naming a field) were recomputed on the resolved files above.
        found += [p for p in raw.problems if p.field is None]
        return resolved, [str(p) for p in found]

    def _applied(self) -> dict[ScheduleId, Schedule]:
        """What runs now: the last load's schedules, or at start-up the store's applied snapshot."""
        if self.loaded:
            return {s.id: s for s in self.current.schedules}
        return {sid: Schedule.model_validate(a.payload) for sid, a in self._store.applied().items()}

    def _held_infos(self, applied: dict[ScheduleId, Schedule]) -> list[ScheduleInfo]:
        note = f"no longer declared; its removal is held — {FIX}"
        return [_info(applied[sid], (note,)) for sid in self.held]

    def release_removals(self) -> tuple[ScheduleId, ...]:
        """Approve the removals held now; the next load carries them out."""
        return self.removals.release()

    def _good_version(self, file: FileResult) -> FileResult:
        name = str(file.path)
        if not file.problems:
            self._good[name] = file
            return file
        previous = self._good.get(name) or self._stored_version(file.path)
        return previous if previous is not None else FileResult(file.path, "", [], [], [])

    def _stored_version(self, path: Path) -> FileResult | None:
        """At start-up a broken file falls back on the schedules the store says were applied from it."""
        applied = self._store.applied().values()
        schedules = [Schedule.model_validate(a.payload) for a in applied if a.source_file == str(path)]
        if not schedules:
            return None
        good = FileResult(path, "", schedules, [], [])
        self._good[str(path)] = good
        return good

    def _from_store(self) -> list[FileResult]:
        by_file: dict[str, list[Schedule]] = {}
        for applied in self._store.applied().values():
            by_file.setdefault(applied.source_file, []).append(Schedule.model_validate(applied.payload))
        for name, schedules in by_file.items():
            self._good[name] = FileResult(Path(name), "", schedules, [], [])
        return list(self._good.values())

    async def persist(self, schedules: dict[ScheduleId, Schedule]) -> None:
        """Record each schedule's last good version; a state file that cannot be written (disk full, read-only) is
        reported and retried on the next reload or resync — it must not stop the daemon."""
        try:
            await self._persist(schedules)
        except StoreError as error:
            log.error("applied_schedules_not_saved", error=str(error), note="retried on the next resync")

    async def _persist(self, current: dict[ScheduleId, Schedule]) -> None:
        stored = self._store.applied()
        writes = [
            self._store.set_applied(AppliedSchedule(sid, digest, s.source_file, s.model_dump(mode="json")))
            for sid, s in current.items()
            if (digest := s.digest()) != (stored[sid].digest if sid in stored else None)
        ]
        writes += [self._store.remove_applied(sid) for sid in stored.keys() - current.keys()]
        # Queued together so they share commits.
        for outcome in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome


def _file_problems(raw: DirResult) -> list[ConfigProblem]:
    return [p for f in raw.files for p in f.problems]


def _report(problems: list[str], warnings: list[str]) -> None:
    for problem in problems:
        log.error("config_problem", problem=problem)
    for warning in warnings:
        log.warning("config_warning", warning=warning)


def _info(schedule: Schedule, problems: tuple[str, ...]) -> ScheduleInfo:
    return ScheduleInfo(
        id=schedule.id,
        title=schedule.title or "",
        enabled=schedule.enabled,
        source=schedule.source_file,
        line=schedule.source_line or None,
        group=schedule.group,
        problems=problems,
    )


def _infos(raw: DirResult, resolved: DirResult) -> list[ScheduleInfo]:
    """Every schedule the daemon runs, with the problems of the file it came from (if that file is now bad)."""
    problems = {str(f.path): tuple(str(p) for p in f.problems) for f in raw.files}
    return [_info(s, problems.get(str(f.path), ())) for f in resolved.files for s in f.schedules]
