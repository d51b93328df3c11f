"""The alert state machine: damping, exactly one opening and one resolution, resumption from saved state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relayd.alerts.decide import Damping, Phase, decide, open_alerts
from relayd.alerts.model import AlertKind, Condition, Severity, Transition

DAMP = Damping(open_after=30.0, resolve_after=60.0)


def cond(subject: str = "news.0", kind: AlertKind = AlertKind.SEGMENT_FAILING, message: str = "m") -> Condition:
    return Condition(kind, subject, Severity.CRITICAL, message)


def test_a_condition_opens_only_after_holding_for_open_after() -> None:
    first = decide([cond()], {}, 100.0, DAMP)
    assert first.notifications == [] and first.state["segment_failing:news.0"].phase is Phase.PENDING
    assert first.next_check == 130.0
    early = decide([cond()], first.state, 129.0, DAMP)
    assert early.notifications == []
    due = decide([cond()], early.state, 130.0, DAMP)
    assert [n.transition for n in due.notifications] == [Transition.OPENED]
    assert due.notifications[0].alert.opened_at == 130.0
    assert [a.subject for a in open_alerts(due.state)] == ["news.0"]


def test_a_blip_shorter_than_open_after_is_never_told() -> None:
    state = decide([cond()], {}, 0.0, DAMP).state
    cleared = decide([], state, 10.0, DAMP)
    assert cleared.state == {} and cleared.notifications == []
    again = decide([cond()], cleared.state, 20.0, DAMP)
    assert decide([cond()], again.state, 45.0, DAMP).notifications == []  # the streak restarted at 20


def test_an_open_alert_resolves_after_clear_for_resolve_after_and_flaps_are_absorbed() -> None:
    state = decide([cond()], decide([cond()], {}, 0.0, DAMP).state, 30.0, DAMP).state
    clearing = decide([], state, 40.0, DAMP)
    assert clearing.notifications == [] and clearing.next_check == 100.0
    back = decide([cond()], clearing.state, 50.0, DAMP)  # flap: holds again, still the same open alert
    assert back.notifications == [] and back.state["segment_failing:news.0"].clear_since is None
    gone = decide([], back.state, 60.0, DAMP)
    assert decide([], gone.state, 119.0, DAMP).notifications == []
    done = decide([], gone.state, 120.0, DAMP)
    assert [n.transition for n in done.notifications] == [Transition.RESOLVED]
    assert done.notifications[0].alert.opened_at == 30.0 and done.state == {}


def test_zero_damping_opens_and_resolves_at_once() -> None:
    now = Damping(0.0, 0.0)
    opened = decide([cond()], {}, 5.0, now)
    assert [n.transition for n in opened.notifications] == [Transition.OPENED]
    resolved = decide([], opened.state, 6.0, now)
    assert [n.transition for n in resolved.notifications] == [Transition.RESOLVED]


def test_an_open_alert_takes_the_latest_message_without_a_new_notification() -> None:
    state = decide([cond(message="a")], {}, 0.0, Damping(0.0, 0.0)).state
    later = decide([cond(message="b")], state, 1.0, Damping(0.0, 0.0))
    assert later.notifications == [] and open_alerts(later.state)[0].condition.message == "b"


def test_open_alerts_are_listed_most_severe_first() -> None:
    warn = Condition(AlertKind.CONFIG_PROBLEM, "a.toml", Severity.WARNING, "w")
    state = decide([warn, cond()], {}, 0.0, Damping(0.0, 0.0)).state
    assert [a.severity for a in open_alerts(state)] == [Severity.CRITICAL, Severity.WARNING]


# -- properties -------------------------------------------------------------------------------------------------

SUBJECTS = ("a", "b", "c")
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=90.0), st.frozensets(st.sampled_from(SUBJECTS))),
    min_size=1,
    max_size=40,
)


def _run(sequence: list[tuple[float, frozenset[str]]], damping: Damping) -> list[tuple[str, Transition, float]]:
    state: dict = {}
    now = 0.0
    told = []
    for gap, present in sequence:
        now += gap
        decision = decide([cond(s) for s in present], state, now, damping)
        state = decision.state
        told += [(n.alert.subject, n.transition, n.at) for n in decision.notifications]
    return told


@settings(max_examples=300, deadline=None)
@given(steps, st.floats(min_value=0.0, max_value=60.0), st.floats(min_value=0.0, max_value=120.0))
def test_notifications_per_alert_alternate_opened_resolved(
    sequence: list[tuple[float, frozenset[str]]], open_after: float, resolve_after: float
) -> None:
    told = _run(sequence, Damping(open_after, resolve_after))
    for subject in SUBJECTS:
        kinds = [t for s, t, _ in told if s == subject]
        assert all(t is (Transition.OPENED if i % 2 == 0 else Transition.RESOLVED) for i, t in enumerate(kinds))


@settings(max_examples=300, deadline=None)
@given(steps, st.floats(min_value=0.0, max_value=60.0), st.floats(min_value=0.0, max_value=120.0))
def test_an_opening_is_preceded_by_open_after_of_holding(
    sequence: list[tuple[float, frozenset[str]]], open_after: float, resolve_after: float
) -> None:
    """An alert opening at t was seen at every evaluation since a streak start <= t - open_after."""
    now = 0.0
    streak: dict[str, float] = {}
    state: dict = {}
    for gap, present in sequence:
        now += gap
        streak = {s: streak.get(s, now) for s in present}
        decision = decide([cond(s) for s in present], state, now, Damping(open_after, resolve_after))
        state = decision.state
        for n in decision.notifications:
            if n.transition is Transition.OPENED:
                assert now - streak[n.alert.subject] >= open_after


@settings(max_examples=200, deadline=None)
@given(steps)
def test_the_same_facts_twice_change_nothing(sequence: list[tuple[float, frozenset[str]]]) -> None:
    """Deciding again at the same instant with the same conditions is idempotent (a repeated evaluation)."""
    state: dict = {}
    now = 0.0
    for gap, present in sequence:
        now += gap
        first = decide([cond(s) for s in present], state, now, DAMP)
        again = decide([cond(s) for s in present], first.state, now, DAMP)
        assert again.notifications == [] and again.state == first.state
        state = first.state
