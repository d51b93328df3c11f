"""``relayd task ...`` and ``relayd group ...``: the platform's pull-to-push actions from the shell.

Each command loads settings (``--config``, env ``RELAYD_*``, ``VOLC_ACCESSKEY``/``VOLC_SECRETKEY``,
``~/.volc/credentials``), opens one :class:`~relayd.volc.client.LiveClient` (validated, paced, signed, retried),
runs one action and prints JSON to stdout. Bodies come from a JSON file (``--file F``, ``-`` for stdin) and/or
flags; flags win over the file. A file body is passed through as is (after the local rule checks), so every
field of the seed examples can be sent, including ones the typed models do not name.

Errors become one line on stderr, ``error: <message>``: exit 1 for a platform or transport error (the message
carries Action, Code, CodeN, Message and RequestId), exit 2 for bad usage, settings or a request that breaks a
field rule (nothing is sent then). Logs are off unless ``--verbose`` (then on stderr); secrets are never printed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from relayd.apiclient import live_client
from relayd.ids import GroupName, TaskId
from relayd.schedules.titles import is_relayd_title
from relayd.settings import SettingsError, load_settings
from relayd.volc.client import (
    CONTINUE_TASK,
    CREATE_GROUP,
    CREATE_TASK,
    DELETE_TASK,
    RELAUNCH_TASK,
    RESTART_TASK,
    STOP_TASK,
    UPDATE_GROUP,
    UPDATE_TASK,
    LiveClient,
)
from relayd.volc.errors import LiveError, ValidationError
from relayd.volc.models import ListGroupsRequest, ListTasksQuery, ListTasksV2Request, TaskItem

EXIT_API = 1
EXIT_USAGE = 2
F = TypeVar("F", bound=Callable[..., Any])
Action = Callable[[LiveClient], Awaitable[Any]]


class UsageError(Exception):
    """Bad input found before any call (unreadable file, bad time, unknown task)."""


# --- plumbing ----------------------------------------------------------------------------------------------


def platform_options(func: F) -> F:
    """--endpoint / --config / --region / --verbose on every command; passed on as ``conn``."""

    @click.option("--endpoint", help="Platform endpoint (env RELAYD_ENDPOINT), e.g. http://127.0.0.1:8900.")
    @click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        envvar="RELAYD_CONFIG",
        help="TOML settings file (env RELAYD_CONFIG).",
    )
    @click.option("--region", help="Signing region (default cn-north-1).")
    @click.option("-v", "--verbose", is_flag=True, help="Log retries and failures to stderr.")
    @wraps(func)
    def wrapper(
        endpoint: str | None, config_file: Path | None, region: str | None, verbose: bool, **kwargs: Any
    ) -> Any:
        conn = {"endpoint": endpoint, "config_file": config_file, "region": region, "verbose": verbose}
        return func(conn, **kwargs)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _logger(verbose: bool) -> Any:
    if not verbose:
        return structlog.wrap_logger(structlog.ReturnLogger(), processors=[])
    renderer = structlog.dev.ConsoleRenderer(colors=False)
    return structlog.wrap_logger(structlog.PrintLogger(sys.stderr), processors=[renderer])


def _client(conn: dict[str, Any]) -> LiveClient:
    settings = load_settings(conn["config_file"], endpoint=conn["endpoint"], region=conn["region"])
    return live_client(settings, logger=_logger(conn["verbose"]))


async def _with_client(client: LiveClient, action: Action) -> Any:
    async with client:
        return await action(client)


def run(conn: dict[str, Any], action: Action) -> None:
    """Run one action with a fresh client; print its JSON result; map errors to a line and an exit code."""
    try:
        result = asyncio.run(_with_client(_client(conn), action))
    except (SettingsError, UsageError, ValidationError) as error:
        _fail(" ".join(str(error).split("\n")), EXIT_USAGE)
    except LiveError as error:
        _fail(str(error), EXIT_API)
    else:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))


def read_body(file: str | None) -> dict[str, Any]:
    """A JSON object from a file or ``-`` (stdin); {} without a file."""
    if file is None:
        return {}
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        body = json.loads(text)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read a JSON body from {file}: {error}") from error
    if not isinstance(body, dict):
        raise UsageError(f"the body in {file} must be a JSON object")
    return body


def parse_time(value: str) -> int:
    """Unix seconds, ``now``, ``now+3600``, or RFC3339 with ``Z`` or an offset."""
    text = value.strip()
    if text.startswith("now"):
        rest = text[3:]
        return int(datetime.now(UTC).timestamp()) + (int(rest) if rest else 0)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{value!r} is neither unix seconds nor RFC3339") from None
    if parsed.tzinfo is None:
        raise UsageError(f"{value!r} has no time zone; add Z or an offset like +08:00")
    return int(parsed.timestamp())


def _item_json(item: TaskItem) -> dict[str, Any]:
    return item.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- task bodies from flags --------------------------------------------------------------------------------

TASK_FLAGS: list[Callable[[F], F]] = [
    click.option("--file", "file", help="JSON body file, or - for stdin. Flags override its fields."),
    click.option("--src", help="SrcAddr: live pull URL (Type live)."),
    click.option("--vod", "vod", multiple=True, help="A VOD file URL (Type vod; repeat, in play order)."),
    click.option("--dst", help="DstAddr: push URL."),
    click.option("--start", help="StartTime: unix seconds, RFC3339, or now[+seconds]."),
    click.option("--end", help="EndTime: unix seconds, RFC3339, or now[+seconds]."),
    click.option("--title", help="Title: 1-20 letters, digits or Chinese characters."),
    click.option("--group", help="GroupName."),
    click.option("--type", "kind", type=click.Choice(["live", "vod"]), help="Source type (default live)."),
    click.option("--cycle-mode", type=int, help="CycleMode for VOD: -1 forever, 0 PlayTimes, n loops."),
    click.option("--callback-url", help="CallbackURL for status callbacks."),
]


def task_flags(func: F) -> F:
    for option in reversed(TASK_FLAGS):
        func = option(func)
    return func


def apply_flags(body: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The body with every given flag written over it (platform field names)."""
    out = dict(body)
    simple = {
        "src": "SrcAddr",
        "dst": "DstAddr",
        "title": "Title",
        "group": "GroupName",
        "cycle_mode": "CycleMode",
        "callback_url": "CallbackURL",
    }
    out |= {field: flags[name] for name, field in simple.items() if flags.get(name) is not None}
    out |= {
        field: parse_time(flags[name])
        for name, field in (("start", "StartTime"), ("end", "EndTime"))
        if flags.get(name)
    }
    if flags.get("vod"):
        out["VodSrcAddrs"] = [{"SrcAddr": url} for url in flags["vod"]]
        out.setdefault("CycleMode", -1)
    kind = flags.get("kind") or ("vod" if flags.get("vod") else None)
    if kind is not None:
        out["Type"] = 1 if kind == "vod" else 0
    out.setdefault("Type", 0)
    return out


