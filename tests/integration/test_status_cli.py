"""``relayd status`` against a real server on a free port (the CLI runs in a worker thread with its own loop)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relayd.cli import cli
from relayd.ids import ScheduleId, TaskId
from relayd.store import SegmentState
from relayd.web.views import ScheduleInfo
from tests.integration.test_web_support import (
    NOW,
    TOKEN,
    FakeView,
    Harness,
    open_store,
    put_segment,
    segment,
    start_harness,
)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    await put_segment(
        store, segment("news", 0, NOW - 60, NOW + 3600, task_id=TaskId("ab" * 16), state=SegmentState.RUNNING)
    )
    await put_segment(store, segment("news", 1, NOW + 3600, NOW + 7200, state=SegmentState.PENDING))
    await put_segment(
        store,
        segment(
            "sport",
            0,
            NOW - 60,
            NOW + 60,
            state=SegmentState.FAILED,
            last_error="relaunch refused",
            last_request_id="req-9",
        ),
    )
    view = FakeView(infos=[ScheduleInfo(ScheduleId("news"), "新闻"), ScheduleInfo(ScheduleId("sport"))])
    harness = await start_harness(store, view=view)
    yield harness
    await harness.close()


async def run(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["status", *args], catch_exceptions=False)


async def test_overview_table(h: Harness) -> None:
    result = await run("--url", h.base, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["SCHEDULE", "STATE", "CURRENT", "NEXT", "HAND-OFF", "IN", "FAILURES"]
    news = next(line for line in lines if line.startswith("news"))
    assert "running" in news and "abababababab ends in 1h00m" in news and "#1 pending starts in 1h00m" in news
    sport = next(line for line in lines if line.startswith("sport"))
    assert "failed" in sport and "relaunch refused [req-9]" in sport


async def test_detail_and_json(h: Harness) -> None:
    detail = await run("news", "--url", h.base, "--token", TOKEN)
    assert detail.exit_code == 0 and detail.output.startswith("schedule news (新闻): running")
    raw = await run("news", "--json", "--url", h.base, "--token", TOKEN)
    body = json.loads(raw.output)
    assert [s["key"] for s in body["segments"]] == ["news-0", "news-1"]


async def test_token_file(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text(TOKEN + "\n")
    result = await run("--url", h.base, "--token-file", str(path))
    assert result.exit_code == 0 and "news" in result.output


async def test_wrong_token_exits_1(h: Harness) -> None:
    result = await run("--url", h.base, "--token", "wrong")
    assert result.exit_code == 1 and "rejected the API token" in result.output


async def test_unknown_schedule_exits_1(h: Harness) -> None:
    result = await run("nope", "--url", h.base, "--token", TOKEN)
    assert result.exit_code == 1 and "not found" in result.output


async def test_unreachable_daemon_exits_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await run("--url", f"http://127.0.0.1:{port}", "--token", TOKEN)
    assert result.exit_code == 1 and "not reachable" in result.output


async def test_defaults_come_from_settings_and_the_token_file(
    h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "api_token").write_text(TOKEN + "\n")
    for name in ("RELAYD_CONFIG", "RELAYD_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAYD_LISTEN", "0.0.0.0:" + h.base.rsplit(":", 1)[1])  # wildcard -> loopback
    monkeypatch.setenv("RELAYD_STATE_PATH", str(state_dir / "state.db"))
    result = await run()
    assert result.exit_code == 0, result.output
    assert any(line.startswith("news") for line in result.output.splitlines())
