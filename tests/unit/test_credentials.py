"""Re-reading the signing credentials on a reload (relayd/credentials.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayd.credentials import CredentialRefresh, reread
from relayd.settings import Settings, SettingsError, load_settings
from relayd.volc.signer import Credentials


def _config(path: Path, secret: str) -> Path:
    path.write_text(f'[relayd]\naccess_key = "AK"\nsecret_key = "{secret}"\n', encoding="utf-8")
    return path


def test_credentials_from_a_file_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYD_SECRET_KEY", raising=False)
    config = _config(tmp_path / "relayd.toml", "old")
    settings = load_settings(config)
    _config(config, "new")
    fresh = reread(settings)
    assert fresh is not None and fresh.secret_key == "new" and fresh.access_key == "AK"


def test_credentials_given_as_overrides_are_not_read_again(tmp_path: Path) -> None:
    config = _config(tmp_path / "relayd.toml", "from-file")
    assert reread(load_settings(config, secret_key="given")) is None


def _refresh(read: Credentials | Exception | None) -> tuple[CredentialRefresh, list[Credentials]]:
    used: list[Credentials] = []

    def reader(_: Settings) -> Credentials | None:
        if isinstance(read, Exception):
            raise read
        return read

    return CredentialRefresh(Settings(), Credentials("AK", "old"), used.append, read=reader), used


def test_changed_credentials_are_handed_to_the_client() -> None:
    refresh, used = _refresh(Credentials("AK", "new"))
    assert refresh.refresh() is True
    assert used == [Credentials("AK", "new")]
    assert refresh.refresh() is False  # the same again: nothing to hand over
    assert len(used) == 1


def test_unchanged_or_overridden_credentials_change_nothing() -> None:
    for read in (Credentials("AK", "old"), None):
        refresh, used = _refresh(read)
        assert refresh.refresh() is False and used == []


def test_an_unreadable_source_keeps_the_credentials_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    refresh, used = _refresh(SettingsError(["config file x is not valid TOML"]))
    assert refresh.refresh() is False and used == []
    assert "credentials_reload_failed" in capsys.readouterr().out
