"""``relayd config show`` and ``relayd config check``: the effective daemon settings and where they came from.

Both load settings exactly as ``relayd run`` does (defaults < credential fallbacks < TOML file < RELAYD_* env),
so what ``show`` prints is what the daemon would use. Secrets are never printed: set ones show as ``***``.
Invalid settings print the loader's messages on stderr and exit 2, like ``relayd run``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from relayd.settings import Settings, SettingsError, load_settings

EXIT_SETTINGS = 2

_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="RELAYD_CONFIG",
    help="TOML settings file (env RELAYD_CONFIG). Env RELAYD_<KEY> overrides it.",
)


def _load(config_file: Path | None) -> Settings:
    try:
        return load_settings(config_file)
    except SettingsError as error:
        _fail(error)
        raise  # unreachable: _fail exits


def _fail(error: SettingsError) -> None:
    for problem in error.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_SETTINGS)


def _warnings(settings: Settings) -> list[str]:
    found = []
    if settings.public_url is None:
        found.append("public_url is not set: callback URLs point at listen, which the platform cannot reach")
    return found


@click.group("config")
def config_group() -> None:
    """Inspect and validate the daemon settings."""


@config_group.command("show")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON: values (secrets as ***), sources, config file.")
def show_command(config_file: Path | None, as_json: bool) -> None:
    """Print the effective settings, secrets redacted, with the source of each value."""
    settings = _load(config_file)
    sources = settings.sources()
    if as_json:
        document = {
            "config_file": None if settings.config_file is None else str(settings.config_file),
            "settings": settings.redacted(),
            "sources": sources,
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    shown = settings.display()
    width = max(map(len, shown))
    value_width = min(max(map(len, shown.values())), 48)
    click.echo(f"# config file: {settings.config_file or '-'}")
    for key, value in shown.items():
        click.echo(f"{key:<{width}}  {value:<{value_width}}  # {sources[key]}")


@config_group.command("check")
@_config_option
def check_command(config_file: Path | None) -> None:
    """Validate the settings (including credentials); print "ok" or the errors (exit 2)."""
    settings = _load(config_file)
    try:
        settings.credentials()
    except SettingsError as error:
        _fail(error)
    for warning in _warnings(settings):
        click.echo(f"warning: {warning}", err=True)
    click.echo("ok")


COMMANDS: list[click.Command] = [config_group]
