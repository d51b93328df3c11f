"""What ``pip install`` of a checkout brings: every third-party module relayd imports is a declared dependency,
and the documented install commands name something that exists."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match[0]).lower()


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_name(r) for r in project["dependencies"]}


def imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "relayd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
    return names - set(sys.stdlib_module_names) - {"relayd", "__future__"}


def test_pyyaml_is_a_regular_dependency() -> None:
    assert "pyyaml" in declared(), "the shipped config/schedules/branded.yaml needs it"


def test_every_imported_distribution_is_declared() -> None:
    owners = packages_distributions()
    needed = {_name(dist) for module in imported_top_levels() for dist in owners.get(module, [module])}
    assert needed - declared() == set()


def test_documented_install_commands_do_not_name_an_unpublished_package() -> None:
    """relayd is not on PyPI: a bare ``pip install relayd`` fails; install from a checkout instead."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        assert not re.search(r"pip install relayd(?![\w/\[.-])", text), doc.name