_NOT_UPDATABLE = ("Status", "TaskStatus", "DstAddrType")


def update_base(item: TaskItem) -> dict[str, Any]:
    """An UpdatePullToPushTask body rebuilt from a listed task (empty and status-only fields left out)."""
    body = {k: v for k, v in _item_json(item).items() if v not in ("", [], None) and k not in _NOT_UPDATABLE}
    body["StartTime"], body["EndTime"] = item.start_ts, item.end_ts
    if item.type == 0:
        body.pop("CycleMode", None)
        body.pop("PlayTimes", None)
    return body


async def find_task(client: LiveClient, task_id: str) -> TaskItem:
    async for item in client.iter_tasks():
        if item.task_id == task_id:
            return item
    raise UsageError(f"task {task_id} not found")


# --- task commands -----------------------------------------------------------------------------------------


@click.group("task")
def task_group() -> None:
    """Pull-to-push tasks: list, show, create, update, stop, continue, relaunch, restart, delete."""


@task_group.command("list")
@click.option("--title", help="Case-insensitive substring of the Title.")
@click.option("--group", "groups", multiple=True, help="GroupName (repeat for several; several imply --v2).")
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--size", type=int, default=20, show_default=True, help="Page size, at most 500.")
@click.option("--all", "all_pages", is_flag=True, help="Every page (via ListPullToPushTaskV2).")
@click.option("--v2", is_flag=True, help="Use ListPullToPushTaskV2 (POST) instead of ListPullToPushTask (GET).")
@platform_options
def task_list(conn: dict[str, Any], **opts: Any) -> None:
    """List tasks as JSON: {"List": [...], "Pagination": {...}}."""
    run(conn, lambda client: list_tasks(client, **opts))


