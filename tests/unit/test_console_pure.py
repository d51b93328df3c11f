"""The console's pure parts: session cookies and CSRF, the same-origin rule, language choice, chain warnings."""

from __future__ import annotations

import dataclasses

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import SegmentRecord, SegmentState
from relayd.web.console.chains import ChainWarning, overlap_spans, sharing_destinations, warnings
from relayd.web.console.i18n import MESSAGES, Lang, pick_language
from relayd.web.console.security import safe_next
from relayd.web.console.sessions import Sessions, same_origin

NOW = 1_800_000_000.0


def test_a_cookie_verifies_until_it_expires_and_never_contains_the_token() -> None:
    sessions = Sessions("secret-token", ttl_s=100)
    cookie, session = sessions.issue(NOW)
    assert "secret-token" not in cookie
    assert sessions.verify(cookie, NOW + 99) == session
    assert sessions.verify(cookie, NOW + 100) is None
    assert Sessions("other-token").verify(cookie, NOW) is None  # a new token ends every session


def test_forged_or_malformed_cookies_are_refused() -> None:
    sessions = Sessions("secret-token")
    cookie, _ = sessions.issue(NOW)
    sid, expires, mac = cookie.split(".")
    assert sessions.verify(f"{sid}.{int(expires) + 999}.{mac}", NOW) is None
    assert sessions.verify(f"other.{expires}.{mac}", NOW) is None
    for junk in ("", "a.b", "a.b.c.d", "x.notdigits.y", None):
        assert sessions.verify(junk, NOW) is None


def test_logout_revokes_and_csrf_is_bound_to_the_session() -> None:
    sessions = Sessions("secret-token")
    cookie, session = sessions.issue(NOW)
    _, other = sessions.issue(NOW)
    assert Sessions.csrf_ok(session, session.csrf)
    assert not Sessions.csrf_ok(session, other.csrf) and not Sessions.csrf_ok(session, None)
    sessions.revoke(session, NOW)
    assert sessions.verify(cookie, NOW) is None


def test_same_origin_rule() -> None:
    host = "127.0.0.1:8080"
    assert same_origin({"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, host)
    assert same_origin({"Origin": "https://127.0.0.1:8080"}, host)  # TLS at a proxy
    assert same_origin({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, host)  # a form under no-referrer
    assert not same_origin({"Origin": "http://evil.example"}, host)
    assert not same_origin({"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "cross-site"}, host)
    assert not same_origin({"Origin": "null"}, host)
    assert not same_origin({}, host)


def test_language_from_cookie_then_accept_language() -> None:
    assert pick_language("zh", "en-US") is Lang.ZH
    assert pick_language("fr", "zh-CN,zh;q=0.9,en;q=0.8") is Lang.ZH
    assert pick_language(None, "fr-FR, en;q=0.5, zh;q=0.7") is Lang.ZH
    assert pick_language(None, "de, zh;q=0") is Lang.EN
    assert pick_language(None, None) is Lang.EN
    assert MESSAGES[Lang.EN].keys() == MESSAGES[Lang.ZH].keys()


def test_only_local_paths_are_followed_after_login() -> None:
    assert safe_next("/schedules/a") == "/schedules/a"
    for bad in ("//evil.example", "https://evil.example/", "\\\\evil", "", None, "/\\evil"):
        assert safe_next(bad) == "/"


def seg(sid: str, index: int, start: int, end: int, dst: str, **changes: object) -> SegmentRecord:
    record = SegmentRecord(
        key=SegmentKey(f"{sid}.{index}"), schedule_id=ScheduleId(sid), index=index, occurrence=None, start=start,
        end=end, title="t", group=None, spec_hash="h", body={"DstAddr": dst},
    )  # fmt: skip
    return dataclasses.replace(record, **changes)


def test_chain_warnings() -> None:
    chain = [seg("a", 0, 0, 10, "d1"), seg("a", 1, 10, 20, "d1"), seg("a", 2, 25, 30, "d1")]
    other = [seg("b", 0, 15, 40, "d1"), seg("c", 0, 0, 100, "d2")]
    gone = [seg("z", 0, 0, 100, "d2", state=SegmentState.DELETED)]
    found = warnings(chain + other + gone)
    assert found == {
        "a.1": [ChainWarning.OVERLAP],
        "a.2": [ChainWarning.OVERLAP, ChainWarning.GAP_BEFORE],
        "b.0": [ChainWarning.OVERLAP],
    }
    recurring = [seg("r", 0, 0, 10, "d3", occurrence=0), seg("r", 1, 50, 60, "d3", occurrence=1)]
    assert warnings(recurring) == {}


def test_overlap_spans_are_the_shared_stretches() -> None:
    a, b, c = seg("a", 0, 0, 100, "d"), seg("b", 0, 50, 150, "d"), seg("c", 0, 120, 130, "d")
    gone = seg("g", 0, 0, 200, "d", state=SegmentState.DELETED)
    assert overlap_spans([a, b, c, gone]) == {"a.0": [(50, 100)], "b.0": [(50, 100), (120, 130)], "c.0": [(120, 130)]}
    assert overlap_spans([a, seg("e", 0, 100, 200, "d"), seg("f", 0, 0, 100, "other")]) == {}  # a hand-off: none


def test_the_segments_sharing_a_destination_with_the_asked_ones() -> None:
    a, b, c = seg("a", 0, 0, 100, "d"), seg("b", 0, 50, 150, "d"), seg("c", 0, 0, 100, "other")
    assert sharing_destinations([a], [a, b, c]) == [a, b]
    assert sharing_destinations([c], [a, b, c]) == [c]
    assert sharing_destinations([], [a, b, c]) == []
