"""Callback URL macs and the platform's sign/t check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.ids import SegmentKey
from relayd.web.signing import SignCheck, callback_mac, callback_url, sign_for, verify_mac, verify_sign

SECRET = b"s3cret"
KEY = SegmentKey("sched1-0003")


def test_mac_is_url_safe_and_carries_160_bits() -> None:
    mac = callback_mac(SECRET, KEY)
    assert re.fullmatch(r"[a-z2-7]{32}", mac)  # 32 base32 chars = 160 bits


def test_mac_is_a_truncated_hmac_sha256() -> None:
    digest = hmac.new(SECRET, KEY.encode(), hashlib.sha256).digest()
    assert base64.b32decode(callback_mac(SECRET, KEY).upper()) == digest[:20]


def test_mac_depends_on_key_and_secret() -> None:
    macs = {callback_mac(SECRET, KEY), callback_mac(SECRET, SegmentKey("sched1-0004")), callback_mac(b"x", KEY)}
    assert len(macs) == 3


def test_verify_mac() -> None:
    mac = callback_mac(SECRET, KEY)
    flipped = ("b" if mac[0] == "a" else "a") + mac[1:]
    assert verify_mac(SECRET, KEY, mac)
    assert not verify_mac(SECRET, KEY, flipped)
    assert not verify_mac(SECRET, KEY, mac.upper())
    assert not verify_mac(SECRET, KEY, mac[:-1])
    assert not verify_mac(SECRET, SegmentKey("other"), mac)
    assert not verify_mac(SECRET, KEY, "密码" + mac[2:])  # non-ASCII input is rejected, not an exception


def test_callback_url_format_and_limit() -> None:
    url = callback_url("https://relay.example.com/", SECRET, KEY)
    assert url == f"https://relay.example.com/v1/callbacks/{KEY}/{callback_mac(SECRET, KEY)}"
    with pytest.raises(ValueError, match="512"):
        callback_url("https://example.com/" + "p" * 480, SECRET, KEY)


NOW = 1_700_000_000.0


def test_sign_matches_md5_of_key_and_t() -> None:
    assert sign_for("k", 123) == hashlib.md5(b"k123").hexdigest()


@pytest.mark.parametrize(
    ("t_offset", "expected"),
    [(0, SignCheck.OK), (600, SignCheck.OK), (-900, SignCheck.OK), (-901, SignCheck.EXPIRED), (901, SignCheck.FUTURE)],
)
def test_sign_freshness_window(t_offset: int, expected: SignCheck) -> None:
    t = int(NOW) + t_offset
    assert verify_sign("key", sign_for("key", t), t, now=NOW, max_age=900) is expected


def test_bad_sign_is_reported_before_freshness() -> None:
    t = int(NOW) - 10_000
    assert verify_sign("key", sign_for("other", t), t, now=NOW, max_age=900) is SignCheck.BAD_SIGN


def test_sign_accepts_string_t_and_upper_case_hex() -> None:
    t = str(int(NOW))
    assert verify_sign("key", sign_for("key", t).upper(), t, now=NOW, max_age=60).ok


@pytest.mark.parametrize("t", ["", "12a", "-5", None, True, 1.5, [1]])
def test_malformed_t(t: object) -> None:
    assert verify_sign("key", "0" * 32, t, now=NOW, max_age=60) is SignCheck.MALFORMED  # type: ignore[arg-type]


@given(st.text(min_size=1, max_size=40), st.integers(min_value=-899, max_value=899))
def test_own_signatures_always_verify(key: str, offset: int) -> None:
    t = int(NOW) + offset
    assert verify_sign(key, sign_for(key, t), t, now=NOW, max_age=900).ok


@given(st.text(max_size=64))
def test_arbitrary_macs_never_raise(mac: str) -> None:
    assert verify_mac(SECRET, KEY, mac) is (mac == callback_mac(SECRET, KEY))
