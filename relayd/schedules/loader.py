"""Loading the config directory: files in, validated Schedules/GroupSpecs and precise problems out.

Every problem is one :class:`ConfigProblem` printed as ``path:line: field: what is wrong — how to fix``. A file
with any problem is *bad*: the daemon keeps that file's previous good version, and :meth:`DirResult.schedules`
leaves it out; the other files load. Ids must be unique across the directory; a duplicate in a later file is
reported naming both places and only the first is kept. *Warnings* (:attr:`DirResult.warnings`, e.g. two
schedules pushing to one destination at once, see :mod:`relayd.schedules.overlaps`) are reported the same way
but never make a file bad; :meth:`DirResult.all_problems` holds the errors only.

Parsing, line numbers and the refusal of hostile YAML live in :mod:`relayd.schedules.parsing`.

Cost is bounded (:class:`Limits`): a file over ``max_schedule_file_bytes`` is refused before it is read, and once
the ``schedule_load_budget`` is spent the files not finished are reported as not loaded, so they count as bad
and keep their last good version. Error messages show values through :mod:`relayd.schedules.excerpts`, which
never renders a value whole. Nothing here touches an event loop or shared mutable state, so the daemon can run
:func:`load_dir` in a worker thread.

Checks that need more than the model: watermark files (read relative to the schedule file, checked and embedded
as a data URL), and the platform's own rules from relayd.volc.rules for URLs and group names, so an operator
sees the same message the platform would give.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from relayd.schedules.excerpts import excerpt, excerpt_text
from relayd.schedules.model import ONE_TIMING, UNION_TAGS, GroupSpec, Schedule
from relayd.schedules.overlaps import Overlap, find_overlaps
from relayd.schedules.parsing import Lines, ParseError, parse
from relayd.volc import rules

DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
_INTERNAL_KEYS = ("source_file", "source_line")
_TOP_KEYS = ("schedule", "group")
_SUFFIXES = (".toml", ".yaml", ".yml")
_FIXES = {
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_type": "use a number",
    "float_parsing": "use a number",
    "bool_type": "use true or false, without quotes",
    "bool_parsing": "use true or false, without quotes",
    "string_type": "use a quoted string",
    "datetime_type": "use RFC 3339, e.g. 2026-01-01T20:00:00+08:00",
    "datetime_parsing": "use RFC 3339, e.g. 2026-01-01T20:00:00+08:00",
    "datetime_from_date_parsing": "use RFC 3339, e.g. 2026-01-01T20:00:00+08:00",
    "model_type": "use a table { ... }",
    "model_attributes_type": "use a table { ... }",
    "dict_type": "use a table { key = value }",
    "list_type": "use a list [ ... ]",
    "too_short": "add at least one entry",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "literal_error": "use one of the values listed",
    "string_too_long": "shorten it",
    "string_too_short": "add at least one character",
    "too_long": "remove entries",
}
_EXAMPLES = {
    "id": 'id = "evening-news"',
    "source": 'source = "rtmp://origin.example.com/live/feed"',
    "destination": 'destination = "rtmp://push.example.com/live/feed"',
    "url": 'url = "https://cdn.example.com/file.mp4"',
    "start": "start = 2026-01-01T00:00:00+08:00",
    "cron": 'cron = "0 20 * * *"',
    "duration": 'duration = "2h"',
    "timezone": 'timezone = "Asia/Shanghai"',
    "ratio": "ratio = 0.2",
    "file": 'file = "logo.png"',
    "name": 'name = "news"',
    "playlist": 'playlist = [{ url = "https://cdn.example.com/a.mp4", duration = 600 }]',
}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the config directory, with where it is and how to fix it."""

    path: str
    line: int | None
    field: str | None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        text = self.message if self.field is None else f"{self.field}: {self.message}"
        return f"{where}: {text}" + (f" — {self.fix}" if self.fix else "")


@dataclass
class FileResult:
    """One file: its content digest, what validated, and its problems (any problem makes the file bad)."""

    path: Path
    digest: str
    schedules: list[Schedule]
    groups: list[GroupSpec]
    problems: list[ConfigProblem]


