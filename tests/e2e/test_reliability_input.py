"""Reliability under bad input: fuzzed schedule files through a live daemon's reload, and mistyped settings.

A broken schedule file is reported (file, location, reason) and skipped; the daemon keeps running and the tasks of
good files are untouched. Settings of the wrong type stop ``relayd run`` before it starts, with exit status 2 and
the offending key named.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from relayd.daemon import RunState
from tests.e2e.conftest import examples
from tests.e2e.harness import iso, live_schedule, running_daemon, settings_for

pytestmark = pytest.mark.slow

_FIELDS = ["id", "source", "destination", "window", "enabled", "title", "group", "restart", "callbacks", "weird"]
_toml_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(["true", "false", "[]", "{}", "1.5", "nan", "2024-13-45T00:00:00Z", '"rtmp://"', '""']),
    st.sampled_from(["start", "end", "cron", "duration", "tz"]).flatmap(
        lambda k: st.text(max_size=20).map(lambda v, k=k: f"{{ {k} = {json.dumps(v)} }}")
    ),
)


def _valid(sid: str, now: int) -> dict[str, str]:
    return {
        "id": json.dumps(sid),
        "source": json.dumps(f"rtmp://pull.test/live/{sid}"),
        "destination": json.dumps(f"rtmp://push.test/live/{sid}"),
        "window": f'{{ start = "{iso(now - 30)}", end = "{iso(now + 90)}" }}',
    }


@st.composite
def schedule_files(draw: st.DrawFn) -> str:
    """A valid schedule with some fields replaced, added or dropped — or plain garbage."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))
    fields = _valid(draw(st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)), int(time.time()))
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.booleans()):
            fields[name] = draw(_toml_values)
        else:
            fields.pop(name, None)
    lines = ["[[schedule]]", *(f"{k} = {v}" for k, v in fields.items())]
    return "\n".join(lines) + "\n"


async def test_fuzzed_schedule_files_are_reported_and_never_crash_the_daemon(emulator: Any, tmp_path: Path) -> None:
    files = examples(schedule_files(), 150, seed=1)
    emu = await emulator(max_task_seconds=120)
    now = int(time.time())
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "good.toml").write_text(live_schedule("good", now - 30, now + 90))
    settings = settings_for(emu, tmp_path, max_task_seconds=120, resync_interval=600)
    loaded = reported = 0
    async with running_daemon(settings) as daemon:
        good = daemon.store.segment("good.0")  # type: ignore[arg-type]
        assert good is not None and good.task_id
        for text in files:
            (schedules / "fuzz.toml").write_text(text)
            await daemon.reload()
            mine = [p for p in daemon.config.problems if "fuzz.toml" in p]
            from_file = [s for s in daemon.engine.schedules.values() if str(s.source_file).endswith("fuzz.toml")]
            assert mine or from_file or not text.strip() or "[[schedule]]" not in text, text
            assert all(len(p) > len(str(schedules / "fuzz.toml")) + 5 for p in mine)  # says what is wrong
            assert not any("Traceback" in p for p in mine)
            loaded += bool(from_file)
            reported += bool(mine)
            assert daemon.state == RunState.STARTED
        await daemon.queue.drained()
        assert daemon.queue.failures == 0
        still = daemon.store.segment("good.0")  # type: ignore[arg-type]
    assert still is not None and still.task_id == good.task_id  # the good file's task was never touched
    assert good.task_id in {t["TaskId"] for t in emu.tasks()}
    assert reported > 10 and loaded > 0  # both outcomes were exercised


_BAD_SETTINGS = {
    "write_qps": '"fast"',
    "resync_interval": "[1, 2]",
    "max_task_seconds": '"a week"',
    "restart_max_attempts": "2.5",
}


async def _run_with(tmp_path: Path, key: str, value: str) -> tuple[int | None, str]:
    config = tmp_path / f"{key}.toml"
    config.write_text(
        f'endpoint = "http://127.0.0.1:9"\naccess_key = "AK"\nsecret_key = "SK"\n'
        f'state_path = "{tmp_path / key / "state.db"}"\n{key} = {value}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relayd", "run", "--config", str(config), stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, err.decode()


async def test_settings_of_the_wrong_type_stop_start_up_naming_the_key(tmp_path: Path) -> None:
    results = await asyncio.gather(*(_run_with(tmp_path, k, v) for k, v in _BAD_SETTINGS.items()))
    for (key, _), (code, err) in zip(_BAD_SETTINGS.items(), results, strict=True):
        assert code == 2, (key, err)
        assert key in err and "Traceback" not in err, (key, err)
        assert not (tmp_path / key / "state.db").exists()  # stopped before touching any state
