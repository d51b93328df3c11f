"""relayd's command line.

Each sibling module owns one family of commands and exposes them as ``COMMANDS``; this module only gathers
them. Errors below the CLI are typed exceptions; they become one-line messages and exit codes here and in the
command modules, never ``sys.exit()`` deeper down.
"""

from __future__ import annotations

import click

from relayd.cli import alerts, apply, config, daemon, emulator, platform, probe, schedules, state, status
from relayd.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="relayd")
def cli() -> None:
    """relayd keeps Volcengine Live pull-to-push relays running past the 7-day task cap."""
    # Logs go to stderr, warnings and up, so command output on stdout stays clean (JSON can be piped);
    # the long-running commands (run, demo, emulator) reconfigure with their own level and format.
    configure_logging("warning", "auto")


for _module in (daemon, status, apply, alerts, config, schedules, platform, probe, emulator, state):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli()
