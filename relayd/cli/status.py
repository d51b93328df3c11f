"""Commands of this family are registered by relayd.cli."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
