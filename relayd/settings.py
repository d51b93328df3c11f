"""relayd's daemon settings: one flat, validated pydantic-settings class and the loader that layers its sources.

Sources, lowest to highest precedence:

1. defaults (the field defaults below), then the ``platform`` preset's values (:mod:`relayd.presets`) for the
   keys no other source gives;
2. credential fallbacks, consulted only when neither ``access_key`` nor ``secret_key`` came from anywhere else,
   in the SDK's order: the ``VOLC_ACCESSKEY`` + ``VOLC_SECRETKEY`` (+ ``VOLC_SESSION_TOKEN``) env pair, then
   ``~/.volc/credentials`` (INI ``[default] access_key_id / secret_access_key``);
3. a TOML file (``--config FILE`` or env ``RELAYD_CONFIG``): top-level keys, or a ``[relayd]`` table; relative
   paths in it are taken relative to the file's directory;
4. env ``RELAYD_<KEY>`` (case-insensitive; empty values are ignored, as systemd ``Environment=X=`` suggests);
5. explicit overrides passed in code (CLI flags; ``None`` means "flag not given").

Why the loader merges the layers itself instead of handing them to pydantic-settings' source chain
(``settings_customise_sources`` keeps only the init source): ``relayd config show`` must say where every
effective value came from, and a bad value must be reported with its origin (file path or env var name). Both
need the layers side by side. So ``Settings(...)`` is a plain validated model (deterministic in tests: it never
reads the environment), and :func:`load_settings` is the one place that reads files and env.

Durations accept plain seconds or ``90s`` / ``5m`` / ``1h30m`` / ``2d`` (see :mod:`relayd.durations`) and are
stored as float seconds. Secrets are ``SecretStr`` and are never shown: errors print ``***`` for their values,
:meth:`Settings.redacted` too. No runtime objects (sessions, stores) are built here.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from relayd.alerts.redact import redact_url, url_secrets
from relayd.alerts.targets import AlertTarget, parse_alert_urls, unusable_targets
from relayd.durations import format_duration, parse_duration
from relayd.presets import PlatformName, preset_source, with_preset
from relayd.store.dsn import redact_dsn, url_password
from relayd.volc.signer import Credentials

ENV_PREFIX = "RELAYD_"
CONFIG_ENV = "RELAYD_CONFIG"
SECRET_KEYS = frozenset(
    {"access_key", "secret_key", "session_token", "callback_secret", "callback_auth_key", "api_token", "database_url"}
)
DEPRECATED_KEYS = {"state_writer": "state commits always run in a child process now; remove state_writer"}
"""Keys still accepted for one release, with the fix a warning names."""
PLATFORM_MAX_TASK_SECONDS = 604800
DEFAULT = "default"
OVERRIDE = "override"


class SettingsError(Exception):
    """Invalid or incomplete settings. ``problems`` holds one operator-facing message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _duration(value: object) -> float:
    return parse_duration(value)


def _whole_seconds(value: object) -> int:
    seconds = parse_duration(value)
    if seconds != int(seconds):
        raise ValueError(f"must be a whole number of seconds, got {value!r}")
    return int(seconds)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _int_text(value: object) -> object:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


Duration = Annotated[float, BeforeValidator(_duration)]
WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds)]
_INSTANCE_RE = re.compile(r"[A-Za-z0-9._:-]{1,63}")
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9]{1,8}")
_SCHEMA_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")


