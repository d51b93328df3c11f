"""The daemon keeps to what ``relayd probe`` found: through the real wiring (``build_parts``), a facts file saying
"Titles of at most 10 characters, Create/Update at 1/s" tightens the settings' 20 characters and 10/s, against an
emulator playing exactly that platform while relayd's ``platform`` setting is left at its default."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from relayd.emulator import Emulator
from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.platform.live import LivePlatform
from relayd.schedules.model import Schedule
from relayd.settings import Settings, load_settings
from relayd.volc.pacing import ActionClass
from relayd.wiring import Parts, build_parts

EmulatorFactory = Callable[..., Awaitable[Emulator]]
SCHEDULES = 3


@pytest.fixture(autouse=True)
def _no_relayd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYD_CONFIG", raising=False)
    for name in ("PLATFORM", "REGION", "ENDPOINT", "SERVICE", "TITLE_LIMIT", "CREATE_UPDATE_QPS", "PLATFORM_FACTS"):
        monkeypatch.delenv(f"RELAYD_{name}", raising=False)


def settings(emu: Emulator, tmp_path: Path, facts: dict[str, Any] | None) -> Settings:
    path = None
    if facts is not None:
        path = tmp_path / "facts.json"
        path.write_text(json.dumps({"version": 1, "facts": facts, "evidence": {}}))
    return load_settings(
        None,
        endpoint=emu.url,
        access_key=emu.config.access_key,
        secret_key=emu.config.secret_key,
        schedules_dir=tmp_path,
        state_path=tmp_path / "state.db",
        listen="127.0.0.1:0",
        public_url="http://127.0.0.1:9",
        platform_facts=path,
    )


def schedules(now: int) -> list[Schedule]:
    return [
        Schedule.model_validate(
            {
                "id": f"bp{i}",
                "source": f"rtmp://src.example.com/live/{i}",
                "destination": f"rtmp://push.example.net/live/{i}",
                "window": {"start": now + 600, "end": now + 1200},
            }
        )
        for i in range(SCHEDULES)
    ]


async def leading(parts: Parts) -> Parts:
    """The parts of a daemon that won the election and may write (as after its first pass)."""
    assert await parts.elector.first_round()
    parts.elector.begin_acting()
    return parts


def create_rate(platform: object) -> float:
    assert isinstance(platform, LivePlatform)
    return platform._client.pacer.gate(ActionClass.CREATE).rate  # the daemon's own client, as built


async def test_probe_facts_tighten_titles_and_create_pace_through_the_wiring(
    emulator: EmulatorFactory, tmp_path: Path
) -> None:
    emu = await emulator(quirks={"title_limit": "10", "create_update_qps": "1"})
    configured = settings(emu, tmp_path, {"title_limit": 10, "create_update_qps": 1.0})
    assert (configured.title_limit, configured.create_update_qps) == (20, 10.0)  # the platform setting's defaults
    async with AsyncExitStack() as stack:
        with capture_logs() as logs:
            parts = await leading(await build_parts(configured, stack, Metrics()))
        applied = {e["fact"]: (e["configured"], e["applied"]) for e in logs if e["event"] == "platform_fact_applied"}
        assert applied == {"title_limit": (20, 10), "create_update_qps": (10.0, 1.0)}
        assert create_rate(parts.platform) == 1.0
        parts.set_schedules(schedules(int(time.time())))
        started = time.monotonic()
        async with asyncio.timeout(60):
            await asyncio.gather(*(parts.engine.reconcile(ScheduleId(f"bp{i}")) for i in range(SCHEDULES)))
        elapsed = time.monotonic() - started
    titles = [task["Title"] for task in emu.tasks()]
    assert len(titles) == SCHEDULES and all(len(title) == 10 for title in titles)
    assert emu.stats()["throttled"] == {}  # paced at the platform's 1/s: nothing refused
    assert elapsed >= SCHEDULES - 1 - 0.1  # three Creates at 1/s


async def test_without_facts_the_settings_stand(emulator: EmulatorFactory, tmp_path: Path) -> None:
    emu = await emulator()
    async with AsyncExitStack() as stack:
        with capture_logs() as logs:
            parts = await leading(await build_parts(settings(emu, tmp_path, None), stack, Metrics()))
        assert create_rate(parts.platform) == 10.0
        parts.set_schedules(schedules(int(time.time()))[:1])
        await asyncio.wait_for(parts.engine.reconcile(ScheduleId("bp0")), 30)
    assert [len(task["Title"]) for task in emu.tasks()] == [20]
    assert not [e for e in logs if e["event"] == "platform_fact_applied"]
