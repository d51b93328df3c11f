"""The pure health verdict: stalls only from successful, late-enough looks; errors are unknown; grace pauses."""

from __future__ import annotations

from collections import Counter

from relayd.health.monitor import phase
from relayd.health.observations import Advanced, Observation, ProbeError, ProbeErrorKind, Same
from relayd.health.verdict import Health, Timing, Track, Verdict, judge, record

TIMING = Timing(stall_after=15.0, grace=10.0)
START = 1_000.0  # the segment relays from here; judging starts at START + grace


def looks(*items: tuple[float, Observation]) -> Track:
    track = Track()
    for at, observation in items:
        track = record(track, observation, at)
    return track


def verdict(track: Track, now: float, since: float | None = START) -> Verdict:
    return judge(track, relaying_since=since, now=now, timing=TIMING)


def test_not_relaying_or_in_grace_is_paused() -> None:
    track = looks((START + 1, Same("a")))
    assert verdict(track, START + 100, since=None) == Verdict(Health.PAUSED, reason="not relaying")
    assert verdict(track, START + 9.9).health is Health.PAUSED
    assert verdict(Track(), START + 10).reason == "not probed yet"


def test_advancing_stream_is_up() -> None:
    track = looks((START + 11, Same("1")), (START + 16, Advanced("2")))
    assert verdict(track, START + 16) == Verdict(Health.UP)
    assert track.last_advance == START + 16


def test_stall_needs_a_look_stall_after_past_the_baseline() -> None:
    base = START + 10  # never advanced: the baseline is the first look after grace
    early = looks((base, Same("1")), (base + 14.9, Same("1")))
    assert verdict(early, base + 100).health is not Health.STALLED  # the clock alone never makes a stall
    late = looks((base, Same("1")), (base + 15, Same("1")))
    assert verdict(late, base + 15) == Verdict(Health.STALLED, since=base)


def test_a_look_a_few_milliseconds_short_of_stall_after_decides_within_the_slack() -> None:
    """Looks start one slot grid apart but are timed when they finish: 14.998 s after an advance is "15 s"."""
    advanced = START + 12.003  # this look took a little longer than the one that finds the stream unmoved
    track = looks((START + 10, Same("1")), (advanced, Advanced("2")), (advanced + 14.998, Same("2")))
    slack = Timing(stall_after=15.0, grace=10.0, slack=0.25)
    assert judge(track, relaying_since=START, now=advanced + 14.998, timing=slack) == Verdict(
        Health.STALLED, since=advanced
    )
    assert verdict(track, advanced + 14.998).health is Health.UP  # without slack: one more interval to wait
    short = looks((START + 10, Same("1")), (advanced, Advanced("2")), (advanced + 14.7, Same("2")))
    assert judge(track=short, relaying_since=START, now=advanced + 14.7, timing=slack).health is Health.UP


def test_a_first_look_long_after_the_start_is_only_a_baseline() -> None:
    late = START + 3600  # e.g. the daemon restarted an hour into the segment
    track = looks((late, Same("1")))
    assert verdict(track, late).reason == "waiting for the stream to advance"
    track = record(track, Same("1"), late + 15)
    assert verdict(track, late + 15) == Verdict(Health.STALLED, since=late)


def test_stall_is_counted_from_the_last_advance() -> None:
    track = looks((START + 20, Advanced("2")), (START + 30, Same("2")), (START + 35, Same("2")))
    assert verdict(track, START + 35) == Verdict(Health.STALLED, since=START + 20)


def test_probe_errors_are_unknown_and_never_a_stall() -> None:
    error = ProbeError(ProbeErrorKind.HTTP_STATUS, "HTTP 403 from https://p/x.m3u8")
    track = looks((START + 11, Same("1")), *((START + 11 + 5 * i, error) for i in range(1, 20)))
    found = verdict(track, START + 200)
    assert found == Verdict(Health.UNKNOWN, reason="probe error http_status: HTTP 403 from https://p/x.m3u8")


def test_an_advance_hidden_behind_timeouts_still_counts() -> None:
    timeout = ProbeError(ProbeErrorKind.TIMEOUT, "no answer")
    track = looks((START + 11, Advanced("1")), (START + 16, timeout), (START + 21, timeout), (START + 26, timeout))
    assert track.marker == "1"
    track = record(track, Advanced("2"), START + 31)  # compared with the last successful look, not the errors
    assert verdict(track, START + 31) == Verdict(Health.UP)


def test_a_stream_that_comes_back_is_up_again() -> None:
    track = looks((START + 20, Advanced("2")), (START + 40, Same("2")))
    assert verdict(track, START + 40).health is Health.STALLED
    track = record(track, Advanced("3"), START + 45)
    assert verdict(track, START + 45) == Verdict(Health.UP)


def test_a_restart_moves_the_baseline() -> None:
    track = looks((START + 20, Advanced("2")), (START + 40, Same("2")))
    restarted = START + 41
    assert verdict(track, START + 45, since=restarted).health is Health.PAUSED
    again = record(track, Same("2"), restarted + 12)
    assert verdict(again, restarted + 12, since=restarted).reason == "waiting for the stream to advance"
    again = record(again, Same("2"), restarted + 25)
    assert verdict(again, restarted + 25, since=restarted) == Verdict(Health.STALLED, since=restarted + 10)


def test_probe_phases_spread_over_the_interval() -> None:
    phases = [phase(f"schedule-{i}", 5.0) for i in range(500)]
    assert all(0 <= p < 5.0 for p in phases)
    assert phases == [phase(f"schedule-{i}", 5.0) for i in range(500)]  # deterministic
    per_second = Counter(int(p) for p in phases)
    assert sorted(per_second) == [0, 1, 2, 3, 4]
    assert max(per_second.values()) < 140  # ~100 a second, no herd
