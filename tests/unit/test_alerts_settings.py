"""Alert settings: targets from TOML and env, defaults, and no URL secret in any shown value or error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayd.alerts.model import AlertKind, Severity
from relayd.settings import SettingsError, load_settings
from tests.unit.test_settings import clean_env  # noqa: F401 - autouse: no RELAYD_*/VOLC_* from the shell

TOKEN = "tok-7f3a9c1e55d04b2b"
PASSWORD = "pw-hunter2-hunter2"


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relayd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load_settings()
    assert s.alert_urls == []
    assert (s.alert_open_after, s.alert_resolve_after, s.alert_platform_unreachable_after) == (30, 60, 600)
    assert (s.alert_send_timeout, s.alert_send_attempts, s.alert_queue_max) == (10, 5, 1000)


def test_targets_from_toml_strings_and_tables(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        f'alert_urls = ["feishu://{TOKEN}", '
        f'{{ url = "mailto://ops:{PASSWORD}@mail.example.com", min_severity = "critical", '
        'kinds = ["stream_down"] }]\n',
    )
    s = load_settings(path)
    first, second = s.alert_urls
    assert first.url == f"feishu://{TOKEN}" and first.kinds is None and first.min_severity is Severity.INFO
    assert second.min_severity is Severity.CRITICAL and second.kinds == frozenset({AlertKind.STREAM_DOWN})
    shown = json.dumps(s.redacted()) + json.dumps(s.display())
    assert TOKEN not in shown and PASSWORD not in shown
    assert (
        "feishu://***" in shown and "mailto://***@mail.example.com (min_severity=critical kinds=stream_down)" in shown
    )
    assert TOKEN in s.secret_values() and PASSWORD in s.secret_values()


def test_targets_from_env_whitespace_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYD_ALERT_URLS", f"json://hooks.example.com/{TOKEN}  wecombot://{TOKEN}")
    assert [t.shown for t in load_settings().alert_urls] == ["json://hooks.example.com/***", "wecombot://***"]
    monkeypatch.setenv("RELAYD_ALERT_URLS", json.dumps([{"url": f"feishu://{TOKEN}", "min_severity": "warning"}]))
    (target,) = load_settings().alert_urls
    assert target.min_severity is Severity.WARNING


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f'["bogus://{TOKEN}"]', "Apprise does not know the scheme of bogus://***"),
        (f'["{TOKEN}"]', "[0].url: must be an Apprise URL"),
        (f'[{{ url = "feishu://{TOKEN}", kinds = ["nope"] }}]', "[0].kinds[0]: Input should be 'segment_failing'"),
        (f'[{{ url = "feishu://{TOKEN}", min_severity = "loud" }}]', "[0].min_severity"),
        (f'[{{ url = "feishu://{TOKEN}", colour = "red" }}]', "[0].colour"),
    ],
)
def test_bad_targets_are_named_without_their_secrets(tmp_path: Path, value: str, expected: str) -> None:
    path = config(tmp_path, f"alert_urls = {value}\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    text = str(info.value)
    assert expected in text and str(path) in text
    assert TOKEN not in text
