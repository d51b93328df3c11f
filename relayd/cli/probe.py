"""``relayd probe``: which answers to the open platform questions does this account get?

Reads the daemon's settings (``--config``, env ``RELAYD_*``; the same credentials, endpoint, region, pacing,
``listen`` and ``public_url``), runs :func:`relayd.probe.run_probe` and prints the report (``--json`` for JSON);
``--write PATH`` writes the facts file the daemon reads (setting ``platform_facts``).

SIGINT and SIGTERM cancel the probe; its cleanup still runs (a second signal does not stop it). Exit codes: 0 done
and cleaned up, 1 a platform error or something left behind (listed on stderr), 2 bad usage or settings,
130 interrupted (after cleanup).
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import click
import structlog

from relayd.platform.facts import facts_to_json
from relayd.probe import (
    DEFAULT_SINK,
    DEFAULT_SOURCE,
    ProbeError,
    ProbeOptions,
    ProbeReport,
    as_json,
    as_text,
    run_probe,
)
from relayd.settings import Settings, SettingsError, load_settings
from relayd.volc import LiveError, ValidationError
from relayd.volc.rules import check_address

EXIT_API = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_QUIET = structlog.wrap_logger(structlog.ReturnLogger(), processors=[])
"""The client's own log (a refusal is the probe's expected answer, not a failure) stays off unless --verbose."""


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _options(settings: Settings, opts: dict[str, Any]) -> ProbeOptions:
    for flag in ("sink", "source"):
        problems = check_address(f"--{flag}", opts[flag])
        if problems:
            raise click.BadParameter(str(problems[0]), param_hint=f"--{flag}")
    listen = opts["listen"]
    return ProbeOptions(
        sink=opts["sink"],
        source=opts["source"],
        write_qps=settings.write_qps,
        create_update_qps=settings.create_update_qps,
        list_qps=settings.list_qps,
        timeout_s=settings.api_timeout,
        max_attempts=settings.api_max_attempts,
        logger=None if opts["verbose"] else _QUIET,
        listen=None if opts["no_callbacks"] else (listen or settings.listen),
        public_url=settings.public_url,
        callback_wait_s=opts["callback_wait"],
        failure_wait_s=opts["failure_wait"],
    )


async def _probe(settings: Settings, options: ProbeOptions) -> ProbeReport:
    """Run the probe with SIGINT/SIGTERM cancelling it (cleanup still runs: see relayd.probe.runner)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)

    try:
        return await run_probe(settings.endpoint, settings.credentials(), options)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@click.command("probe")
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), envvar="RELAYD_CONFIG", help="TOML settings file."
)
@click.option("--endpoint", help="Platform endpoint (env RELAYD_ENDPOINT).")
@click.option("--region", help="Signing region (env RELAYD_REGION).")
@click.option("--sink", default=DEFAULT_SINK, show_default=True, help="Push URL the probe's short tasks target.")
@click.option("--source", default=DEFAULT_SOURCE, show_default=True, help="Pull URL of the probe's tasks.")
@click.option("--listen", help="host:port for the callback receiver (default: the daemon's listen).")
@click.option("--no-callbacks", is_flag=True, help="Do not start a callback receiver (schema stays unknown).")
@click.option("--callback-wait", type=float, default=10.0, show_default=True, help="Seconds to wait for callbacks.")
@click.option(
    "--failure-wait",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to watch a relay of an unroutable source for a sign of failure (none: it fails silently).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every API retry and refusal to stderr.")
@click.option("--json", "as_json_flag", is_flag=True, help="Print the report as JSON.")
@click.option("--write", "write_path", type=click.Path(path_type=Path), help="Write the facts file here.")
def probe(**opts: Any) -> None:
    """Find out how the platform answers relayd's open questions, with a throwaway group and short tasks.

    It touches only the tasks it creates (Titles pb + a run id, in a group relaydprobe + the run id) and deletes
    them all at the end, also when interrupted.
    """
    try:
        settings = load_settings(opts["config_file"], endpoint=opts["endpoint"], region=opts["region"])
        options = _options(settings, opts)
        report = asyncio.run(_probe(settings, options))
    except (SettingsError, ValidationError) as error:
        _fail(" ".join(str(error).split("\n")), EXIT_USAGE)
    except (ProbeError, LiveError) as error:
        _fail(f"{error} (cleanup ran; anything it could not delete is logged above)", EXIT_API)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted; cleanup ran (anything it could not delete is logged above)", EXIT_INTERRUPTED)
    _output(report, opts["as_json_flag"], opts["write_path"])


def _output(report: ProbeReport, as_json_flag: bool, write_path: Path | None) -> None:
    text: Any = json.dumps(as_json(report), ensure_ascii=False, indent=2) if as_json_flag else as_text(report)
    click.echo(text)
    if write_path is not None:
        write_path.write_text(json.dumps(facts_to_json(report.facts), ensure_ascii=False, indent=2) + "\n")
        click.echo(f'facts written to {write_path} (set platform_facts = "{write_path}")', err=True)
    if report.leftovers:
        _fail("the probe could not delete: " + "; ".join(report.leftovers), EXIT_API)


COMMANDS: list[click.Command] = [probe]
