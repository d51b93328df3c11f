"""High-availability chaos: three ``relayd run`` instances on one PostgreSQL, the leader SIGKILLed or SIGSTOPped
at random and the database restarted once, with the safety of every platform write judged afterwards.

Shared by ``tests/e2e/test_ha_chaos.py`` (a compact run in CI, the full one with ``RELAYD_CHAOS_FULL=1``) and
``bench/ha_chaos.py`` (the full run, printing its figures).

Who held the lease, and when, is not taken from the instances' own logs (a paused process logs nothing) but from
the database itself: a trigger on the ``leases`` row copies every change (holder, fencing epoch, expiry) into a
log table with the database's clock. The emulator journals every platform write with the writer's instance id
(the ``relayd-instance/<id>`` User-Agent token) and the wall clock of the same host. A write is *leased* when its
instance held a lease epoch that had been granted before the write and had not yet expired (the last expiry the
database set for that epoch). A new epoch is only granted after the previous one expired or was released, so an
instance writing while another held the lease — or a resumed old leader writing after its successor took over —
is always an unleased write.

The failover bound checked for each event is ``lease_ttl + lease_renew_interval + takeover`` — a standby takes the
lease at most one renewal period after it lapses, then reloads the state and lists the platform before acting.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

from relayd.emulator import Emulator
from relayd.schedules.loader import load_dir
from tests.e2e import invariants as inv
from tests.e2e.harness import (
    DaemonProcess,
    chain_on,
    live_schedule,
    owned_tasks,
    process_settings,
    titles_held_twice,
    wait_for,
    write_env_config,
    write_schedules,
)
from tests.integration.postgres import PostgresServer

TOKEN = "chaos-token"


class Kind(StrEnum):
    KILL = "sigkill"
    STOP = "sigstop"
    DATABASE = "postgresql-restart"


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """One chaos scenario. ``lease`` holds the instances' lease settings (empty: relayd's defaults)."""

    events: int
    pause_s: tuple[float, float]
    lease: Mapping[str, float] = field(default_factory=dict)
    takeover_s: float = 3.0
    """Room for a new leader to reload the state and list the platform, on top of ttl + renew."""
    schedules: int = 12
    cap: int = 20
    prepare_ahead: float = 15.0
    gap_s: tuple[float, float] = (0.0, 3.0)
    """A random wait between a failover and the next event, so events land anywhere in the renewal rhythm."""
    seed: int = 20

    @property
    def ttl(self) -> float:
        return float(self.lease.get("lease_ttl", 10.0))

    @property
    def renew(self) -> float:
        return float(self.lease.get("lease_renew_interval", 2.0))

    @property
    def bound_s(self) -> float:
        """The failover bound: a standby acts at most this long after the leader stops (or the database is back)."""
        return self.ttl + self.renew + self.takeover_s


FULL = ChaosConfig(events=15, pause_s=(30.0, 60.0))
"""The issue's scenario at relayd's default lease settings (ttl 10 s, renew 2 s, margin 3 s): about three minutes."""
COMPACT = ChaosConfig(
    events=5,
    pause_s=(6.0, 12.0),
    lease={"lease_ttl": 4, "lease_renew_interval": 1, "lease_margin": 1.5, "standby_refresh_interval": 2},
    takeover_s=10.0,  # a loaded CI machine (two cores, several suites) may take seconds to list and reload
    prepare_ahead=12.0,
    gap_s=(0.0, 1.5),
)
"""A CI-sized run (under 90 s): five events, shorter leases and pauses."""


# --- the lease history and the write check (pure) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tenure:
    """One fencing epoch: who held it, when the database granted it, and the last expiry it set for it."""

    epoch: int
    holder: str
    granted_at: float
    until: float


def tenures(rows: Iterable[tuple[str, int, float, float]]) -> list[Tenure]:
    """``rows``: the lease log (holder, epoch, expires_at, at) in commit order -> one tenure per epoch.

    A holder that asks again while its lease is valid keeps the epoch (a restarted process with the same id), so
    an epoch has one holder; its tenure runs from the first row that named it to the latest expiry of its rows."""
    by_epoch: dict[int, Tenure] = {}
    for holder, epoch, expires_at, at in rows:
        if epoch == 0:
            continue  # the empty row inserted before the first acquisition
        seen = by_epoch.get(epoch)
        if seen is None:
            by_epoch[epoch] = Tenure(epoch, holder, at, expires_at)
        else:
            by_epoch[epoch] = Tenure(epoch, seen.holder, seen.granted_at, max(seen.until, expires_at))
    return [by_epoch[e] for e in sorted(by_epoch)]


def is_write(entry: Mapping[str, Any]) -> bool:
    """The journal also keeps ListPullToPushGroup (it counts in the platform's write class): a read, not a write."""
    return not str(entry["action"]).startswith("List")


def unleased_writes(journal: Iterable[Mapping[str, Any]], held: Sequence[Tenure]) -> list[Mapping[str, Any]]:
    """Platform writes made by an instance that did not hold a valid lease at that instant."""
    return [
        entry
        for entry in journal
        if is_write(entry)
        and not any(t.holder == entry["instance"] and t.granted_at <= entry["time"] <= t.until for t in held)
    ]


def excessive_gaps(
    intervals: Sequence[tuple[float, float, str]], bound_s: float, outage: tuple[float, float] | None
) -> list[str]:
    """Pauses between relays on one destination longer than the failover bound (plus the outage, across it)."""
    problems = []
    for (_, end, before), (start, _, after) in itertools.pairwise(intervals):
        allowed = bound_s
        if outage is not None and end < outage[1] + bound_s and start > outage[0]:  # the gap spans the outage
            allowed += outage[1] - outage[0]
        if start - end > allowed:
            problems.append(
                f"{before} -> {after}: {start - end:.1f} s without a relay from {_clock(end)} (bound {allowed:.1f} s)"
            )
    return problems


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + "Z"


# --- the lease log, kept by the database -------------------------------------------------------------------------

_AUDIT = (
    "CREATE TABLE IF NOT EXISTS {schema}.chaos_lease_log (id BIGSERIAL PRIMARY KEY, holder TEXT NOT NULL, "
    "epoch BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "CREATE OR REPLACE FUNCTION {schema}.chaos_lease_logged() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO {schema}.chaos_lease_log (holder, epoch, expires_at, at) "
    "VALUES (NEW.holder, NEW.epoch, NEW.expires_at, extract(epoch FROM clock_timestamp())); RETURN NEW; END $$",
    "CREATE TRIGGER chaos_lease_log AFTER INSERT OR UPDATE ON {schema}.leases FOR EACH ROW "
    "EXECUTE FUNCTION {schema}.chaos_lease_logged()",
    # the lease as it stands: granted before anything was logged (the first leader took it at start-up)
    "INSERT INTO {schema}.chaos_lease_log (holder, epoch, expires_at, at) "
    "SELECT holder, epoch, expires_at, '-Infinity'::float8 FROM {schema}.leases",
)


def install_lease_log(url: str, schema: str) -> None:
    """Log every change of the installation's lease row from now on (call once the schema exists)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn, conn.transaction():
        for statement in _AUDIT:
            conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))


def lease_log(url: str, schema: str) -> list[tuple[str, int, float, float]]:
    query = sql.SQL("SELECT holder, epoch, expires_at, at FROM {}.chaos_lease_log ORDER BY id")
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(query.format(sql.Identifier(schema))).fetchall()
    return [(str(h), int(e), float(x), float(a)) for h, e, x, a in rows]


# --- the instances -----------------------------------------------------------------------------------------------


class Node:
    """One ``relayd run`` process of the installation, with its log and its lease settings."""

    def __init__(self, name: str, root: Path, emu: Emulator, pg: PostgresServer, schema: str, config: ChaosConfig,
                 schedules: str) -> None:  # fmt: skip
        self.name = name
        workdir = root / name
        write_schedules(workdir, schedules)
        settings = process_settings(emu, workdir, instance_id=name, database_url=pg.url, database_schema=schema,
                                    callback_secret="chaos-secret", api_token=TOKEN, max_task_seconds=config.cap,
                                    prepare_ahead=config.prepare_ahead, retention=2, resync_interval=10, horizon=300,
                                    restart_backoff_base=0.5, restart_backoff_cap=2, **config.lease)  # fmt: skip
        self.port = int(str(settings["listen"]).rsplit(":", 1)[1])
        write_env_config(workdir / "relayd.toml", settings)
        self.schedules_dir = workdir / "schedules"
        self.log = workdir / "relayd.log"
        self.proc = DaemonProcess(workdir / "relayd.toml", self.log)
        self.stopped = False

    def logged(self, event: str) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count(f'"event": "{event}"')

    @property
    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    @property
    def running(self) -> bool:
        """Alive and not paused: able to take over."""
        return self.alive and not self.stopped

    def pause(self) -> None:
        assert self.proc.proc is not None
        self.proc.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.alive:
            assert self.proc.proc is not None
            self.proc.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    async def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    def stop(self) -> None:
        if self.alive:
            self.resume()  # a stopped process cannot handle SIGTERM
            self.proc.terminate(30)


# --- the scenario ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRecord:
    kind: Kind
    target: str
    at: float
    failover_s: float
    new_leader: str
    pause_s: float = 0.0


@dataclass
class ChaosReport:
    config: ChaosConfig
    events: list[EventRecord] = field(default_factory=list)
    outage: tuple[float, float] | None = None
    duration_s: float = 0.0
    writes: dict[str, int] = field(default_factory=dict)
    refused_writes: dict[str, int] = field(default_factory=dict)
    unleased: list[Mapping[str, Any]] = field(default_factory=list)
    unnamed_writes: int = 0
    epochs: int = 0
    duplicates: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    max_relay_gap_s: float = 0.0
    late_failovers: list[EventRecord] = field(default_factory=list)
    final_plan: list[str] = field(default_factory=list)
    tracebacks: int = 0

    @property
    def violations(self) -> list[str]:
        problems = [f"unleased write: {dict(w)}" for w in self.unleased]
        problems += [f"duplicate task: {t}" for t in self.duplicates] + [f"overlap: {o}" for o in self.overlaps]
        problems += [f"relay gap: {g}" for g in self.gaps] + [f"plan at the end: {p}" for p in self.final_plan]
        problems += [f"failover {e.failover_s:.1f} s after {e.kind} of {e.target}" for e in self.late_failovers]
        problems += [f"{self.unnamed_writes} writes named no instance"] if self.unnamed_writes else []
        return problems + ([f"{self.tracebacks} tracebacks in the logs"] if self.tracebacks else [])


class Chaos:
    """Runs one scenario against three nodes; :meth:`run` returns the report (the caller asserts or prints)."""

    def __init__(self, emu: Emulator, pg: PostgresServer, schema: str, root: Path, config: ChaosConfig) -> None:
        self.emu, self.pg, self.schema, self.config = emu, pg, schema, config
        self.rng = random.Random(config.seed)
        now = int(time.time())
        horizon = 120 + config.events * (config.bound_s + config.gap_s[1] + 10) + config.pause_s[1]
        text = "".join(live_schedule(f"c{n}", now - 5, now + horizon) for n in range(config.schedules))
        self.nodes = [Node(n, root, emu, pg, schema, config, text) for n in ("a", "b", "c")]
        self.plan = load_dir(self.nodes[0].schedules_dir).schedules()
        self.timing = inv.Timing(cap=config.cap, prepare_ahead=config.prepare_ahead, retention=2, slack=4)
        self.report = ChaosReport(config)
        self._resumes: set[asyncio.Task[None]] = set()

    def acting(self) -> dict[str, int]:
        return {n.name: n.logged("leader_acting") for n in self.nodes}

    async def run(self) -> ChaosReport:
        started = time.time()
        try:
            await self._start()
            leader = self.nodes[0]
            for index in range(self.config.events):
                await asyncio.sleep(self.rng.uniform(*self.config.gap_s))  # where in the renewal rhythm to strike
                if index == self.config.events // 2:
                    leader = await self._restart_database(leader)
                leader = await self._strike(leader)
            await self._settle()
        finally:
            for task in self._resumes:
                task.cancel()
            for node in self.nodes:
                node.stop()
        self.report.duration_s = time.time() - started
        self._judge()
        return self.report

    async def _start(self) -> None:
        first, *others = self.nodes
        first.proc.start()
        await wait_for(lambda: first.logged("leader_acting") == 1, 90, what="a leading")
        install_lease_log(self.pg.url, self.schema)
        for node in others:
            node.proc.start()
        for node in others:
            await wait_for(node.ready, 90, what=f"{node.name} ready as a standby")
        await wait_for(self._exact, 90, what="the plan on the platform")

    def _exact(self) -> bool:
        return inv.check_exact_plan(owned_tasks(self.emu), self.plan, time.time(), self.timing) == []

    async def _strike(self, leader: Node) -> Node:
        """SIGKILL or SIGSTOP the leader; wait for another to act; restart a killed one as a standby."""
        await wait_for(lambda: any(n.running for n in self.nodes if n is not leader),
                       self.config.pause_s[1] + 60, what="an instance able to take over")  # fmt: skip
        kind = self.rng.choice([Kind.KILL, Kind.STOP])
        before, at = self.acting(), time.monotonic()
        pause = 0.0
        if kind is Kind.KILL:
            leader.proc.kill()
        else:
            pause = self.rng.uniform(*self.config.pause_s)
            leader.pause()
            self._resume_later(leader, pause)
        new = await self._next_leader(before, at, kind, leader.name, pause)
        if kind is Kind.KILL:
            leader.proc.start()
            await wait_for(leader.ready, 90, what=f"{leader.name} back as a standby")
        await self._restored()
        return new

    async def _restored(self) -> None:
        """One failover at a time: strike again only once the new leader has made its pass (exactly the plan).

        Striking a leader before its first pass stacks two failovers, and the bound is for one."""
        await wait_for(self._exact, 60, what="the new leader keeping exactly the plan")

    def _resume_later(self, node: Node, pause: float) -> None:
        async def resume() -> None:
            await asyncio.sleep(pause)  # the scenario's pause length, not a synchronisation
            node.resume()

        task = asyncio.create_task(resume(), name=f"chaos-resume-{node.name}")
        self._resumes.add(task)
        task.add_done_callback(self._resumes.discard)

    async def _next_leader(self, before: dict[str, int], at: float, kind: Kind, target: str, pause: float) -> Node:
        def moved() -> bool:
            return any(count > before[name] for name, count in self.acting().items())

        await wait_for(moved, 3 * self.config.bound_s + 60, interval=0.05, what=f"a leader after {kind} of {target}")
        failover = time.monotonic() - at
        now = self.acting()
        new = next(n for n in self.nodes if now[n.name] > before[n.name])
        record = EventRecord(kind, target, time.time() - failover, failover, new.name, pause)
        self.report.events.append(record)
        if failover > self.config.bound_s:
            self.report.late_failovers.append(record)
        return new

    async def _restart_database(self, leader: Node) -> Node:
        """Stop PostgreSQL until the leader has stepped down, start it again, wait for a leader to act."""
        down = time.time()
        lost = leader.logged("leadership_lost")
        self.pg.stop("immediate")
        try:
            await wait_for(lambda: leader.logged("leadership_lost") > lost, 60, what="the leader stepping down")
        finally:
            self.pg.start()
        self.report.outage = (down, time.time())
        new = await self._next_leader(self.acting(), time.monotonic(), Kind.DATABASE, "postgresql", 0.0)
        await self._restored()
        return new

    async def _settle(self) -> None:
        """Resume every paused instance, wait for all three to be ready and for exactly the plan."""
        for task in list(self._resumes):
            task.cancel()
        for node in self.nodes:
            node.resume()
        for node in self.nodes:
            await wait_for(node.ready, 90, what=f"{node.name} ready at the end")
        try:
            await wait_for(self._exact, 90, what="exactly the plan at the end")
        except AssertionError:
            problems = inv.check_exact_plan(owned_tasks(self.emu), self.plan, time.time(), self.timing)
            self.report.final_plan = [str(p) for p in problems]

    def _judge(self) -> None:
        report, history = self.report, self.emu.history()
        held = tenures(lease_log(self.pg.url, self.schema))
        journal = [e for e in self.emu.requests() if is_write(e)]
        report.epochs = len(held)
        report.writes = dict(sorted(Counter(str(e["instance"]) for e in journal).items()))
        report.unnamed_writes = report.writes.pop("", 0)
        report.unleased = unleased_writes(journal, held)
        report.refused_writes = {n.name: n.logged("reconcile_stopped_not_leader") for n in self.nodes}
        report.duplicates = titles_held_twice(history)
        destinations = {str(t["DstAddr"]) for t in history if t.get("DstAddr")}
        for dst in sorted(destinations):
            chain = chain_on(history, dst)
            report.overlaps += [f"{dst}: {a} and {b}" for a, b in chain.overlaps]
            report.gaps += excessive_gaps(chain.intervals, self.config.bound_s, report.outage)
            report.max_relay_gap_s = max([report.max_relay_gap_s, *chain.gaps])
        report.tracebacks = sum(n.log.read_text(errors="replace").count("Traceback") for n in self.nodes)


def figures(report: ChaosReport) -> str:
    """The scenario's figures as text (for the benchmark and a failing test's message)."""
    kills = [e for e in report.events if e.kind is not Kind.DATABASE]
    times = sorted(e.failover_s for e in kills) or [0.0]
    lines = [
        f"{len(report.events)} events over {report.duration_s:.0f} s: "
        + ", ".join(f"{k.value} {sum(e.kind is k for e in report.events)}" for k in Kind),
        f"failover after a kill or stop: min {times[0]:.1f} s, median {statistics.median(times):.1f} s, "
        f"max {times[-1]:.1f} s (bound {report.config.bound_s:.0f} s = ttl {report.config.ttl:g} + renew "
        f"{report.config.renew:g} + takeover {report.config.takeover_s:g})",
    ]
    lines += [f"  {_clock(e.at)} {e.kind.value:>18} of {e.target}: {e.new_leader} acting after {e.failover_s:.1f} s"
              + (f" (paused {e.pause_s:.0f} s)" if e.pause_s else "") for e in report.events]  # fmt: skip
    if report.outage:
        lines.append(f"postgresql down {report.outage[1] - report.outage[0]:.1f} s from {_clock(report.outage[0])}")
    lines += [
        f"lease epochs {report.epochs}; platform writes per instance {report.writes}; unleased writes "
        f"{len(report.unleased)}; reconcile passes stopped by the write gate {report.refused_writes}",
        f"duplicate tasks {len(report.duplicates)}; overlaps {len(report.overlaps)}; longest relay gap "
        f"{report.max_relay_gap_s:.1f} s; exact plan at the end: {'yes' if not report.final_plan else 'no'}",
    ]
    return "\n".join(lines)
