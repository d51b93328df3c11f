"""``relayd status [ID] [--json]``: what the running daemon is doing, read from its status API.

The overview ends with the config's problems and warnings and the removals the removal guard holds. It also shows
``GET /v1/instances``: every instance sharing the store, its role, lease and heartbeat.

The command is a thin HTTP client of ``GET /v1/schedules`` and ``GET /v1/schedules/{id}``; rendering is pure
(``render_overview`` / ``render_detail`` / ``render_instances``: the API's JSON in, text out) so it is tested
without a daemon.

Where it connects: ``--url``, else ``http://<listen>`` from relayd's settings (a wildcard listen address becomes
loopback). Which token: ``--token`` / ``RELAYD_API_TOKEN``, else ``--token-file``, else ``api_token`` from the
settings, else the ``api_token`` file next to ``state_path`` that the daemon generates. Exit status 1 with a
one-line message when the daemon is unreachable, the token is rejected or the schedule is unknown.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click

from relayd.web.auth import read_token_file, token_file

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - mapping away from wildcards


class StatusError(click.ClickException):
    """A failure to show status; click prints the message and exits with 1."""


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


# -- where and how to connect -----------------------------------------------------------------------------------


def url_for_listen(listen: str) -> str:
    """``http://host:port`` for a listen address, wildcard hosts replaced by loopback."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    host = _WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _settings_target(config_file: Path | None) -> tuple[str | None, str | None]:
    """(url, token) from relayd's settings and its token file; (None, None) where unavailable."""
    from relayd.settings import load_settings  # noqa: PLC0415 - only needed when flags leave a gap

    try:
        settings = load_settings(config_file)
    except Exception as e:  # a broken config must not hide the daemon's status, unless it was asked for
        if config_file is not None:
            raise StatusError(f"cannot load settings from {config_file}: {e}") from e
        return None, None
    secret = settings.api_token.get_secret_value() if settings.api_token is not None else None
    token = secret or read_token_file(token_file(Path(settings.state_path)))
    return url_for_listen(settings.listen), token


def resolve_target(url: str | None, token: str | None, token_path: Path | None, config_file: Path | None) -> Target:
    if token is None and token_path is not None:
        token = read_token_file(token_path)
        if token is None:
            raise StatusError(f"token file {token_path} is missing or empty")
    if url is None or token is None:
        default_url, default_token = _settings_target(config_file)
        url = url or default_url
        token = token or default_token
    if url is None:
        raise StatusError("no daemon address: pass --url or set listen in the settings")
    return Target(url.rstrip("/"), token)


# -- fetching ---------------------------------------------------------------------------------------------------


async def fetch(target: Target, path: str, timeout_s: float, *, method: str = "GET") -> Any:
    """``method`` ``path`` (GET by default) as JSON, turning every failure into a StatusError with a clear message."""
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.request(method, target.url + path, headers=headers) as response,
        ):
            _check_status(response.status, path)
            return await response.json(content_type=None)
    except (aiohttp.ClientConnectionError, TimeoutError) as e:
        raise StatusError(f"relayd is not reachable at {target.url} ({type(e).__name__})") from e
    except (aiohttp.ContentTypeError, json.JSONDecodeError) as e:
        raise StatusError(f"unexpected answer from {target.url}: not JSON") from e


def _check_status(status: int, path: str) -> None:
    if status == 401:
        raise StatusError("relayd wants an API token: pass --token or --token-file")
    if status == 403:
        raise StatusError("relayd rejected the API token (or its operator API is disabled: no api_token set)")
    if status == 404:
        raise StatusError(f"not found: {path}")
    if status == 501:
        raise StatusError(f"this relayd does not offer {path}: upgrade it")
    if status != 200:
        raise StatusError(f"relayd answered HTTP {status} for {path}")


# -- rendering (pure) -------------------------------------------------------------------------------------------


