"""The alert sender's pure pieces: the respawn delay, how a child ended, and a queued send's deadline."""

from __future__ import annotations

import pytest

from relayd.alerts.sender import RESPAWN_BACKOFF, ended, respawn_delay
from relayd.alerts.sender_child import expired


def test_no_delay_before_the_first_death() -> None:
    assert respawn_delay(0, died_at=100.0, now=100.0) == 0.0


@pytest.mark.parametrize(("deaths", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (20, 30.0)])
def test_the_delay_grows_with_deaths_in_a_row_up_to_the_cap(deaths: int, ceiling: float) -> None:
    assert RESPAWN_BACKOFF.ceiling(deaths) == ceiling
    assert respawn_delay(deaths, died_at=100.0, now=100.0) == ceiling


def test_time_since_the_death_counts_towards_the_delay() -> None:
    assert respawn_delay(3, died_at=100.0, now=101.5) == 0.5
    assert respawn_delay(3, died_at=100.0, now=110.0) == 0.0


@pytest.mark.parametrize(
    ("code", "shown"), [(-9, "signal 9"), (1, "exit code 1"), (0, "exit code 0"), (None, "unknown status")]
)
def test_how_a_child_ended(code: int | None, shown: str) -> None:
    assert ended(code) == shown


def test_a_send_whose_deadline_passed_while_queued_is_not_started() -> None:
    assert not expired(deadline=10.0, now=9.99)
    assert expired(deadline=10.0, now=10.0)
