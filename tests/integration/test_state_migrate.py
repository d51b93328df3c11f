"""``relayd state migrate --to``: SQLite -> PostgreSQL and back, through the real CLI, on a real server."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relayd.cli import cli
from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store import AppliedSchedule, Event, SegmentState, Store
from relayd.store.postgres import PostgresStore
from tests.integration.postgres import PASSWORD, PostgresServer
from tests.integration.records import seg


async def fill(store: Any) -> None:
    await store.put_many([seg("a", task_id=TaskId("t1"), state=SegmentState.RUNNING),
                          seg("b", state=SegmentState.DELETED, deleted_at=5.0)])  # fmt: skip
    await store.set_applied(AppliedSchedule(ScheduleId("s1"), "d1", "s1.toml", {"id": "s1"}))
    await store.set_meta("callback_secret", "c2VjcmV0")
    for i in range(5):
        await store.add_event(Event(ts=float(i), kind="callback", segment_key=SegmentKey("a"), dedupe_key=f"cb{i}",
                                    data={"i": i}, raw="{}"))  # fmt: skip


async def snapshot(store: Any) -> tuple[Any, ...]:
    events = [dataclasses.replace(e, id=None) for e in await store.events(limit=100)]
    names = store.meta_names()
    return store.segments(include_deleted=True), store.applied(), {n: store.meta(n) for n in names}, events


async def migrate(env: dict[str, str], *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, ["state", "migrate", *args], env=env)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "relayd.db"


async def test_sqlite_to_postgresql_and_back(postgres: PostgresServer, pg_schema: str, state_path: Path,
                                             tmp_path: Path) -> None:  # fmt: skip
    source = await Store.open(state_path)
    await fill(source)
    expected = await snapshot(source)
    await source.close()

    result = await migrate({"RELAYD_STATE_PATH": str(state_path)}, "--to", postgres.url, "--schema", pg_schema)
    assert result.exit_code == 0, result.output
    assert "copied 2 segments, 1 applied schedules, 1 meta values and 5 events" in result.output
    assert PASSWORD not in result.output
    copy = await PostgresStore.open(postgres.url, schema=pg_schema, namespace="relayd")
    try:
        assert await snapshot(copy) == expected
    finally:
        await copy.close()

    back = tmp_path / "back.db"
    env = {"RELAYD_DATABASE_URL": postgres.url, "RELAYD_DATABASE_SCHEMA": pg_schema}
    result = await migrate(env, "--to", str(back))
    assert result.exit_code == 0, result.output
    again = await Store.open(back)
    try:
        assert await snapshot(again) == expected
    finally:
        await again.close()


async def test_a_running_sqlite_source_is_refused(state_path: Path, tmp_path: Path) -> None:
    running = await Store.open(state_path)  # holds the lock, as the daemon does
    try:
        result = await migrate({"RELAYD_STATE_PATH": str(state_path)}, "--to", str(tmp_path / "copy.db"))
    finally:
        await running.close()
    assert result.exit_code == 1
    assert "locked by another relayd" in result.output and "stop that process" in result.output


async def test_a_postgresql_source_with_a_leader_is_refused(postgres: PostgresServer, pg_schema: str,
                                                            tmp_path: Path) -> None:  # fmt: skip
    leader = await PostgresStore.open(postgres.url, schema=pg_schema, namespace="relayd")
    try:
        assert await leader.try_acquire("host-a", ttl_s=60.0) is not None
        env = {"RELAYD_DATABASE_URL": postgres.url, "RELAYD_DATABASE_SCHEMA": pg_schema}
        result = await migrate(env, "--to", str(tmp_path / "copy.db"))
    finally:
        await leader.close()
    assert result.exit_code == 1
    assert "leads on postgresql://relayd:***@" in result.output and "stop every instance first" in result.output


async def test_a_target_that_holds_state_is_refused(state_path: Path, tmp_path: Path) -> None:
    for path in (state_path, tmp_path / "busy.db"):
        store = await Store.open(path)
        await fill(store)
        await store.close()
    result = await migrate({"RELAYD_STATE_PATH": str(state_path)}, "--to", str(tmp_path / "busy.db"))
    assert result.exit_code == 1
    assert "already holds relayd state; migrate into an empty one" in result.output