def human_duration(seconds: float | None) -> str:
    """``2d3h``, ``4h05m``, ``12m``, ``40s``; ``-`` for None; negative as ``-12m`` (overdue)."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        text = f"{days}d{hours}h"
    elif hours:
        text = f"{hours}h{minutes:02d}m"
    elif minutes:
        text = f"{minutes}m"
    else:
        text = f"{secs}s"
    return sign + text


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned table, aware of wide (CJK) characters."""
    widths = [max(_width(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(_pad(str(cell), w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]
    return "\n".join(lines)


def _current(segment: dict[str, Any] | None) -> str:
    if not segment:
        return "-"
    task = (segment.get("task_id") or "no task")[:12]
    return f"#{segment['index']} {task} ends in {human_duration(segment.get('ends_in_s'))}"


def _next(segment: dict[str, Any] | None) -> str:
    if not segment:
        return "-"
    return f"#{segment['index']} {segment['state']} starts in {human_duration(segment.get('starts_in_s'))}"


def _failures(item: dict[str, Any]) -> str:
    parts = []
    if item.get("failed_segments"):
        parts.append(f"{item['failed_segments']} failed")
    if item.get("retrying_segments"):
        parts.append(f"{item['retrying_segments']} retrying")
    error = item.get("last_error")
    if error:
        request = f" [{error['request_id']}]" if error.get("request_id") else ""
        parts.append(f"{_clip(error['message'], 60)}{request}")
    if item.get("problems"):
        parts.append("config: " + _clip("; ".join(item["problems"]), 60))
    return ", ".join(parts) or "-"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


OVERVIEW_HEADERS = ("SCHEDULE", "STATE", "CURRENT", "NEXT", "HAND-OFF IN", "FAILURES")


def overview_row(item: dict[str, Any]) -> list[str]:
    return [
        item["id"],
        item["state"],
        _current(item.get("current")),
        _next(item.get("next")),
        human_duration(item.get("handoff_in_s")),
        _failures(item),
    ]


def render_overview(body: dict[str, Any]) -> str:
    schedules = body.get("schedules", [])
    text = table(OVERVIEW_HEADERS, [overview_row(item) for item in schedules]) if schedules else "no schedules"
    for title, lines in _sections(body):
        if lines:
            text += f"\n\n{title}:\n" + "\n".join(f"  {line}" for line in lines)
    held = body.get("held_removals") or []
    if held:
        text += "\n\n" + render_held(held)
    return text


def _sections(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The overview's closing sections, each a title and its lines (empty: left out)."""
    alerts = body.get("alerts") or []
    streams = [(item["id"], item.get("health")) for item in body.get("schedules", [])]
    return [
        ("config problems", list(body.get("config_problems") or [])),
        ("streams", [f"{sid}: {health['text']}" for sid, health in streams if health]),
        ("open alerts", [f"[{a['severity']}] {a['kind']} {a['subject']}: {a['message']}" for a in alerts]),
        ("config warnings", list(body.get("config_warnings") or [])),
        ("installation conflicts", list(body.get("conflicts") or [])),
    ]


def render_held(held: Sequence[str]) -> str:
    """The removals the guard holds, and how to let them go."""
    if not held:
        return "no removals are held"
    return (
        f"removals held: {len(held)} schedules are no longer declared but keep running:\n  {', '.join(held)}\n"
        "  remove them with relayd apply --allow-removals, or restore their files"
    )


INSTANCE_HEADERS = ("INSTANCE", "ROLE", "LEASE EXPIRES IN", "LAST HEARTBEAT")


def instance_row(item: dict[str, Any], self_id: str | None) -> list[str]:
    expires = item.get("lease_expires_in_s")
    name = item["instance_id"] + (" (this)" if item["instance_id"] == self_id else "")
    heartbeat = f"{human_duration(item['heartbeat_age_s'])} ago" + (" (stale)" if item.get("stale") else "")
    return [name, item["role"], "-" if expires is None else human_duration(expires), heartbeat]


def render_instances(body: dict[str, Any]) -> str:
    """The instances sharing the store (high availability); empty text when there is only this one as leader."""
    rows = body.get("instances") or []
    self_id = (body.get("self") or {}).get("instance_id")
    return "instances:\n" + table(INSTANCE_HEADERS, [instance_row(i, self_id) for i in rows]) if rows else ""


async def fetch_overview(target: Target, timeout_s: float) -> tuple[Any, Any]:
    """The schedules and, when the daemon has the route, its instances (None otherwise)."""
    body = await fetch(target, "/v1/schedules", timeout_s)
    try:
        instances = await fetch(target, "/v1/instances", timeout_s)
    except StatusError:
        instances = None
    return body, instances


SEGMENT_HEADERS = ("#", "WINDOW (UTC)", "STATE", "TASK", "ATTEMPTS", "NEXT ACTION", "LAST ERROR")


def segment_row(seg: dict[str, Any]) -> list[str]:
    window = seg["window"]
    span = f"{_short_time(window['start'])} → {_short_time(window['end'])}"
    action = seg.get("next_action")
    next_text = f"{action['action']} in {human_duration(action['in_s'])}" if action else "-"
    error = seg.get("last_error")
    error_text = "-"
    if error:
        error_text = _clip(error["message"], 50) + (f" [{error['request_id']}]" if error.get("request_id") else "")
    return [
        str(seg["index"]),
        span,
        seg["state"],
        seg.get("task_id") or "-",
        str(seg["attempts"]),
        next_text,
        error_text,
    ]


def _short_time(rfc3339: str | None) -> str:
    return (rfc3339 or "-").replace("T", " ").removesuffix("Z")[:19]


def render_detail(body: dict[str, Any]) -> str:
    item = body["schedule"]
    title = f" ({item['title']})" if item.get("title") else ""
    head = [
        f"schedule {item['id']}{title}: {item['state']}",
        f"  current: {_current(item.get('current'))}",
        f"  next:    {_next(item.get('next'))}",
        f"  hand-off in {human_duration(item.get('handoff_in_s'))}; failures: {_failures(item)}",
    ]
    if item.get("source"):
        head.insert(1, f"  source:  {item['source']}")
    segments = body.get("segments", [])
    rows = table(SEGMENT_HEADERS, [segment_row(s) for s in segments]) if segments else "no segments"
    return "\n".join(head) + "\n\n" + rows


# -- the command ------------------------------------------------------------------------------------------------

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), envvar="RELAYD_CONFIG",
    help="relayd settings file (TOML) to take the defaults from.",
)  # fmt: skip


def daemon_api_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of every command that reads the daemon's API: --url, --token, --token-file, --config, --timeout."""
    options = [
        click.option("--url", help="Base URL of the daemon's HTTP server (default: from the listen setting)."),
        click.option("--token", envvar="RELAYD_API_TOKEN", help="API bearer token (default: settings / token file)."),
        click.option(
            "--token-file", type=click.Path(path_type=Path, dir_okay=False), help="File holding the API token."
        ),
        CONFIG_OPTION,
        click.option(
            "--timeout", "timeout_s", type=float, default=5.0, show_default=True, help="Request timeout in seconds."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("status")
@click.argument("schedule_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
@daemon_api_options
def status(
    *,
    schedule_id: str | None,
    as_json: bool,
    url: str | None,
    token: str | None,
    token_file: Path | None,
    config_file: Path | None,
    timeout_s: float,
) -> None:
    """Show each schedule's state, current and next segment, time to hand-off and failures (or one schedule)."""
    target = resolve_target(url, token, token_file, config_file)
    if schedule_id:
        body = asyncio.run(fetch(target, f"/v1/schedules/{schedule_id}", timeout_s))
        click.echo(json.dumps(body, ensure_ascii=False, indent=2) if as_json else render_detail(body))
        return
    body, instances = asyncio.run(fetch_overview(target, timeout_s))
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    extra = render_instances(instances) if isinstance(instances, dict) else ""
    click.echo(render_overview(body) + (f"\n\n{extra}" if extra else ""))


COMMANDS: list[click.Command] = [status]
