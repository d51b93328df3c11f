"""The code keeps the shape the README's architecture section describes."""

from __future__ import annotations

import ast
from pathlib import Path

import relayd

PACKAGE = Path(relayd.__file__).parent


def test_the_daemon_stays_a_lifecycle_shell() -> None:
    lines = (PACKAGE / "daemon.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, "daemon.py only runs the lifecycle: give new logic a module of its own"


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_the_executor_draws_no_random_numbers_and_computes_no_backoff() -> None:
    imported = _imports("executor.py")
    assert not imported & {"random", "relayd.backoff", "relayd.policy.policy_for"}
    assert "relayd.outcomes" in imported  # every next state comes from the pure core
