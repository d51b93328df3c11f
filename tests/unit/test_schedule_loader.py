"""Loading schedule files: one precise, located message per kind of bad input; good files survive bad ones."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from relayd.schedules import loader
from relayd.schedules.loader import ConfigProblem, load_dir, load_file
from relayd.schedules.model import Schedule

REPO = Path(__file__).resolve().parents[2]
GOOD = """\
[[schedule]]
id = "news"
source = "rtmp://origin.example.com/live/news"
destination = "rtmp://push.example.com/live/news"
window = { start = 2026-01-01T00:00:00Z, end = 2026-03-01T00:00:00Z }
"""


def png(width: int, height: int, *, pad: int = 200) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"tEXt", b"x" * pad) + chunk(b"IEND", b"")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(path: Path) -> ConfigProblem:
    result = load_file(path)
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    assert result.schedules == []
    return result.problems[0]


def test_examples_in_config_validate() -> None:
    result = load_dir(REPO / "config" / "schedules")
    assert [str(p) for p in result.all_problems()] == []
    ids = {s.id for s in result.schedules()}
    assert {"winter-news", "evening-show", "lobby-cam", "promo-loop", "branded-match"} <= ids
    kinds = {type(s.source).__name__ for s in result.schedules()}
    assert kinds == {"LiveSource", "VodSource"}
    assert any(s.watermark and s.watermark.picture for s in result.schedules())
    assert any(s.destination.domain for s in result.schedules())
    assert any(s.recurrence for s in result.schedules())
    assert any(s.window and s.window.end is None for s in result.schedules())
    assert result.groups()


def test_good_file_loads_with_its_header_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.toml", "# comment\n\n" + GOOD)
    result = load_file(path)
    assert result.problems == []
    (schedule,) = result.schedules
    assert (schedule.source_file, schedule.source_line) == (str(path), 3)
    assert len(result.digest) == 64


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", GOOD + '\n[[schedule]\nid = "x"\n'))
    assert problem.line == 7
    assert "TOML syntax error" in problem.message
    assert str(problem).startswith(f"{tmp_path / 'a.toml'}:7: TOML syntax error")


def test_wrong_type(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", GOOD + 'callbacks = "maybe"\n'))
    assert problem.field == "schedule[news].callbacks"
    assert problem.line == 6
    assert "'maybe'" in problem.message
    assert problem.fix == "use true or false, without quotes"


def test_missing_field(tmp_path: Path) -> None:
    text = GOOD.replace('destination = "rtmp://push.example.com/live/news"\n', "")
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert (problem.field, problem.message, problem.line) == ("schedule[news].destination", "is required", 1)
    assert problem.fix is not None and problem.fix.startswith("add destination = ")


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = GOOD.replace("destination =", "destinaton =")
    problems = load_file(write(tmp_path, "a.toml", text)).problems
    unknown = next(p for p in problems if "unknown key" in p.message)
    assert str(unknown) == (
        f"{tmp_path / 'a.toml'}:4: schedule[news]: unknown key 'destinaton' — did you mean 'destination'?"
    ), "the key's own line, not the table's header"


YAML = (
    "schedule:\n"
    "  - id: y1\n"
    "    source: rtmp://origin.example.com/live/y\n"
    "    destination: rtmp://push.example.com/live/y\n"
    "    window:\n"
    "      start: 2026-01-01T00:00:00Z\n"
    "      end: 2025-01-01T00:00:00Z\n"
)


def test_unknown_key_in_yaml_names_its_own_line(tmp_path: Path) -> None:
    text = YAML.replace("end: 2025-01-01", "ends: 2026-02-01") + "    colour: red\n"
    problems = load_file(write(tmp_path, "a.yaml", text)).problems
    assert sorted((p.line, p.field, p.message) for p in problems) == [
        (7, "schedule[y1].window", "unknown key 'ends'"),
        (8, "schedule[y1]", "unknown key 'colour'"),
    ]


@pytest.mark.parametrize(("key", "value"), [("enabled", '"yes"'), ("callbacks", "1"), ("enabled", '"false"')])
def test_booleans_are_strict(tmp_path: Path, key: str, value: str) -> None:
    problem = only_problem(write(tmp_path, "a.toml", GOOD + f"{key} = {value}\n"))
    assert (problem.field, problem.line) == (f"schedule[news].{key}", 6)
    assert problem.fix == "use true or false, without quotes"


def test_pre_download_is_strict_too(tmp_path: Path) -> None:
    text = GOOD.replace(
        'source = "rtmp://origin.example.com/live/news"',
        'source = { playlist = [{ url = "https://v.example/a.mp4" }] }\npre_download = "on"',
    )
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert problem.field == "schedule[news].pre_download"
    assert problem.fix == "use true or false, without quotes"


def test_unknown_nested_key_suggests_within_its_table(tmp_path: Path) -> None:
    text = GOOD.replace("end = 2026", "ends = 2026")
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert problem.field == "schedule[news].window"
    assert problem.fix == "did you mean 'end'?"


def test_bad_url_uses_platform_rules(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", GOOD.replace("rtmp://origin", "ftp://origin")))
    assert problem.field == "schedule[news].source"
    assert problem.line == 3
    assert "schemes" in problem.message and "ftp://origin" in problem.message


def test_inverted_window(tmp_path: Path) -> None:
    text = GOOD.replace("end = 2026-03-01T00:00:00Z", "end = 2025-12-01T00:00:00Z")
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert problem.field == "schedule[news].window.end"
    assert problem.line == 5
    assert problem.message.startswith("must be after start (2025-12-01T00:00:00+00:00")
    assert problem.fix == "set end later than start or remove it to run forever"


def test_window_too_short(tmp_path: Path) -> None:
    text = GOOD.replace("end = 2026-03-01T00:00:00Z", "end = 2026-01-01T00:00:30Z")
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert problem.field == "schedule[news].window.end"
    assert "30 s after start" in problem.message


def test_naive_time_needs_timezone(tmp_path: Path) -> None:
    text = GOOD.replace("start = 2026-01-01T00:00:00Z", "start = 2026-01-01T00:00:00")
    problem = only_problem(write(tmp_path, "a.toml", text))
    assert problem.field == "schedule[news].window.start"
    assert "no UTC offset" in problem.message
    fixed = load_file(write(tmp_path, "b.toml", text.replace("window = {", 'window = { timezone = "Asia/Tokyo",')))
    assert fixed.problems == []
    assert fixed.schedules[0].window is not None
    assert fixed.schedules[0].window.start.utcoffset() is not None


RECURRING = """\
[[schedule]]
id = "evening"
source = "rtmp://origin.example.com/live/e"
destination = "rtmp://push.example.com/live/e"

