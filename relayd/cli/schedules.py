"""``relayd validate``, ``relayd plan`` and ``relayd schema``: the schedule directory from the command line.

``validate`` loads and checks a directory and prints every problem (exit 1) or a one-line summary (exit 0).
``plan`` shows, per schedule, the segments the daemon would keep at ``--at`` (default now): index, start and end
in RFC 3339 UTC, the platform Title tag and the Create body. ``schema`` prints the file format's JSON Schema.

The report is built by :func:`plan_report`, a pure function of the loaded directory and the planning
parameters; the ``actions`` hook receives each schedule and its segments and returns the actions the daemon
would take. Without it the actions list is empty; a live mode can pass a function over observed state
(platform task list and/or store) to show create/update/stop/delete without changing this module's shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from relayd.durations import parse_duration
from relayd.preview import Preview, observe
from relayd.schedules.guard import HoldReason, RemovalVerdict, check_removals
from relayd.schedules.loader import DEFAULT_MAX_FILE_BYTES, DirResult, Limits, load_dir
from relayd.schedules.model import Schedule, Segment, file_schema
from relayd.schedules.planner import TitleLength, plan
from relayd.settings import SettingsError, load_settings
from relayd.tightening import platform_facts, with_facts
from relayd.volc.errors import LiveError

DEFAULT_SCHEDULES_DIR = Path("/etc/relayd/schedules.d")
DEFAULT_MAX_TASK_SECONDS = 604800
DEFAULT_HORIZON_S = 14 * 86400
DEFAULT_NAMESPACE = "relayd"
DEFAULT_MAX_REMOVALS = 3
DEFAULT_MAX_REMOVAL_FRACTION = 0.10

ActionsFn = Callable[[Schedule, Sequence[Segment]], list[Mapping[str, Any]]]


# --- pure report building ---------------------------------------------------------------------------------------


def rfc3339(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _elide_picture(body: dict[str, Any]) -> dict[str, Any]:
    mark = body.get("Watermark")
    if isinstance(mark, Mapping) and isinstance(mark.get("Picture"), str):
        head, _, data = mark["Picture"].partition(",")
        body["Watermark"] = {**mark, "Picture": f"{head},<{len(data)} base64 characters>"}
    return body


def request_body(segment: Segment) -> dict[str, Any]:
    """The Create body the daemon would send (CallbackURL aside; the picture elided for display)."""
    body: dict[str, Any] = {**segment.body, "StartTime": segment.start, "EndTime": segment.end, "Title": segment.title}
    if segment.group:
        body["GroupName"] = segment.group
    return _elide_picture(body)


def segment_row(segment: Segment) -> dict[str, Any]:
    return {
        "index": segment.index,
        "occurrence": segment.occurrence,
        "key": segment.key,
        "start": rfc3339(segment.start),
        "end": rfc3339(segment.end),
        "title": segment.title,
        "group": segment.group,
        "callbacks": segment.callbacks,
        "spec_hash": segment.spec_hash,
        "body": request_body(segment),
    }


def plan_report(
    result: DirResult,
    *,
    now: int,
    max_task_seconds: int,
    horizon_s: int,
    namespace: str,
    actions: ActionsFn | None = None,
    title_length: TitleLength = TitleLength.FULL,
) -> dict[str, Any]:
    """``{"schedules": [{id, enabled, file, line, segments, actions}], "errors": [...]}`` for a loaded directory."""
    rows = []
    for schedule in result.schedules():
        segments = (
            plan(
                schedule, now=now, max_task_seconds=max_task_seconds, horizon_s=horizon_s, namespace=namespace,
                title_length=title_length,
            )
            if schedule.enabled
            else []
        )  # fmt: skip
        rows.append(
            {
                "id": schedule.id,
                "title": schedule.title,
                "enabled": schedule.enabled,
                "file": schedule.source_file,
                "line": schedule.source_line,
                "segments": [segment_row(s) for s in segments],
                "actions": list(actions(schedule, segments)) if actions is not None else [],
            }
        )
    return {
        "at": rfc3339(now),
        "schedules": rows,
        "errors": [str(p) for p in result.all_problems()],
        "warnings": [str(p) for p in result.warnings],
    }


def _length(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def render_report(report: Mapping[str, Any]) -> str:
    """The human table: one block per schedule, one line per segment."""
    lines = [f"plan at {report['at']}"]
    for row in report["schedules"]:
        state = "" if row["enabled"] else f"  ({row.get('note') or 'disabled: no segments'})"
        where = f"  {row['file']}:{row['line']}" if row.get("file") else ""
        lines.append(f"\n{row['id']}{where}{state}")
        if row["enabled"] and not row["segments"]:
            lines.append("  no segments within the horizon")
        for seg in row["segments"]:
            length = _length(seg["body"]["EndTime"] - seg["body"]["StartTime"])
            lines.append(f"  {seg['key']:<32} {seg['start']}  {seg['end']}  {length:>10}  {seg['title']}")
        lines.extend(f"  action: {json.dumps(action, sort_keys=True)}" for action in row["actions"])
    lines.extend(f"\nnote: {note}" for note in report.get("notes", []))
    if report.get("warnings"):
        lines.append(f"\n{len(report['warnings'])} warning(s):")
        lines.extend(f"  {warning}" for warning in report["warnings"])
    if report["errors"]:
        lines.append(f"\n{len(report['errors'])} problem(s):")
        lines.extend(f"  {error}" for error in report["errors"])
    return "\n".join(lines)


def guard_note(verdict: RemovalVerdict) -> str | None:
    """The line ``plan --live`` adds when the removal guard would hold this reload's removals."""
    if verdict.allowed:
        return None
    why = "every schedule would go" if verdict.reason == HoldReason.EVERYTHING else f"over the limit of {verdict.limit}"
    shown = ", ".join(verdict.removed[:20]) + (
        f" and {len(verdict.removed) - 20} more" if len(verdict.removed) > 20 else ""
    )
    return (
        f"removal guard: the daemon would hold the removal of {len(verdict.removed)} schedule(s) ({why}): {shown}; "
        "confirm with relayd apply --allow-removals or raise max_removals / max_removal_fraction"
    )