async def list_tasks(
    client: LiveClient, *, title: str | None, groups: tuple[str, ...], page: int, size: int, all_pages: bool, v2: bool
) -> Any:
    if all_pages:
        items = [_item_json(i) async for i in client.iter_tasks(title=title, group_names=list(groups) or None)]
        return {"List": items, "Total": len(items)}
    if v2 or len(groups) > 1:
        names = [GroupName(g) for g in groups] or None
        result = await client.list_tasks_v2(ListTasksV2Request(group_names=names, title=title, page=page, size=size))
    else:
        group = GroupName(groups[0]) if groups else None
        result = await client.list_tasks(ListTasksQuery(page=page, size=size, title=title, group_name=group))
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


@task_group.command("show")
@click.argument("task_id")
@platform_options
def task_show(conn: dict[str, Any], task_id: str) -> None:
    """One task as JSON (found by listing every page)."""

    async def action(client: LiveClient) -> Any:
        return _item_json(await find_task(client, task_id))

    run(conn, action)


@task_group.command("create")
@task_flags
@platform_options
def task_create(conn: dict[str, Any], file: str | None, **flags: Any) -> None:
    """Create a task from --file and/or flags; prints {"TaskId": ...}."""

    async def action(client: LiveClient) -> Any:
        return await client.call(CREATE_TASK, body=apply_flags(read_body(file), flags))

    run(conn, action)


@task_group.command("update")
@click.argument("task_id")
@task_flags
@platform_options
def task_update(conn: dict[str, Any], task_id: str, file: str | None, **flags: Any) -> None:
    """Update a task. Without --file the current task is read first, so flags change only what they name."""

    async def action(client: LiveClient) -> Any:
        base = read_body(file) if file else update_base(await find_task(client, task_id))
        body = apply_flags(base, flags) | {"TaskId": task_id}
        await client.call(UPDATE_TASK, body=body)
        return {"Action": UPDATE_TASK, "TaskId": task_id, "ok": True}

    run(conn, action)


UNDONE_BY_RELAYD = frozenset({STOP_TASK, DELETE_TASK})
"""Actions relayd reverses on its own tasks (it continues a stopped one and re-creates a deleted one)."""


def ownership_warning(action_name: str, task_id: str, title: str) -> str | None:
    """The warning for stopping or deleting by hand a task whose Title is a relayd tag, else None."""
    if action_name not in UNDONE_BY_RELAYD or not is_relayd_title(title):
        return None
    return (
        f"warning: relayd owns task {task_id} (Title {title}) and will undo this within seconds. "
        "To stop a relay, set `enabled = false` in its schedule and reload relayd (systemctl reload relayd)."
    )


async def _warn_if_owned(client: LiveClient, action_name: str, task_id: str) -> None:
    if action_name not in UNDONE_BY_RELAYD:
        return
    try:
        item = await find_task(client, task_id)
    except UsageError:  # not listed: the platform's own answer to the action will say so
        return
    warning = ownership_warning(action_name, task_id, item.title)
    if warning is not None:
        click.echo(warning, err=True)