class Settings(BaseSettings):
    """Every daemon setting. Build with :func:`load_settings`; ``Settings(**values)`` validates values only."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    platform: Annotated[PlatformName, BeforeValidator(_lower)] = Field(
        PlatformName.VOLCENGINE,
        description="volcengine or byteplus: sets endpoint, region, service, title_limit and create_update_qps "
        "(keys given explicitly win).",
    )
    endpoint: str = Field("https://live.volcengineapi.com", description="Volcengine Live OpenAPI base URL.")
    region: str = Field("cn-north-1", min_length=1, description="Region used in request signing.")
    service: str = Field("live", min_length=1, description="Service name used in request signing.")
    title_limit: Annotated[Literal[10, 20], BeforeValidator(_int_text)] = Field(
        20, description="Longest task Title the platform accepts: task tags of 20 or 10 characters (BytePlus: 10)."
    )
    access_key: SecretStr | None = Field(None, description="Volcengine access key id (AK).")
    secret_key: SecretStr | None = Field(None, description="Volcengine secret access key (SK).")
    session_token: SecretStr | None = Field(None, description="STS session token, for temporary credentials.")
    schedules_dir: Path = Field(Path("/etc/relayd/schedules.d"), description="Directory of schedule files.")
    max_schedule_file_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Schedule files larger than this are refused unread (bytes)."
    )
    schedule_load_budget: Duration = Field(
        30.0,
        gt=0,
        description="Loading the schedules directory stops after this long; files not done keep their "
        "last good version.",
    )
    max_removals: int = Field(
        3, ge=1, description="A reload may remove this many schedules (or max_removal_fraction, if larger) at once."
    )
    max_removal_fraction: float = Field(
        0.10, ge=0, le=1, description="Fraction of the applied schedules a reload may remove at once, 0 ... 1."
    )
    state_path: Path = Field(Path("/var/lib/relayd/state.db"), description="SQLite state database path.")
    state_writer: Annotated[Literal["process", "thread"], BeforeValidator(_lower)] = Field(
        "process",
        description="Deprecated and ignored: state commits always run in a child process. Remove this key.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user@host:port/db to keep the state in PostgreSQL (shared by instances); "
        "unset = the SQLite file at state_path. The password may be in the URL, PGPASSWORD or database_password_file.",
    )
    database_password_file: Path | None = Field(
        None, description="File whose first line is the PostgreSQL password (when it is not in database_url)."
    )
    database_schema: str | None = Field(
        None, description="PostgreSQL schema of this installation; unset = relayd_<namespace>."
    )
    instance_id: str | None = Field(
        None, description="This instance's name among those sharing database_url; unset = <hostname>:<listen port>."
    )
    lease_ttl: Duration = Field(
        10.0,
        gt=0,
        description="Leadership lease length (PostgreSQL): a standby takes over this long after the "
        "leader's last renewal.",
    )
    lease_renew_interval: Duration = Field(
        2.0, gt=0, description="The leader renews its lease, and a standby tries to take it, this often."
    )
    lease_margin: Duration = Field(
        3.0,
        gt=0,
        description="A leader that could not renew stops platform writes this long before its lease can lapse.",
    )
    standby_refresh_interval: Duration = Field(
        15.0, gt=0, description="A standby reloads its copy of the shared state this often."
    )
    listen: str = Field("127.0.0.1:8080", description="host:port the HTTP server binds ([v6]:port for IPv6).")
    public_url: str | None = Field(
        None, description="Base URL the platform uses to reach callbacks; unset = derived from listen (loopback)."
    )
    callback_secret: SecretStr | None = Field(
        None, description="HMAC key for callback URL MACs; unset = generated once and kept in the state store."
    )
    callback_auth_key: SecretStr | None = Field(
        None, description="Platform callback auth key; if set, every callback must carry sign/t matching md5(key + t)."
    )
    callback_max_age: Duration = Field(
        900.0, gt=0, description="How far a callback's t may lie from now (seconds); >= 600 + clock skew."
    )
    http_read_timeout: Duration = Field(
        10.0,
        gt=0,
        description="A connection must send a request's head (and a callback its body) within this; idle keep-alive "
        "connections close after it too.",
    )
    http_max_connections: int = Field(
        512,
        ge=16,
        description="Open HTTP connections at most; beyond it the longest-idle one is dropped. Kept 128 below the "
        "open-file limit (LimitNOFILE).",
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token for the /v1 status API; unset = generated into <state dir>/api_token."
    )
    max_task_seconds: WholeSeconds = Field(
        PLATFORM_MAX_TASK_SECONDS, ge=1, le=PLATFORM_MAX_TASK_SECONDS, description="Longest single task (<= 7 d)."
    )
    prepare_ahead: Duration = Field(3600.0, ge=0, description="Create the next chained task this long before.")
    retention: Duration = Field(3600.0, ge=0, description="Keep ended tasks this long before deleting them.")
    platform_facts: Path | None = Field(
        None, description="The platform facts file `relayd probe --write` made; unset: assume nothing, learn."
    )
    running_change: Annotated[Literal["next_segment", "replace"], BeforeValidator(_lower)] = Field(
        "next_segment",
        description="Where the platform refuses Update while a task runs: apply a schedule change from the next "
        "segment, or at once by replacing the running task (a short gap).",
    )
    resync_interval: Duration = Field(300.0, gt=0, description="Full reconcile against the platform this often.")
    horizon: Duration = Field(14 * 86400.0, gt=0, description="How far ahead schedules are planned.")
    history_days: int = Field(30, ge=1, description="Days of task/event history kept in the state store.")
    restart_max_attempts: int = Field(8, ge=1, description="Restarts of a failing task before it is marked failed.")
    restart_backoff_base: Duration = Field(5.0, gt=0, description="First restart delay.")
    restart_backoff_factor: float = Field(2.0, ge=1, description="Multiplier between successive restart delays.")
    restart_backoff_cap: Duration = Field(600.0, gt=0, description="Longest restart delay.")
    stable_after: Duration = Field(600.0, ge=0, description="Running this long resets the restart counter.")
    failed_retry_interval: Duration = Field(
        300.0,
        gt=0,
        description="A segment whose restart budget is spent is still retried this often (±20 %) while its window "
        "is open, and at once after a reload or a success following failures.",
    )
    write_qps: float = Field(10.0, gt=0, le=10, description="Write API requests per second (platform cap 10).")
    list_qps: float = Field(15.0, gt=0, le=15, description="List API requests per second (platform cap 15).")
    create_update_qps: float = Field(
        10.0,
        gt=0,
        le=10,
        description="Create and Update requests per second, each (BytePlus: 1); they count as writes too.",
    )
    api_timeout: Duration = Field(10.0, gt=0, description="Timeout of one API request.")
    api_max_attempts: int = Field(5, ge=1, description="Attempts per API call on retryable errors.")
    api_deadline: Duration = Field(60.0, gt=0, description="Overall deadline of one API call including retries.")
    namespace: str = Field("relayd", description="Tag mixed into task titles; 1-8 ASCII letters/digits.")
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = Field(
        "info", description="Minimum log level."
    )
    log_format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = Field(
        "auto", description="auto = console on a TTY, JSON lines otherwise."
    )
    shutdown_timeout: Duration = Field(20.0, gt=0, description="Graceful shutdown budget (< TimeoutStopSec).")
    alert_urls: Annotated[list[AlertTarget], BeforeValidator(parse_alert_urls)] = Field(
        default_factory=list,
        description="Apprise URLs alerts go to; each a string or {url, min_severity, kinds} (secret: shown redacted).",
    )
    alert_open_after: Duration = Field(30.0, ge=0, description="A condition must hold this long before it alerts.")
    alert_resolve_after: Duration = Field(
        60.0, ge=0, description="An alert resolves after its condition is clear this long."
    )
    alert_platform_unreachable_after: Duration = Field(
        600.0, gt=0, description="No successful platform call for this long opens platform_unreachable."
    )
    alert_send_timeout: Duration = Field(10.0, gt=0, description="Timeout of one alert send to one target.")
    alert_send_attempts: int = Field(5, ge=1, description="Attempts per alert message and target before giving up.")
    alert_retry_base: Duration = Field(2.0, gt=0, description="First delay between alert send attempts.")
    alert_retry_cap: Duration = Field(300.0, gt=0, description="Longest delay between alert send attempts.")
    alert_queue_max: int = Field(
        1000, ge=1, description="Notifications queued per target; the oldest are dropped past it."
    )

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _config_file: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges file/env/fallbacks itself (to know each value's origin); see the module docstring.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        return with_preset(data)[0] if isinstance(data, dict) else data

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (leave it unset to use the SQLite file at state_path)")
        return value

    @field_validator("database_schema")
    @classmethod
    def _check_database_schema(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEMA_RE.fullmatch(value):
            raise ValueError("must be 1-63 lowercase letters, digits or _, starting with a letter")
        return value

    @property
    def store_schema(self) -> str:
        """The PostgreSQL schema of this installation: ``database_schema``, else ``relayd_<namespace>``."""
        return self.database_schema or f"relayd_{self.namespace.lower()}"

    @field_validator("instance_id")
    @classmethod
    def _check_instance_id(cls, value: str | None) -> str | None:
        if value is not None and not _INSTANCE_RE.fullmatch(value):
            raise ValueError("must be 1-63 characters from letters, digits and . _ : - (e.g. host-a)")
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not _NAMESPACE_RE.fullmatch(value):
            raise ValueError("must be 1-8 ASCII letters or digits (it is part of task titles, max 20 characters)")
        return value

    @field_validator("alert_urls")
    @classmethod
    def _check_alert_urls(cls, value: list[AlertTarget]) -> list[AlertTarget]:
        unknown = unusable_targets(value)
        if unknown:
            raise ValueError(f"Apprise does not know the scheme of {', '.join(unknown)}: check the URL form")
        return value

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        if self.restart_backoff_cap < self.restart_backoff_base:
            raise ValueError("restart_backoff_cap must be >= restart_backoff_base")
        if self.api_deadline < self.api_timeout:
            raise ValueError("api_deadline must be >= api_timeout")
        if self.lease_renew_interval + self.lease_margin >= self.lease_ttl:
            raise ValueError("lease_ttl must be longer than lease_renew_interval + lease_margin (e.g. 10s, 2s, 3s)")
        return self

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._config_file

    def credentials(self) -> Credentials:
        """Signing credentials; SettingsError naming the missing key if AK or SK is not set."""
        missing = [key for key in ("access_key", "secret_key") if getattr(self, key) is None]
        if missing:
            raise SettingsError([_missing_credential(key) for key in missing])
        assert self.access_key is not None and self.secret_key is not None
        token = self.session_token.get_secret_value() if self.session_token else ""
        return Credentials(
            self.access_key.get_secret_value(),
            self.secret_key.get_secret_value(),
            token,
            region=self.region,
            service=self.service,
        )

    def sources(self) -> dict[str, str]:
        """Where each effective value came from: "default", a file path, an env var name, or "override"."""
        fallback = {name: (OVERRIDE if name in self.model_fields_set else DEFAULT) for name in type(self).model_fields}
        return {name: self._sources.get(name, fallback[name]) for name in fallback}

    def redacted(self) -> dict[str, Any]:
        """Every value, JSON-friendly, with secrets as "***" (or null when unset)."""
        values = self.model_dump(mode="json")
        for key in SECRET_KEYS:
            values[key] = None if values[key] is None else "***"
        if self.database_url is not None:  # the URL is worth seeing; only its password is secret
            values["database_url"] = redact_dsn(self.database_url.get_secret_value())
        values["alert_urls"] = [target.describe() for target in self.alert_urls]
        return values

    def secret_values(self) -> list[str]:
        """The plain secret strings that are set (for the log redactor); never log this list."""
        secrets = (getattr(self, key) for key in sorted(SECRET_KEYS))
        plain = [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]
        password = url_password(self.database_url.get_secret_value()) if self.database_url is not None else None
        plain += [password] if password else []
        return plain + [piece for target in self.alert_urls for piece in url_secrets(target.url)]

    def display(self) -> dict[str, str]:
        """Values as an operator reads them: durations as ``1h30m``, secrets as ``***``, unset as ``-``."""
        values = self.redacted()
        shown: dict[str, str] = {}
        for name, value in values.items():
            if _is_duration(name):
                shown[name] = format_duration(float(value))
            elif name == "alert_urls":
                shown[name] = ", ".join(_target_text(t) for t in value) or "-"
            else:
                shown[name] = "-" if value is None else str(value)
        return shown


def _target_text(target: dict[str, Any]) -> str:
    filters = [f"min_severity={target['min_severity']}"] if target["min_severity"] != "info" else []
    filters += [f"kinds={','.join(target['kinds'])}"] if target["kinds"] is not None else []
    return str(target["url"]) + (f" ({' '.join(filters)})" if filters else "")


def _redact_input(loc: tuple[Any, ...], value: Any) -> Any:
    """An invalid value as it may be shown: alert URLs (anywhere inside it) without their secrets.

    Inside ``alert_urls`` only a filter value (``kinds``, ``min_severity``) is shown as written.
    """
    if loc[0] != "alert_urls" or any(part in ("kinds", "min_severity") for part in loc):
        return value
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list | tuple):
        return [_redact_input(loc, item) for item in value]
    if isinstance(value, dict):
        return {k: (_redact_input(loc, v) if k == "url" else v) for k, v in value.items()}
    return value


def _is_duration(name: str) -> bool:
    metadata = Settings.model_fields[name].metadata
    return any(isinstance(m, BeforeValidator) and m.func is _duration for m in metadata)


def _missing_credential(key: str) -> str:
    env = ENV_PREFIX + key.upper()
    volc = "VOLC_ACCESSKEY" if key == "access_key" else "VOLC_SECRETKEY"
    return (
        f"{key} is not set: set {env} (or {key} in the config file, or the {volc} env var, "
        "or ~/.volc/credentials [default])"
    )


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` as (host, port) without brackets; ValueError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("must be host:port (IPv6 as [addr]:port)")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError("must be host:port (IPv6 as [addr]:port)")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("IPv6 addresses must be in brackets, e.g. [::1]:8080")
    if int(port) > 65535:
        raise ValueError("port must be 0-65535")
    return host, int(port)


# --- loading ---------------------------------------------------------------------------------------------------


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults < credential fallbacks < TOML file < RELAYD_* env < ``overrides``.

    ``config_file`` defaults to env ``RELAYD_CONFIG``; no file is read when neither is given. Overrides whose value
    is None are ignored (a CLI flag that was not given). Raises SettingsError listing every problem.
    """
    environ = dict(os.environ)
    path = config_file if config_file is not None else _config_from_env(environ)
    layers: list[tuple[dict[str, Any], str | dict[str, str]]] = []
    if path is not None:
        layers.append((_read_toml(path), str(path)))
    env_values, env_names = _env_values(environ)
    layers.append((env_values, env_names))
    given = {key: value for key, value in overrides.items() if value is not None}
    _check_known(given, OVERRIDE)
    layers.append((given, OVERRIDE))
    values, sources = _merge(layers)
    if "access_key" not in values and "secret_key" not in values:
        fallback, fallback_sources = _credential_fallback(environ, _home(environ))
        values.update(fallback)
        sources.update(fallback_sources)
    return _validate(values, sources, path)


