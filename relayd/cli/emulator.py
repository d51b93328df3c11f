"""``relayd emulator``: run the Volcengine Live emulator standalone until SIGINT/SIGTERM.

It prints the endpoint and the emulator's own throwaway keys (printing them is intended: they open nothing but
this local process) and the environment lines that point relayd at it. Signals only set an event; a second
SIGINT forces exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import click

from relayd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator, EmulatorConfig
from relayd.emulator.quirks import Profile, QuirkError, Quirks, parse_assignment, resolve


def _banner(emulator: Emulator) -> str:
    config = emulator.config
    lines = [
        f"Volcengine Live emulator listening on {emulator.url}",
        f"  access key: {config.access_key}",
        f"  secret key: {config.secret_key}",
        f"  task window cap: {config.max_task_seconds} s; QPS write {config.write_qps}, list {config.list_qps}",
        f"  profile {config.profile}; quirks: {_quirk_line(emulator.state.quirks)}",
        f"  playback: {emulator.url}/play/HOST/APP/STREAM.m3u8 (.master.m3u8, .flv)",
    ]
    if config.admin:
        lines.append(f"  admin API: {emulator.url}/__emulator/ (history, stats, tasks, faults, quirks, requests)")
    region = emulator.state.quirks.region.value
    lines += [
        "Point relayd at it with:",
        f"  RELAYD_ENDPOINT={emulator.url} RELAYD_ACCESS_KEY={config.access_key} RELAYD_SECRET_KEY={config.secret_key}"
        + ("" if region == "cn-north-1" else f" RELAYD_REGION={region}"),
    ]
    return "\n".join(lines)


def _quirk_line(quirks: Quirks) -> str:
    return ", ".join(f"{name}={value}" for name, value in quirks.as_json().items())


def _quirks(profile: str, assignments: tuple[str, ...]) -> Quirks:
    """The profile with ``--quirk NAME=VALUE`` overrides; a typo is a usage error listing the valid choices."""
    try:
        return resolve(profile, dict(parse_assignment(a) for a in assignments))
    except QuirkError as e:
        raise click.BadParameter(str(e), param_hint="--quirk") from e


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop)
    emulator = Emulator(config)
    await emulator.start(host, port)
    try:
        click.echo(_banner(emulator))
        await stop.wait()
    finally:
        await emulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _on_signal(stop: asyncio.Event) -> None:
    if stop.is_set():
        sys.exit(130)  # a second signal forces exit
    stop.set()


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8900, show_default=True, type=int, help="Port to listen on (0 = any free port).")
@click.option("--access-key", default=DEFAULT_ACCESS_KEY, show_default=True, help="The access key to accept.")
@click.option("--secret-key", default=DEFAULT_SECRET_KEY, show_default=True, help="The secret key to verify with.")
@click.option(
    "--max-task-seconds",
    default=604800,
    show_default=True,
    type=click.IntRange(min=1),
    help="Task window cap (the platform's is 7 days; set it short to chain tasks in seconds).",
)
@click.option(
    "--write-qps",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Write actions per second per account (0 = unlimited).",
)
@click.option(
    "--list-qps",
    default=15,
    show_default=True,
    type=click.IntRange(min=0),
    help="Task list actions per second per account (0 = unlimited).",
)
@click.option("--callback-auth-key", default=None, help="Sign callbacks with sign = md5(key + t).")
@click.option("--seed", default=None, type=int, help="Seed ids and fault draws for a reproducible run.")
@click.option(
    "--admin/--no-admin",
    default=False,
    show_default=True,
    help="Enable the /__emulator/ admin API (history, stats, fault injection).",
)
@click.option("--no-verify-signatures", is_flag=True, help="Accept unsigned requests.")
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=Profile.LENIENT.value,
    show_default=True,
    help="Platform behaviour for the open questions (docs/emulator.md, 'Quirks and profiles').",
)
@click.option(
    "--quirk",
    "quirk_flags",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override one quirk of the profile (repeatable), e.g. --quirk destination=exclusive.",
)
def emulator_command(
    host: str, port: int, no_verify_signatures: bool, profile: str, quirk_flags: tuple[str, ...], **options: Any
) -> None:
    """Run the Volcengine Live pull-to-push emulator until SIGINT/SIGTERM."""
    quirks = _quirks(profile, quirk_flags)
    config = EmulatorConfig(verify_signatures=not no_verify_signatures, profile=profile, quirks=quirks, **options)
    try:
        asyncio.run(_serve(config, host, port))
    except OSError as error:
        click.echo(f"error: cannot listen on {host}:{port}: {error}", err=True)
        sys.exit(1)


COMMANDS: list[click.Command] = [emulator_command]
