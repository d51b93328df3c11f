"""``GET /v1/alerts``, ``relayd alerts [--json]`` and ``relayd alerts test`` over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from relayd.alerts.model import Alert, AlertKind, Condition, Severity
from relayd.cli import cli
from tests.integration.test_web_support import NOW, TOKEN, Harness, open_store, start_harness

HOOK_TOKEN = "hook-2b7f0c9d8e6a4f13"
FAILING = Condition(
    AlertKind.SEGMENT_FAILING, "news.3", Severity.CRITICAL, "Segment is down. Do X.", ("relayd status news",)
)
BROKEN = Condition(AlertKind.CONFIG_PROBLEM, "a.toml", Severity.WARNING, "File a.toml is broken. Fix it.")
OPEN = [Alert(FAILING, NOW - 600), Alert(BROKEN, NOW - 30)]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    harness = await start_harness(store, alerts=lambda: OPEN)
    yield harness
    await harness.close()


async def run(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["alerts", *args], catch_exceptions=False)


async def test_v1_alerts_lists_open_alerts_behind_the_token(h: Harness) -> None:
    async with h.session.get(h.url("/v1/alerts")) as r:
        assert r.status == 401
    async with h.session.get(h.url("/v1/alerts"), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200
        body = await r.json()
    assert body["count"] == 2
    first = body["alerts"][0]
    assert (first["kind"], first["subject"], first["severity"]) == ("segment_failing", "news.3", "critical")
    assert first["opened_at_unix"] == NOW - 600 and first["open_for_s"] == 600
    assert first["links"] == ["relayd status news"] and first["opened_at"].endswith("Z")


async def test_relayd_alerts_table_and_json(h: Harness) -> None:
    result = await run("--url", h.base, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["SEVERITY", "KIND", "SUBJECT", "OPEN", "FOR", "MESSAGE"]
    assert lines[1].split()[:4] == ["critical", "segment_failing", "news.3", "10m"]
    assert "Segment is down" in lines[1] and "Do X" not in lines[1]
    as_json = await run("--url", h.base, "--token", TOKEN, "--json")
    assert json.loads(as_json.output)["count"] == 2


async def test_relayd_alerts_with_a_wrong_token_fails_clearly(h: Harness) -> None:
    result = await run("--url", h.base, "--token", "nope")
    assert result.exit_code == 1 and "rejected the API token" in result.output


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    got: list[dict[str, object]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=200 if request.match_info["kind"] == "ok" else 500)

    app = web.Application()
    app.router.add_post("/{kind}/{token}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"127.0.0.1:{runner.addresses[0][1]}", got
    await runner.cleanup()


async def test_alerts_test_sends_through_the_given_url(
    hook: tuple[str, list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, got = hook
    monkeypatch.delenv("RELAYD_CONFIG", raising=False)
    result = await run("test", "--url", f"json://{base}/ok/{HOOK_TOKEN}")
    assert result.exit_code == 0, result.output
    assert "sent to 1 target" in result.output
    assert len(got) == 1 and "test notification" in str(got[0]["title"])


async def test_alerts_test_names_each_failing_configured_target_redacted(
    hook: tuple[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    base, got = hook
    config = tmp_path / "relayd.toml"
    config.write_text(f'alert_urls = ["json://{base}/ok/{HOOK_TOKEN}", "json://{base}/bad/{HOOK_TOKEN}"]\n')
    result = await run("test", "--config", str(config))
    assert result.exit_code == 1
    assert f"#2 json://{base}/***" in result.output and "#1" not in result.output
    assert HOOK_TOKEN not in result.output
    assert len(got) == 2


async def test_alerts_test_without_targets_says_how_to_add_one(tmp_path: Path) -> None:
    config = tmp_path / "relayd.toml"
    config.write_text("")
    result = await run("test", "--config", str(config))
    assert result.exit_code == 1 and "set alert_urls" in result.output
