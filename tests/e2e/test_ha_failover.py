"""High availability: two ``relayd run`` processes on one real PostgreSQL and one emulator.

The leader is SIGKILLed (the standby takes over within the failover bound and keeps the chains going), then the
new leader is SIGSTOPped past its lease and SIGCONTed after the other instance has taken over: from the emulator's
write journal, tagged per instance, the resumed old leader makes no platform write at all. No task is ever
duplicated and the platform holds exactly the plan throughout.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

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

pytestmark = pytest.mark.slow

LEASE = {"lease_ttl": 4, "lease_renew_interval": 1, "lease_margin": 1.5, "standby_refresh_interval": 2}
CAP = 10
FAILOVER_BOUND_S = 4 + 1 + 25  # ttl + renew + generous room for a loaded CI machine


class Instance:
    def __init__(self, name: str, root: Path, emu: Any, url: str, schema: str, schedules: str) -> None:
        self.name = name
        workdir = root / name
        write_schedules(workdir, schedules)
        settings = process_settings(emu, workdir, instance_id=name, database_url=url, database_schema=schema,
                                    callback_secret="ha-test-secret", api_token="ha-test-token", max_task_seconds=CAP,
                                    prepare_ahead=6, retention=2, resync_interval=10, horizon=300,
                                    restart_backoff_base=0.5, restart_backoff_cap=2, **LEASE)  # fmt: skip
        self.port = int(str(settings["listen"]).rsplit(":", 1)[1])
        config = workdir / "relayd.toml"
        write_env_config(config, settings)
        self.log = workdir / "relayd.log"
        self.proc = DaemonProcess(config, self.log)

    def logged(self, event: str) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count(f'"event": "{event}"')

    def signal(self, signum: int) -> None:
        assert self.proc.proc is not None
        self.proc.proc.send_signal(signum)

    async def ready(self) -> dict[str, Any] | None:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                body: dict[str, Any] = await resp.json()
                return body if resp.status == 200 else None
        except aiohttp.ClientError:
            return None

    async def instances(self) -> dict[str, Any]:
        headers = {"Authorization": "Bearer ha-test-token"}
        url = f"http://127.0.0.1:{self.port}/v1/instances"
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
            assert resp.status == 200
            return dict(await resp.json())


def _stop_all(*instances: Instance) -> None:
    for instance in instances:
        if instance.proc.proc is not None and instance.proc.proc.poll() is None:
            instance.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            instance.proc.terminate(30)


async def _leader_and_standby(
    emu: Any, url: str, schema: str, root: Path
) -> tuple[Instance, Instance, Callable[[], bool]]:
    """Instances a (leading and acting) and b (a ready standby) on three schedules; and the exact-plan check."""
    now = int(time.time())
    schedules = "".join(live_schedule(f"h{n}", now - 5, now + 600) for n in range(3))
    a, b = (Instance(n, root, emu, url, schema, schedules) for n in ("a", "b"))
    plan = load_dir(root / "a" / "schedules").schedules()
    timing = inv.Timing(cap=CAP, prepare_ahead=6, retention=2, slack=4)
    try:
        a.proc.start()
        await wait_for(lambda: a.logged("leader_acting") == 1, 60, what="a leading")
        b.proc.start()
        await wait_for(b.ready, 60, what="b ready as a standby")
    except BaseException:
        _stop_all(a, b)
        raise
    return a, b, lambda: inv.check_exact_plan(owned_tasks(emu), plan, time.time(), timing) == []


@pytest.mark.timeout(300)
async def test_sigkill_then_sigstop_of_the_leader_fails_over_with_no_duplicate_and_no_write_without_a_lease(
    emulator: Any, postgres: PostgresServer, pg_schema: str, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    a, b, exact = await _leader_and_standby(emu, postgres.url, pg_schema, tmp_path)
    try:
        assert (await b.ready() or {}).get("role") == "standby"
        listing = await b.instances()
        assert {i["instance_id"]: i["role"] for i in listing["instances"]} == {"a": "leader", "b": "standby"}
        assert listing["self"]["role"] == "standby"
        await wait_for(exact, 60, what="the plan on the platform")

        # 1. SIGKILL of the leader: b takes over within the bound, and acts (its own writes appear).
        killed = time.monotonic()
        a.proc.kill()
        await wait_for(lambda: b.logged("leader_acting") == 1, FAILOVER_BOUND_S, what="b leading")
        failover_s = time.monotonic() - killed
        assert failover_s <= FAILOVER_BOUND_S
        await wait_for(lambda: emu.write_counts().get("b", 0) > 0, 3 * CAP, what="a platform write by b")
        await wait_for(exact, 30, what="the plan, kept by b")

        # 2. SIGSTOP of the new leader past its lease; a (restarted) takes over; b resumes and must not write.
        a.proc.start()
        await wait_for(a.ready, 60, what="a back as a standby")
        b.signal(signal.SIGSTOP)
        await wait_for(lambda: a.logged("leader_acting") == 2, FAILOVER_BOUND_S, what="a leading again")
        resumed = time.time()
        b.signal(signal.SIGCONT)
        await wait_for(lambda: b.logged("leadership_lost") >= 1, 30, what="b noticing it lost the lease")
        await wait_for(exact, 30, what="the plan, kept by a")
        late = [r for r in emu.requests(instance="b") if r["time"] >= resumed]
        assert late == [], json.dumps(late)
        assert emu.write_counts().get("", 0) == 0  # every write named its instance
    finally:
        _stop_all(a, b)
    history = emu.history()
    assert titles_held_twice(history) == []
    for n in range(3):
        chain = chain_on(history, f"rtmp://push.test/live/h{n}")
        assert chain.overlaps == []
        assert all(gap <= FAILOVER_BOUND_S for gap in chain.gaps), chain.gaps
    logs = a.log.read_text() + b.log.read_text()
    assert "pg-test-secret" not in logs
    assert "Traceback" not in logs


@pytest.mark.timeout(240)
async def test_a_postgresql_restart_steps_the_leader_down_deletes_nothing_and_a_leader_acts_again(
    emulator: Any, postgres: PostgresServer, pg_schema: str, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    a, b, exact = await _leader_and_standby(emu, postgres.url, pg_schema, tmp_path)
    try:
        await wait_for(exact, 60, what="the plan on the platform")
        postgres.stop("immediate")
        try:
            await wait_for(lambda: a.logged("leadership_lost") == 1, 30, what="a stepping down without the database")
            stopped_writes = sum(emu.write_counts().values())
            relaying = {t["TaskId"] for t in owned_tasks(emu) if t["TaskStatus"] == 2}
            assert relaying  # tasks already on the platform keep running while nobody leads
        finally:
            postgres.start()
        assert sum(emu.write_counts().values()) == stopped_writes  # no write, above all no delete, while down
        assert relaying <= {t["TaskId"] for t in emu.tasks()}
        await wait_for(lambda: a.logged("leader_acting") + b.logged("leader_acting") >= 2, 60, what="a new leader")
        await wait_for(exact, 60, what="the plan after the restart")
        assert a.proc.proc is not None and a.proc.proc.poll() is None
        assert b.proc.proc is not None and b.proc.proc.poll() is None
    finally:
        _stop_all(a, b)
    assert titles_held_twice(emu.history()) == []
