"""systemd/relayd.service: the directives the daemon relies on, and `systemd-analyze verify` when available."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from relayd.durations import parse_duration
from relayd.settings import Settings
from relayd.web.connections import effective_max_connections

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "relayd.service"


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


@pytest.fixture(scope="module")
def service() -> configparser.SectionProxy:
    return parse_unit(UNIT.read_text())["Service"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("ExecStart", "/usr/local/bin/relayd run --config /etc/relayd/relayd.toml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "relayd"),
        ("ConfigurationDirectory", "relayd"),
        ("Environment", "RELAYD_STATE_PATH=/var/lib/relayd/state.db"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("UMask", "0077"),
    ],
)
def test_directive(service: configparser.SectionProxy, key: str, value: str) -> None:
    assert service.get(key) == value


def test_timers(service: configparser.SectionProxy) -> None:
    assert parse_duration(service["WatchdogSec"]) == 30
    assert parse_duration(service["RestartSec"]) == 5
    # systemd must wait longer than the daemon's own graceful-shutdown budget before SIGKILL.
    assert parse_duration(service["TimeoutStopSec"]) > Settings().shutdown_timeout


def test_open_file_limit_leaves_room_for_the_http_connection_cap(service: configparser.SectionProxy) -> None:
    # The default soft limit (1024) is what a slow-loris flood exhausted; the cap must fit below the unit's limit.
    nofile = int(service["LimitNOFILE"])
    assert nofile >= 65536
    assert effective_max_connections(Settings().http_max_connections, nofile) == Settings().http_max_connections


def test_state_path_is_inside_the_state_directory(service: configparser.SectionProxy) -> None:
    state_path = Path(service["Environment"].split("=", 1)[1])
    assert state_path.parent == Path("/var/lib") / service["StateDirectory"]


def test_install_section() -> None:
    assert parse_unit(UNIT.read_text())["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt: systemd)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists; the unit names the install path, so point it at a stand-in.
    stand_in = tmp_path / "relayd"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "relayd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/relayd", str(stand_in)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "relayd.service" not in result.stderr, result.stderr
