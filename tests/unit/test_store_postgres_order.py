"""How the PostgreSQL writer sends a batch: event inserts after the rest of a batch, unless the batch forbids it; a
batch that is one unfenced statement (a lone callback event, a burst of them) sent without a transaction block."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relayd.store.batch import Call
from relayd.store.postgres.child import one_statement, send_order
from relayd.store.postgres.schema import BULK
from relayd.store.sql import POSTGRES

REORDER = ((POSTGRES.insert_event,), (POSTGRES.prune_events,))
EVENT = Call("execute", (POSTGRES.insert_event, ()), ())
SEGMENT = Call("execute", (POSTGRES.upsert_segment, ()), ())
SEGMENTS = Call("executemany", (POSTGRES.upsert_segment, []), ())
META = Call("execute", (POSTGRES.upsert_meta, ()), ())
NOOP = Call("noop", (), ())
PRUNE = Call("execute", (POSTGRES.prune_events, ()), ())
READ = Call("fetchall", ("SELECT 1", ()), ())


def test_events_go_after_the_other_writes_each_kind_in_its_own_order() -> None:
    calls = [SEGMENT, EVENT, SEGMENTS, EVENT, META, NOOP, EVENT]
    assert send_order(calls, REORDER) == [0, 2, 4, 5, 1, 3, 6]


def test_a_batch_that_prunes_events_or_reads_keeps_the_order_given() -> None:
    assert send_order([EVENT, SEGMENT, PRUNE, EVENT], REORDER) == [0, 1, 2, 3]
    assert send_order([EVENT, SEGMENT, READ, EVENT], REORDER) == [0, 1, 2, 3]
    assert send_order([EVENT, SEGMENT], ((), ())) == [0, 1]


@given(st.lists(st.sampled_from([EVENT, SEGMENT, SEGMENTS, META, NOOP, PRUNE, READ]), max_size=30))
def test_the_order_is_a_permutation_that_keeps_each_statements_calls_in_order(calls: list[Call]) -> None:
    order = send_order(calls, REORDER)
    assert sorted(order) == list(range(len(calls)))
    for statement in {c.args[0] for c in calls if c.args}:
        mine = [i for i in order if calls[i].args and calls[i].args[0] == statement]
        assert mine == sorted(mine)
    non_events = [i for i in order if calls[i] is not EVENT]
    assert non_events == sorted(non_events)  # only events move, and only later


def event(key: str | None) -> Call:
    return Call("execute", (POSTGRES.insert_event, (1.0, "callback", None, None, None, key, "{}", None)), ())


def test_a_lone_unfenced_write_or_a_burst_of_distinct_events_is_one_statement() -> None:
    assert one_statement([event("a")], BULK) == [0]
    assert one_statement([NOOP, event("a"), NOOP, event("b"), event(None)], BULK) == [1, 3, 4]
    assert one_statement([READ], BULK) == [0]
    assert one_statement([NOOP, NOOP], BULK) == []  # a barrier alone: nothing to send


def test_anything_else_goes_as_a_transaction() -> None:
    fenced = Call("execute", (POSTGRES.upsert_segment, ()), (), fenced=True)
    assert one_statement([fenced], BULK) is None  # needs the lease guard first
    assert one_statement([event("a"), fenced], BULK) is None
    assert one_statement([event("a"), META], BULK) is None  # two statements
    assert one_statement([event("a"), event("a")], BULK) is None  # a key twice: an executemany, two statements
    assert one_statement([event("a"), event("b")], {}) is None  # not sent in bulk: an executemany
    assert one_statement([SEGMENTS], BULK) is None  # an executemany of rows that are not in bulk form