@dataclass
class DirResult:
    """The directory: per-file results plus cross-file problems (duplicate ids/groups naming both files).

    ``unreadable`` is set when the directory itself could not be listed (missing, not a directory, no
    permission, I/O error); ``files`` is then empty and says nothing about the schedules, so a caller keeps its
    last good configuration. A readable directory with no schedule files left in it (all moved away, or never
    any) has ``files == []`` and ``unreadable is None``: that is a real, empty configuration, which the removal
    guard (:mod:`relayd.schedules.guard`) weighs before anything is removed.
    """

    files: list[FileResult]
    problems: list[ConfigProblem]
    dropped: set[tuple[str, str]] = field(default_factory=set, repr=False)  # (path, id) of later duplicates
    unreadable: ConfigProblem | None = None
    warnings: list[ConfigProblem] = field(default_factory=list)  # reported, never make a file bad

    def schedules(self) -> list[Schedule]:
        """Schedules of good files, first of each id only, in file order."""
        return [s for f in self.files if not f.problems for s in f.schedules if (str(f.path), s.id) not in self.dropped]

    def groups(self) -> list[GroupSpec]:
        return [
            g
            for f in self.files
            if not f.problems
            for g in f.groups
            if (str(f.path), f"group:{g.name}") not in self.dropped
        ]

    def all_problems(self) -> list[ConfigProblem]:
        """Every error: the directory's own, each file's, then the cross-file ones."""
        own = [self.unreadable] if self.unreadable is not None else []
        return own + [p for f in self.files for p in f.problems] + self.problems


# --- turning pydantic errors into problems ---------------------------------------------------------------------