[schedule.recurrence]
cron = "{cron}"
duration = "{duration}"
timezone = "Asia/Shanghai"
"""


def test_bad_cron(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", RECURRING.format(cron="0 20 * *", duration="2h")))
    assert (problem.field, problem.line) == ("schedule[evening].recurrence.cron", 7)
    assert problem.message == "has 4 fields"
    assert problem.fix is not None and "minute hour day-of-month month day-of-week" in problem.fix


def test_overlapping_occurrences(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", RECURRING.format(cron="0 */2 * * *", duration="3h")))
    assert (problem.field, problem.line) == ("schedule[evening].recurrence.duration", 8)
    assert "only 7200 s apart" in problem.message


def test_bad_duration_and_timing_choice(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", RECURRING.format(cron="0 20 * * *", duration="2 hours")))
    assert problem.field == "schedule[evening].recurrence.duration"
    both = load_file(
        write(tmp_path, "b.toml", GOOD + "recurrence = { cron = '0 1 * * *', duration = 60, timezone = 'UTC' }\n")
    )
    assert any("exactly one of window or recurrence" in p.message for p in both.problems)


WATERMARKED = GOOD + 'watermark = { file = "{file}", x = 0.1, y = 0.1, ratio = 0.2 }\n'


def test_watermark_is_embedded(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(png(64, 32))
    result = load_file(write(tmp_path, "a.toml", WATERMARKED.replace("{file}", "logo.png")))
    assert result.problems == []
    mark = result.schedules[0].watermark
    assert mark is not None and mark.picture is not None and mark.picture.startswith("data:image/png;base64,")


def test_missing_watermark_file(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", WATERMARKED.replace("{file}", "nope.png")))
    assert (problem.field, problem.line) == ("schedule[news].watermark.file", 6)
    assert "cannot read 'nope.png'" in problem.message


def test_oversized_watermark(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(png(2000, 100))
    problem = only_problem(write(tmp_path, "a.toml", WATERMARKED.replace("{file}", "big.png")))
    assert problem.field == "schedule[news].watermark.file"
    assert "2000x100" in problem.message
    (tmp_path / "heavy.png").write_bytes(png(10, 10, pad=2 * 1024 * 1024 + 10))
    heavy = only_problem(write(tmp_path, "b.toml", WATERMARKED.replace("{file}", "heavy.png")))
    assert "bytes" in heavy.message


def test_duplicate_id_in_one_file(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD + "\n" + GOOD)
    result = load_dir(tmp_path)
    (problem,) = result.all_problems()
    assert result.schedules() == [], "a file with a problem is skipped as a whole"
    assert problem.line == 7
    assert "duplicate schedule 'news' (also at line 1)" in problem.message


def test_duplicate_id_across_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    write(tmp_path, "b.toml", "\n" + GOOD)
    result = load_dir(tmp_path)
    (problem,) = result.problems
    assert problem.path == str(tmp_path / "b.toml") and problem.line == 2
    assert f"{tmp_path / 'a.toml'}:1" in problem.message
    assert [s.source_file for s in result.schedules()] == [str(tmp_path / "a.toml")]


def test_bad_file_is_skipped_and_the_rest_load(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    write(tmp_path, "b.toml", GOOD.replace('"news"', '"other"').replace("rtmp://push", "push"))
    write(tmp_path, ".hidden.toml", "not toml at all [")
    write(tmp_path, "c.toml~", "backup [")
    write(tmp_path, "notes.txt", "ignored")
    result = load_dir(tmp_path)
    assert [f.path.name for f in result.files] == ["a.toml", "b.toml"]
    assert [s.id for s in result.schedules()] == ["news"]
    assert len(result.all_problems()) == 1


def test_missing_directory_is_unreadable_not_empty(tmp_path: Path) -> None:
    result = load_dir(tmp_path / "nope")
    assert result.files == []
    assert result.unreadable is not None, "a missing directory must not read as an empty one"
    assert result.unreadable.path == str(tmp_path / "nope")
    assert "does not exist" in result.unreadable.message
    assert result.unreadable.fix is not None and "schedules_dir" in result.unreadable.fix
    assert result.all_problems() == [result.unreadable]


def test_a_file_where_the_directory_should_be_is_unreadable(tmp_path: Path) -> None:
    write(tmp_path, "schedules.d", GOOD)
    result = load_dir(tmp_path / "schedules.d")
    assert result.unreadable is not None
    assert "is not a directory" in result.unreadable.message


def test_a_directory_that_cannot_be_listed_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # root reads any directory whatever its mode, so the refusal is simulated where the loader lists it
    write(tmp_path, "a.toml", GOOD)

    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(loader.os, "scandir", refuse)
    result = load_dir(tmp_path)
    assert result.unreadable is not None
    assert "Permission denied" in result.unreadable.message
    assert result.files == []


def test_an_emptied_directory_reads_as_empty(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not a schedule file")
    result = load_dir(tmp_path)
    assert (result.files, result.unreadable, result.all_problems()) == ([], None, [])


def test_groups_and_their_checks(tmp_path: Path) -> None:
    text = '[[group]]\nname = "news"\ntags = { team = "ops" }\n\n[[group]]\nname = "bad name!"\n'
    result = load_file(write(tmp_path, "g.toml", text))
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'g.toml'}:6: group[bad name!].name: is not a valid group name ('bad name!') — "
        "use 1-20 letters, digits or Chinese characters"
    ]
    assert result.groups[0].project == "default" and result.groups[0].tags == {"team": "ops"}


def test_unknown_top_level_table(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", "[[schedules]]\nid = 'x'\n"))
    assert problem.fix == "did you mean [[schedule]]?"


def test_internal_keys_are_not_accepted_from_files(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "a.toml", GOOD + 'source_file = "/etc/passwd"\n'))
    assert problem.message == "unknown key 'source_file'"


def test_yaml_files_have_exact_lines(tmp_path: Path) -> None:
    text = YAML
    problem = only_problem(write(tmp_path, "a.yaml", text))
    assert (problem.field, problem.line) == ("schedule[y1].window.end", 7)
    good = load_file(write(tmp_path, "b.yml", text.replace("2025-01-01", "2026-02-01")))
    assert good.problems == [] and good.schedules[0].source_line == 2


def test_schedule_round_trips_through_json(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(png(64, 32))
    schedules = load_dir(REPO / "config" / "schedules").schedules()
    for schedule in schedules:
        again = Schedule.model_validate(schedule.model_dump(mode="json"))
        assert again == schedule
        assert again.digest() == schedule.digest()


def test_digest_tracks_content_not_location() -> None:
    (schedule,) = [s for s in load_dir(REPO / "config" / "schedules").schedules() if s.id == "winter-news"]
    moved = schedule.model_copy(update={"source_line": 99, "source_file": "elsewhere.toml"})
    assert moved.digest() == schedule.digest()
    data = schedule.model_dump(mode="json") | {"destination": {"url": "rtmp://other.example/live/x"}}
    assert Schedule.model_validate(data).digest() != schedule.digest()


@pytest.mark.parametrize(
    ("snippet", "field", "needle"),
    [
        ('source = { playlist = [{ url = "https://v.example/a.mp4" }], loop = 0 }', "source.loop", "forever"),
        (
            'source = { playlist = [{ url = "https://v.example/a.mp4", duration = 5, end_offset = 9 }] }',
            "source.playlist[0]",
            "past duration",
        ),
        ("pre_download = true", "pre_download", "VOD playlists only"),
        ('id = "has.dot"', "", "not a valid id"),
    ],
)
def test_more_field_rules(tmp_path: Path, snippet: str, field: str, needle: str) -> None:
    key = snippet.split(" =", 1)[0]
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"{key} =")]
    problems = load_file(write(tmp_path, "a.toml", "\n".join([*lines, snippet]) + "\n")).problems
    assert any(needle in p.message and (p.field or "").endswith(field) for p in problems), [str(p) for p in problems]


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_a_file_name_that_is_not_utf8_is_reported_escaped_and_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    with open(os.path.join(os.fsencode(tmp_path), b"\xff\xfe.toml"), "wb") as bad:
        bad.write(GOOD.replace('"news"', '"other"').encode())
    result = load_dir(tmp_path)
    assert [f.path.name for f in result.files] == ["a.toml"]
    assert [s.id for s in result.schedules()] == ["news"]
    (problem,) = result.all_problems()
    assert problem.path == f"{tmp_path}/\\xff\\xfe.toml"
    assert "not valid UTF-8" in problem.message and problem.fix is not None
    texts = [str(p) for p in result.all_problems()] + [str(f.path) for f in result.files]
    texts += [s.source_file for s in result.schedules()]
    assert all(encodable(t) for t in texts), texts


def test_a_directory_name_that_is_not_utf8_is_unreadable(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"sched\xff")
    os.mkdir(raw)
    result = load_dir(Path(os.fsdecode(raw)))
    assert result.unreadable is not None
    assert result.unreadable.path == f"{tmp_path}/sched\\xff"
    assert encodable(str(result.unreadable))


def test_a_yaml_escape_of_a_lone_surrogate_is_a_problem(tmp_path: Path) -> None:
    text = (
        "schedule:\n"
        "  - id: y1\n"
        '    title: "news \\udcff"\n'
        "    source: rtmp://origin.example.com/live/y\n"
        "    destination: rtmp://push.example.com/live/y\n"
        "    window: {start: 2026-01-01T00:00:00Z}\n"
    )
    problem = only_problem(write(tmp_path, "a.yaml", text))
    assert problem.line == 3
    assert "surrogate" in problem.message
    assert encodable(str(problem))
