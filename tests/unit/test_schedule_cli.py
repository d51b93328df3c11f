"""`relayd validate`, `relayd plan` and `relayd schema` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayd.cli import cli
from relayd.cli.schedules import guard_note
from relayd.schedules.guard import check_removals
from relayd.schedules.loader import load_dir
from relayd.schedules.planner import plan

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "schedules"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RELAYD_CONFIG", "RELAYD_SCHEDULES_DIR", "RELAYD_MAX_TASK_SECONDS", "RELAYD_HORIZON"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_validate_examples_passes() -> None:
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 5 schedule(s), 2 group(s) in 6 file(s)")


def test_validate_reports_every_problem_and_fails(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[[schedule]]\nid = "x"\nsource = "ftp://a/b"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(line.startswith(f"{tmp_path / 'a.toml'}:3: schedule[x].source: must be a URL") for line in lines)
    assert any("schedule[x].destination: is required" in line for line in lines)
    assert lines[-1] == "3 problem(s) in 1 file(s)"


def test_validate_uses_schedules_dir_from_settings(tmp_path: Path) -> None:
    config = tmp_path / "relayd.toml"
    config.write_text(f'schedules_dir = "{EXAMPLES}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "5 schedule(s)" in result.output


def test_plan_json_matches_the_planner() -> None:
    args = ["plan", str(EXAMPLES), "--at", "2026-02-10T00:00:00Z", "--json", "--horizon", "3d"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["errors"] == []
    rows = {row["id"]: row for row in report["schedules"]}
    now = 1770681600
    for schedule in load_dir(EXAMPLES).schedules():
        expected = plan(schedule, now=now, max_task_seconds=604800, horizon_s=3 * 86400)
        got = rows[schedule.id]["segments"]
        assert [s["title"] for s in got] == [s.title for s in expected]
        assert [s["body"]["StartTime"] for s in got] == [s.start for s in expected]
        assert rows[schedule.id]["actions"] == []
    evening = rows["evening-show"]["segments"]
    assert [s["start"] for s in evening] == ["2026-02-10T12:00:00Z", "2026-02-11T12:00:00Z", "2026-02-12T12:00:00Z"]
    assert evening[0]["body"]["Domain"] == "push.example.net"
    branded = json.loads(CliRunner().invoke(cli, [*args[:3], "2026-05-20T12:00:00Z", "--json"]).output)
    (row,) = [r for r in branded["schedules"] if r["id"] == "branded-match"]
    picture = row["segments"][0]["body"]["Watermark"]["Picture"]
    assert picture.startswith("data:image/png;base64,<") and picture.endswith("base64 characters>")


def test_plan_table_and_cap(tmp_path: Path) -> None:
    args = ["plan", str(EXAMPLES), "--at", "2026-01-01T00:00:00Z", "--max-task-seconds", "86400", "--horizon", "2d"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "winter-news.31 " in result.output and "winter-news.32 " in result.output
    assert "1d  rd" in result.output


def test_plan_fails_on_problems_and_bad_at(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[[schedule]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["plan", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert "TOML syntax error" in json.loads(result.output)["errors"][0]
    bad = CliRunner().invoke(cli, ["plan", str(EXAMPLES), "--at", "2026-01-01T00:00:00"])
    assert bad.exit_code == 2 and "no UTC offset" in bad.output


def test_schema_is_json_schema_of_the_file() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    props = schema["$defs"]["Schedule"]["properties"]
    assert {"id", "source", "destination", "window", "recurrence", "watermark", "restart"} <= props.keys()
    assert "source_file" not in props
    assert schema["$defs"]["Schedule"]["additionalProperties"] is False
    assert {"type": "string", "description": "live pull URL"} in props["source"]["anyOf"]


def test_plan_live_names_the_removals_the_guard_would_hold() -> None:
    applied = {f"s{i}" for i in range(10)}
    held = guard_note(check_removals(applied, {"s0"}, max_removals=3, max_removal_fraction=0.1))
    assert held is not None
    assert "hold the removal of 9 schedule(s) (over the limit of 3): s1, s2" in held
    assert "relayd apply --allow-removals" in held
    everything = guard_note(check_removals({"a", "b"}, set(), max_removals=3, max_removal_fraction=0.1))
    assert everything is not None and "every schedule would go" in everything
    assert guard_note(check_removals(applied, applied - {"s0"}, max_removals=3, max_removal_fraction=0.1)) is None


@pytest.mark.parametrize("how", ["platform", "facts"])
def test_plan_makes_the_titles_the_daemon_makes(tmp_path: Path, how: str) -> None:
    """``platform = "byteplus"``, or a probe's facts file saying Titles may have 10 characters: the daemon makes
    10-character Titles, so ``relayd plan`` (and ``--live``, which compares them with the platform's) shows those."""
    config = tmp_path / "relayd.toml"
    if how == "platform":
        config.write_text(f'schedules_dir = "{EXAMPLES}"\nplatform = "byteplus"\n', encoding="utf-8")
    else:
        facts = tmp_path / "facts.json"
        facts.write_text(json.dumps({"version": 1, "facts": {"title_limit": 10}}), encoding="utf-8")
        config.write_text(f'schedules_dir = "{EXAMPLES}"\nplatform_facts = "{facts}"\n', encoding="utf-8")
    args = ["plan", "--config", str(config), "--at", "2026-02-10T00:00:00Z", "--json", "--horizon", "3d"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    titles = [s["title"] for row in json.loads(result.output)["schedules"] for s in row["segments"]]
    assert titles and all(len(title) == 10 for title in titles), titles
