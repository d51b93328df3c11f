"""Two schedules pushing to one destination at overlapping times: a warning that rejects neither file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from relayd.cli.schedules import validate
from relayd.schedules.loader import load_dir
from relayd.schedules.model import Schedule
from relayd.schedules.overlaps import destination_key, find_overlaps

NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


def window(sid: str, dest: str, start: str, end: str | None = None, **extra: object) -> dict[str, object]:
    timing = {"start": start} | ({"end": end} if end else {})
    return {"id": sid, "source": f"rtmp://o.example.com/live/{sid}", "destination": dest, "window": timing} | extra


def daily(sid: str, dest: str, cron: str, duration: str) -> dict[str, object]:
    rec = {"cron": cron, "duration": duration, "timezone": "Asia/Shanghai"}
    return {"id": sid, "source": f"rtmp://o.example.com/live/{sid}", "destination": dest, "recurrence": rec}


def schedules(*tables: dict[str, object]) -> list[Schedule]:
    return [Schedule.model_validate(t | {"source_file": "s.toml", "source_line": i + 1}) for i, t in enumerate(tables)]


DEST = "rtmp://push.example.com/live/main?auth=SECRETTOKEN"


def test_overlapping_windows_on_one_destination() -> None:
    found = find_overlaps(
        schedules(
            window("a", DEST, "2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"),
            window("b", "rtmp://push.example.com/live/main", "2026-02-05T00:00:00Z"),
        ),
        now=NOW,
    )
    assert [(o.first.id, o.second.id, o.start) for o in found] == [
        ("a", "b", int(datetime(2026, 2, 5, tzinfo=UTC).timestamp()))
    ]
    assert found[0].destination == "push.example.com/live/main"


def test_touching_windows_and_other_destinations_do_not_overlap() -> None:
    found = find_overlaps(
        schedules(
            window("a", DEST, "2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"),
            window("b", DEST, "2026-02-10T00:00:00Z"),
            window("c", "rtmp://push.example.com/live/other", "2026-02-01T00:00:00Z"),
            window("d", DEST, "2026-02-01T00:00:00Z", enabled=False),
        ),
        now=NOW,
    )
    assert found == []


def test_url_and_domain_app_stream_name_the_same_destination() -> None:
    triple = {"domain": "PUSH.example.com", "app": "live", "stream": "main"}
    assert destination_key(schedules(window("a", DEST, "2026-02-01T00:00:00Z"))[0].destination) == (
        destination_key(schedules(window("b", triple, "2026-02-01T00:00:00Z"))[0].destination)  # type: ignore[arg-type]
    )


def test_recurrences_overlap_only_when_their_occurrences_do() -> None:
    clash = find_overlaps(
        schedules(daily("a", DEST, "0 20 * * *", "2h"), daily("b", DEST, "0 21 * * *", "2h")), now=NOW
    )
    assert [(o.first.id, o.second.id) for o in clash] == [("a", "b")]
    apart = find_overlaps(
        schedules(daily("a", DEST, "0 20 * * *", "2h"), daily("b", DEST, "0 22 * * *", "1h")), now=NOW
    )
    assert apart == []


def test_a_window_against_a_recurrence() -> None:
    found = find_overlaps(
        schedules(
            daily("a", DEST, "0 20 * * *", "2h"), window("b", DEST, "2026-01-03T12:30:00Z", "2026-01-03T13:00:00Z")
        ),
        now=NOW,
    )
    assert [(o.first.id, o.second.id) for o in found] == [("a", "b")]  # 20:30 Shanghai is 12:30 UTC


GOOD = """\
[[schedule]]
id = "{sid}"
source = "rtmp://origin.example.com/live/{sid}"
destination = "rtmp://push.example.com/live/main?auth=SECRETTOKEN"
window = {{ start = 2026-01-01T00:00:00Z }}
"""


def test_the_loader_warns_and_keeps_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD.format(sid="a"), encoding="utf-8")
    (tmp_path / "b.toml").write_text("\n" + GOOD.format(sid="b"), encoding="utf-8")
    result = load_dir(tmp_path, now=NOW)
    assert result.all_problems() == []
    assert [s.id for s in result.schedules()] == ["a", "b"]
    (warning,) = result.warnings
    assert (warning.path, warning.line, warning.field) == (str(tmp_path / "b.toml"), 2, "schedule[b].destination")
    assert "push.example.com/live/main" in warning.message and f"{tmp_path / 'a.toml'}:1" in warning.message
    assert "SECRETTOKEN" not in str(warning)
    outcome = CliRunner().invoke(validate, [str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    assert "warning: " in outcome.output and "SECRETTOKEN" not in outcome.output
