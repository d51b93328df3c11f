"""The probe's report: text for the operator, JSON for tools (pure formatting of a :class:`ProbeReport`)."""

from __future__ import annotations

from typing import Any

from relayd.platform.facts import facts_to_json
from relayd.probe.runner import ProbeReport

_QUESTIONS = [
    ("destination_exclusive", "Q10 two tasks on one DstAddr refused", "destination"),
    ("destination_touching_ok", "Q10 touching windows accepted", "destination"),
    ("update_running", "Q5 Update while 生效中 accepted", "update_running"),
    ("past_start", "Q9 StartTime in the past accepted", "past_start"),
    ("relaunch_from", "Q1 Relaunch accepted from", "relaunch_from"),
    ("not_found_codes", "Q1 codes for an unknown TaskId", "not_found_codes"),
    ("list_time_utc", "Q6 list times in UTC (Z)", "list_time_utc"),
    ("title_limit", "Title length limit", "title_limit"),
    ("failure_shows", "§4 a failing relay shows as", "failure_shows"),
    ("callback_schema", "Q11 callback payload schema", "callback_schema"),
    ("create_update_qps", "Create/Update requests per second", "create_update_qps"),
]


def as_json(report: ProbeReport) -> dict[str, Any]:
    """The facts file's content plus the strategies, the captured callbacks and what was left behind."""
    return facts_to_json(report.facts) | {
        "strategy": report.strategy,
        "callbacks": report.callbacks,
        "run": {"id": report.run_id, "group": report.group, "leftovers": report.leftovers},
    }


def as_text(report: ProbeReport) -> str:
    known = report.facts.known()
    lines = [f"relayd probe (run {report.run_id}, group {report.group})", ""]
    for name, question, strategy in _QUESTIONS:
        value = known.get(name, "unknown")
        lines.append(f"{question}: {_shown(value)}")
        if name in report.facts.evidence:
            lines.append(f"    evidence: {report.facts.evidence[name]}")
        if name in (strategy, "destination_exclusive"):
            lines.append(f"    relayd will: {report.strategy[strategy]}")
    lines.append("")
    if report.leftovers:
        lines += ["NOT cleaned up (delete these by hand):", *(f"    {item}" for item in report.leftovers)]
    else:
        lines.append("cleanup: every task and the group the probe created are deleted")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return str(value)
