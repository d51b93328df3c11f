"""The removal guard's pure core: which schedule removals a reload may carry out, and which it must hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relayd.schedules.guard import RemovalVerdict, check_removals
from relayd.settings import Settings

IDS = st.frozensets(st.text("abcdefghij", min_size=1, max_size=3), max_size=40)
FRACTIONS = st.floats(min_value=0, max_value=1)


def ids(n: int, prefix: str = "s") -> set[str]:
    return {f"{prefix}{i:03d}" for i in range(n)}


def check(applied: set[str], kept: set[str], **kw: object) -> RemovalVerdict:
    limits: dict[str, object] = {"max_removals": 3, "max_removal_fraction": 0.10} | kw
    return check_removals(applied, kept, **limits)  # type: ignore[arg-type]


def test_defaults_allow_three_of_a_small_configuration() -> None:
    applied = ids(10)
    allowed = check(applied, applied - {"s000", "s001", "s002"})
    assert allowed == RemovalVerdict(allowed=True, removed=("s000", "s001", "s002"), limit=3)
    held = check(applied, applied - {"s000", "s001", "s002", "s009"})
    assert not held.allowed
    assert held.removed == ("s000", "s001", "s002", "s009")


def test_ten_percent_when_that_is_larger() -> None:
    applied = ids(100)
    assert check(applied, applied - ids(10)).allowed
    held = check(applied, applied - ids(11))
    assert (held.allowed, held.limit, len(held.removed)) == (False, 10, 11)


def test_an_emptied_directory_is_held_even_when_small() -> None:
    """Every schedule of several vanishing at once is the signature of a lost mount, not of an edit."""
    verdict = check(ids(2), set())
    assert not verdict.allowed
    assert verdict.removed == ("s000", "s001")
    assert check({"only"}, set()).allowed, "removing the one schedule there is stays a one-step edit"


def test_first_start_with_nothing_applied_is_allowed() -> None:
    assert check(set(), set()) == RemovalVerdict(allowed=True, removed=(), limit=3)
    assert check(set(), ids(50)).allowed


def test_approved_removals_do_not_count() -> None:
    applied = ids(20)
    kept = applied - ids(8)
    assert not check(applied, kept).allowed
    assert check(applied, kept, approved=ids(8)).allowed
    assert not check(applied, kept, approved=ids(4)).allowed, "four unapproved removals are still over the limit"


def test_settings_defaults_and_validation() -> None:
    settings = Settings()
    assert (settings.max_removals, settings.max_removal_fraction) == (3, 0.10)
    for bad in ({"max_removals": 0}, {"max_removal_fraction": 1.5}, {"max_removal_fraction": -0.1}):
        try:
            Settings(**bad)  # type: ignore[arg-type]
        except ValueError as error:
            assert next(iter(bad)) in str(error)
        else:
            raise AssertionError(f"{bad} was accepted")


@given(IDS, IDS, st.integers(1, 10), FRACTIONS)
def test_removed_is_exactly_what_the_new_load_drops(
    applied: frozenset[str], kept: frozenset[str], most: int, fraction: float
) -> None:
    verdict = check_removals(applied, kept, max_removals=most, max_removal_fraction=fraction)
    assert verdict.removed == tuple(sorted(applied - kept))
    assert verdict.limit >= most


@given(IDS, IDS, IDS, st.integers(1, 10), FRACTIONS)
def test_keeping_more_never_turns_allowed_into_held(
    applied: frozenset[str], kept: frozenset[str], extra: frozenset[str], most: int, fraction: float
) -> None:
    before = check_removals(applied, kept, max_removals=most, max_removal_fraction=fraction)
    after = check_removals(applied, kept | extra, max_removals=most, max_removal_fraction=fraction)
    assert not before.allowed or after.allowed


@given(IDS, st.integers(1, 10), FRACTIONS, st.data())
def test_removing_one_is_always_allowed(
    applied: frozenset[str], most: int, fraction: float, data: st.DataObject
) -> None:
    if not applied:
        return
    gone = data.draw(st.sampled_from(sorted(applied)))
    verdict = check_removals(applied, applied - {gone}, max_removals=most, max_removal_fraction=fraction)
    assert verdict.allowed and verdict.removed == (gone,)


@given(IDS, IDS, st.integers(1, 10), FRACTIONS)
def test_within_the_count_and_not_everything_is_allowed(
    applied: frozenset[str], kept: frozenset[str], most: int, fraction: float
) -> None:
    verdict = check_removals(applied, kept, max_removals=most, max_removal_fraction=fraction)
    removed = len(applied - kept)
    everything = removed == len(applied) > 1
    assert verdict.allowed == (removed <= verdict.limit and not everything)
    assert check_removals(applied, kept, max_removals=most, max_removal_fraction=fraction, approved=applied).allowed
