"""PostgreSQL URLs: the password is found in the URL, PGPASSWORD or a file, and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayd.settings import load_settings
from relayd.store import StoreError
from relayd.store.dsn import redact_dsn, with_password


def test_redact_keeps_everything_but_the_password() -> None:
    assert redact_dsn("postgresql://relayd:s3cr%40t@db.example:5433/relayd?sslmode=require") == (
        "postgresql://relayd:***@db.example:5433/relayd?sslmode=require"
    )
    assert redact_dsn("postgresql://relayd@db/relayd") == "postgresql://relayd@db/relayd"


def test_password_comes_from_the_url_then_pgpassword_then_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from file\nignored\n")
    assert with_password("postgresql://u:inurl@h/db", secret, {"PGPASSWORD": "env"}) == "postgresql://u:inurl@h/db"
    assert with_password("postgresql://u@h/db", secret, {"PGPASSWORD": "e/nv"}) == "postgresql://u:e%2Fnv@h/db"
    assert with_password("postgresql://u@h/db", secret, {}) == "postgresql://u:from%20file@h/db"
    assert with_password("postgresql://u@h/db", None, {}) == "postgresql://u@h/db"


def test_an_unreadable_password_file_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"database_password_file .*missing cannot be read .*check its path"):
        with_password("postgresql://u@h/db", tmp_path / "missing", {})


def test_settings_show_the_database_url_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYD_DATABASE_URL", raising=False)
    settings = load_settings(database_url="postgresql://relayd:hunter2@127.0.0.1:5432/relayd")
    assert settings.display()["database_url"] == "postgresql://relayd:***@127.0.0.1:5432/relayd"
    assert "hunter2" in settings.secret_values()
    assert settings.store_schema == "relayd_relayd"


def test_a_database_url_that_is_not_postgresql_is_refused_without_echoing_it() -> None:
    with pytest.raises(Exception, match=r"database_url: must be a postgresql:// URL .*got \*\*\*") as info:
        load_settings(database_url="mysql://u:hunter2@h/db")
    assert "hunter2" not in str(info.value)
