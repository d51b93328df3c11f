"""The console's pure parts: the store's change journal, how signals merge for a late stream, and what "retry now"
does to a segment record."""

from __future__ import annotations

from relayd.ids import ScheduleId
from relayd.store.journal import ChangeJournal
from relayd.web.console.live import MAX_IDS, Signal, merge, overview_of, signal_data
from tests.integration.test_web_support import FakeView


def ids(*names: str) -> frozenset[ScheduleId]:
    return frozenset(ScheduleId(n) for n in names)


def test_the_journal_answers_what_moved_since_a_position() -> None:
    journal = ChangeJournal(keep=3)
    start = journal.seq
    assert journal.since(start) == frozenset()
    journal.note(ScheduleId("a"))
    journal.note(ScheduleId("b"))
    journal.note(ScheduleId("a"))
    assert journal.since(start) == ids("a", "b")
    assert journal.since(start + 2) == ids("a")
    assert journal.since(journal.seq) == frozenset()


def test_a_reader_behind_what_the_journal_keeps_is_told_to_read_everything() -> None:
    journal = ChangeJournal(keep=2)
    for name in "abc":
        journal.note(ScheduleId(name))
    assert journal.since(0) is None
    assert journal.since(1) == ids("b", "c")


def test_signals_merge_into_one_and_too_many_ids_mean_read_everything() -> None:
    merged = merge([Signal(2, ids("a"), False), Signal(3, ids("b"), False)], seq=1)
    assert merged == Signal(3, ids("a", "b"), False)
    assert merge([], seq=7) == Signal(7, frozenset(), False)
    crowd = frozenset(ScheduleId(f"s{i}") for i in range(MAX_IDS + 1))
    assert merge([Signal(2, crowd, False)], seq=1).overview is True
    assert merge([Signal(2, ids("a"), True)], seq=1).overview is True


def test_the_event_names_the_schedules_or_says_overview() -> None:
    assert signal_data(Signal(1, ids("b", "a"), False)) == (
        b'event: changed\ndata: {"schedules":["a","b"],"overview":false}\n\n'
    )
    assert signal_data(Signal(1, ids("a"), True)) == b'event: changed\ndata: {"schedules":[],"overview":true}\n\n'


def test_the_overview_moves_with_held_removals_conflicts_and_config_warnings() -> None:
    view = FakeView()
    key = overview_of(view, lambda: ())
    before = key()
    assert key() == before
    view.held = [ScheduleId("gone")]
    held = key()
    assert held != before
    view.warnings = ["a.toml: unknown key"]
    warned = key()
    assert warned != held
    view.conflicts = lambda: ["another installation uses this namespace"]  # type: ignore[method-assign]
    assert key() != warned