def _home(environ: Mapping[str, str]) -> Path | None:
    if environ.get("HOME"):
        return Path(environ["HOME"])
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        return None


def _config_from_env(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(CONFIG_ENV, "")
    return Path(value) if value else None


def _merge(layers: list[tuple[dict[str, Any], str | dict[str, str]]]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer, origin in layers:
        for key, value in layer.items():
            values[key] = value
            sources[key] = origin if isinstance(origin, str) else origin[key]
    return values, sources


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError([f"config file {path} does not exist: fix the --config path or RELAYD_CONFIG"]) from None
    except OSError as e:
        raise SettingsError([f"config file {path} cannot be read ({e.strerror}): check its permissions"]) from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError([f"config file {path} is not valid TOML: {e}"]) from None
    if isinstance(data.get("relayd"), dict):
        others = sorted(key for key in data if key != "relayd")
        if others:
            raise SettingsError([f"config file {path}: keys {others} are outside the [relayd] table; move them in"])
        data = data["relayd"]
    _check_known(data, str(path))
    return {key: _relative_to(path, key, value) for key, value in data.items()}


_PATH_KEYS = ("schedules_dir", "state_path", "database_password_file")


def _relative_to(path: Path, key: str, value: Any) -> Any:
    # Paths in a config file are relative to that file, so a config directory can be moved as a whole.
    if key in _PATH_KEYS and isinstance(value, str) and not Path(value).is_absolute():
        return str(path.parent / value)
    return value


def _check_known(values: Mapping[str, Any], origin: str) -> None:
    known = list(Settings.model_fields)
    problems = []
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see `relayd config show` for the known keys"
            problems.append(f"unknown key {key!r} in {origin}: {hint}")
    if problems:
        raise SettingsError(problems)


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    by_upper = {name.upper(): name for name in environ}
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    for key in Settings.model_fields:
        name = by_upper.get(ENV_PREFIX + key.upper())
        if name is not None and environ[name] != "":
            values[key] = environ[name]
            names[key] = name
    return values, names


def _credential_fallback(environ: Mapping[str, str], home: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """AK/SK from the VOLC_* env pair, else ~/.volc/credentials; the SDK's own order."""
    if environ.get("VOLC_ACCESSKEY") and environ.get("VOLC_SECRETKEY"):
        names = {"access_key": "VOLC_ACCESSKEY", "secret_key": "VOLC_SECRETKEY"}
        if environ.get("VOLC_SESSION_TOKEN"):
            names["session_token"] = "VOLC_SESSION_TOKEN"  # noqa: S105 - an env var name, not a secret
        return {key: environ[name] for key, name in names.items()}, names
    return _credentials_file(home / ".volc" / "credentials") if home is not None else ({}, {})


def _credentials_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    if not path.is_file():
        return {}, {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError) as e:
        raise SettingsError([f"credentials file {path} cannot be read: {type(e).__name__}; fix or remove it"]) from None
    values: dict[str, str] = {}
    for key, option in (("access_key", "access_key_id"), ("secret_key", "secret_access_key")):
        if parser.has_option("default", option):
            values[key] = parser.get("default", option).strip()
    return values, dict.fromkeys(values, str(path))


def _validate(values: dict[str, Any], sources: dict[str, str], path: Path | None) -> Settings:
    try:
        settings = Settings(**values)
    except ValidationError as e:
        raise SettingsError([_describe(error, sources) for error in e.errors()]) from None
    preset = {key: preset_source(str(settings.platform)) for key in with_preset(values)[1]}
    settings._sources = {key: sources.get(key) or preset.get(key, DEFAULT) for key in Settings.model_fields}
    settings._config_file = path
    for key, fix in DEPRECATED_KEYS.items():
        if key in values:
            origin = sources.get(key, OVERRIDE)
            warnings.warn(f"{key} (from {origin}) is deprecated: {fix}", FutureWarning, stacklevel=3)
    return settings


def _describe(error: Any, sources: Mapping[str, str]) -> str:
    loc = error.get("loc") or ()
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc:
        return f"{message}: fix the values in the config file, env or flags"
    key = str(loc[0])
    shown = "***" if key in SECRET_KEYS else repr(_redact_input(loc, error.get("input")))
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    message = f"{where.lstrip('.')}: {message}" if where else message
    source = sources.get(key, DEFAULT)
    info = Settings.model_fields.get(key)
    default = None if info is None or info.is_required() else info.get_default(call_default_factory=True)
    fix = f"fix it in {source}" if source != DEFAULT else "set a valid value"
    if default is not None and key not in SECRET_KEYS:
        shown_default = format_duration(default) if _is_duration(key) else str(default)
        fix += f" or remove it to use the default {shown_default}"
    return f"{key}: {message} (got {shown} from {source}); {fix}"
