"""Title tags at both lengths: shape, stability, the prefix relation, matching, and plans at either length."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.ids import SegmentKey
from relayd.schedules.model import Schedule
from relayd.schedules.planner import plan
from relayd.schedules.titles import TitleLength, is_relayd_title, lookup_title, same_segment, title_for
from relayd.volc import rules

KEYS = st.from_regex(r"[a-z][a-z0-9-]{0,20}\.[0-9]{1,4}", fullmatch=True)


def test_a_short_tag_is_rd_and_8_base32_characters_of_the_same_hash() -> None:
    digest = hashlib.sha256(b"relayd\0news.3").digest()
    expected = "rd" + base64.b32encode(digest).decode()[:8]
    assert title_for(SegmentKey("news.3"), "relayd", TitleLength.SHORT) == expected


@given(key=KEYS, namespace=st.sampled_from(["relayd", "staging", "a1"]))
def test_the_full_tag_is_rd_and_18_base32_characters_of_the_hash(key: str, namespace: str) -> None:
    digest = hashlib.sha256(f"{namespace}\0{key}".encode()).digest()
    assert title_for(SegmentKey(key), namespace) == "rd" + base64.b32encode(digest).decode()[:18]


@given(key=KEYS, namespace=st.sampled_from(["relayd", "staging", "a1"]))
def test_the_short_tag_is_the_full_tags_prefix_and_both_are_valid_titles(key: str, namespace: str) -> None:
    short = title_for(SegmentKey(key), namespace, TitleLength.SHORT)
    full = title_for(SegmentKey(key), namespace, TitleLength.FULL)
    assert len(short) == 10 and len(full) == 20 and full.startswith(short)
    assert rules.is_valid_name(short) and is_relayd_title(short) and is_relayd_title(full)
    assert same_segment(short, full) and same_segment(full, short)
    assert lookup_title(full) == lookup_title(short) == short


def test_short_tags_are_stable_unique_and_namespaced() -> None:
    key = SegmentKey("news.3")
    assert title_for(key, "relayd", TitleLength.SHORT) == title_for(SegmentKey("news.3"), "relayd", TitleLength.SHORT)
    assert title_for(key, "relayd", TitleLength.SHORT) != title_for(key, "staging", TitleLength.SHORT)
    many = {title_for(SegmentKey(f"s{i}.{j}"), "relayd", TitleLength.SHORT) for i in range(200) for j in range(50)}
    assert len(many) == 200 * 50  # 10,000 tags: a collision would have probability ~5e-5


@pytest.mark.parametrize(
    ("wanted", "seen", "same"),
    [
        ("rdABCDEFGH", "rdABCDEFGH", True),
        ("rdABCDEFGH", "rdABCDEFGHIJKLMNOPQR", True),
        ("rdABCDEFGHIJKLMNOPQR", "rdABCDEFGH", True),
        ("rdABCDEFGHIJKLMNOPQR", "rdABCDEFGHZZZZZZZZZZ", False),  # two full tags compare in full
        ("rdABCDEFGH", "rdABCDEFGZ", False),
        ("rdABCDEFGH", "rdABCDEFGHxyz", False),  # not a relayd tag: only itself
        ("News", "News tonight", False),
    ],
)
def test_same_segment(wanted: str, seen: str, same: bool) -> None:
    assert same_segment(wanted, seen) is same


@pytest.mark.parametrize("title", ["rdabcdefgh", "rdABCDEFG", "rdABCDEFGHIJK", "rdABCDEFGH1", "News tonight"])
def test_other_titles_are_not_relayd_tags(title: str) -> None:
    assert not is_relayd_title(title)
    assert lookup_title(title) == title


def _schedule() -> Schedule:
    return Schedule.model_validate(
        {
            "id": "news",
            "source": "rtmp://origin.example.com/live/a",
            "destination": "rtmp://push.example.net/live/a",
            "window": {"start": 1_900_000_000, "end": 1_900_000_000 + 3000},
        }
    )


def test_a_plan_with_short_titles_differs_from_the_full_one_only_in_titles() -> None:
    common = {"now": 1_900_000_000 - 10, "max_task_seconds": 1000, "horizon_s": 5000, "namespace": "relayd"}
    full = plan(_schedule(), **common)  # type: ignore[arg-type]
    short = plan(_schedule(), title_length=TitleLength.SHORT, **common)  # type: ignore[arg-type]
    assert [len(s.title) for s in short] == [10, 10, 10]
    assert [s.title for s in short] == [s.title[:10] for s in full]
    # The spec hash does not change with the tag length: switching lengths updates no task.
    assert [s.spec_hash for s in short] == [s.spec_hash for s in full]
