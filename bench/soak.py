"""Soak: ``relayd run`` against the emulator for N minutes with every fault at once; the invariants never break.

The emulator runs in this process (rate limits on: 10 writes/s, 15 lists/s); the daemon runs as a child process
with its default write/list QPS, a short task cap and short timings, managing ``--schedules`` schedules. About
0.8 windows a second start during the run (60-90 s each, so a few hand-offs each, within the write budget); the
rest of the schedules lie in the future, planned on every pass but not yet due.

Faults, drawn from ``--seed``: 5 % InternalError on every action throughout, plus rotating bursts (throttling,
CommonErr with HTTP 200, latency spikes, a hanging Create or Delete); callbacks dropped (30 %), duplicated (20 %)
and reordered; stream failures of live tasks (mostly recoverable, some never); tasks deleted or disabled by hand;
foreign tasks on relayd's destinations; forged callbacks; the emulator restarting; SIGKILL of the daemon.

Every ``--check-every`` seconds it checks invariants 1 (exact plan, with a grace of one resync plus the restart
time for faults injected on purpose) and 3 (failures repaired within the budget or marked failed) from the
emulator's task list and the state file (read-only); at the end 2 (hand-offs), 4 (rates, secrets in the log) and
5 (callbacks once). It prints faults injected, restarts, hand-offs, violations, peak RSS and event-loop lag of the
daemon, and exits 1 on any violation.

Usage: ``.venv/bin/python bench/soak.py --minutes 10 [--schedules 1000] [--cap 20] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relayd.emulator import Emulator, EmulatorConfig, actions
from relayd.logs import configure_logging
from relayd.schedules.loader import load_dir
from relayd.schedules.titles import is_relayd_title
from relayd.store import schema
from relayd.store.records import Event, SegmentRecord
from tests.e2e import invariants as inv
from tests.e2e.harness import DaemonProcess, free_port, live_schedule, record_accepted_callbacks, write_env_config

AUTH_KEY = "soak-callback-auth-key"
RESYNC_S = 20.0
BACKOFF_CAP_S = 5.0
ATTEMPTS = 3


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    emu: Emulator
    proc: DaemonProcess
    port: int
    rng: random.Random
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    peak_rss_kb: int = 0
    lag_max_s: float = 0.0
    checks: int = 0
    started: float = field(default_factory=time.time)

    @property
    def state_db(self) -> Path:
        return self.workdir / "state" / "state.db"


# --- set-up ----------------------------------------------------------------------------------------------------


def write_schedules(workdir: Path, count: int, minutes: float, rng: random.Random) -> None:
    now = int(time.time())
    span = max(60.0, minutes * 60 - 70)
    active = min(count, int(span * 0.8))
    parts = []
    for n in range(count):
        if n < active:
            start = now + 5 + int(rng.uniform(0, span)) - 30
            length = rng.randint(60, 90)
        else:  # planned every pass, never due during the soak
            start = now + 86_400 * rng.randint(2, 30)
            length = 3600
        parts.append(live_schedule(f"s{n}", start, start + length))
    directory = workdir / "schedules"
    directory.mkdir(parents=True)
    for chunk in range(0, count, 100):
        (directory / f"soak{chunk // 100:02d}.toml").write_text("".join(parts[chunk : chunk + 100]))


def daemon_config(run_dir: Path, emu: Emulator, port: int, cap: int) -> Path:
    config = run_dir / "relayd.toml"
    write_env_config(
        config,
        {
            "endpoint": emu.url,
            "access_key": emu.config.access_key,
            "secret_key": emu.config.secret_key,
            "callback_auth_key": AUTH_KEY,
            "schedules_dir": run_dir / "schedules",
            "state_path": run_dir / "state" / "state.db",
            "listen": f"127.0.0.1:{port}",
            "log_format": "json",
            "max_task_seconds": cap,
            "prepare_ahead": cap,
            "retention": 5,
            "resync_interval": RESYNC_S,
            "horizon": 600,
            "restart_backoff_base": 1,
            "restart_backoff_cap": BACKOFF_CAP_S,
            "restart_max_attempts": ATTEMPTS,
            "stable_after": 15,
            "api_timeout": 3,
        },
    )
    return config


# --- reading the daemon from outside ---------------------------------------------------------------------------


def read_store(path: Path) -> tuple[list[SegmentRecord], list[Event]]:
    if not path.exists():
        return [], []
    conn = schema.connect(path, synchronous="NORMAL", read_only=True)
    try:
        records = schema.load_segments(conn)
        rows = conn.execute(f"SELECT {schema.EVENT_COLUMNS} FROM events WHERE kind IN ('callback', 'restart')")
        events = [schema.event_from_row(row) for row in rows]
    except sqlite3.Error:
        return [], []
    finally:
        conn.close()
    return records, events


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def loop_lag(port: int) -> float | None:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith("relayd_event_loop_lag_seconds "):
            return float(line.split()[1])
    return None


# --- faults ----------------------------------------------------------------------------------------------------

BURSTS = (
    ("throttling_burst", {"action": "*", "error_code": "FlowLimitExceeded", "count": 20}),
    ("commonerr_http200", {"action": "ListPullToPushTaskV2", "error_code": "CommonErr", "count": 5}),
    ("latency_spike", {"action": "CreatePullToPushTask", "latency_ms": 1500, "count": 10}),
    ("hang_create", {"action": "CreatePullToPushTask", "hang": True, "count": 1}),
    ("hang_delete", {"action": "DeletePullToPushTask", "hang": True, "count": 1}),
)


def owned_live(emu: Emulator) -> list[dict[str, Any]]:
    return [t for t in emu.tasks() if is_relayd_title(t["Title"]) and t["TaskStatus"] == 2 and not t["Failed"]]


def background_fault(run: Run) -> None:
    run.emu.set_fault("*", error_rate=0.05)


def platform_burst(run: Run) -> None:
    name, spec = run.rng.choice(BURSTS)
    run.emu.set_fault(**spec)
    run.faults[name] += 1


def task_fault(run: Run) -> None:
    live = owned_live(run.emu)
    if not live:
        return
    task = run.rng.choice(live)
    roll = run.rng.random()
    if roll < 0.5:
        run.emu.fail_task(task["TaskId"], mode="disable", repeat=run.rng.choice([0, 0, 1]))
        run.faults["stream_failure"] += 1
    elif roll < 0.6:
        run.emu.fail_task(task["TaskId"], mode="disable", repeat=None)
        run.faults["stream_failure_permanent"] += 1
    elif roll < 0.8:
        run.emu.delete_task_behind_back(task["TaskId"])
        run.faults["deleted_by_hand"] += 1
    else:
        run.emu.disable_task_behind_back(task["TaskId"])
        run.faults["disabled_by_hand"] += 1


def foreign_task(run: Run) -> None:
    """Someone else's task on one of relayd's destinations, put straight into the platform's state (through the
    API it would spend this account's write budget, which invariant 4 measures for relayd alone)."""
    live = owned_live(run.emu)
    if not live:
        return
    body = {
        "Title": "foreign",
        "Type": 0,
        "SrcAddr": "rtmp://pull.test/other",
        "DstAddr": run.rng.choice(live)["DstAddr"],
    }
    body |= {"StartTime": int(time.time()), "EndTime": int(time.time()) + run.args.cap}
    outcome = actions.create_task(run.emu.state, body, time.time())
    run.emu._emit(outcome.events)
    run.faults["foreign_task"] += 1