def summary(result: DirResult) -> str:
    files = len(result.files)
    return f"ok: {len(result.schedules())} schedule(s), {len(result.groups())} group(s) in {files} file(s)"


# --- the shell --------------------------------------------------------------------------------------------------


def _settings_values(config_file: Path | None) -> dict[str, Any]:
    """schedules_dir, max_task_seconds, horizon_s, namespace, the Title length and loading limits from the settings
    (tightened by the probe's platform facts, as the daemon's are), or defaults."""
    try:
        settings = load_settings(config_file)
        settings = with_facts(settings, platform_facts(settings))
    except SettingsError as error:
        if config_file is not None:
            raise click.ClickException(f"cannot load settings from {config_file}: {error}") from error
        return {
            "schedules_dir": DEFAULT_SCHEDULES_DIR,
            "max_task_seconds": DEFAULT_MAX_TASK_SECONDS,
            "horizon_s": DEFAULT_HORIZON_S,
            "namespace": DEFAULT_NAMESPACE,
            "title_length": TitleLength.FULL,
            "limits": Limits(max_file_bytes=DEFAULT_MAX_FILE_BYTES),
            "guard": {"max_removals": DEFAULT_MAX_REMOVALS, "max_removal_fraction": DEFAULT_MAX_REMOVAL_FRACTION},
        }
    return {
        "schedules_dir": Path(settings.schedules_dir),
        "max_task_seconds": int(settings.max_task_seconds),
        "horizon_s": int(settings.horizon),
        "namespace": settings.namespace,
        "title_length": TitleLength(settings.title_limit),
        # the daemon's size limit, so validate refuses what the daemon would; no time budget at a terminal
        "limits": Limits(max_file_bytes=settings.max_schedule_file_bytes),
        "guard": {"max_removals": settings.max_removals, "max_removal_fraction": settings.max_removal_fraction},
    }


