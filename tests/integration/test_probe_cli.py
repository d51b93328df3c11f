"""``relayd probe`` as a process against an emulator: the JSON report, the facts file the daemon reads, and a
SIGTERM mid-probe that still cleans up (exit 130, no task and no group left)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from relayd.emulator import Emulator
from relayd.platform.facts import CallbackSchema, FailureShows, RelaunchFrom, load_facts

EmulatorFactory = Callable[..., Awaitable[Emulator]]
ROOT = Path(__file__).resolve().parents[2]


def probe_env(emu: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    return env | {
        "RELAYD_ENDPOINT": emu.url,
        "RELAYD_ACCESS_KEY": emu.config.access_key,
        "RELAYD_SECRET_KEY": emu.config.secret_key,
        "RELAYD_REGION": emu.state.quirks.region.value,
        "RELAYD_LISTEN": "127.0.0.1:0",
        "HOME": str(ROOT),  # no ~/.volc/credentials of the machine's user
    }


async def start_probe(emu: Emulator, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relayd", "probe", "--callback-wait", "3", "--failure-wait", "6", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=probe_env(emu) | env,
    )  # fmt: skip


async def test_probe_cli_prints_json_and_writes_the_facts_file(emulator: EmulatorFactory, tmp_path: Path) -> None:
    emu = await emulator(profile="strict", admin=True)
    facts_file = tmp_path / "platform-facts.json"
    proc = await start_probe(emu, "--json", "--write", str(facts_file))
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["facts"]["relaunch_from"] == "disabled"
    assert report["run"]["leftovers"] == []
    facts, unknown = load_facts(facts_file)
    assert unknown == []
    assert facts.relaunch_from is RelaunchFrom.DISABLED
    assert facts.callback_schema is CallbackSchema.ALIBABA
    assert facts.failure_shows is FailureShows.STAY_CALLBACK
    assert facts.destination_exclusive is True and facts.destination_touching_ok is False
    assert facts.source == "probe" and "request_id=" in facts.evidence["past_start"]
    assert emu.tasks() == []


async def test_probe_cli_text_report_names_answers_and_strategies(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    proc = await start_probe(emu, "--source", "rtmp://src.example.com/live/probe")  # relays: the Update trial answers
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "Q10 two tasks on one DstAddr refused: no" in text
    assert "relayd will: hot reload updates the running task in place" in text
    assert "§4 a failing relay shows as: disable" in text
    assert "cleanup: every task and the group the probe created are deleted" in text


async def interrupt_mid_probe(emu: Emulator, sig: signal.Signals, tasks: int, **env: str) -> None:
    """Start the probe, send ``sig`` once it has created ``tasks`` tasks, and check that it cleaned up."""
    proc = await start_probe(emu, **env)
    deadline = time.monotonic() + 60
    while len(emu.tasks()) < tasks:
        assert time.monotonic() < deadline and proc.returncode is None, "the probe created no task in time"
        await asyncio.sleep(0.02)
    proc.send_signal(sig)
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert "interrupted; cleanup ran" in err.decode()
    assert "probe_leftovers" not in err.decode()
    assert emu.tasks() == []
    assert emu.history() and all(task["DeletedAt"] is not None for task in emu.history())
    assert not any(g.name.startswith("relaydprobe") for g in emu.state.groups.listing([0]))


async def test_sigterm_mid_probe_cleans_up(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="byteplus", admin=True)  # 1 Create/s: the probe is mid-way for seconds
    await interrupt_mid_probe(emu, signal.SIGTERM, tasks=2)


async def test_sigint_mid_probe_cleans_up_and_the_probe_kept_the_configured_pace(emulator: EmulatorFactory) -> None:
    """Ctrl-C cleans up like SIGTERM; and with ``platform = "byteplus"`` (create_update_qps = 1) the probe's Creates
    go at 1/s from the first one, so the platform never has to throttle them."""
    emu = await emulator(profile="byteplus", admin=True)
    # The endpoint and region given explicitly (probe_env) still win over the preset's.
    await interrupt_mid_probe(emu, signal.SIGINT, tasks=3, RELAYD_PLATFORM="byteplus")
    assert emu.stats()["responses"].get("FlowLimitExceeded", 0) == 0
