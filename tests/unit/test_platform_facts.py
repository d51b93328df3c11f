"""The platform facts file: what ``relayd probe`` writes and the daemon reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayd.platform.facts import (
    CallbackSchema,
    FactsError,
    PlatformFacts,
    RelaunchFrom,
    facts_from_json,
    facts_to_json,
    load_facts,
)


def test_known_facts_round_trip_through_the_file(tmp_path: Path) -> None:
    facts = PlatformFacts(
        destination_exclusive=True,
        relaunch_from=RelaunchFrom.DISABLED,
        not_found_codes=("InvalidParameter.TaskNotExist",),
        callback_schema=CallbackSchema.ALIBABA,
        title_limit=10,
        evidence={"destination_exclusive": "InvalidParam on the second Create [request_id=r1]"},
    )
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts_to_json(facts)))
    loaded, unknown = load_facts(path)
    assert unknown == [] and loaded == facts and loaded.source == "probe"
    assert loaded.evidence["destination_exclusive"].endswith("[request_id=r1]")
    assert "update_running" not in facts_to_json(facts)["facts"]  # unknown facts stay unknown


def test_a_newer_probes_fact_is_reported_not_fatal_and_a_bad_value_names_the_fact(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    _, unknown = facts_from_json({"version": 1, "facts": {"title_limit": 10, "hologram": True}}, path)
    assert unknown == ["hologram"]
    with pytest.raises(FactsError, match=r"facts\.relaunch_from: 'sideways'"):
        facts_from_json({"version": 1, "facts": {"relaunch_from": "sideways"}}, path)
    with pytest.raises(FactsError, match=r"facts\.title_limit"):
        facts_from_json({"version": 1, "facts": {"title_limit": True}}, path)
    with pytest.raises(FactsError, match="not a relayd platform facts file"):
        facts_from_json({"facts": {}}, path)


def test_a_fact_learnt_at_run_time_keeps_its_evidence() -> None:
    learnt = PlatformFacts().with_fact("destination_exclusive", True, "InvalidParam: DstAddr already used")
    assert learnt.destination_exclusive is True and learnt.source == "learnt"
    assert learnt.known() == {"destination_exclusive": True}
