"""The engine: one reconcile pass per schedule, the full resync, and callback notices.

A pass plans the schedule at ``now`` (pure), asks :func:`relayd.reconcile.decide` what to do (pure), confirms
stale failure signals with a fresh look at the platform, performs the actions through the executor, and
decides again until nothing is left to do (a few passes at most: save, then create; confirm, then restart).
It ends by setting the schedule's single wake-up to the instant the last decision asked for.

Triggers never act directly: timers, callbacks, config changes and the resync all end in
``ReconcileQueue.submit(schedule_id)``, which runs this pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from relayd.executor import CallbackUrl, Executor, HandoffSink, OutcomeSink, Turn
from relayd.ids import ScheduleId, SegmentKey
from relayd.jobs import Jobs
from relayd.knowledge import Knowledge
from relayd.metrics import Metrics
from relayd.observations import Observations
from relayd.outcomes import Outcome, OutcomeKind
from relayd.platform import Platform
from relayd.platform.facts import PlatformFacts
from relayd.policy import Policy, policy_for
from relayd.reconcile import ActionKind, Plan, decide
from relayd.schedules.model import Schedule, Segment
from relayd.schedules.planner import TitleLength, plan
from relayd.schedules.titles import lookup_title
from relayd.settings import Settings
from relayd.store import SegmentRecord, SegmentState, StateStore
from relayd.volc.errors import LiveError

log = structlog.get_logger("relayd.engine")

MAX_PASSES = 4
RETRY_AFTER_LIST_ERROR_S = 15.0
RESTART_LABELS = frozenset({"continue", "relaunch", "recreate", "restart"})


class ChangeApplies(StrEnum):
    """Status's ``change_applies``: when a change to a running task the platform will not update takes effect."""

    NEXT_SEGMENT = "next_segment"
    NOW = "now"  # the running task is being replaced by one with the new spec


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_task_seconds: int
    horizon_s: int
    namespace: str
    policy: Policy
    title_length: TitleLength = TitleLength.FULL
    replace_running: bool = False
    """A change to a running task the platform will not update applies at once (replace), not from the next one."""


@dataclass(frozen=True, slots=True)
class _Planned:
    """One schedule's plan at one whole second, kept for the rest of a reconcile call."""

    schedule: Schedule | None
    at: int
    segments: list[Segment]


def engine_config(settings: Settings) -> EngineConfig:
    """The engine's timing and restart policy from the operator's settings."""
    policy = Policy(
        prepare_ahead=settings.prepare_ahead,
        retention=settings.retention,
        max_attempts=settings.restart_max_attempts,
        backoff_base=settings.restart_backoff_base,
        backoff_factor=settings.restart_backoff_factor,
        backoff_cap=settings.restart_backoff_cap,
        stable_after=settings.stable_after,
        # A failed create or delete backs off like a restart (at most the built-in 120 s cap): "every backoff
        # is configurable", and short test timings need it.
        create_retry_base=settings.restart_backoff_base,
        create_retry_cap=min(Policy().create_retry_cap, settings.restart_backoff_cap),
        failed_retry_interval=settings.failed_retry_interval,
    )
    return EngineConfig(
        max_task_seconds=settings.max_task_seconds,
        horizon_s=int(settings.horizon),
        namespace=settings.namespace,
        policy=policy,
        title_length=TitleLength(settings.title_limit),
        replace_running=settings.running_change == "replace",
    )


