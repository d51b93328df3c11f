"""Settings: layered sources and their precedence, provenance, validation messages, credentials, redaction."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from relayd.settings import DEPRECATED_KEYS, Settings, SettingsError, load_settings, split_listen
from relayd.volc.signer import Credentials

SECRET = "sk-very-secret-value-123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RELAYD_* / VOLC_* from the developer's shell, and a HOME without ~/.volc."""
    for name in list(os.environ):
        if name.upper().startswith(("RELAYD_", "VOLC_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(**kwargs: object) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings()
    assert s.endpoint == "https://live.volcengineapi.com"
    assert s.region == "cn-north-1"
    assert s.schedules_dir == Path("/etc/relayd/schedules.d")
    assert s.state_path == Path("/var/lib/relayd/state.db")
    assert s.listen == "127.0.0.1:8080"
    assert (s.max_task_seconds, s.prepare_ahead, s.retention, s.resync_interval) == (604800, 3600, 3600, 300)
    assert (s.horizon, s.history_days, s.callback_max_age, s.shutdown_timeout) == (14 * 86400, 30, 900, 20)
    assert (s.restart_max_attempts, s.restart_backoff_base, s.restart_backoff_factor) == (8, 5, 2.0)
    assert (s.restart_backoff_cap, s.stable_after) == (600, 600)
    assert (s.write_qps, s.list_qps, s.api_timeout, s.api_max_attempts, s.api_deadline) == (10, 15, 10, 5, 60)
    assert (s.namespace, s.log_level, s.log_format, s.state_writer) == ("relayd", "info", "auto", "process")
    assert s.access_key is s.secret_key is s.public_url is s.api_token is s.callback_secret is None
    assert set(s.sources().values()) == {"default"}
    assert s.config_file is None


def test_every_field_is_described() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []


def test_precedence_file_then_env_then_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "relayd.toml", 'region = "cn-file"\nlisten = "0.0.0.0:1"\nhistory_days = 7\n')
    monkeypatch.setenv("RELAYD_LISTEN", "0.0.0.0:2")
    monkeypatch.setenv("RELAYD_HISTORY_DAYS", "8")
    s = load_settings(cfg, history_days=9, namespace=None)
    assert (s.region, s.listen, s.history_days, s.namespace) == ("cn-file", "0.0.0.0:2", 9, "relayd")
    sources = s.sources()
    assert sources["region"] == str(cfg)
    assert sources["listen"] == "RELAYD_LISTEN"
    assert sources["history_days"] == "override"
    assert sources["namespace"] == "default"
    assert s.config_file == cfg


def test_relayd_table_and_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.toml", '[relayd]\nprepare_ahead = "1h30m"\nretention = 120\n')
    monkeypatch.setenv("RELAYD_CONFIG", str(cfg))
    s = load_settings()
    assert (s.prepare_ahead, s.retention) == (5400, 120)
    assert s.sources()["prepare_ahead"] == str(cfg)


def test_keys_outside_the_relayd_table_are_rejected(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", 'region = "x"\n[relayd]\nretention = 1\n')
    assert "outside the [relayd] table" in problems_of(config_file=cfg)


def test_env_is_case_insensitive_and_empty_values_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("relayd_Region", "cn-env")
    monkeypatch.setenv("RELAYD_PUBLIC_URL", "")
    s = load_settings()
    assert s.region == "cn-env"
    assert s.public_url is None
    assert s.sources()["public_url"] == "default"


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.toml", 'schedules_dir = "schedules"\nstate_path = "/abs/state.db"\n')
    s = load_settings(cfg)
    assert s.schedules_dir == tmp_path / "schedules"
    assert s.state_path == Path("/abs/state.db")


def test_unknown_file_key_suggests_the_close_one(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "retension = 5\n")
    message = problems_of(config_file=cfg)
    assert "'retension'" in message
    assert "'retention'" in message
    assert str(cfg) in message


def test_unknown_override_is_rejected() -> None:
    assert "unknown key 'nope'" in problems_of(nope=1)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    assert "does not exist" in problems_of(config_file=tmp_path / "absent.toml")
    bad = write(tmp_path / "bad.toml", "region = \n")
    assert "not valid TOML" in problems_of(config_file=bad)


def test_error_names_key_source_value_and_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYD_WRITE_QPS", "50")
    message = problems_of()
    assert message.startswith("write_qps:")
    assert "RELAYD_WRITE_QPS" in message
    assert "'50'" in message
    assert "default" in message


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", 'endpoint = "ftp://x"\nlisten = "nope"\nlist_qps = 0\n')
    with pytest.raises(SettingsError) as info:
        load_settings(cfg)
    assert sorted(p.split(":")[0] for p in info.value.problems) == ["endpoint", "list_qps", "listen"]


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", f"secret_key = ['{SECRET}']\n")
    message = problems_of(config_file=cfg)
    assert "secret_key" in message
    assert SECRET not in message
    assert "***" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("endpoint", "live.volcengineapi.com"),
        ("public_url", "ftp://example.com"),
        ("listen", "::1:8080"),
        ("listen", "127.0.0.1:70000"),
        ("listen", "127.0.0.1"),
        ("max_task_seconds", 604801),
        ("max_task_seconds", "8d"),
        ("max_task_seconds", 0),
        ("write_qps", 10.5),
        ("list_qps", 0),
        ("namespace", "has space"),
        ("namespace", "muchtoolongname"),
        ("log_level", "verbose"),
        ("log_format", "xml"),
        ("state_writer", "fork"),
        ("resync_interval", "0s"),
        ("prepare_ahead", "soon"),
        ("restart_backoff_factor", 0.5),
        ("api_max_attempts", 0),
    ],
)
def test_invalid_values_are_rejected(key: str, value: object) -> None:
    assert problems_of(**{key: value}).startswith(f"{key}:")


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"restart_backoff_base": "10m", "restart_backoff_cap": "1m"}, "restart_backoff_cap"),
        ({"api_timeout": "2m", "api_deadline": "1m"}, "api_deadline"),
    ],
)
def test_cross_field_rules(overrides: dict[str, object], names: str) -> None:
    assert names in problems_of(**overrides)


