"""``relayd apply [--allow-removals]``: confirm what the running daemon's removal guard holds back.

A reload that would remove many schedules at once (a lost volume mount, files moved out) removes none of them: they
keep running and ``relayd status`` lists them. Without a flag this command shows what is held; with
``--allow-removals`` it asks the daemon (``POST /v1/removals/release``, the same endpoint as the console's button)
to remove exactly those schedules, which it does on a reload it starts at once. Removing a few schedules on
purpose never needs it. Connection and token options are the same as ``relayd status``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from relayd.cli.status import daemon_api_options, fetch, render_held, resolve_target


def render_released(released: list[str]) -> str:
    if not released:
        return "no removals were held: nothing to remove"
    return f"removing {len(released)} schedules: {', '.join(released)}"


@click.command("apply")
@click.option(
    "--allow-removals", is_flag=True, help="Remove the schedules the removal guard holds (as `relayd status` lists)."
)
@daemon_api_options
def apply(
    *,
    allow_removals: bool,
    url: str | None,
    token: str | None,
    token_file: Path | None,
    config_file: Path | None,
    timeout_s: float,
) -> None:
    """Show the removals the running daemon holds back, or confirm them with --allow-removals."""
    target = resolve_target(url, token, token_file, config_file)
    if not allow_removals:
        body = asyncio.run(fetch(target, "/v1/schedules", timeout_s))
        click.echo(render_held(body.get("held_removals") or []))
        return
    body = asyncio.run(fetch(target, "/v1/removals/release", timeout_s, method="POST"))
    click.echo(render_released([str(sid) for sid in body.get("released", [])]))


COMMANDS: list[click.Command] = [apply]