class Engine:
    def __init__(
        self,
        *,
        store: StateStore,
        platform: Platform,
        config: EngineConfig,
        callback_url: CallbackUrl,
        jobs: Jobs,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float],
        on_outcome: OutcomeSink | None = None,
        facts: PlatformFacts | None = None,
        on_handoff: HandoffSink | None = None,
    ) -> None:
        self._store = store
        self._platform = platform
        self._config = config
        self._jobs = jobs
        self._clock = clock
        self._rand = rand
        self._on_outcome = on_outcome or (lambda label, outcome: None)
        self.observations = Observations(clock)
        self.knowledge = Knowledge(facts)
        self.handoff_gaps: dict[SegmentKey, float] = {}
        """The gap (s) of each segment's hand-off since start-up: the destination had no task that long."""
        self.deferred: dict[SegmentKey, ChangeApplies] = {}
        """Running segments whose schedule change cannot apply in place (Update refused while running): from the next
        segment, or now by replacing the task (``running_change = replace``), while that is under way."""
        self._deferred_by: dict[ScheduleId, frozenset[SegmentKey]] = {}
        self._on_handoff = on_handoff or (lambda record, gap: None)
        self._executor = Executor(
            store=store,
            platform=platform,
            observations=self.observations,
            callback_url=callback_url,
            clock=clock,
            on_outcome=self._outcome,
            knowledge=self.knowledge,
            on_handoff=self._handoff,
        )
        self.schedules: dict[ScheduleId, Schedule] = {}
        self.last_platform_success: float | None = None
        self.last_platform_error: str | None = None
        self.passes = 0
        self._foreign_reported: set[str] = set()
        self._failing_labels: set[str] = set()
        self._recheck: dict[ScheduleId, set[str]] = {}
        self.writes_held: Callable[[], bool] = lambda: False
        """True while another installation holds this namespace (``relayd.installation``): no task is written."""
        self.nudged_at: float | None = None

    # --- desired state --------------------------------------------------------------------------------------

    def set_schedules(self, schedules: Iterable[Schedule]) -> set[ScheduleId]:
        """Replace the desired schedules; returns the ids that were added, changed or removed."""
        new = {s.id: s for s in schedules}
        old = self.schedules
        changed = {sid for sid in new.keys() | old.keys() if sid not in old or sid not in new}
        changed |= {sid for sid in new.keys() & old.keys() if new[sid].digest() != old[sid].digest()}
        self.schedules = new
        return changed

    def nudge(self) -> set[ScheduleId]:
        """Something that may have cured failed segments happened (a reload, a success after failures): try them
        again now rather than at their slow-retry time. Returns the schedules that have a failed segment."""
        self.nudged_at = self._clock()
        failed = {r.schedule_id for r in self._store.segments() if r.state == SegmentState.FAILED}
        for schedule_id in failed:
            self._jobs.wake(schedule_id, self.nudged_at)
        return failed

    def _outcome(self, label: str, outcome: Outcome) -> None:
        """Every platform call's outcome: a success right after failures of the same kind nudges failed segments
        (the cause — credentials, permissions, a platform outage — may be gone)."""
        if outcome.kind == OutcomeKind.OK:
            if label in self._failing_labels:
                self._failing_labels.discard(label)
                self.nudge()
        elif outcome.code != "budget_spent":
            self._failing_labels.add(label)
        self._on_outcome(label, outcome)

    def known_ids(self) -> set[ScheduleId]:
        return set(self.schedules) | self._store.schedule_ids() | self._stray_schedules()

    def _stray_schedules(self) -> set[ScheduleId]:
        """Schedules whose records are all history while a task with one of their Titles is on the platform (say,
        a schedule removed while a create's answer was lost): their pass deletes it. Tasks are matched to records by
        id first, so the store is scanned only when some owned task is carried by no record."""
        unclaimed = {
            lookup_title(task.title)
            for task in self.observations.owned()
            if (record := self._store.by_task_id(task.task_id)) is None or record.state == SegmentState.DELETED
        }
        if not unclaimed:
            return set()
        return {
            r.schedule_id
            for r in self._store.segments(include_deleted=True)
            if r.state == SegmentState.DELETED and lookup_title(r.title) in unclaimed
        }

    def _records(self, schedule_id: ScheduleId) -> list[SegmentRecord]:
        """The schedule's records for a decision: every live one, and those already history whose Title is still seen
        on the platform (the decision deletes that task, or adopts it if the segment is planned again)."""
        return [
            r
            for r in self._store.segments(schedule_id, include_deleted=True)
            if r.state != SegmentState.DELETED or self.observations.holds(r.title)
        ]

    def desired(self, schedule_id: ScheduleId, now: float) -> list[Segment]:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or not schedule.enabled:
            return []
        cfg = self._config
        return plan(
            schedule,
            now=int(now),
            max_task_seconds=cfg.max_task_seconds,
            horizon_s=cfg.horizon_s,
            namespace=cfg.namespace,
            title_length=cfg.title_length,
        )

    def policy_for(self, schedule_id: ScheduleId) -> Policy:
        schedule = self.schedules.get(schedule_id)
        return policy_for(self._config.policy, schedule.restart if schedule is not None else None)

    # --- the pass -------------------------------------------------------------------------------------------

    def decide_now(self, schedule_id: ScheduleId, fresh: frozenset[str] = frozenset()) -> Plan:
        return self._decide(schedule_id, fresh, None, 0.5)[0]

    def _planned(self, schedule_id: ScheduleId, now: float, last: _Planned | None) -> _Planned:
        # A pass decides again after acting, usually within the same second: the plan is a pure function of the
        # schedule and int(now), so reuse it rather than plan twice (planning was ~1/3 of a first reconcile).
        schedule = self.schedules.get(schedule_id)
        if last is not None and last.schedule is schedule and last.at == int(now):
            return last
        return _Planned(schedule, int(now), self.desired(schedule_id, now))

    def _decide(
        self, schedule_id: ScheduleId, fresh: frozenset[str], last: _Planned | None, rand: float
    ) -> tuple[Plan, _Planned]:
        now = self._clock()
        planned = self._planned(schedule_id, now, last)
        desired = planned.segments
        records = self._records(schedule_id)
        titles = {s.title for s in desired} | {r.title for r in records}
        view = self.observations.view(titles, fresh)
        policy = self.policy_for(schedule_id)
        result = decide(
            desired,
            records,
            view,
            now=now,
            policy=policy,
            rand=rand,
            nudged_at=self.nudged_at,
            facts=self.knowledge.facts,
            replace_running=self._config.replace_running,
        )
        self._note_deferred(schedule_id, result)
        return result, planned

    def _note_deferred(self, schedule_id: ScheduleId, result: Plan) -> None:
        """Note where each running segment's change applies, for status: from the next segment (said once in the log)
        or now, while its task is being replaced (``running_change = replace``) until the new task exists."""
        before = self._deferred_by.get(schedule_id, frozenset())
        replacing = {a.record.key for a in result.actions if a.kind == ActionKind.REPLACE}
        replacing |= {k for k in before if self.deferred.get(k) == ChangeApplies.NOW and self._replacing(k)}
        current = result.deferred | replacing
        self._deferred_by[schedule_id] = frozenset(current)
        for key in before - current:
            self.deferred.pop(key, None)
        for key in replacing:
            self.deferred[key] = ChangeApplies.NOW
        for key in result.deferred - before:
            self.deferred[key] = ChangeApplies.NEXT_SEGMENT
            log.info(
                "change_deferred",
                schedule_id=schedule_id,
                segment=key,
                applies=ChangeApplies.NEXT_SEGMENT,
                note="the platform refuses Update while a task runs; set running_change = replace to apply it now",
            )

    def _replacing(self, key: SegmentKey) -> bool:
        """A replaced task's successor is not created yet (its create failed and waits to be tried again)."""
        record = self._store.segment(key)
        return record is not None and record.task_id is None and record.state != SegmentState.DELETED

    def _handoff(self, record: SegmentRecord, gap: float) -> None:
        self.handoff_gaps[record.key] = gap
        self._on_handoff(record, gap)

    async def reconcile(self, schedule_id: ScheduleId) -> None:
        """One reconcile of one schedule (the queue's handler)."""
        self.passes += 1
        turn = Turn(self.policy_for(schedule_id), self._rand())
        fresh: frozenset[str] = frozenset()
        wake: float | None = None
        planned: _Planned | None = None
        for _ in range(MAX_PASSES):
            result, planned = self._decide(schedule_id, fresh, planned, turn.rand)
            wake = result.wake_at
            acts = [a for a in result.actions if a.kind != ActionKind.CONFIRM]
            if self.writes_held():
                acts = [a for a in acts if a.kind == ActionKind.SAVE]  # store-only changes; the platform is contested
            confirms = {a.record.title for a in result.actions if a.kind == ActionKind.CONFIRM} - fresh
            confirms |= self._recheck.pop(schedule_id, set()) - fresh
            await self._executor.perform_all(acts, turn)
            if confirms:
                confirmed = await self._confirm(schedule_id, confirms)
                if confirmed is None:
                    wake = self._clock() + RETRY_AFTER_LIST_ERROR_S
                    break
                fresh |= confirmed
            elif not acts:
                break
        else:
            wake = self._clock() + 1.0  # still moving: look again shortly
        self._jobs.wake(schedule_id, wake)

    async def _confirm(self, schedule_id: ScheduleId, titles: set[str]) -> frozenset[str] | None:
        try:
            confirmed = await self.observations.confirm(self._platform, titles)
        except LiveError as error:
            self.last_platform_error = str(error)
            log.warning("confirm_failed", schedule_id=schedule_id, error=str(error))
            self._recheck.setdefault(schedule_id, set()).update(titles)  # a Title to re-list is never dropped
            return None
        self.last_platform_success = self._clock()
        return confirmed

    # --- resync ---------------------------------------------------------------------------------------------

    async def list_platform(self) -> bool:
        """A complete listing of the platform's tasks; False (logged) if the platform could not be listed."""
        try:
            await self.observations.resync(self._platform)
        except LiveError as error:
            self.last_platform_error = str(error)
            log.warning("platform_list_failed", error=str(error))
            return False
        self.last_platform_success = self._clock()
        self.last_platform_error = None
        self._report_foreign()
        return True

    def _report_foreign(self) -> None:
        """Warn (once per task) about tasks relayd does not own that push to one of its destinations."""
        if not self.observations.foreign:
            return  # the usual case: spare a scan of every segment record (~30 ms at 10k schedules) per listing
        destinations = {
            str(r.body["DstAddr"])
            for r in self._store.segments()
            if r.body.get("DstAddr") and r.state != SegmentState.DELETED
        }
        for listed in self.observations.foreign_on(destinations):
            if listed.task.task_id in self._foreign_reported:
                continue
            self._foreign_reported.add(listed.task.task_id)
            log.warning(
                "foreign_task_on_destination",
                task_id=listed.task.task_id,
                title=listed.task.title,
                dst_addr=listed.dst_addr,
                note="not owned by relayd; left untouched",
            )

    # --- callbacks ------------------------------------------------------------------------------------------

    def recheck_title(self, key: SegmentKey) -> ScheduleId | None:
        """A callback from a task relayd does not know arrived on this segment's URL: the next pass lists the
        segment's Title afresh, so a task carrying it is adopted or removed as a duplicate by the usual rules."""
        record = self._store.segment(key)
        if record is None:
            return None
        self._recheck.setdefault(record.schedule_id, set()).add(record.title)
        return record.schedule_id

    async def note_failure(self, key: SegmentKey, at: float | None) -> ScheduleId | None:
        """A failure/stop/delete notice for a segment: remember it (unless stale) so the pass acts on it."""
        record = self._store.segment(key)
        if record is None or record.state in (SegmentState.DELETED, SegmentState.ENDED, SegmentState.REMOVING):
            return record.schedule_id if record else None
        stale = at is not None and record.healthy_since is not None and at + 1 <= record.healthy_since
        if not stale and record.failure_seen_at is None:
            await self._store.put(replace(record, failure_seen_at=self._clock(), updated_at=self._clock()))
        return record.schedule_id

    async def note_recovery(self, key: SegmentKey, at: float | None) -> ScheduleId | None:
        """The platform says the relay recovered by itself: clear a pending failure reported before then."""
        record = self._store.segment(key)
        if record is None:
            return None
        seen = record.failure_seen_at
        if seen is not None and (at is None or at + 1 >= seen):
            await self._store.put(replace(record, failure_seen_at=None, next_attempt_at=None, updated_at=self._clock()))
        return record.schedule_id


def outcome_metrics(metrics: Metrics) -> OutcomeSink:
    """The engine's outcomes as metrics: restart attempts by kind and how they ended."""

    def sink(label: str, outcome: Outcome) -> None:
        if label in RESTART_LABELS:
            metrics.restart(label, outcome.code)

    return sink
