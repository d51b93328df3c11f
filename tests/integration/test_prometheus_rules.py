"""The shipped Prometheus rules: valid (``promtool check rules``), their unit tests pass (``promtool test rules``),
and every ``relayd_*`` metric they use is one relayd exports (or ``relayd_stream_up``, the stream check's gauge)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from relayd.metrics import Metrics

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "relayd-rules.yml"
RULE_TESTS = RULES_DIR / "relayd-rules.test.yml"
STREAM_GAUGE = "relayd_stream_up"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install the Debian package prometheus (scripts/system-packages does)")
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60, check=False)


def test_rules_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_only_metrics_relayd_exports() -> None:
    used = set(re.findall(r"\brelayd_[a-z_]+\b", RULES.read_text(encoding="utf-8")))
    metrics = Metrics()
    metrics.set_sources(segment_counts=lambda: {"failed": 1}, next_handoff=lambda: 5.0)
    metrics.set_alerts_open({("handoff_at_risk", "warning"): 1})
    metrics.api_observer().on_call("ListPullToPushTaskV2", "ok", 0.1, 1)
    exported = set(
        re.findall(r"^(relayd_[a-z_]+?)(?:_total|_bucket|_count|_sum|_created)?[{ ]", metrics.render().decode(), re.M)
    )
    exported |= {name + "_total" for name in exported}
    assert used - exported <= {STREAM_GAUGE}, sorted(used - exported)