async def forged_callback(run: Run) -> None:
    url = f"http://127.0.0.1:{run.port}/v1/callbacks/s0.0/{'a' * 32}"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with aiohttp.ClientSession() as http, http.post(url, json={"EventType": "fail"}) as response:
            if response.status == 403:
                run.faults["forged_callback"] += 1


async def emulator_restart(run: Run) -> None:
    port = int(run.emu.url.rsplit(":", 1)[1])
    await run.emu.stop()
    await asyncio.sleep(run.rng.uniform(1, 4))  # the outage itself
    await run.emu.start("127.0.0.1", port)
    run.faults["emulator_restart"] += 1


async def sigkill(run: Run) -> None:
    run.proc.kill()
    run.proc.start()
    run.faults["sigkill"] += 1


async def fault_loop(run: Run, stop: asyncio.Event) -> None:
    background_fault(run)
    run.emu.set_callback_faults(drop_rate=0.3, duplicate_rate=0.2, reorder=True, delay_ms=400)
    run.faults["callback_faults_on"] += 1
    tick = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), run.rng.uniform(1.0, 3.0))
        if stop.is_set():
            return
        tick += 1
        task_fault(run)
        if tick % 5 == 0:
            platform_burst(run)
        if tick % 7 == 0:
            background_fault(run)
        if tick % 11 == 0:
            await forged_callback(run)
        if tick % 13 == 0:
            foreign_task(run)
        if tick % 60 == 30:
            await sigkill(run)
        if tick % 90 == 45:
            await emulator_restart(run)


# --- checks ----------------------------------------------------------------------------------------------------


@dataclass
class Checker:
    run: Run
    timing: inv.Timing
    persistent: inv.Persistent
    watch: inv.FailureWatch
    schedules: list[Any]
    seen: set[str] = field(default_factory=set)

    def _compute(self, tasks: list[dict[str, Any]], now: float) -> list[inv.Violation]:
        records, _ = read_store(self.run.state_db)
        found = inv.check_exact_plan(tasks, self.schedules, now, self.timing, excused=inv.excused_titles(records))
        return self.persistent.filter(found, now) + self.watch.check(tasks, records, now)

    async def check(self) -> None:
        # The emulator shares this loop: planning 1,000 schedules here would hold its requests back and release
        # them in a burst, which its rate meter would count against relayd. The CPU work runs in a thread.
        run = self.run
        now = time.time()
        tasks = run.emu.tasks()
        found = await asyncio.to_thread(self._compute, tasks, now)
        for violation in found:
            if str(violation) not in self.seen:
                self.seen.add(str(violation))
                run.violations.append(f"{time.time() - run.started:7.1f}s {violation}")
        run.checks += 1
        if run.proc.proc is not None:
            run.peak_rss_kb = max(run.peak_rss_kb, rss_kb(run.proc.proc.pid))
        lag = await loop_lag(run.port)
        if lag is not None:
            run.lag_max_s = max(run.lag_max_s, lag)


