"""``relayd alerts [--json]`` lists the running daemon's open alerts; ``relayd alerts test [--url URL]`` sends one.

Listing is a thin HTTP client of ``GET /v1/alerts`` (the same connection and token rules as ``relayd status``);
rendering is pure (``render_alerts``). The test sends directly from this process through the configured targets
(or the one ``--url``), without the daemon, and exits 1 naming each target that failed — its URL redacted.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from relayd.cli.status import (
    CONFIG_OPTION,
    StatusError,
    daemon_api_options,
    fetch,
    human_duration,
    resolve_target,
    table,
)

ALERT_HEADERS = ("SEVERITY", "KIND", "SUBJECT", "OPEN FOR", "MESSAGE")


def render_alerts(body: dict[str, Any]) -> str:
    alerts = body.get("alerts") or []
    if not alerts:
        return "no open alerts"
    rows = [
        [a["severity"], a["kind"], a["subject"], human_duration(a.get("open_for_s")), _first_sentence(a["message"])]
        for a in alerts
    ]
    return table(ALERT_HEADERS, rows)


def _first_sentence(message: str, limit: int = 100) -> str:
    head = message.split(". ", 1)[0]
    return head if len(head) <= limit else head[: limit - 1] + "…"


@click.group("alerts", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
@daemon_api_options
@click.pass_context
def alerts(
    ctx: click.Context,
    *,
    as_json: bool,
    url: str | None,
    token: str | None,
    token_file: Path | None,
    config_file: Path | None,
    timeout_s: float,
) -> None:
    """List the running daemon's open alerts (most severe first)."""
    if ctx.invoked_subcommand is not None:
        return
    target = resolve_target(url, token, token_file, config_file)
    body = asyncio.run(fetch(target, "/v1/alerts", timeout_s))
    click.echo(json.dumps(body, ensure_ascii=False, indent=2) if as_json else render_alerts(body))


@alerts.command("test")
@click.option("--url", "alert_url", help="Send to this Apprise URL instead of the configured alert_urls.")
@CONFIG_OPTION
def test(*, alert_url: str | None, config_file: Path | None) -> None:
    """Send a test notification through every configured target (or --url); exit 1 naming each failure."""
    failures, count = asyncio.run(_send_test(alert_url, config_file))
    if failures:
        raise StatusError("test notification failed:\n" + "\n".join(f"  {f}" for f in failures))
    click.echo(f"test notification sent to {count} target(s)")


async def _send_test(alert_url: str | None, config_file: Path | None) -> tuple[list[str], int]:
    from pydantic import ValidationError  # noqa: PLC0415

    from relayd.alerts.delivery import Delivery  # noqa: PLC0415
    from relayd.alerts.manager import delivery_policy, test_message  # noqa: PLC0415
    from relayd.alerts.redact import redact_url, url_secrets  # noqa: PLC0415
    from relayd.alerts.targets import AlertTarget, unusable_targets  # noqa: PLC0415
    from relayd.logs import configure_logging  # noqa: PLC0415
    from relayd.metrics import Metrics  # noqa: PLC0415
    from relayd.settings import SettingsError, load_settings  # noqa: PLC0415

    try:
        settings = load_settings(config_file)
    except SettingsError as e:
        raise StatusError(str(e)) from None
    try:
        targets = [AlertTarget(url=alert_url)] if alert_url is not None else settings.alert_urls
    except ValidationError:
        raise StatusError(f"--url {redact_url(alert_url or '')}: not an Apprise URL (scheme://...)") from None
    if not targets:
        raise StatusError("no alert targets: set alert_urls in the settings, or pass --url")
    if unusable := unusable_targets(targets):
        raise StatusError("Apprise cannot use these alert targets (unknown scheme or bad form): " + ", ".join(unusable))
    # Apprise's own warnings may quote parts of a URL: mask them like the daemon does.
    configure_logging("warning", "auto", secrets=[*settings.secret_values(), *url_secrets(alert_url or "")])
    delivery = Delivery(targets, metrics=Metrics(), policy=delivery_policy(settings))
    try:
        return await delivery.send_now(test_message(settings.namespace, time.time())), len(targets)
    finally:
        await delivery.close()


COMMANDS: list[click.Command] = [alerts]