def _parse_at(value: str | None) -> int:
    if value is None:
        return int(time.time())
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not RFC 3339 (e.g. 2026-01-01T00:00:00Z)") from error
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset; add Z or e.g. +08:00")
    return int(moment.timestamp())


def _parse_horizon(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return int(parse_duration(value))
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


_dir_argument = click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
_config_option = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="relayd settings file (TOML)."
)


@click.command("validate")
@_dir_argument
@_config_option
def validate(directory: Path | None, config_file: Path | None) -> None:
    """Check every schedule file in DIRECTORY (default: settings' schedules_dir); exit 1 on any problem."""
    values = _settings_values(config_file)
    result = load_dir(directory or values["schedules_dir"], limits=values["limits"])
    problems = result.all_problems()
    for problem in problems:
        click.echo(str(problem))
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    if problems:
        bad = len({p.path for p in problems})
        click.echo(f"{len(problems)} problem(s) in {bad} file(s)", err=True)
        raise click.exceptions.Exit(1)
    click.echo(summary(result))


@click.command("plan")
@_dir_argument
@_config_option
@click.option("--at", "at", metavar="RFC3339", help="Plan as if it were this instant (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--max-task-seconds", type=click.IntRange(60, DEFAULT_MAX_TASK_SECONDS), help="Task length cap.")
@click.option("--horizon", metavar="DURATION", help="How far ahead to plan, e.g. 14d (default: settings).")
@click.option("--live", is_flag=True, help="Also list the platform (and the state file) and show the actions.")
def plan_command(
    *,
    directory: Path | None,
    config_file: Path | None,
    at: str | None,
    as_json: bool,
    max_task_seconds: int | None,
    horizon: str | None,
    live: bool,
) -> None:
    """Show the segments the daemon would keep for each schedule; exit 1 if any file has problems.

    With --live, also the actions (create / adopt / update / continue / relaunch / delete) the daemon would
    take right now against the configured endpoint, computed by the daemon's own decision code.
    """
    values = _settings_values(config_file)
    now = _parse_at(at)
    result = load_dir(directory or values["schedules_dir"], limits=values["limits"], now=now)
    preview = _live_preview(config_file, now) if live else None
    report = plan_report(
        result,
        now=now,
        max_task_seconds=max_task_seconds or values["max_task_seconds"],
        horizon_s=_parse_horizon(horizon, values["horizon_s"]),
        namespace=values["namespace"],
        actions=preview.actions if preview is not None else None,
        title_length=values["title_length"],
    )
    if preview is not None:
        configured = {s.id for s in result.schedules()}
        removed = preview.removed(configured)
        report["schedules"].extend(removed)
        # applied = what the store still has records for; a close stand-in for the daemon's applied set
        verdict = check_removals(configured | {row["id"] for row in removed}, configured, **values["guard"])
        report["notes"] = preview.notes + [note for note in [guard_note(verdict)] if note]
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render_report(report))
    if report["errors"]:
        raise click.exceptions.Exit(1)


def _live_preview(config_file: Path | None, now: int) -> Preview:
    """Observe the platform and the store as the daemon would; clear one-line errors otherwise."""
    try:
        settings = load_settings(config_file)
        state = asyncio.run(observe(settings))
    except SettingsError as error:
        raise click.ClickException(f"--live needs valid settings: {error}") from error
    except LiveError as error:
        raise click.ClickException(f"cannot list the platform: {error}") from error
    return Preview(state, settings, now=now)


@click.command("schema")
def schema() -> None:
    """Print the JSON Schema of the schedule file format (for editor support)."""
    click.echo(json.dumps(file_schema(), indent=2, ensure_ascii=False))


COMMANDS: list[click.Command] = [validate, plan_command, schema]