def _ref_command(name: str, action_name: str, summary: str) -> click.Command:
    @task_group.command(name, help=summary)
    @click.argument("task_id")
    @click.option("--group", help="The task's GroupName (required for sub-accounts).")
    @platform_options
    def command(conn: dict[str, Any], task_id: str, group: str | None) -> None:
        async def action(client: LiveClient) -> Any:
            await _warn_if_owned(client, action_name, task_id)
            body = {"TaskId": TaskId(task_id), **({"GroupName": group} if group else {})}
            await client.call(action_name, body=body)
            return {"Action": action_name, "TaskId": task_id, "ok": True}

        run(conn, action)

    return command


_ref_command("stop", STOP_TASK, "Disable (停用) a pending or active task.")
_ref_command("continue", CONTINUE_TASK, "Enable a disabled task again (ContinuePullToPushTask).")
_ref_command("relaunch", RELAUNCH_TASK, "Restart a task's relay from the beginning (RelaunchPullToPushTask).")
_ref_command("restart", RESTART_TASK, "Enable a disabled task with the legacy RestartPullToPushTask.")
_ref_command("delete", DELETE_TASK, "Delete a task.")


# --- group commands ----------------------------------------------------------------------------------------


def parse_tags(tags: tuple[str, ...], category: str | None) -> list[dict[str, str]]:
    out = []
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{tag!r} is not key=value", param_hint="--tag")
        out.append({"Key": key, "Value": value} | ({"Category": category} if category else {}))
    return out


@click.group("group")
def group_group() -> None:
    """Pull-to-push task groups: list, create, update, delete."""


@group_group.command("list")
@click.option("--page", type=int, default=1, show_default=True, help="PageNum, 1-1000.")
@click.option("--size", type=int, default=100, show_default=True, help="PageSize, 1-1000.")
@click.option("--deleted", is_flag=True, help="List deleted groups (StatusList [1]) instead of usable ones.")
@platform_options
def group_list(conn: dict[str, Any], page: int, size: int, deleted: bool) -> None:
    """List groups as JSON: {"List": [...], "Total": n}."""

    async def action(client: LiveClient) -> Any:
        request = ListGroupsRequest(page_num=page, page_size=size, status_list=[1] if deleted else None)
        return (await client.list_groups(request)).model_dump(mode="json", by_alias=True, exclude_none=True)

    run(conn, action)


@group_group.command("create")
@click.argument("name")
@click.option("--project", default="default", show_default=True, help="ProjectName (cannot change later).")
@click.option("--tag", "tags", multiple=True, help="key=value (repeatable).")
@click.option("--category", type=click.Choice(["Custom", "System"]), help="Category of the --tag tags.")
@platform_options
def group_create(conn: dict[str, Any], name: str, project: str, tags: tuple[str, ...], category: str | None) -> None:
    """Create a group."""
    body: dict[str, Any] = {"Name": name, "ProjectName": project}
    if tags:
        body["Tags"] = parse_tags(tags, category)
    run(conn, lambda client: _group_write(client, CREATE_GROUP, body))


@group_group.command("update")
@click.argument("name")
@click.option("--tag", "tags", multiple=True, required=True, help="key=value (repeatable); replaces the tags.")
@click.option("--category", type=click.Choice(["Custom", "System"]), default="Custom", show_default=True)
@platform_options
def group_update(conn: dict[str, Any], name: str, tags: tuple[str, ...], category: str) -> None:
    """Update a group's tags."""
    body = {"Name": name, "Tags": parse_tags(tags, category)}
    run(conn, lambda client: _group_write(client, UPDATE_GROUP, body))


@group_group.command("delete")
@click.argument("name")
@platform_options
def group_delete(conn: dict[str, Any], name: str) -> None:
    """Delete a group (the preset 'default' group cannot be deleted)."""

    async def action(client: LiveClient) -> Any:
        await client.delete_group(name)
        return {"Action": "DeletePullToPushGroup", "Name": name, "ok": True}

    run(conn, action)


async def _group_write(client: LiveClient, action: str, body: dict[str, Any]) -> Any:
    await client.call(action, body=body)
    return {"Action": action, "Name": body["Name"], "ok": True}


COMMANDS: list[click.Command] = [task_group, group_group]
