"""Grouping, redaction, targets' filters and the durable state document."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.alerts.decide import Phase, Tracked
from relayd.alerts.grouping import FIRST_SUBJECTS, Tone, group
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition
from relayd.alerts.redact import redact_url, url_secrets
from relayd.alerts.state import (
    MAX_MESSAGE_CHARS,
    META_KEY,
    OUTBOX_KEY,
    MetaAlertStateStore,
    Owed,
    SavedState,
    decode,
    encode,
)
from relayd.alerts.targets import AlertTarget, parse_alert_urls


def note(subject: str, transition: Transition = Transition.OPENED, kind: AlertKind = AlertKind.SEGMENT_FAILING,
         severity: Severity = Severity.CRITICAL, message: str = "it broke") -> Notification:  # fmt: skip
    return Notification(
        transition, Alert(Condition(kind, subject, severity, message, ("relayd status x",)), 100.0), 160.0
    )


# -- grouping ---------------------------------------------------------------------------------------------------


def test_one_notification_reads_as_its_own_alert() -> None:
    opened = group([note("news.0")], installation="prod")
    assert opened.title == "[relayd prod] OPENED critical: segment_failing news.0"
    assert "it broke" in opened.body and "relayd status x" in opened.body and opened.tone is Tone.FAILURE
    resolved = group([note("news.0", Transition.RESOLVED)], installation="prod")
    assert resolved.title.startswith("[relayd prod] RESOLVED") and "1m00s" in resolved.body
    assert resolved.tone is Tone.SUCCESS


def test_two_hundred_alerts_become_one_message_with_counts_and_first_subjects() -> None:
    many = [note(f"s{i:03d}.0") for i in range(200)] + [
        note("a.toml", kind=AlertKind.CONFIG_PROBLEM, severity=Severity.WARNING),
        note("old.1", Transition.RESOLVED),
    ]
    message = group(many, installation="prod")
    assert message.count == 202
    assert message.title == "[relayd prod] 202 alerts: 201 opened, 1 resolved"
    assert "segment_failing ×200 (critical): s000.0, s001.0, s002.0, s003.0, s004.0 and 195 more" in message.body
    assert "config_problem ×1 (warning): a.toml" in message.body
    assert "Resolved (1):" in message.body and "old.1" in message.body
    assert "s005.0" not in message.body and len(message.body) < 1000
    assert message.tone is Tone.FAILURE and FIRST_SUBJECTS == 5


def test_only_warnings_opened_is_a_warning_and_grouping_nothing_is_an_error() -> None:
    assert (
        group([note("a", severity=Severity.WARNING), note("b", severity=Severity.WARNING)], installation="x").tone
        is Tone.WARNING
    )
    with pytest.raises(ValueError, match="nothing"):
        group([], installation="x")


# -- redaction --------------------------------------------------------------------------------------------------

CASES = [
    ("json://127.0.0.1:8080/hooks/abc123?token=s3cr3t", "json://127.0.0.1:8080/***?***"),
    ("mailto://user:hunter22@smtp.example.com?to=ops@example.com", "mailto://***@smtp.example.com?***"),
    ("feishu://8b1c2d3e-aaaa-bbbb", "feishu://***"),
    ("dingtalk://a1b2c3d4e5/SECabc", "dingtalk://***/***"),
    ("wecombot://0f9e8d7c-1234", "wecombot://***"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://***/***"),
    ("tgram://123456789:AAE-token_x/987654", "tgram://***/***"),
    ("jsons://[::1]:9000", "jsons://[::1]:9000"),
    ("not a url", "***"),
]


@pytest.mark.parametrize(("url", "shown"), CASES)
def test_redaction_keeps_scheme_and_real_hosts_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# Tokens are URL-safe, 16+ characters, and never look like a dotted host name (a real host is shown on purpose).
TOKENS = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#@:[]&=+%."), min_size=16
)


@given(TOKENS)
def test_a_token_anywhere_in_a_url_never_survives_redaction(token: str) -> None:
    for url in (f"feishu://{token}", f"json://example.com/{token}", f"json://u:{token}@example.com",
                f"json://example.com/x?key={token}", f"slack://{token}/b/c"):  # fmt: skip
        assert token not in redact_url(url)
        assert token in url_secrets(url)


def test_path_words_are_not_secrets_for_the_log_redactor_but_tokens_are() -> None:
    pieces = url_secrets("json://hooks.example.com/relayd/alerts/a1b2c3d4e5?channel=ops&key=k9k9k9k9")
    assert sorted(pieces) == ["a1b2c3d4e5", "k9k9k9k9"]
    assert sorted(url_secrets("mailto://ops:pw@smtp.example.com")) == ["ops", "pw"]


# -- targets ----------------------------------------------------------------------------------------------------


def test_targets_filter_by_severity_and_kind_but_tests_go_everywhere() -> None:
    target = AlertTarget(url="json://h.example.com/x", min_severity=Severity.CRITICAL,
                         kinds=frozenset({AlertKind.STREAM_DOWN}))  # fmt: skip
    assert not target.accepts(note("a"))  # critical, wrong kind
    assert not target.accepts(note("a", kind=AlertKind.STREAM_DOWN, severity=Severity.WARNING))
    assert target.accepts(note("a", kind=AlertKind.STREAM_DOWN))
    assert target.accepts(note("t", Transition.TEST, severity=Severity.INFO))
    assert target.describe() == {
        "url": "json://h.example.com/***",
        "min_severity": "critical",
        "kinds": ["stream_down"],
    }


def test_alert_urls_from_the_environment_are_json_or_whitespace_separated() -> None:
    assert parse_alert_urls("json://a/x  feishu://t\n") == ["json://a/x", "feishu://t"]
    assert parse_alert_urls('[{"url": "json://a/x", "min_severity": "warning"}]') == [
        {"url": "json://a/x", "min_severity": "warning"}
    ]
    with pytest.raises(ValueError, match="JSON"):
        parse_alert_urls("[oops")
    assert AlertTarget.model_validate("json://a/x").url == "json://a/x"


# -- durable state ----------------------------------------------------------------------------------------------


def _state() -> SavedState:
    condition = Condition(AlertKind.STREAM_DOWN, "news", Severity.CRITICAL, "x" * (MAX_MESSAGE_CHARS + 50), ("l",))
    tracked = Tracked(condition, Phase.OPEN, since=1.0, opened_at=31.0, clear_since=40.0)
    owed = Owed(note("news.0"), frozenset({"abc", "def"}))
    return SavedState({condition.key: tracked}, (owed,))


def test_the_state_documents_round_trip_and_are_bounded() -> None:
    docs = encode(_state())
    back = decode(docs)
    tracked = back.alerts["stream_down:news"]
    assert (tracked.phase, tracked.since, tracked.opened_at, tracked.clear_since) == (Phase.OPEN, 1.0, 31.0, 40.0)
    assert len(tracked.condition.message) == MAX_MESSAGE_CHARS
    assert back.outbox == _state().outbox
    assert len(json.loads(encode(SavedState(outbox=_state().outbox * 5), max_outbox=2)[OUTBOX_KEY])["outbox"]) == 2


def test_an_outbox_entry_names_its_alert_and_carries_its_condition_only_when_it_differs() -> None:
    condition = Condition(AlertKind.SEGMENT_FAILING, "s.1", Severity.CRITICAL, "m" * 500)
    tracked = Tracked(condition, Phase.OPEN, since=1.0, opened_at=2.0, clear_since=None)
    same = Owed(Notification(Transition.OPENED, Alert(condition, 2.0), 2.0), frozenset({"t"}))
    reworded = replace(condition, message="now different")
    other = Owed(Notification(Transition.RESOLVED, Alert(reworded, 2.0), 9.0), frozenset({"t"}))
    state = SavedState({condition.key: tracked}, (same, other))
    entries = json.loads(encode(state)[OUTBOX_KEY])["outbox"]
    assert ["condition" in e for e in entries] == [False, True]
    assert decode(encode(state)) == state
    # the outbox written, its alerts' document not: the entry that refers to a missing alert is dropped, not guessed
    docs = encode(state) | {META_KEY: encode(SavedState())[META_KEY]}
    assert decode(docs).outbox == (other,)


def test_a_document_of_an_older_installation_with_both_parts_in_one_key_is_read() -> None:
    state = _state()
    older = json.loads(encode(state)[META_KEY])
    older["outbox"] = [
        {"transition": o.notification.transition.value, "condition": {
            "kind": o.notification.alert.kind.value, "subject": o.notification.alert.subject,
            "severity": o.notification.alert.severity.value, "message": o.notification.alert.condition.message,
            "links": list(o.notification.alert.condition.links)},
         "opened_at": o.notification.alert.opened_at, "at": o.notification.at, "targets": sorted(o.targets)}
        for o in state.outbox
    ]  # fmt: skip
    assert decode({META_KEY: json.dumps(older)}).outbox == state.outbox


class FakeMeta:
    def __init__(self, text: str | None = None) -> None:
        self.values: dict[str, str] = {} if text is None else {META_KEY: text}
        self.writes: list[str] = []
        self.fail = False

    def meta(self, name: str) -> str | None:
        return self.values.get(name)

    async def set_meta(self, name: str, value: str) -> None:
        if self.fail:
            raise OSError("disk full")
        self.values[name] = value
        self.writes.append(name)


async def test_the_meta_store_saves_loads_and_survives_garbage() -> None:
    meta = FakeMeta()
    store = MetaAlertStateStore(meta)
    assert store.load() == SavedState()
    await store.save(_state())
    assert MetaAlertStateStore(meta).load().outbox == _state().outbox
    assert MetaAlertStateStore(FakeMeta("{not json")).load() == SavedState()
    assert MetaAlertStateStore(FakeMeta('{"version": 99}')).load() == SavedState()


async def test_a_save_writes_only_the_documents_that_changed() -> None:
    meta = FakeMeta()
    store = MetaAlertStateStore(meta)
    state = _state()
    await store.save(state)
    assert meta.writes == [META_KEY, OUTBOX_KEY]
    await store.save(state)  # nothing changed: nothing written
    await store.save(replace(state, outbox=()))  # a delivery settled: the outbox alone
    assert meta.writes == [META_KEY, OUTBOX_KEY, OUTBOX_KEY]
    reopened = MetaAlertStateStore(meta)
    loaded = reopened.load()
    assert (loaded.alerts.keys(), loaded.outbox) == (state.alerts.keys(), ())
    await reopened.save(replace(state, outbox=()))  # what it read is what it would write
    assert meta.writes == [META_KEY, OUTBOX_KEY, OUTBOX_KEY]


async def test_a_document_whose_write_failed_is_written_again_at_the_next_save() -> None:
    meta = FakeMeta()
    store = MetaAlertStateStore(meta)
    meta.fail = True
    with pytest.raises(OSError):
        await store.save(_state())
    meta.fail = False
    await store.save(_state())
    assert MetaAlertStateStore(meta).load().outbox == _state().outbox
