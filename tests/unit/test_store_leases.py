"""The lease rules, as pure functions of the lease row and the database's ``now``."""

from __future__ import annotations

from relayd.store.leases import Lease, claim, extend, fenced, give_up


def test_a_free_lease_is_taken_with_epoch_one() -> None:
    assert claim(None, "a", 10.0, now=100.0) == Lease("a", 1, 110.0)


def test_a_valid_lease_of_another_is_refused_and_the_holder_just_extends() -> None:
    held = Lease("a", 3, 110.0)
    assert claim(held, "b", 10.0, now=105.0) is None
    assert claim(held, "a", 10.0, now=105.0) == Lease("a", 3, 115.0)


def test_a_lapsed_lease_is_taken_with_the_next_epoch_even_by_its_old_holder() -> None:
    lapsed = Lease("a", 3, 110.0)
    assert claim(lapsed, "b", 10.0, now=110.0) == Lease("b", 4, 120.0)
    assert claim(lapsed, "a", 10.0, now=111.0) == Lease("a", 4, 121.0)


def test_renew_extends_only_the_valid_lease_it_names() -> None:
    mine = Lease("a", 3, 110.0)
    assert extend(mine, mine, 10.0, now=105.0) == Lease("a", 3, 115.0)
    assert extend(mine, mine, 10.0, now=110.0) is None  # lapsed: take it again through claim
    assert extend(Lease("b", 4, 120.0), mine, 10.0, now=105.0) is None  # taken over
    assert extend(None, mine, 10.0, now=105.0) is None


def test_release_lapses_the_lease_now_and_keeps_its_epoch_for_the_next_leader() -> None:
    mine = Lease("a", 3, 110.0)
    released = give_up(mine, mine, now=105.0)
    assert released == Lease("a", 3, 105.0)
    assert claim(released, "b", 10.0, now=105.0) == Lease("b", 4, 115.0)
    newer = Lease("b", 4, 120.0)
    assert give_up(newer, mine, now=105.0) is newer  # a late release cannot free its successor's lease


def test_only_a_newer_epoch_fences() -> None:
    assert fenced(2, 1)
    assert not fenced(2, 2)
    assert not fenced(None, 0)  # nobody ever led
    assert fenced(1, 0)  # a store that never took the lease writes nothing a leader owns
