"""The ``health`` key of a schedule: kinds from URLs, defaults, and located errors like every other field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from relayd.health.monitor import targets
from relayd.schedules.loader import load_dir, load_file
from relayd.schedules.model import NO_PROGRAM_CHECK, HealthCheck, Schedule, StreamKind

BASE = """\
[[schedule]]
id = "news"
source = "rtmp://origin.example.com/live/news"
destination = "rtmp://push.example.com/live/news"
window = { start = 2026-01-01T00:00:00Z, end = 2026-03-01T00:00:00Z }
"""


def schedule(health: Any, *, which: Any = None) -> Schedule:
    data = {
        "id": "news",
        "source": "rtmp://origin.example.com/live/news",
        "destination": "rtmp://push.example.com/live/news",
        "window": {"start": "2026-01-01T00:00:00Z"},
        "health": health,
    }
    context = NO_PROGRAM_CHECK if which is None else {"which": which}
    return Schedule.model_validate(data, context=context)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "a.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return [str(p) for p in load_file(path).problems]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://play.example.com/live/news.m3u8?token=x", StreamKind.HLS),
        ("http://play.example.com/live/NEWS.M3U8", StreamKind.HLS),
        ("https://play.example.com/live/news.flv", StreamKind.FLV),
        ("rtmp://play.example.com/live/news", StreamKind.FFPROBE),
        ("rtmps://play.example.com/live/news", StreamKind.FFPROBE),
        ("srt://play.example.com:9000?streamid=x", StreamKind.FFPROBE),
    ],
)
def test_kind_follows_scheme_and_suffix(url: str, kind: StreamKind) -> None:
    assert schedule({"url": url}, which=lambda _: "/usr/bin/ffprobe").health.kind is kind  # type: ignore[union-attr]


def test_the_example_directory_shows_a_health_check() -> None:
    examples = Path(__file__).resolve().parents[2] / "config" / "schedules"
    result = load_dir(examples)
    checks = targets(result.schedules())
    assert checks["winter-news"].kind is StreamKind.HLS
    watched = schedule("https://play.example.com/live/news.m3u8")
    disabled = watched.model_copy(update={"id": "off", "enabled": False})
    bare = watched.model_copy(update={"id": "bare", "health": None})
    assert targets([watched, disabled, bare]) == {"news": watched.health}


def test_defaults_and_string_form() -> None:
    check = schedule("https://play.example.com/live/news.m3u8").health
    assert check == HealthCheck(url="https://play.example.com/live/news.m3u8")
    assert (check.stall_after, check.interval, check.grace, check.probe_timeout) == (15.0, 5.0, 10.0, 5.0)
    assert schedule({"url": check.url, "timeout": "3s"}).health.probe_timeout == 3.0  # type: ignore[union-attr]


def test_missing_ffprobe_is_named_through_the_injected_lookup() -> None:
    asked: list[str] = []

    def which(name: str) -> str | None:
        asked.append(name)
        return None

    with pytest.raises(ValidationError, match="probed with ffprobe, which is not installed"):
        schedule({"url": "srt://play.example.com:9000"}, which=which)
    assert asked == ["ffprobe"]
    assert schedule({"url": "https://play.example.com/a.flv"}, which=which).health is not None
    assert asked == ["ffprobe"]  # HTTP kinds never look the program up


def test_rebuilding_a_stored_schedule_skips_the_lookup() -> None:
    stored = schedule({"url": "rtmp://play.example.com/live/x"}, which=lambda _: "/usr/bin/ffprobe")
    again = Schedule.model_validate(stored.model_dump(mode="json"), context=NO_PROGRAM_CHECK)
    assert again.health == stored.health


def test_missing_ffprobe_reads_like_other_schedule_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    found = problems(tmp_path, 'health = { url = "rtmp://play.example.com/live/news?token=s3cr3t" }\n')
    assert found == [
        f"{tmp_path / 'a.toml'}:6: schedule[news].health.url: rtmp:// playback URLs are probed with ffprobe, "
        "which is not installed (not on PATH) — install ffmpeg (e.g. apt-get install ffmpeg) or use the stream's "
        "HLS or HTTP-FLV URL"
    ]


def test_unsupported_urls_are_located_and_keep_tokens_out(tmp_path: Path) -> None:
    text = '\n[schedule.health]\nurl = "https://play.example.com/live/news.mp4?token=s3cr3t"\n'
    (found,) = problems(tmp_path, text)
    assert found.startswith(f"{tmp_path / 'a.toml'}:8: schedule[news].health.url: is neither an HLS (.m3u8) nor")
    assert "(https://play.example.com/live/news.mp4)" in found
    assert "s3cr3t" not in found
    (found,) = problems(tmp_path, 'health = "ftp://play.example.com/x.m3u8"\n')
    assert "health.url: is not a supported playback URL (ftp://play.example.com/x.m3u8) — use the" in found


@pytest.mark.parametrize(
    ("health", "message"),
    [
        ('{ url = "https://p.example.com/a.m3u8", interval = "0.5s" }', "health.interval: is 0.5 s — probe at most"),
        ('{ url = "https://p.example.com/a.m3u8", interval = "10s" }', "health: stall_after 15 s is less than two"),
        ('{ url = "https://p.example.com/a.m3u8", timeout = "20s" }', "health: timeout 20 s must be above 0"),
        ('{ url = "https://p.example.com/a.m3u8", stall_after = "soon" }', "health.stall_after: must be a duration"),
        (
            '{ url = "https://p.example.com/a.m3u8", stal_after = "20s" }',
            "health: unknown key 'stal_after' — did you mean 'stall_after'?",
        ),
    ],
)
def test_bad_timings_name_the_field(tmp_path: Path, health: str, message: str) -> None:
    (found,) = problems(tmp_path, f"health = {health}\n")
    assert f"a.toml:6: schedule[news].{message}" in found