def _render(prefix: str, loc: Sequence[str | int]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{excerpt_text(str(part), 40)}"
    return text


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys allowed in the table at ``loc`` under ``model`` (walking nested models, lists and unions)."""
    candidates: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int) or part in UNION_TAGS:
            continue
        nested = [m for c in candidates if part in c.model_fields for m in _models_in(c.model_fields[part].annotation)]
        candidates = nested or candidates
    return sorted({name for c in candidates for name in c.model_fields if name not in _INTERNAL_KEYS})


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()) or getattr(annotation, "__metadata__", ()):
        yield from _models_in(arg)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and hasattr(annotation, "__metadata__"):
        yield from _models_in(origin)


def _explain(
    error: Mapping[str, Any], model: type[BaseModel]
) -> tuple[list[str | int], str, str | None, list[str | int]]:
    """(field loc, message, fix, loc of its line) for one pydantic error: an unknown key is named in its table's
    field path but located at its own line."""
    loc = [p for p in error["loc"] if p not in UNION_TAGS]
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(key[:64], allowed, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"remove it; allowed keys: {', '.join(allowed)}"
        return loc[:-1], f"unknown key {excerpt(key)}", fix, loc
    if kind == "missing":
        key = str(loc[-1]) if loc else "value"
        example = _EXAMPLES.get(key)
        return loc, "is required", f"add {example}" if example else f"add {key} = ...", loc
    if kind == "value_error":
        text = str(error["ctx"]["error"])
        message, _, fix = text.partition(" — ")
        return loc, message, fix or None, loc
    msg = str(error["msg"])
    return loc, f"{msg[:1].lower()}{msg[1:]} (got {excerpt(error['input'])})", _FIXES.get(kind), loc


# --- one table ----------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """What one file's tables share: where it is, how to find lines, and cached watermark images."""

    path: Path
    lines: Lines
    images: dict[Path, tuple[str | None, str | None]]  # resolved file -> (data URL, problem)


@dataclass(frozen=True, slots=True)
class _Where:
    """One table of a file: problems found in it get its path prefix and line numbers."""

    ctx: _Context
    kind: str  # "schedule" or "group"
    index: int
    prefix: str  # schedule[news], group[#2]

    def problem(
        self, loc: Sequence[str | int], message: str, fix: str | None, at: Sequence[str | int] | None = None
    ) -> ConfigProblem:
        """A problem in the field at ``loc``, on the line of ``at`` (default: of ``loc``)."""
        line = self.ctx.lines.line(self.kind, self.index, loc if at is None else at)
        return ConfigProblem(str(self.ctx.path), line, _render(self.prefix, loc), message, fix)

    @property
    def header(self) -> int:
        return self.ctx.lines.header(self.kind, self.index) or 0


def _read_image(ctx: _Context, name: str) -> tuple[str | None, str | None]:
    target = (ctx.path.parent / name).resolve()
    if target not in ctx.images:
        ctx.images[target] = _check_image(target, name)
    return ctx.images[target]


def _check_image(target: Path, name: str) -> tuple[str | None, str | None]:
    try:
        with target.open("rb") as image:  # bounded: the name may point at a huge file or a device
            data = image.read(rules.WATERMARK_MAX_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        return None, f"cannot read {excerpt(name)} ({reason}) — put the image next to the schedule file or fix the path"
    found = rules.check_image_bytes("file", data)
    if found:
        return None, f"{found[0].message} ({name}) — use a PNG or JPEG of 100 B to 2 MB, at most 1080x1080"
    return rules.picture_data_url(data), None


def _embed_watermark(table: dict[str, Any], where: _Where) -> list[ConfigProblem]:
    mark = table.get("watermark")
    if not isinstance(mark, Mapping) or not isinstance(mark.get("file"), str):
        return []
    if "picture" in mark:
        return [where.problem(["watermark"], "unknown key 'picture'", 'use file = "logo.png"')]
    picture, problem = _read_image(where.ctx, mark["file"])
    if problem is not None:
        message, _, fix = problem.partition(" — ")
        return [where.problem(["watermark", "file"], message, fix)]
    table["watermark"] = {**mark, "picture": picture}
    return []


def _source_addresses(source: Any) -> Iterator[tuple[list[str | int], Any]]:
    if isinstance(source, str):
        yield ["source"], source
    elif isinstance(source, Mapping) and isinstance(source.get("playlist"), list):
        for i, item in enumerate(source["playlist"]):
            if isinstance(item, Mapping) and isinstance(item.get("url"), str):
                yield ["source", "playlist", i, "url"], item["url"]
    elif isinstance(source, Mapping) and isinstance(source.get("url"), str):
        yield ["source", "url"], source["url"]


def _addresses(table: Mapping[str, Any]) -> Iterator[tuple[list[str | int], Any]]:
    yield from _source_addresses(table.get("source"))
    destination = table.get("destination")
    if isinstance(destination, str):
        yield ["destination"], destination
    elif isinstance(destination, Mapping) and isinstance(destination.get("url"), str):
        yield ["destination", "url"], destination["url"]


_URL_FIX = "use an ASCII rtmp://, rtmps://, http(s)://, srt:// or rtsp:// URL"
_NAME_FIX = "use 1-20 letters, digits or Chinese characters"


def _platform_checks(table: Mapping[str, Any], where: _Where) -> list[ConfigProblem]:
    problems = [
        where.problem(loc, found.message, _URL_FIX)
        for loc, value in _addresses(table)
        for found in rules.check_address("url", value)
    ]
    group = table.get("group")
    if isinstance(group, str) and not rules.is_valid_name(group):
        problems.append(where.problem(["group"], f"is not a valid group name ({excerpt(group)})", _NAME_FIX))
    return problems


def _validate(model: type[BaseModel], data: dict[str, Any], where: _Where) -> tuple[Any, list[ConfigProblem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as error:
        return None, [where.problem(*_explain(item, model)) for item in error.errors(include_url=False)]


def _internal_keys(table: Mapping[str, Any], where: _Where) -> list[ConfigProblem]:
    return [
        where.problem([], f"unknown key {key!r}", "remove it; relayd sets it itself")
        for key in _INTERNAL_KEYS
        if key in table
    ]


def _prefix(kind: str, raw: Any, key: str, index: int) -> str:
    name = raw.get(key) if isinstance(raw, Mapping) else None
    return f"{kind}[{excerpt_text(name, 40)}]" if isinstance(name, str) and name else f"{kind}[#{index + 1}]"


def _load_schedule(raw: Any, ctx: _Context, index: int) -> tuple[Schedule | None, list[ConfigProblem]]:
    where = _Where(ctx, "schedule", index, _prefix("schedule", raw, "id", index))
    if not isinstance(raw, Mapping):
        return None, [where.problem([], "must be a table", "use [[schedule]] tables")]
    table = dict(raw)
    problems = _internal_keys(table, where) + _embed_watermark(table, where) + _platform_checks(table, where)
    table.update(source_file=str(ctx.path), source_line=where.header)
    if ("window" in table) == ("recurrence" in table):
        # pydantic runs the model-level check only when every field is valid; report it regardless
        message, _, fix = ONE_TIMING.partition(" — ")
        problems.append(where.problem([], message, fix))
    schedule, found = _validate(Schedule, table, where)
    problems += [p for p in found if p not in problems]
    return (schedule if not problems else None), problems


def _load_group(raw: Any, ctx: _Context, index: int) -> tuple[GroupSpec | None, list[ConfigProblem]]:
    where = _Where(ctx, "group", index, _prefix("group", raw, "name", index))
    if not isinstance(raw, Mapping):
        return None, [where.problem([], "must be a table", "use [[group]] tables")]
    problems = _internal_keys(raw, where)
    name = raw.get("name")
    if isinstance(name, str) and not rules.is_valid_name(name):
        problems.append(where.problem(["name"], f"is not a valid group name ({excerpt(name)})", _NAME_FIX))
    group, found = _validate(GroupSpec, {**raw, "source_file": str(ctx.path), "source_line": where.header}, where)
    problems += found
    return (group if not problems else None), problems


# --- files and directories ----------------------------------------------------------------------------------


def _tables(data: Any, key: str, path: Path) -> tuple[list[Any], list[ConfigProblem]]:
    value = data.get(key, [])
    if isinstance(value, list):
        return value, []
    return [], [
        ConfigProblem(str(path), None, key, f"must be a list of tables (got {excerpt(value)})", f"write [[{key}]]")
    ]


def _top_level(data: Any, path: Path) -> list[ConfigProblem]:
    if not isinstance(data, Mapping):
        return [ConfigProblem(str(path), None, None, "the file must hold [[schedule]] and [[group]] tables", None)]
    problems = []
    for key in data:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(str(key)[:64], _TOP_KEYS, n=1)
            fix = f"did you mean [[{close[0]}]]?" if close else "only [[schedule]] and [[group]] tables are allowed"
            problems.append(ConfigProblem(str(path), None, None, f"unknown key {excerpt(key)}", fix))
    return problems


def _duplicates(items: Sequence[Schedule | GroupSpec], what: str, path: Path) -> list[ConfigProblem]:
    seen: dict[str, int] = {}
    problems = []
    for item in items:
        name = item.id if isinstance(item, Schedule) else item.name
        if name in seen:
            problems.append(
                ConfigProblem(
                    str(path),
                    item.source_line or None,
                    f"{what}[{name}]",
                    f"duplicate {what} {name!r} (also at line {seen[name]})",
                    f"give each {what} a unique name",
                )
            )
        else:
            seen[name] = item.source_line
    return problems


@dataclass(frozen=True, slots=True)
class Limits:
    """What loading may cost: the settings ``max_schedule_file_bytes`` and ``schedule_load_budget``."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    budget_s: float | None = None  # None: no time limit


class _Budget:
    """A deadline on a clock, read once per table at most and never again once spent."""

    def __init__(self, seconds: float | None, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = None if seconds is None else clock() + seconds
        self.spent = False

    def check(self) -> bool:
        """True once the budget is spent."""
        if not self.spent and self._deadline is not None:
            self.spent = self._clock() >= self._deadline
        return self.spent

    def problem(self, path: Path) -> ConfigProblem:
        return ConfigProblem(
            str(path),
            None,
            None,
            f"not loaded: the schedule_load_budget of {self.seconds:g} s ran out",
            "its last good version is kept; raise schedule_load_budget or split the directory's large files",
        )


def _file_problem(path: Path, message: str, fix: str | None = None, digest: str = "") -> FileResult:
    return FileResult(path, digest, [], [], [ConfigProblem(str(path), None, None, message, fix)])


def _read_bounded(path: Path, limit: int) -> bytes | FileResult:
    """The file's bytes, or a bad FileResult; a file over the limit is refused before it is read."""
    fix = "split it into smaller files or raise max_schedule_file_bytes"
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                return _file_problem(path, f"is {size} bytes, over max_schedule_file_bytes ({limit})", fix)
            raw = file.read(limit + 1)
    except OSError as error:
        return _file_problem(path, f"cannot read ({error.strerror or error})")
    if len(raw) > limit:  # it grew after fstat
        return _file_problem(path, f"is over max_schedule_file_bytes ({limit} bytes)", fix)
    return raw


def _decode(path: Path, raw: bytes, digest: str) -> tuple[Any, Lines] | FileResult:
    try:
        return parse(path, raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return _file_problem(path, f"is not UTF-8 ({error.reason})", "save it as UTF-8", digest)
    except ParseError as error:
        return FileResult(path, digest, [], [], [ConfigProblem(str(path), error.line, None, error.message, error.fix)])


def load_file(
    path: Path,
    *,
    images: dict[Path, tuple[str | None, str | None]] | None = None,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
) -> FileResult:
    """Load and validate one file; problems are collected, never raised."""
    return _load_file(path, images if images is not None else {}, limits, _Budget(limits.budget_s, clock))


def _load_file(
    path: Path, images: dict[Path, tuple[str | None, str | None]], limits: Limits, budget: _Budget
) -> FileResult:
    raw = _read_bounded(path, limits.max_file_bytes)
    if isinstance(raw, FileResult):
        return raw
    digest = hashlib.sha256(raw).hexdigest()
    parsed = _decode(path, raw, digest)
    if isinstance(parsed, FileResult):
        return parsed
    data, lines = parsed
    problems = _top_level(data, path)
    if problems and not isinstance(data, Mapping):
        return FileResult(path, digest, [], [], problems)
    result = _load_tables(data, _Context(path, lines, images), budget)
    if result is None:
        return FileResult(path, digest, [], [], [budget.problem(path)])
    schedules, groups, found = result
    problems += found + _duplicates(schedules, "schedule", path) + _duplicates(groups, "group", path)
    problems.sort(key=lambda p: p.line or 0)
    return FileResult(path, digest, schedules, groups, problems)


def _load_tables(
    data: Mapping[str, Any], ctx: _Context, budget: _Budget
) -> tuple[list[Schedule], list[GroupSpec], list[ConfigProblem]] | None:
    """Every [[schedule]] and [[group]] of a parsed file; None if the budget ran out before the last one."""
    schedules, groups, problems = [], [], []
    raw_schedules, found = _tables(data, "schedule", ctx.path)
    problems += found
    for index, table in enumerate(raw_schedules):
        if budget.check():
            return None
        schedule, found = _load_schedule(table, ctx, index)
        problems += found
        if schedule is not None:
            schedules.append(schedule)
    raw_groups, found = _tables(data, "group", ctx.path)
    problems += found
    for index, table in enumerate(raw_groups):
        if budget.check():
            return None
        group, found = _load_group(table, ctx, index)
        problems += found
        if group is not None:
            groups.append(group)
    return schedules, groups, problems


def config_files(path: Path) -> list[Path]:
    """The files load_dir reads: *.toml, *.yaml, *.yml, sorted; dotfiles and editor backups ignored.

    Raises OSError if the directory cannot be listed; an entry that vanishes while it is looked at is skipped,
    and so is a name that is not valid UTF-8 (see :func:`_listing`).
    """
    return _listing(path)[0]


def _listing(path: Path) -> tuple[list[Path], list[str]]:
    """(config files, escaped names of config files whose names are not UTF-8).

    Why the second list: such a name decodes to a string with lone surrogates, which cannot be logged as JSON,
    stored in SQLite or shown in status, so a schedule carrying it as ``source_file`` breaks every save. It is
    reported by its escaped name instead and never loaded.
    """
    with os.scandir(path) as entries:
        names = sorted(entry.name for entry in entries if _is_config_file(entry))
    good = [name for name in names if _is_utf8(name)]
    return [path / name for name in good], [_escaped(name) for name in names if not _is_utf8(name)]


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(text: str) -> str:
    """A file system string as readable text: bytes that are not UTF-8 become ``\\xNN``."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _bad_name(path: Path, name: str) -> ConfigProblem:
    return ConfigProblem(
        f"{_escaped(str(path))}/{name}", None, None, "file name is not valid UTF-8; not loaded", "rename the file"
    )


def _is_config_file(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    if not name.endswith(_SUFFIXES) or name.startswith((".", "#")) or name.endswith("~"):
        return False
    try:
        return entry.is_file()
    except OSError:
        return False


def _unreadable(path: Path, error: OSError | None) -> ConfigProblem:
    fix = "create it, mount it, or point schedules_dir at your schedules; the last good configuration is kept"
    if error is None:
        reason, fix = "path is not valid UTF-8", "rename the directory or point schedules_dir at another one"
    elif isinstance(error, FileNotFoundError):
        reason = "does not exist"
    elif isinstance(error, NotADirectoryError):
        reason = "is not a directory"
    else:
        reason = f"cannot be read ({error.strerror or error})"
    return ConfigProblem(_escaped(str(path)), None, None, reason, fix)


def _cross_file(files: list[FileResult]) -> tuple[list[ConfigProblem], set[tuple[str, str]]]:
    first: dict[str, tuple[str, int]] = {}
    problems, dropped = [], set()
    for result in files:
        if result.problems:
            continue
        items: list[tuple[str, int, str, str]] = [(s.id, s.source_line, "schedule", s.id) for s in result.schedules]
        items += [(f"group:{g.name}", g.source_line, "group", g.name) for g in result.groups]
        for key, line, what, name in items:
            if key in first:
                where = f"{first[key][0]}:{first[key][1]}"
                problems.append(
                    ConfigProblem(
                        str(result.path),
                        line or None,
                        f"{what}[{name}]",
                        f"duplicate {what} {name!r}, also defined at {where}",
                        f"give each {what} a unique name; this one is ignored",
                    )
                )
                dropped.add((str(result.path), key))
            else:
                first[key] = (str(result.path), line)
    return problems, dropped


def load_dir(
    path: Path,
    *,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
    now: int | None = None,
) -> DirResult:
    """Load every config file of a directory; see the module docstring for what makes a file bad.

    Safe to run in a worker thread: it touches no event loop and no shared mutable state. Its cost is bounded by
    ``limits``: files over the size limit are not read, and once the time budget is spent the files not finished
    are reported as not loaded (bad, so their last good version is kept). ``now`` (unix s, default the current
    time) dates the overlap check.
    """
    if not _is_utf8(str(path)):
        return DirResult([], [], unreadable=_unreadable(path, None))
    try:
        names, bad_names = _listing(path)
    except OSError as error:
        return DirResult([], [], unreadable=_unreadable(path, error))
    images: dict[Path, tuple[str | None, str | None]] = {}
    budget = _Budget(limits.budget_s, clock)
    files = [
        FileResult(p, "", [], [], [budget.problem(p)]) if budget.check() else _load_file(p, images, limits, budget)
        for p in names
    ]
    result = resolve(files)
    result.problems[:0] = [_bad_name(path, name) for name in bad_names]
    if not budget.check():
        moment = int(time.time()) if now is None else now
        result.warnings = [_overlap_warning(o) for o in find_overlaps(result.schedules(), now=moment)]
    return result


def resolve(files: list[FileResult]) -> DirResult:
    """The directory made of ``files``: the one cross-file rule — the first definition of an id or group name
    wins, later ones are reported naming both places. The daemon calls it again after putting each bad file's
    last good version in its place."""
    problems, dropped = _cross_file(files)
    return DirResult(files, problems, dropped)


def _overlap_warning(overlap: Overlap) -> ConfigProblem:
    first, second = overlap.first, overlap.second
    when = datetime.fromtimestamp(overlap.start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ConfigProblem(
        second.source_file,
        second.source_line or None,
        f"schedule[{second.id}].destination",
        f"pushes to {excerpt_text(overlap.destination)} from {when} while schedule {first.id!r} "
        f"({first.source_file}:{first.source_line}) does too",
        "two relays on one destination collide: change a destination or move a window",
    )
