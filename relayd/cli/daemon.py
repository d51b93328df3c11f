"""``relayd run`` and ``relayd demo``: the daemon, and the daemon with the built-in emulator.

Errors from below become one line on stderr and an exit code here: 2 for bad settings (including a ``listen``
address that cannot be bound), 3 when another relayd holds the state file, 1 for anything else that stops the
daemon.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from relayd.daemon import Daemon, DaemonError
from relayd.demo import run_demo
from relayd.emulator.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from relayd.logs import configure_logging
from relayd.settings import SettingsError, load_settings
from relayd.store import StoreError, StoreLockedError
from relayd.web.app import ListenError

EXIT_SETTINGS = 2
EXIT_LOCKED = 3


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command("run")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    envvar="RELAYD_CONFIG",
    help="TOML settings file (env RELAYD_CONFIG). Env RELAYD_<KEY> overrides it.",
)
@click.option("--schedules-dir", type=click.Path(path_type=Path), help="Override schedules_dir.")
@click.option("--state-path", type=click.Path(path_type=Path), help="Override state_path.")
@click.option("--listen", help="Override listen (host:port).")
@click.option("--endpoint", help="Override the platform endpoint (e.g. a local emulator).")
def run_command(config_file: Path | None, **flags: Any) -> None:
    """Run the daemon: keep the platform's relay tasks equal to the schedules, until SIGTERM."""
    overrides = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = load_settings(config_file, **overrides)
        settings.credentials()
    except SettingsError as error:
        _fail(str(error), EXIT_SETTINGS)
        return
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    try:
        asyncio.run(Daemon(settings).run())
    except (ListenError, SettingsError) as error:
        _fail(str(error), EXIT_SETTINGS)
    except StoreLockedError as error:
        _fail(str(error), EXIT_LOCKED)
    except (StoreError, DaemonError, OSError) as error:
        _fail(str(error), 1)


@click.command("demo")
@click.option("--duration", type=float, default=None, help="Stop by itself after this many seconds.")
@click.option("--listen", default=None, help="The daemon's HTTP address (default: 127.0.0.1 on a free port).")
@click.option("--cap", type=int, default=30, show_default=True, help="Task cap in seconds (the platform's is 7 days).")
@click.option("--workdir", type=click.Path(path_type=Path), help="Keep state and schedules here (default: a temp dir).")
@click.option("--check", is_flag=True, help="Exit 1 unless a hand-off, a restart and a cleanup were seen.")
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default="auto", show_default=True)
def demo_command(
    *, duration: float | None, listen: str | None, cap: int, workdir: Path | None, check: bool, log_format: str
) -> None:
    """Run the built-in emulator and the daemon together: chaining, a restart and a cleanup in ~2 minutes."""
    # The emulator's keys are throwaway, but they are still keys: keep them out of the logs.
    configure_logging("info", log_format, secrets=[DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY])
    try:
        report = asyncio.run(run_demo(duration=duration, listen=listen, cap=cap, workdir=workdir))
    except KeyboardInterrupt:  # Ctrl-C before the daemon took over the signal (it then stops gracefully instead)
        return
    except ListenError as error:
        _fail(str(error), EXIT_SETTINGS)
        return
    click.echo("\nrelayd demo summary (from the emulator's history):")
    for line in report.lines():
        click.echo(f"  {line}")
    if check and not report.ok():
        _fail("the demo did not show a zero-gap hand-off, a restart and a cleanup", 1)


COMMANDS: list[click.Command] = [run_command, demo_command]
