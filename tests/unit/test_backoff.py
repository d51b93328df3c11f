"""Full-jitter exponential backoff: bounds, growth, cap, overflow safety, argument checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.backoff import Backoff, backoff_ceiling, backoff_delay


def test_ceiling_grows_geometrically_until_the_cap() -> None:
    ceilings = [backoff_ceiling(n, base=0.2, factor=2, cap=5) for n in range(1, 8)]
    assert ceilings[:5] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2])
    assert ceilings[5:] == [5, 5]


def test_delay_is_rand_times_ceiling() -> None:
    assert backoff_delay(3, base=1, factor=3, cap=100, rand=0.5) == pytest.approx(4.5)
    assert backoff_delay(3, base=1, factor=3, cap=100, rand=0.0) == 0.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_ceiling(10_000, base=0.2, factor=2, cap=5) == 5
    assert backoff_delay(10**9, base=1, factor=10, cap=60, rand=0.999) == pytest.approx(59.94)


@given(
    attempt=st.integers(min_value=1, max_value=5000),
    base=st.floats(min_value=0.0, max_value=100),
    factor=st.floats(min_value=1.0, max_value=10),
    cap=st.floats(min_value=0.0, max_value=3600),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_delay_is_within_zero_and_cap(attempt: int, base: float, factor: float, cap: float, rand: float) -> None:
    delay = backoff_delay(attempt, base=base, factor=factor, cap=cap, rand=rand)
    assert 0.0 <= delay <= cap
    if attempt <= 30:
        assert delay <= base * factor ** (attempt - 1) + 1e-9


@given(st.integers(min_value=1, max_value=200))
def test_ceiling_never_decreases(attempt: int) -> None:
    shape = Backoff(base=0.3, factor=1.7, cap=30)
    assert shape.ceiling(attempt + 1) >= shape.ceiling(attempt)


@pytest.mark.parametrize(
    ("attempt", "base", "factor", "cap", "rand"),
    [(0, 1, 2, 5, 0.5), (1, -1, 2, 5, 0.5), (1, 1, 0.5, 5, 0.5), (1, 1, 2, 5, 1.0), (1, 1, 2, 5, -0.1)],
)
def test_bad_arguments_are_rejected(attempt: int, base: float, factor: float, cap: float, rand: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay(attempt, base=base, factor=factor, cap=cap, rand=rand)


def test_backoff_shape_validates_at_construction() -> None:
    with pytest.raises(ValueError):
        Backoff(base=1, factor=0.9, cap=5)
    assert Backoff().delay(2, 0.5) == pytest.approx(0.2)
