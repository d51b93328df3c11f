"""Pure rendering helpers of ``relayd status``."""

from __future__ import annotations

import pytest

from relayd.cli.status import human_duration, render_overview, table, url_for_listen


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3600 + 300, "1h05m"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (-120, "-2m"),
    ],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("listen", "url"),
    [("127.0.0.1:8080", "http://127.0.0.1:8080"), ("0.0.0.0:9", "http://127.0.0.1:9"), ("[::]:9", "http://[::1]:9")],
)
def test_url_for_listen(listen: str, url: str) -> None:
    assert url_for_listen(listen) == url


def test_table_aligns_wide_characters() -> None:
    text = table(["A", "B"], [["新闻", "x"], ["ab", "y"]])
    rows = text.splitlines()
    # 新闻 is two characters but four terminal columns wide, so it gets two fewer spaces of padding than "ab".
    assert rows[1] == "新闻  x"
    assert rows[2] == "ab    y"


def test_overview_empty_and_problems() -> None:
    text = render_overview({"schedules": [], "config_problems": ["a.toml: window: end before start"]})
    assert text.startswith("no schedules") and "a.toml: window: end before start" in text


def test_overview_shows_installation_conflicts() -> None:
    conflict = "namespace 'relayd' is in use by another relayd installation (ab12); give each a distinct `namespace`"
    text = render_overview({"schedules": [], "config_problems": [], "conflicts": [conflict]})
    assert "installation conflicts:\n  " + conflict in text
    assert "installation conflicts" not in render_overview({"schedules": [], "conflicts": []})


def test_overview_shows_each_watched_stream_as_the_health_check_sees_it() -> None:
    body = {
        "schedules": [
            {
                "id": "news",
                "state": "relaying",
                "health": {"health": "stalled", "text": "stalled since 2026-11-29T10:00:00Z"},
            },
            {"id": "quiet", "state": "relaying", "health": None},
        ]
    }
    text = render_overview({**body, "schedules": [dict(s, current=None, next=None) for s in body["schedules"]]})
    assert "streams:\n  news: stalled since 2026-11-29T10:00:00Z" in text and "quiet:" not in text
