"""Platform facts tighten the Title limit and the Create/Update pace, never loosen them (``relayd.tightening``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relayd.platform.facts import PlatformFacts
from relayd.schedules.titles import TitleLength
from relayd.settings import Settings, SettingsError, load_settings
from relayd.tightening import Tightening, tag_length, tightenings, with_facts
from tests.unit.test_settings import clean_env

__all__ = ["clean_env"]  # the autouse fixture: no RELAYD_* or VOLC_* from the machine running the tests


def settings(**values: object) -> Settings:
    return load_settings(None, **values)


@pytest.mark.parametrize(
    ("limit", "length"), [(None, TitleLength.FULL), (20, TitleLength.FULL), (30, TitleLength.FULL), (15, 10), (10, 10)]
)
def test_a_limit_below_20_takes_the_short_tag(limit: int | None, length: TitleLength) -> None:
    assert tag_length(limit) == length


def test_unknown_facts_change_nothing() -> None:
    assert tightenings(settings(), None) == []
    assert tightenings(settings(), PlatformFacts()) == []
    assert with_facts(settings(), PlatformFacts()) == settings()


def test_stricter_facts_win_and_each_change_is_named() -> None:
    facts = PlatformFacts(title_limit=12, create_update_qps=1.0)
    assert tightenings(settings(), facts) == [
        Tightening("title_limit", "title_limit", 12, 20, 10),
        Tightening("create_update_qps", "create_update_qps", 1.0, 10.0, 1.0),
    ]
    with capture_logs() as logs:
        tightened = with_facts(settings(), facts)
    assert (tightened.title_limit, tightened.create_update_qps) == (10, 1.0)
    assert [(e["event"], e["fact"], e["configured"], e["applied"]) for e in logs] == [
        ("platform_fact_applied", "title_limit", 20, 10),
        ("platform_fact_applied", "create_update_qps", 10.0, 1.0),
    ]


def test_a_stricter_setting_stays() -> None:
    strict = settings(platform="byteplus", create_update_qps=0.5)
    facts = PlatformFacts(title_limit=20, create_update_qps=10.0)
    assert tightenings(strict, facts) == []
    assert (with_facts(strict, facts).title_limit, with_facts(strict, facts).create_update_qps) == (10, 0.5)


def test_a_limit_no_tag_fits_stops_start_up_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    with pytest.raises(SettingsError) as caught:
        with_facts(settings(platform_facts=path), PlatformFacts(title_limit=8))
    assert str(path) in str(caught.value) and "title_limit 8" in str(caught.value)