async def check_loop(checker: Checker, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        await checker.check()


def final_checks(run: Run, events: list[Event], secrets: list[str]) -> tuple[int, int]:
    history = run.emu.history()
    schedules = load_dir(run.workdir / "schedules").schedules()
    timing = inv.Timing(cap=run.args.cap, prepare_ahead=run.args.cap, retention=5)
    planned = inv.segments_between(schedules, run.started - 120, time.time(), timing)
    handoffs = inv.check_handoffs(history, planned)
    found = handoffs.violations
    found += inv.check_rates(run.emu.stats(), write_qps=10, list_qps=15)
    log = (run.workdir / "relayd.log").read_text(errors="replace").splitlines()
    found += inv.check_no_secrets(log, secrets)
    found += inv.check_callbacks_once([e for e in events if e.kind == "callback"], run.accepted)
    run.violations += [f"   final {v}" for v in found]
    restarts = sum(1 for e in events if e.kind == "restart")
    return handoffs.seamless, restarts


# --- main ------------------------------------------------------------------------------------------------------


async def soak(args: argparse.Namespace) -> int:
    configure_logging("warning", "console", stream=sys.stderr)  # the emulator's own logs, in this process
    rng = random.Random(args.seed)
    emu = Emulator(EmulatorConfig(max_task_seconds=args.cap, callback_auth_key=AUTH_KEY, seed=args.seed))
    await emu.start()
    with tempfile.TemporaryDirectory(prefix="relayd-soak-") as tmp:
        workdir = Path(tmp)
        write_schedules(workdir, args.schedules, args.minutes, rng)
        port = free_port()
        proc = DaemonProcess(daemon_config(workdir, emu, port, args.cap), workdir / "relayd.log")
        run = Run(args, workdir, emu, proc, port, rng)
        record_accepted_callbacks(emu, run.accepted)
        timing = inv.Timing(cap=args.cap, prepare_ahead=args.cap, retention=5, horizon=600, slack=5)
        budget = RESYNC_S + ATTEMPTS * (BACKOFF_CAP_S + 5) + 15
        schedules = load_dir(workdir / "schedules").schedules()  # the files never change during the soak
        checker = Checker(run, timing, inv.Persistent(grace_s=RESYNC_S + 25), inv.FailureWatch(budget), schedules)
        proc.start()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(fault_loop(run, stop), name="soak-faults"),
            asyncio.create_task(check_loop(checker, stop, args.check_every), name="soak-checks"),
        ]
        await asyncio.sleep(args.minutes * 60)
        stop.set()
        await asyncio.gather(*tasks)
        emu.clear_faults()
        code = proc.terminate(30)
        _, events = read_store(run.state_db)
        secrets = [emu.config.secret_key, AUTH_KEY, (workdir / "state" / "api_token").read_text().strip()]
        seamless, restarts = final_checks(run, events, secrets)
        await emu.stop()
        print_summary(run, seamless, restarts, code)
    return 1 if run.violations or code != 0 else 0


def print_summary(run: Run, seamless: int, restarts: int, exit_code: int) -> None:
    a, stats, history = run.args, run.emu.stats(), run.emu.history()
    print(f"relayd soak: {a.minutes} min, {a.schedules} schedules, cap {a.cap} s, seed {a.seed}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.faults.items()))
    print(f"  faults injected      {sum(run.faults.values())}: {kinds}")
    errors = {k: v for k, v in stats["responses"].items() if k != "OK"}
    print(f"  platform errors      {sum(errors.values())} answers: {errors}")
    cb = stats["callbacks"]
    print(f"  callbacks            events {cb['events']}, dropped {cb['dropped']}, duplicated {cb['duplicated']}")
    print(f"                       delivered {cb['delivered']}, distinct accepted {len(set(run.accepted))}")
    owned = sum(1 for t in history if is_relayd_title(t["Title"]))
    print(f"  tasks created        {len(history)} ({owned} by relayd)")
    print(f"  restarts             {restarts} (Continue/Relaunch; re-creates counted as creates)")
    print(f"  hand-offs            {seamless} measured at 0 s")
    print(f"  invariant checks     {run.checks}")
    print(f"  violations           {len(run.violations)}")
    for line in run.violations[:30]:
        print(f"    {line}")
    print(f"  peak RSS             {run.peak_rss_kb / 1024:.1f} MiB (daemon, VmHWM)")
    print(f"  event-loop lag       max {run.lag_max_s * 1000:.1f} ms (daemon's sampled gauge)")
    peaks, throttled = stats["max_requests_per_1s"], stats["throttled"]
    print(f"  peak requests/1 s    {peaks} (limits write 10, list 15); throttled {throttled}")
    print(f"  final SIGTERM exit   {exit_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=20, help="task cap in seconds (the platform's is 7 days)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check-every", type=float, default=5.0, help="seconds between invariant checks")
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
