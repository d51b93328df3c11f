"""The installation marker's pure parts: its name, how it is read, and the claim/refresh/conflict verdict."""

from __future__ import annotations

import re

from relayd.installation import Holder, Verdict, holder_of, judge, marker_name
from relayd.volc.models import GroupItem, TagInfo


def test_marker_name_is_a_valid_group_name_and_depends_on_the_namespace() -> None:
    name = marker_name("relayd")
    assert re.fullmatch(r"[a-z0-9]{1,20}", name) and name.startswith("rdns")
    assert marker_name("relayd") == name != marker_name("relayd-eu")


def test_no_marker_is_claimed_and_our_own_is_refreshed() -> None:
    assert judge(None, "me", now=1000).verdict == Verdict.CLAIM
    assert judge(Holder("me", seen=0, every=300), "me", now=10_000).verdict == Verdict.REFRESH


def test_a_live_marker_of_another_installation_is_a_conflict_and_a_stale_one_is_taken_over() -> None:
    other = Holder("other", seen=1000, every=300)
    live = judge(other, "me", now=1000 + 3 * 300)
    assert (live.verdict, live.other) == (Verdict.CONFLICT, other)
    stale = judge(other, "me", now=1000 + 3 * 300 + 6)
    assert (stale.verdict, stale.other) == (Verdict.CLAIM, other)


def test_an_unreadable_marker_counts_as_absent() -> None:
    tags = [TagInfo(key="installation", value="x"), TagInfo(key="seen", value="soon")]
    assert holder_of(GroupItem(name="rdns", tags=tags)) is None
    good = [TagInfo(key="installation", value="x"), TagInfo(key="seen", value="12"), TagInfo(key="every", value="3")]
    assert holder_of(GroupItem(name="rdns", tags=good)) == Holder("x", 12.0, 3.0)
