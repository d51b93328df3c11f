"""Schedule file text to data, with the line of every table and key. Adapter layer: parses, reads nothing.

TOML is read by rtoml (Rust's ``toml`` crate): ~5x faster than tomllib, which made half of loading 10,000 schedules.
tomllib stays the arbiter: a document rtoml refuses is read again by tomllib, so every document tomllib accepts is
still accepted and every syntax error has tomllib's wording and line. rtoml gives offset datetimes its own tzinfo
type; they are rewritten to ``datetime.timezone`` so the data is exactly what tomllib would give (a test compares).

Parsers report lines only for syntax errors, so :class:`TomlLines` scans the source for
each ``[[schedule]]``/``[[group]]`` header and, for a problem, the line of the offending key below it (falling back
to the header). YAML (``*.yaml``/``*.yml``, same keys) is composed to a node tree first, which gives exact lines.

Hostile input is refused here, cheaply, before anything walks the data:

* YAML aliases are *limited*, not refused: sharing one destination or restart table among many schedules with
  ``&anchor``/``*alias`` (or a ``<<:`` merge) is a legitimate use. Composing aliases is cheap (an alias is the
  same node), but every consumer after that walks the expanded tree, and a few hundred bytes of nested aliases
  expand to billions of values. So the expanded size is counted on the node graph (memoised, linear in the
  written nodes) and a document whose aliases add more than :data:`MAX_ALIAS_VALUES` values, or that refers to
  itself, is refused before it is constructed.
* A ``\\udXXX`` escape of a lone surrogate is refused: the string could be neither logged nor stored.
* Nesting deeper than the parsers' recursion allows, and numbers with more digits than Python converts, are
  problems in the file, not crashes of the loader.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import rtoml
import yaml

MAX_ALIAS_VALUES = 10_000
"""How many values YAML aliases may add to a document when expanded."""

_HEADER_RE = re.compile(r"^\s*\[\[\s*(schedule|group)\s*\]\]")
_TOML_LINE_RE = re.compile(r"at line (\d+)")
_YAML_SUFFIXES = (".yaml", ".yml")


class ParseError(Exception):
    """A file that does not parse: the line if known, what is wrong and how to fix it."""

    def __init__(self, line: int | None, message: str, fix: str) -> None:
        super().__init__(message)
        self.line, self.message, self.fix = line, message, fix


_NESTED = ParseError(None, "is nested too deeply to read", "flatten the nested lists or tables")


# --- locating lines -------------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _key_re(key: str) -> re.Pattern[str]:
    return re.compile(rf"""(?:^|[\s{{,.\[])["']?{re.escape(key)}["']?\s*(?:=|\]|\.)""")


class TomlLines:
    """Header lines of each [[schedule]]/[[group]] and a best-effort key finder below them."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: dict[str, list[int]] = {"schedule": [], "group": []}
        self.bounds: list[int] = []
        for number, line in enumerate(self.lines, start=1):
            if line.lstrip().startswith("[[") and (match := _HEADER_RE.match(line)):
                self.headers[match[1]].append(number)
                self.bounds.append(number)

    def header(self, kind: str, index: int) -> int | None:
        found = self.headers[kind]
        return found[index] if index < len(found) else None

    def line(self, kind: str, index: int, loc: Sequence[str | int]) -> int | None:
        header = self.header(kind, index)
        if header is None:
            return None
        stop = next((b for b in self.bounds if b > header), len(self.lines) + 1)
        position = header
        for part in loc:
            if isinstance(part, int):
                continue
            pattern = _key_re(part)
            found = next((n for n in range(position, stop) if pattern.search(self.lines[n - 1])), None)
            if found is None:
                break
            position = found
        return position


class YamlLines:
    """Exact lines from a composed YAML node tree."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def header(self, kind: str, index: int) -> int | None:
        node = self._walk([kind, index])
        return None if node is None else int(node.start_mark.line) + 1

    def line(self, kind: str, index: int, loc: Sequence[str | int]) -> int | None:
        path: list[str | int] = [kind, index]
        best = self.header(kind, index)
        for part in loc:
            path.append(part)
            node = self._walk(path)
            if node is None:
                break
            best = int(node.start_mark.line) + 1
        return best

    def _walk(self, path: Sequence[str | int]) -> Any:
        node = self.root
        for part in path:
            if node is None:
                return None
            if isinstance(part, int) and isinstance(node.value, list) and node.tag.endswith(":seq"):
                node = node.value[part] if part < len(node.value) else None
            elif isinstance(part, str) and node.tag.endswith(":map"):
                node = next((v for k, v in node.value if k.value == part), None)
            else:
                node = None
        return node


Lines = TomlLines | YamlLines


# --- parsing ----------------------------------------------------------------------------------------------------


def parse(path: Path, text: str) -> tuple[Any, Lines]:
    """The file's data and its line finder; ParseError for anything that is not a readable document."""
    try:
        return _parse_yaml(text) if path.suffix in _YAML_SUFFIXES else _parse_toml(text)
    except RecursionError:
        raise _NESTED from None


def _parse_toml(text: str) -> tuple[Any, TomlLines]:
    try:
        data = _plain_zones(rtoml.loads(text))
    except BaseException as refusal:  # any refusal, and a panic in the extension: tomllib decides (its error, line)
        if not isinstance(refusal, Exception) and type(refusal).__name__ != "PanicException":
            raise  # KeyboardInterrupt, SystemExit
        data = _parse_tomllib(text)
    return data, TomlLines(text)


def _plain_zones(node: Any) -> Any:
    """``node`` with every offset datetime's tzinfo a ``datetime.timezone``, as tomllib makes them (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list | datetime):
                node[key] = _plain_zones(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list | datetime):
                node[index] = _plain_zones(value)
    elif isinstance(node, datetime) and node.tzinfo is not None and type(node.tzinfo) is not timezone:
        offset = node.utcoffset()
        assert offset is not None  # an aware datetime
        return node.replace(tzinfo=timezone(offset))
    return node


def _parse_tomllib(text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = _TOML_LINE_RE.search(str(error))
        raise ParseError(
            int(match[1]) if match else None, f"TOML syntax error: {error}", "fix the syntax at that position"
        ) from None
    except ValueError as error:  # e.g. an integer past Python's 4300-digit conversion limit
        raise ParseError(None, f"has a value that cannot be read ({_first_words(error)})", "shorten it") from None


def _parse_yaml(text: str) -> tuple[Any, YamlLines]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_nodes(node)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        raise ParseError(line, f"YAML syntax error: {_first_words(error)}", "fix the syntax there") from None
    except ValueError as error:
        raise ParseError(None, f"has a value that cannot be read ({_first_words(error)})", "shorten it") from None
    finally:
        loader.dispose()
    return data, YamlLines(node)


def _first_words(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# --- YAML alias expansion ---------------------------------------------------------------------------------------


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _check_nodes(root: Any) -> None:
    """Refuse a node graph whose expansion adds more than MAX_ALIAS_VALUES values or contains itself, or that
    holds a string with a lone surrogate (a ``"\\udcff"`` escape: not a character, and not storable).

    Iterative post-order walk (deep nesting must not exhaust the stack), each distinct node sized once.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()  # nodes on the current path: meeting one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            entered.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
        elif key in entered:
            raise ParseError(
                int(node.start_mark.line) + 1, "an alias refers to itself", "remove the alias from its own anchor"
            )
        elif key not in sizes:
            _check_scalar(node)
            entered.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_VALUES:
        raise ParseError(
            None,
            f"its aliases expand to {_magnitude(added)} more values than are written (at most {MAX_ALIAS_VALUES})",
            "write the shared values out, or share fewer of them through &anchors and *aliases",
        )


def _check_scalar(node: Any) -> None:
    if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
        try:
            node.value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                int(node.start_mark.line) + 1,
                "has an escape of a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character",
                "write the character itself, or its full \\U escape",
            ) from None


def _magnitude(count: int) -> str:
    return str(count) if count < 10**9 else f"about 10^{len(str(count)) - 1}"
