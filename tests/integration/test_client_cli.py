"""``relayd task ...`` / ``relayd group ...`` through click's CliRunner against a real emulator on 127.0.0.1.

The CLI runs its own event loop (``asyncio.run``), so each invocation runs in a worker thread while the emulator
serves on the test's loop. Credentials come from the SDK's env pair, as an operator would set them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relayd.cli import cli
from relayd.emulator import Emulator
from relayd.ids import SegmentKey
from relayd.schedules.titles import title_for

EmulatorFactory = Callable[..., Awaitable[Emulator]]
Invoke = Callable[..., Awaitable[Result]]


@pytest.fixture
async def invoke(emulator: EmulatorFactory, tmp_path: Path) -> Invoke:
    emu = await emulator()
    env = {
        "VOLC_ACCESSKEY": emu.config.access_key,
        "VOLC_SECRETKEY": emu.config.secret_key,
        "RELAYD_ENDPOINT": emu.url,
        "RELAYD_CONFIG": None,
        "RELAYD_ACCESS_KEY": None,
        "RELAYD_SECRET_KEY": None,
        "HOME": str(tmp_path),
    }

    async def run(*args: str, stdin: str | None = None, **env_overrides: Any) -> Result:
        runner = CliRunner(env=env | env_overrides)
        return await asyncio.to_thread(runner.invoke, cli, list(args), input=stdin)

    return run


def out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_create_list_show_stop_continue_delete(invoke: Invoke) -> None:
    created = out(
        await invoke(
            "task",
            "create",
            "--src",
            "rtmp://s.example.com/live/a",
            "--dst",
            "rtmp://d.example.com/live/a",
            "--start",
            "now",
            "--end",
            "now+3600",
            "--title",
            "cli1",
        )
    )
    task_id = created["TaskId"]
    listed = out(await invoke("task", "list", "--title", "cli1"))
    assert [t["TaskId"] for t in listed["List"]] == [task_id] and listed["Pagination"]["TotalCount"] == 1
    assert out(await invoke("task", "show", task_id))["Status"] == "生效中"
    assert out(await invoke("task", "stop", task_id, "--group", "default"))["ok"] is True
    assert out(await invoke("task", "show", task_id))["Status"] == "停用"
    out(await invoke("task", "continue", task_id))
    out(await invoke("task", "relaunch", task_id))
    out(await invoke("task", "stop", task_id))
    out(await invoke("task", "restart", task_id))
    assert out(await invoke("task", "show", task_id))["Status"] == "生效中"
    out(await invoke("task", "delete", task_id))
    assert out(await invoke("task", "list", "--all"))["List"] == []


async def test_update_changes_only_the_named_fields(invoke: Invoke) -> None:
    task_id = out(
        await invoke(
            "task",
            "create",
            "--src",
            "rtmp://s.example.com/live/b",
            "--dst",
            "rtmp://d.example.com/live/b",
            "--start",
            "now",
            "--end",
            "now+3600",
            "--title",
            "cli2",
            "--callback-url",
            "http://cb.example.com/x",
        )
    )["TaskId"]
    end = int(time.time()) + 7200
    out(await invoke("task", "update", task_id, "--end", str(end)))
    shown = out(await invoke("task", "show", task_id))
    assert datetime.fromisoformat(shown["EndTime"].replace("Z", "+00:00")).timestamp() == end
    assert shown["Title"] == "cli2" and shown["CallbackURL"] == "http://cb.example.com/x"
    assert shown["SrcAddr"] == "rtmp://s.example.com/live/b"


async def test_create_from_a_seed_style_file_and_stdin(invoke: Invoke, tmp_path: Path) -> None:
    now = int(time.time())
    body = {
        "Title": "task001",
        "StartTime": now,
        "EndTime": now + 3600,
        "Type": 1,
        "CycleMode": -1,
        "SrcAddrS": ["https://example.com/live/stream-123.mp4"],
        "OffsetS": [30],
        "PlayTimes": 3,
        "Domain": "push.example.com",
        "App": "live",
        "Stream": "example_stream",
        "PreDownload": 1,
        "ContinueStrategy": 0,
        "GroupName": "default",
    }
    path = tmp_path / "task.json"
    path.write_text(json.dumps(body))
    first = out(await invoke("task", "create", "--file", str(path)))
    second = out(await invoke("task", "create", "--file", "-", "--title", "task002", stdin=json.dumps(body)))
    titles = {t["TaskId"]: t["Title"] for t in out(await invoke("task", "list", "--v2", "--size", "50"))["List"]}
    assert titles[first["TaskId"]] == "task001" and titles[second["TaskId"]] == "task002"


async def test_groups(invoke: Invoke) -> None:
    out(await invoke("group", "create", "RelayGroup001", "--project", "default", "--tag", "key001=v1"))
    out(await invoke("group", "update", "RelayGroup001", "--tag", "key001=v2"))
    groups = {g["Name"]: g for g in out(await invoke("group", "list"))["List"]}
    assert groups["RelayGroup001"]["Tags"] == [{"Key": "key001", "Value": "v2", "Category": "Custom"}]
    out(await invoke("group", "delete", "RelayGroup001"))
    assert "RelayGroup001" not in {g["Name"] for g in out(await invoke("group", "list"))["List"]}


async def test_platform_error_is_one_line_and_exit_1(invoke: Invoke) -> None:
    result = await invoke("task", "delete", "0123456789abcdef0123456789abcdef")
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: DeletePullToPushTask: ResourceNotFound")
    assert "[request_id=" in line and line.endswith("HTTP 404")


async def test_wrong_secret_never_prints_it(invoke: Invoke) -> None:
    result = await invoke("task", "list", "--verbose", VOLC_SECRETKEY="wrong-secret-value")
    assert result.exit_code == 1
    assert "SignatureDoesNotMatch" in result.stderr and "wrong-secret-value" not in result.output


async def test_rule_violations_exit_2_before_sending(invoke: Invoke) -> None:
    result = await invoke(
        "task",
        "create",
        "--src",
        "rtmp://s/l/a",
        "--dst",
        "rtmp://d/l/a",
        "--start",
        "now",
        "--end",
        "now+900000",
        "--title",
        "bad title",
    )
    assert result.exit_code == 2
    assert "Title:" in result.stderr and "EndTime:" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("task", "create", "--file", "/nonexistent.json"), "cannot read"),
        (("task", "create", "--start", "tomorrow"), "neither unix seconds nor RFC3339"),
        (("task", "create", "--start", "2024-01-01T00:00:00"), "no time zone"),
        (("task", "show", "ffffffffffffffffffffffffffffffff"), "not found"),
        (("group", "create", "g1", "--tag", "novalue"), "key=value"),
    ],
)
async def test_usage_errors_exit_2(invoke: Invoke, args: tuple[str, ...], needle: str) -> None:
    result = await invoke(*args)
    assert result.exit_code == 2 and needle in result.output


async def test_missing_credentials_exit_2(invoke: Invoke) -> None:
    result = await invoke("task", "list", VOLC_ACCESSKEY=None, VOLC_SECRETKEY=None)
    assert result.exit_code == 2 and "access_key" in result.stderr


async def test_endpoint_flag_wins_over_env(invoke: Invoke, emulator: EmulatorFactory) -> None:
    other = await emulator()
    listed = out(await invoke("task", "list", "--endpoint", other.url))
    assert listed["List"] == []
    assert other.stats()["requests"].get("ListPullToPushTask") == 1


async def _create(invoke: Invoke, title: str) -> str:
    args = ["--src", "rtmp://s.example.com/live/o", "--dst", f"rtmp://d.example.com/live/{title}"]
    created = out(await invoke("task", "create", *args, "--start", "now", "--end", "now+3600", "--title", title))
    return str(created["TaskId"])


@pytest.mark.parametrize("action", ["stop", "delete"])
async def test_stopping_a_relayd_task_by_hand_warns_that_relayd_will_undo_it(invoke: Invoke, action: str) -> None:
    owned = await _create(invoke, title_for(SegmentKey("news.0"), "relayd"))
    result = await invoke("task", action, owned)
    assert out(result)["ok"] is True  # the operator's command still runs …
    warning = result.stderr
    assert "relayd owns" in warning and owned in warning  # … but is told it will not last
    assert "enabled = false" in warning
    foreign = await _create(invoke, "mine1")
    result = await invoke("task", action, foreign)
    assert out(result)["ok"] is True and result.stderr == ""
