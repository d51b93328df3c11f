"""The ``platform`` preset: what it sets, that every explicit source wins over it, and what ``config show`` says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayd.cli import cli
from relayd.settings import Settings, SettingsError, load_settings
from tests.unit.test_settings import clean_env, write

__all__ = ["clean_env"]  # the autouse fixture: no RELAYD_* or VOLC_* from the machine running the tests

BYTEPLUS = {
    "endpoint": "https://open.byteplusapi.com",
    "region": "ap-singapore-1",
    "service": "live",
    "title_limit": 10,
    "create_update_qps": 1.0,
}


def test_volcengine_is_the_default_and_changes_nothing() -> None:
    s = load_settings()
    assert s.platform == "volcengine" and s.endpoint == "https://live.volcengineapi.com" and s.region == "cn-north-1"
    assert (s.title_limit, s.create_update_qps, s.write_qps) == (20, 10.0, 10.0)
    assert set(s.sources().values()) == {"default"}


@pytest.mark.parametrize("spelling", ["byteplus", "BytePlus"])
def test_byteplus_sets_endpoint_region_service_titles_and_create_pace(spelling: str) -> None:
    s = load_settings(platform=spelling)
    assert {key: getattr(s, key) for key in BYTEPLUS} == BYTEPLUS
    assert s.write_qps == 10.0 and s.list_qps == 15.0  # other writes keep 10
    credentials = load_settings(platform=spelling, access_key="AK", secret_key="SK").credentials()
    assert (credentials.region, credentials.service) == ("ap-singapore-1", "live")
    assert {key: s.sources()[key] for key in BYTEPLUS} == dict.fromkeys(BYTEPLUS, "platform=byteplus")


def test_explicit_keys_win_over_the_preset_from_every_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write(tmp_path / "relayd.toml", 'platform = "byteplus"\nregion = "ap-southeast-1"\n')
    monkeypatch.setenv("RELAYD_TITLE_LIMIT", "20")
    s = load_settings(config, endpoint="http://127.0.0.1:8900")
    assert (s.region, s.title_limit, s.endpoint) == ("ap-southeast-1", 20, "http://127.0.0.1:8900")
    assert s.create_update_qps == 1.0 and s.service == "live"  # the rest still from the preset
    sources = s.sources()
    assert sources["platform"] == sources["region"] == str(config)
    assert sources["title_limit"] == "RELAYD_TITLE_LIMIT" and sources["endpoint"] == "override"
    assert sources["create_update_qps"] == "platform=byteplus"


def test_env_selects_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYD_PLATFORM", "byteplus")
    s = load_settings()
    assert s.endpoint == "https://open.byteplusapi.com" and s.sources()["platform"] == "RELAYD_PLATFORM"


def test_direct_construction_applies_the_preset_too() -> None:
    assert Settings(platform="byteplus", region="x").model_dump(include=set(BYTEPLUS)) == {**BYTEPLUS, "region": "x"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("platform", "aws", "platform: Input should be 'volcengine' or 'byteplus' (got 'aws' from RELAYD_PLATFORM)"),
        ("title_limit", "15", "title_limit: Input should be 10 or 20 (got 15 from RELAYD_TITLE_LIMIT)"),
        ("create_update_qps", "11", "create_update_qps: Input should be less than or equal to 10"),
    ],
)
def test_bad_values_name_key_value_and_source(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"RELAYD_{key.upper()}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)


def test_config_show_names_the_preset_as_the_source(tmp_path: Path) -> None:
    config = write(tmp_path / "relayd.toml", 'platform = "byteplus"\nendpoint = "http://127.0.0.1:8900"\n')
    result = CliRunner().invoke(cli, ["config", "show", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["settings"]["region"] == "ap-singapore-1" and shown["sources"]["region"] == "platform=byteplus"
    assert shown["sources"]["endpoint"] == str(config)
