"""The ``platform_facts`` setting: the probe's file is read at start-up; a bad one stops start-up with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayd.platform.facts import RelaunchFrom
from relayd.settings import Settings, SettingsError, load_settings
from relayd.wiring import platform_facts


def settings(tmp_path: Path, facts: Path | None) -> Settings:
    return load_settings(None, schedules_dir=tmp_path, state_path=tmp_path / "state.db", platform_facts=facts)


def test_no_file_means_nothing_is_assumed(tmp_path: Path) -> None:
    assert platform_facts(settings(tmp_path, None)) is None


def test_the_probe_file_gives_the_daemon_its_facts(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    doc = {"version": 1, "facts": {"update_running": False, "relaunch_from": "disabled"}, "evidence": {}}
    path.write_text(json.dumps(doc))
    facts = platform_facts(settings(tmp_path, path))
    assert facts is not None and facts.update_running is False and facts.relaunch_from == RelaunchFrom.DISABLED
    assert facts.source == "probe"


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read"), ("{", "not JSON"), ('{"version": 1, "facts": {"past_start": "yes"}}', "facts.past_start")],
)
def test_a_bad_file_is_a_settings_error_naming_it(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "facts.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError) as caught:
        platform_facts(settings(tmp_path, path))
    assert "platform_facts" in str(caught.value) and str(path) in str(caught.value) and says in str(caught.value)