def test_state_writer_is_still_accepted_with_a_warning_naming_the_fix() -> None:
    with pytest.warns(FutureWarning, match="state_writer .*deprecated: .*remove state_writer"):
        assert load_settings(state_writer="THREAD").state_writer == "thread"


def test_accepted_variants() -> None:
    s = load_settings(
        listen="[::1]:0",
        public_url="https://relay.example.com/",
        max_task_seconds="7d",
        log_level="DEBUG",
        endpoint="http://127.0.0.1:9000",
    )
    assert split_listen(s.listen) == ("::1", 0)
    assert s.public_url == "https://relay.example.com"
    assert s.max_task_seconds == 604800
    assert s.log_level == "debug"


def test_credentials_from_relayd_env_win_over_volc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "volc-ak")
    monkeypatch.setenv("VOLC_SECRETKEY", "volc-sk")
    monkeypatch.setenv("RELAYD_ACCESS_KEY", "relayd-ak")
    monkeypatch.setenv("RELAYD_SECRET_KEY", "relayd-sk")
    creds = load_settings(region="cn-x").credentials()
    assert creds == Credentials("relayd-ak", "relayd-sk", "", region="cn-x")


def test_credentials_fall_back_to_volc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "volc-ak")
    monkeypatch.setenv("VOLC_SECRETKEY", "volc-sk")
    monkeypatch.setenv("VOLC_SESSION_TOKEN", "volc-token")
    s = load_settings()
    creds = s.credentials()
    assert (creds.access_key, creds.secret_key, creds.session_token) == ("volc-ak", "volc-sk", "volc-token")
    assert s.sources()["access_key"] == "VOLC_ACCESSKEY"


def test_credentials_fall_back_to_the_sdk_credentials_file(clean_env: Path) -> None:
    (clean_env / ".volc").mkdir()
    ini = write(clean_env / ".volc" / "credentials", "[default]\naccess_key_id = ini-ak\nsecret_access_key = ini-sk\n")
    s = load_settings()
    assert (s.credentials().access_key, s.credentials().secret_key) == ("ini-ak", "ini-sk")
    assert s.sources()["secret_key"] == str(ini)


def test_file_credentials_beat_the_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "volc-ak")
    monkeypatch.setenv("VOLC_SECRETKEY", "volc-sk")
    cfg = write(tmp_path / "c.toml", 'access_key = "file-ak"\nsecret_key = "file-sk"\n')
    assert load_settings(cfg).credentials().access_key == "file-ak"


def test_missing_credentials_name_the_key() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(access_key="only-ak").credentials()
    assert info.value.problems[0].startswith("secret_key is not set")
    assert "RELAYD_SECRET_KEY" in info.value.problems[0]


def test_redaction_hides_every_secret() -> None:
    s = load_settings(
        access_key="AKLT" + SECRET,
        secret_key=SECRET,
        session_token=SECRET + "t",
        callback_secret=SECRET + "c",
        callback_auth_key=SECRET + "a",
        api_token=SECRET + "p",
    )
    redacted = s.redacted()
    for key in ("access_key", "secret_key", "session_token", "callback_secret", "callback_auth_key", "api_token"):
        assert redacted[key] == "***"
    rendered = json.dumps(redacted) + repr(s) + str(s) + json.dumps(s.display())
    assert SECRET not in rendered
    assert redacted["endpoint"] == s.endpoint
    assert sorted(s.secret_values()) == sorted(
        ["AKLT" + SECRET, SECRET, SECRET + "t", SECRET + "c", SECRET + "a", SECRET + "p"]
    )


def test_direct_construction_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYD_REGION", "cn-env")
    s = Settings(listen="127.0.0.1:9")
    assert s.region == "cn-north-1"
    assert s.sources()["listen"] == "override"


EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "relayd.toml"
_EXAMPLE_KEY = re.compile(r"^# ?([a-z_]+) = (.+?)(?:\s+#.*)?$")


def test_example_config_documents_every_key_with_its_real_default(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    commented = {m.group(1): m.group(2) for m in map(_EXAMPLE_KEY.match, text.splitlines()) if m}
    assert sorted(commented) == sorted(Settings.model_fields)
    for key in Settings.model_fields:
        assert f"RELAYD_{key.upper()}" in text, key
    # Uncommented, the non-placeholder lines must reproduce the defaults exactly.
    placeholders = {"access_key", "secret_key", "session_token", "callback_secret", "callback_auth_key"}
    placeholders |= {"api_token", "public_url", "database_url", "database_password_file", "database_schema"}
    placeholders.add("platform_facts")
    placeholders |= {"instance_id"}
    placeholders |= set(DEPRECATED_KEYS)  # accepted with a warning, which pytest turns into an error
    body = "".join(f"{k} = {v}\n" for k, v in commented.items() if k not in placeholders)
    loaded = load_settings(write(tmp_path / "uncommented.toml", body))
    assert loaded.model_dump() == Settings().model_dump()
    assert load_settings(EXAMPLE).model_dump() == Settings().model_dump()
